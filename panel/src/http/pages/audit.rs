//! The audit log in the browser, for the provider (everything) and resellers (their own
//! actions and their customers'): newest first, a page at a time, narrowed by who, what,
//! on what and when.

use askama::Template;
use axum::extract::{Query, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::db::{AuditFilter, AuditRow};
use crate::domain::Role;
use crate::http::error::PageError;
use crate::http::render::{not_found, render};
use crate::http::session::Session;
use crate::service::{sessions, AppState};

/// Entries on one page.
const PAGE: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(audit_page))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    reseller: bool,
    /// (when, entry).
    rows: Vec<(String, AuditRow)>,
    /// The `?before=` of the next (older) page, if there is one.
    older: Option<i64>,
    /// The filter's fields as typed (who, what, on, since, until), and as a query string
    /// for the next page.
    f: Fields,
    query: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct Fields {
    /// Entries older than this id.
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    who: String,
    #[serde(default)]
    what: String,
    #[serde(default)]
    on: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

impl Fields {
    /// The filter's part of a query string (`&who=...`), empty without one.
    fn query(&self) -> String {
        let mut q = String::new();
        for (k, v) in [
            ("who", &self.who),
            ("what", &self.what),
            ("on", &self.on),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            let v = v.trim();
            if !v.is_empty() {
                let enc: String = v
                    .bytes()
                    .map(|b| match b {
                        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                q.push_str(&format!("&{k}={enc}"));
            }
        }
        q
    }
}

async fn audit_page(
    AxState(st): AxState<AppState>,
    session: Session,
    Query(f): Query<Fields>,
) -> Response {
    let me = &session.user;
    if me.role() == Role::Customer {
        return not_found("page");
    }
    let filter = AuditFilter {
        actor: Some(f.who.trim().to_string()).filter(|s| !s.is_empty()),
        action: Some(f.what.trim().to_string()).filter(|s| !s.is_empty()),
        target: Some(f.on.trim().to_string()).filter(|s| !s.is_empty()),
        ..AuditFilter::default()
    };
    let (filter, error) = match sessions::audit_filter(filter, Some(&f.since), Some(&f.until)) {
        Ok(filter) => (filter, None),
        Err(e) => (
            AuditFilter::default(),
            Some(format!("{e}. Showing everything.")),
        ),
    };
    match sessions::audit_page(&st, me, f.before, PAGE, &filter).await {
        Ok(rows) => {
            let older = (rows.len() as i64 == PAGE)
                .then(|| rows.last().map(|r| r.id))
                .flatten();
            render(&AuditPage {
                nav: session.nav("/audit"),
                reseller: me.role() == Role::Reseller,
                rows: rows
                    .into_iter()
                    .map(|r| (super::human_time(r.at), r))
                    .collect(),
                older,
                query: f.query(),
                f,
                error,
            })
        }
        Err(e) => PageError(e).into_response(),
    }
}
