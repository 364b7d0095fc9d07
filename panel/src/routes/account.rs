//! The account page: change one's password (ending one's other sessions) and manage
//! one's API tokens. Part of the web pages; shares their session and CSRF checks.

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::web::{render, session_hash, CsrfForm, Session};
use crate::app::AppState;
use crate::auth::{self, Secret};
use crate::db::TokenRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(page))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountPage {
    user: String,
    csrf: String,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    message: Option<String>,
    error: Option<String>,
}

async fn show(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    new_token: Option<String>,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let tokens = match st.db.tokens_of(session.user.id).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let page = AccountPage {
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
    if let Err(e) = auth::check_password_strength(&f.new) {
        return refuse(&format!("{e}; nothing changed.")).await;
    }
    let stored = session.user.password_hash.clone();
    let current = Secret(f.current);
    let ok = match auth::verify_bounded(current, Some(stored)).await {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
    if !ok {
        let _ = st
            .db
            .audit(
                Some(&session.user),
                "password.change",
                &session.user.name,
                "wrong current password",
            )
            .await;
        return refuse("The current password is wrong; nothing changed.").await;
    }
    let new = Secret(f.new);
    let hash = match auth::hash_bounded(new).await {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    let keep = session_hash(&headers).unwrap_or_default();
    if let Err(e) = st.db.set_password(session.user.id, &hash, &keep).await {
        return e.into_response();
    }
    let _ = st
        .db
        .audit(
            Some(&session.user),
            "password.change",
            &session.user.name,
            "ok",
        )
        .await;
    let msg = "Password changed; your other sessions have ended.".to_string();
    show(&st, &session, StatusCode::OK, None, Some(msg), None).await
}

#[derive(Deserialize)]
struct TokenForm {
    csrf: String,
    #[serde(default)]
    label: String,
}

async fn create_token(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    if f.label.len() > 100 {
        let msg = Some("Labels have at most 100 characters.".to_string());
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
    let (token, hash) = auth::new_token();
    let id = match st.db.insert_token(session.user.id, &hash, &f.label).await {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let _ = st
        .db
        .audit(
            Some(&session.user),
            "token.create",
            &format!("token {id}"),
            "ok",
        )
        .await;
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
    match st.db.revoke_token(session.user.id, id).await {
        Ok(true) => {
            let _ = st
                .db
                .audit(
                    Some(&session.user),
                    "token.revoke",
                    &format!("token {id}"),
                    "ok",
                )
                .await;
            Redirect::to("/account").into_response()
        }
        Ok(false) => {
            let msg = Some("No such active token.".to_string());
            show(&st, &session, StatusCode::NOT_FOUND, None, None, msg).await
        }
        Err(e) => e.into_response(),
    }
}
