//! Rendering pages: askama templates (escaping by default), the message page for
//! refusals, and the panel's static files.

use askama::Template;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::{Message, PageError};
use crate::error::AppError;
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/acetate.css", get(css))
        .route("/static/acetate.js", get(js))
}

async fn css() -> Response {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../static/acetate.css"),
    )
        .into_response()
}

/// Progressive enhancement only: every page works without it.
async fn js() -> Response {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../../static/acetate.js"),
    )
        .into_response()
}

pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => PageError(AppError::Internal(format!("render page: {e}"))).into_response(),
    }
}

/// A page with a title and a sentence, and the status.
pub fn page_error(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        render(&Message {
            nav: None,
            title,
            text,
            back: "/",
        }),
    )
        .into_response()
}

/// The page for anything out of the user's scope.
pub fn not_found(what: &str) -> Response {
    page_error(
        StatusCode::NOT_FOUND,
        "Not found",
        &format!("There is no such {what}."),
    )
}
