//! The dashboard: the containers the user may see, with their state and use, and (for
//! customers) the form that creates one.

use acetate_engine::size::{format_bytes, format_cpus};
use askama::Template;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::domain::size::{Cpus, Size};
use crate::domain::{ContainerName, Role};
use crate::error::AppError;
use crate::http::error::{is_client_error, status, PageError};
use crate::http::render::render;
use crate::http::session::Session;
use crate::service::containers::{self, ContainerView, NewContainer};
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/containers", post(create))
}

/// One container row of the dashboard, formatted.
pub(super) struct Row {
    pub(super) name: String,
    pub(super) owner: String,
    pub(super) state: String,
    pub(super) cpu: String,
    pub(super) memory: String,
    pub(super) disk: String,
    pub(super) procs: String,
    pub(super) actions: Vec<&'static str>,
}

pub(super) fn row(c: &ContainerView) -> Row {
    let cg = c.usage.and_then(|u| u.cgroup);
    let limits = c.limits.as_ref();
    let running = c.state == "running";
    Row {
        name: c.name.clone(),
        owner: c.owner.clone().unwrap_or_else(|| "(unowned)".into()),
        state: c.state.clone(),
        cpu: cg.map_or("-".into(), |u| format!("{:.1}s", u.cpu_ns as f64 / 1e9)),
        memory: match (cg, limits) {
            (Some(u), Some(l)) => format!(
                "{} / {}",
                format_bytes(u.memory_bytes),
                format_bytes(l.memory)
            ),
            (None, Some(l)) => format_bytes(l.memory),
            _ => "-".into(),
        },
        disk: match (c.usage.and_then(|u| u.disk), limits) {
            (Some(d), _) => format!(
                "{} / {}",
                format_bytes(d.bytes_used),
                format_bytes(d.bytes_total)
            ),
            (None, Some(l)) => format_bytes(l.disk),
            _ => "-".into(),
        },
        procs: match (cg, limits) {
            (Some(u), Some(l)) => format!("{} / {}", u.procs, l.procs),
            _ => limits.map_or("-".into(), |l| {
                format!("{} (limit {})", format_cpus(l.cpus_milli), l.procs)
            }),
        },
        actions: if running {
            vec!["restart", "stop"]
        } else {
            vec!["start"]
        },
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    customer: bool,
    csrf: String,
    empty: bool,
    /// The table's rows, rendered by [`DashboardRows`] (trusted HTML).
    rows_html: std::sync::Arc<str>,
    /// The templates a customer may choose.
    templates: Vec<String>,
    message: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard_rows.html")]
struct DashboardRows<'a> {
    customer: bool,
    csrf: &'a str,
    rows: Vec<Row>,
}

/// The dashboard's rows for a session: rendered again only when a container row or the
/// snapshot changed (the forms in them carry the session's CSRF token, hence per session).
async fn dashboard_rows(
    st: &AppState,
    session: &Session,
) -> Result<(bool, std::sync::Arc<str>), AppError> {
    let gens = (st.db.containers_generation(), st.snapshot.generation());
    let key = session.csrf.clone();
    if let Some((g, empty, html)) = st.page_cache.lock().expect("page cache").get(&key) {
        if *g == gens {
            return Ok((*empty, html.clone()));
        }
    }
    let views = containers::list(st, &session.user).await?;
    let rows = DashboardRows {
        customer: session.user.role() == Role::Customer,
        csrf: &session.csrf,
        rows: views.iter().map(row).collect(),
    };
    let empty = rows.rows.is_empty();
    let html: std::sync::Arc<str> = rows
        .render()
        .map_err(|e| AppError::Internal(format!("render page: {e}")))?
        .into();
    let mut cache = st.page_cache.lock().expect("page cache");
    if cache.len() >= 10_000 {
        cache.clear();
    }
    cache.insert(key, (gens, empty, html.clone()));
    Ok((empty, html))
}

pub(super) async fn dashboard_page(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let (empty, rows_html) = match dashboard_rows(st, session).await {
        Ok(r) => r,
        Err(e) => return PageError(e).into_response(),
    };
    let templates = if session.user.role() == Role::Customer {
        match crate::service::templates::list(st, &session.user).await {
            Ok(t) => t.into_iter().map(|t| t.name).collect(),
            Err(e) => return PageError(e).into_response(),
        }
    } else {
        Vec::new()
    };
    let page = Dashboard {
        nav: session.nav("/"),
        templates,
        customer: session.user.role() == Role::Customer,
        csrf: session.csrf.clone(),
        empty,
        rows_html,
        message,
        error,
    };
    (status, render(&page)).into_response()
}

async fn dashboard(AxState(st): AxState<AppState>, session: Session) -> Response {
    dashboard_page(&st, &session, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
struct CreateForm {
    csrf: String,
    name: String,
    #[serde(default)]
    memory: String,
    #[serde(default)]
    cpus: String,
    #[serde(default)]
    disk: String,
    #[serde(default)]
    template: String,
}

pub(super) fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

async fn create(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<CreateForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let name = f.name.trim().to_string();
    let parsed = (|| {
        Ok::<_, AppError>(NewContainer {
            template: opt(&f.template),
            memory: opt(&f.memory)
                .map(Size::Text)
                .map(|m| m.bytes("memory"))
                .transpose()?,
            cpus_milli: opt(&f.cpus)
                .map(Cpus::Text)
                .map(|c| c.milli("cpus"))
                .transpose()?,
            disk: opt(&f.disk)
                .map(Size::Text)
                .map(|d| d.bytes("disk"))
                .transpose()?,
            ..NewContainer::named(ContainerName::parse(&name)?)
        })
    })();
    let result = match parsed {
        Ok(req) => match containers::create(&st, &session.user, req).await {
            Ok(op) => super::finish(&st, &op).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(None) => Redirect::to("/").into_response(),
        Ok(Some(progress)) => progress,
        Err(e) if is_client_error(&e) => {
            let msg = format!("Could not create {name:?}: {e}");
            dashboard_page(&st, &session, status(&e), None, Some(msg)).await
        }
        Err(e) => PageError(e).into_response(),
    }
}
