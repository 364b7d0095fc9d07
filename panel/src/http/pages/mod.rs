//! The browser pages (HTML, no JavaScript needed): thin handlers over the services, with
//! the session and CSRF checks of [`super::session`].

mod access;
mod account;
mod audit;
mod closing;
mod container;
mod dashboard;
mod forwards;
mod graph;
mod invoices;
mod limits;
mod operations;
mod oversight;
mod plan;
mod plugins;
mod provider;
mod reseller;
mod terminal;
mod totp;

use std::time::Duration;

use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;

use crate::db::operations::OperationRow;
use crate::error::AppResult;
use crate::service::AppState;

/// How long a page waits for an operation before it shows the operation's own page.
const PAGE_WAIT: Duration = Duration::from_secs(20);

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(dashboard::router())
        .merge(container::router())
        .merge(terminal::router())
        .merge(forwards::router())
        .merge(account::router())
        .merge(totp::router())
        .merge(access::router())
        .merge(reseller::router())
        .merge(plan::router())
        .merge(provider::router())
        .merge(oversight::router())
        .merge(audit::router())
        .merge(closing::router())
}

/// Routes that take large uploads (their own body limits).
pub fn upload_router() -> Router<AppState> {
    Router::new()
        .merge(plugins::router())
        .merge(operations::router())
}

/// Waits a little for an operation a page started: `Ok(None)` once it succeeded, its
/// error if it failed, or a redirect to its page (which follows it) while it runs.
async fn finish(st: &AppState, op: &OperationRow) -> AppResult<Option<Response>> {
    match st.operations.outcome_within(op, PAGE_WAIT).await? {
        Some(_) => Ok(None),
        None => Ok(Some(Redirect::to(&operations::page_of(op)).into_response())),
    }
}

/// "2026-11-26 09:41" (UTC).
pub(super) fn human_time(t: i64) -> String {
    crate::domain::period::human(t)
}
