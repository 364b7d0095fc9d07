//! The second factor's page (`/account/totp`): set up with a QR code and a first code,
//! recovery codes shown once, new ones, and turning it off.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::error::AppError;
use crate::http::error::PageError;
use crate::http::render::render;
use crate::http::session::{CsrfForm, Session};
use crate::service::auth::Secret;
use crate::service::totp::{self, Enrolment};
use crate::service::AppState;

/// The name authenticator apps list the account under.
const ISSUER: &str = "Acetate";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/totp", get(page))
        .route("/account/totp/setup", post(setup))
        .route("/account/totp/confirm", post(confirm))
        .route("/account/totp/codes", post(codes))
        .route("/account/totp/disable", post(disable))
}

#[derive(askama::Template)]
#[template(path = "totp.html")]
struct TotpPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    csrf: String,
    enabled: bool,
    codes_left: i64,
    enrolment: Option<Enrolment>,
    /// Recovery codes just made, shown once.
    codes: Vec<String>,
    message: Option<String>,
    error: Option<String>,
}

/// The page for `session`'s account as it is now (`enabled` may have just changed).
async fn show(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    codes: Vec<String>,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let user = match st.db.user_by_id(session.user.id).await {
        Ok(Some(u)) => u,
        Ok(None) => return PageError(AppError::NotFound).into_response(),
        Err(e) => return PageError(e).into_response(),
    };
    let state = match totp::status(st, &user).await {
        Ok(s) => s,
        Err(e) => return PageError(e).into_response(),
    };
    let enrolment = if state.enabled {
        None
    } else {
        match totp::pending(st, &user, ISSUER).await {
            Ok(e) => e,
            Err(e) => return PageError(e).into_response(),
        }
    };
    let page = TotpPage {
        nav: session.nav("/account"),
        csrf: session.csrf.clone(),
        enabled: state.enabled,
        codes_left: state.codes_left,
        enrolment,
        codes,
        message,
        error,
    };
    (status, render(&page)).into_response()
}

/// A refusal the person can act on is said on the page; anything else is an error page.
async fn refused(st: &AppState, session: &Session, e: AppError) -> Response {
    match e {
        AppError::Unprocessable(m) | AppError::Conflict(m) => {
            show(
                st,
                session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Vec::new(),
                None,
                Some(m),
            )
            .await
        }
        e => PageError(e).into_response(),
    }
}

async fn page(AxState(st): AxState<AppState>, session: Session) -> Response {
    show(&st, &session, StatusCode::OK, Vec::new(), None, None).await
}

async fn setup(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match totp::begin(&st, &session.user, ISSUER).await {
        Ok(_) => show(&st, &session, StatusCode::OK, Vec::new(), None, None).await,
        Err(e) => refused(&st, &session, e).await,
    }
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    code: String,
}

async fn confirm(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<CodeForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match totp::confirm(&st, &session.user, &f.code).await {
        Ok(codes) => {
            let msg = "The second factor is on.".to_string();
            show(&st, &session, StatusCode::OK, codes, Some(msg), None).await
        }
        Err(e) => refused(&st, &session, e).await,
    }
}

async fn codes(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<CodeForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match totp::renew_recovery_codes(&st, &session.user, &f.code).await {
        Ok(codes) => {
            let msg = "New recovery codes; the old ones no longer work.".to_string();
            show(&st, &session, StatusCode::OK, codes, Some(msg), None).await
        }
        Err(e) => refused(&st, &session, e).await,
    }
}

#[derive(Deserialize)]
struct DisableForm {
    csrf: String,
    password: String,
    code: String,
}

async fn disable(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<DisableForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match totp::disable(&st, &session.user, Secret(f.password), &f.code).await {
        Ok(()) => {
            let msg = "The second factor is off.".to_string();
            show(&st, &session, StatusCode::OK, Vec::new(), Some(msg), None).await
        }
        Err(e) => refused(&st, &session, e).await,
    }
}
