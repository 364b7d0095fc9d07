//! The account page: change one's password (ending one's other sessions) and manage
//! one's API tokens. Part of the web pages; shares their session and CSRF checks.

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::db::TokenRow;
use crate::domain::scopes::{Scope, Scopes};
use crate::error::AppError;
use crate::http::error::PageError;
use crate::http::render::render;
use crate::http::session::{session_id, CsrfForm, Session};
use crate::service::auth::Secret;
use crate::service::{sessions, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(page))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route("/account/sessions/end", post(end_sessions))
}

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    user: String,
    csrf: String,
    /// Each token with its end as a date ("no end" without one).
    tokens: Vec<(TokenRow, String)>,
    /// (logged in, last used), as dates.
    sessions: Vec<(String, String)>,
    new_token: Option<String>,
    message: Option<String>,
    error: Option<String>,
    /// The password was chosen by someone else: change it before anything else.
    must_change: bool,
    /// A second factor is on.
    totp: bool,
}

async fn show(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    new_token: Option<String>,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let tokens = match sessions::tokens(st, &session.user).await {
        Ok(t) => t
            .into_iter()
            .map(|t| {
                let until = t
                    .expires_at
                    .map_or_else(|| "no end".to_string(), super::human_time);
                (t, until)
            })
            .collect(),
        Err(e) => return PageError(e).into_response(),
    };
    let sessions = match sessions::sessions_of(st, &session.user).await {
        Ok(list) => list
            .into_iter()
            .map(|(a, b)| (super::human_time(a), super::human_time(b)))
            .collect(),
        Err(e) => return PageError(e).into_response(),
    };
    let must_change = session.user.must_change_password != 0;
    let page = AccountPage {
        nav: session.nav("/account"),
        must_change,
        totp: session.user.totp_enabled != 0,
        sessions,
        user: session.user.name.clone(),
        csrf: session.csrf.clone(),
        tokens,
        new_token,
        message,
        error,
    };
    (status, render(&page)).into_response()
}

async fn page(AxState(st): AxState<AppState>, session: Session) -> Response {
    show(&st, &session, StatusCode::OK, None, None, None).await
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

async fn change_password(
    AxState(st): AxState<AppState>,
    headers: HeaderMap,
    session: Session,
    Form(f): Form<PasswordForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let refuse = |msg: &str| {
        show(
            &st,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            None,
            Some(msg.to_string()),
        )
    };
    if f.new != f.repeat {
        return refuse("The two new passwords differ; nothing changed.").await;
    }
    let keep = session_id(&headers).unwrap_or_default();
    let changed =
        sessions::change_password(&st, &session.user, Secret(f.current), Secret(f.new), &keep)
            .await;
    match changed {
        Ok(()) => {}
        Err(AppError::Forbidden(_)) => {
            return refuse("The current password is wrong; nothing changed.").await
        }
        Err(e @ AppError::Unprocessable(_)) => {
            return refuse(&format!("{e}; nothing changed.")).await
        }
        Err(e) => return PageError(e).into_response(),
    }
    let msg = "Password changed; your other sessions have ended.".to_string();
    show(&st, &session, StatusCode::OK, None, Some(msg), None).await
}

#[derive(Deserialize)]
struct TokenForm {
    csrf: String,
    #[serde(default)]
    label: String,
    scope_read: Option<String>,
    scope_containers: Option<String>,
    scope_billing: Option<String>,
    scope_metrics: Option<String>,
    #[serde(default)]
    expires_days: String,
}

async fn create_token(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let mut scopes = Vec::new();
    for (ticked, scope) in [
        (&f.scope_read, Scope::Read),
        (&f.scope_containers, Scope::Containers),
        (&f.scope_billing, Scope::Billing),
        (&f.scope_metrics, Scope::Metrics),
    ] {
        if ticked.is_some() {
            scopes.push(scope);
        }
    }
    let days = f.expires_days.trim();
    let days = if days.is_empty() {
        None
    } else {
        match days.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => {
                let msg = Some("Days: give a whole number, or leave it empty.".to_string());
                return show(
                    &st,
                    &session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    None,
                    msg,
                )
                .await;
            }
        }
    };
    let grant = sessions::TokenGrant {
        scopes: Scopes(scopes),
        days,
    };
    let token = match sessions::create_token(&st, &session.user, &f.label, &grant).await {
        Ok((_, token)) => token,
        Err(AppError::Unprocessable(m)) => {
            let msg = Some(format!("{m}."));
            return show(
                &st,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                None,
                msg,
            )
            .await;
        }
        Err(e) => return PageError(e).into_response(),
    };
    show(&st, &session, StatusCode::OK, Some(token.0), None, None).await
}

async fn revoke_token(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match sessions::revoke_token(&st, &session.user, id).await {
        Ok(()) => Redirect::to("/account").into_response(),
        Err(AppError::NotFound) => {
            let msg = Some("No such active token.".to_string());
            show(&st, &session, StatusCode::NOT_FOUND, None, None, msg).await
        }
        Err(e) => PageError(e).into_response(),
    }
}

/// Ends every session of the user, this one too, and goes to the login page.
async fn end_sessions(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match sessions::end_all_sessions(&st, &session.user).await {
        Ok(_) => Redirect::to("/login").into_response(),
        Err(e) => PageError(e).into_response(),
    }
}
