//! Deleting accounts from the browser: a reseller deletes a customer, the provider a
//! reseller, each after typing the name again; the deletion is an operation whose page
//! follows it.

use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;

use crate::error::AppError;
use crate::http::error::{is_client_error, status, PageError};
use crate::http::render::{not_found, page_error};
use crate::http::session::Session;
use crate::service::{closing, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reseller/customers/{name}/delete", post(delete_customer))
        .route("/provider/resellers/{name}/delete", post(delete_reseller))
}

#[derive(Deserialize)]
struct DeleteForm {
    csrf: String,
    /// The account's name, typed again.
    confirm: String,
}

async fn answer(
    st: &AppState,
    started: Result<crate::db::operations::OperationRow, AppError>,
    back: &str,
    what: &str,
) -> Response {
    let result = match started {
        Ok(op) => super::finish(st, &op).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(None) => Redirect::to(back).into_response(),
        Ok(Some(progress)) => progress,
        Err(AppError::NotFound) => not_found(what),
        Err(e) if is_client_error(&e) => page_error(
            status(&e),
            &format!("The {what} was not deleted"),
            &format!("{e} (go back to try again)"),
        ),
        Err(e) => PageError(e).into_response(),
    }
}

async fn delete_customer(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<DeleteForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let started = closing::delete_customer(&st, &session.user, &name, &f.confirm).await;
    answer(&st, started, "/reseller", "customer").await
}

async fn delete_reseller(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<DeleteForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let started = closing::delete_reseller(&st, &session.user, &name, &f.confirm).await;
    answer(&st, started, "/provider", "reseller").await
}
