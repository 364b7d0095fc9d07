//! The "SSH and sessions" page: one's public keys for the SSH gateway, how to log in, and
//! the interactive sessions open in one's containers (and, for resellers and the provider,
//! their customers'), each of which can be ended.

use axum::extract::{Path, State as AxState};
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::db::keys::SshKey;
use crate::domain::Role;
use crate::error::AppError;
use crate::http::error::PageError;
use crate::http::render::render;
use crate::http::session::{CsrfForm, Session};
use crate::service::shells::{self, SessionInfo};
use crate::service::{keys, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/access", get(page))
        .route("/access/keys", post(add_key))
        .route("/access/keys/{id}/delete", post(remove_key))
        .route("/access/sessions/{id}/end", post(end_session))
}

#[derive(askama::Template)]
#[template(path = "access.html")]
struct AccessPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    csrf: String,
    /// Each key with when it was added and last used.
    keys: Vec<(SshKey, String, String)>,
    shells: Vec<(SessionInfo, String)>,
    manages: bool,
    ssh_port: Option<u16>,
    host: String,
    message: Option<String>,
    error: Option<String>,
}

/// The host name the browser used, without its port.
pub(super) fn host_of(headers: &HeaderMap) -> String {
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':')
                .filter(|(_, p)| p.parse::<u16>().is_ok())
                .map_or(h, |(host, _)| host)
        })
        .unwrap_or("HOST")
        .to_string()
}

async fn show(
    st: &AppState,
    session: &Session,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let keys = match keys::list(st, &session.user).await {
        Ok(list) => list
            .into_iter()
            .map(|k| {
                let added = super::human_time(k.created_at);
                let used = k
                    .last_used_at
                    .map_or_else(|| "never".to_string(), super::human_time);
                (k, added, used)
            })
            .collect(),
        Err(e) => return PageError(e).into_response(),
    };
    let shells = match shells::list(st, &session.user).await {
        Ok(list) => list
            .into_iter()
            .map(|s| {
                let since = super::human_time(s.started_at);
                (s, since)
            })
            .collect(),
        Err(e) => return PageError(e).into_response(),
    };
    let page = AccessPage {
        nav: session.nav("/access"),
        csrf: session.csrf.clone(),
        keys,
        shells,
        manages: session.user.role() != Role::Customer,
        ssh_port: st.shells.ssh_port(),
        host: host_of(headers),
        message,
        error,
    };
    (status, render(&page)).into_response()
}

async fn page(AxState(st): AxState<AppState>, session: Session, headers: HeaderMap) -> Response {
    show(&st, &session, &headers, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
struct KeyForm {
    csrf: String,
    public_key: String,
    #[serde(default)]
    name: String,
}

/// A refused change: the page again with the reason, or the error page.
async fn refused(st: &AppState, session: &Session, headers: &HeaderMap, e: AppError) -> Response {
    match e {
        AppError::Unprocessable(m) | AppError::Conflict(m) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            show(st, session, headers, status, None, Some(m)).await
        }
        e => PageError(e).into_response(),
    }
}

async fn add_key(
    AxState(st): AxState<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match keys::add(&st, &session.user, Some(&f.name), &f.public_key).await {
        Ok(k) => {
            let msg = format!("Key {} added: it logs in as you.", k.fingerprint);
            show(&st, &session, &headers, StatusCode::OK, Some(msg), None).await
        }
        Err(e) => refused(&st, &session, &headers, e).await,
    }
}

async fn remove_key(
    AxState(st): AxState<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match keys::remove(&st, &session.user, id).await {
        Ok(()) => Redirect::to("/access").into_response(),
        Err(e) => refused(&st, &session, &headers, e).await,
    }
}

async fn end_session(
    AxState(st): AxState<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match shells::end(&st, &session.user, id).await {
        Ok(()) => Redirect::to("/access#open-sessions").into_response(),
        Err(e) => refused(&st, &session, &headers, e).await,
    }
}
