//! The audit log in the browser, for the provider (everything) and resellers (their own
//! actions and their customers'): newest first, a page at a time.

use askama::Template;
use axum::extract::{Query, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::db::AuditRow;
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
}

#[derive(Deserialize)]
struct Cursor {
    /// Entries older than this id.
    before: Option<i64>,
}

async fn audit_page(
    AxState(st): AxState<AppState>,
    session: Session,
    Query(c): Query<Cursor>,
) -> Response {
    let me = &session.user;
    if me.role() == Role::Customer {
        return not_found("page");
    }
    match sessions::audit_page(&st, me, c.before, PAGE).await {
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
            })
        }
        Err(e) => PageError(e).into_response(),
    }
}
