//! The core error as HTTP responses: [`ApiError`] as the API's JSON body
//! `{"error": {"code": "...", "message": "..."}}`, [`PageError`] as an HTML page. Both use
//! the same status codes; 5xx are logged with their cause chain and show a generic message.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

use crate::error::AppError;

/// The status code an error answers with.
pub fn status(e: &AppError) -> StatusCode {
    match e {
        AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AppError::Unauthorized => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) | AppError::Denied(_) => StatusCode::FORBIDDEN,
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::Unprocessable(_) | AppError::Quota(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        AppError::Interrupted(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Db(_) | AppError::Engine(_) | AppError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Whether the error is the client's to fix (4xx).
pub fn is_client_error(e: &AppError) -> bool {
    status(e).is_client_error()
}

/// Logs an internal error with its causes; the message users may see.
fn message(e: &AppError) -> String {
    if e.is_internal() {
        tracing::error!(error = %e.chain(), "request failed");
    }
    e.public_message()
}

/// An error of the JSON API.
#[derive(Debug)]
pub struct ApiError(pub AppError);

pub type ApiResult<T> = Result<T, ApiError>;

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.0.code(), "message": message(&self.0) }
        });
        (status(&self.0), Json(body)).into_response()
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message<'a> {
    pub nav: Option<crate::http::nav::Nav>,
    pub title: &'a str,
    pub text: &'a str,
    pub back: &'a str,
}

/// A page saying what went wrong, with the error's status.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = status(&self.0);
        let title = match self.0 {
            AppError::NotFound => "Not found",
            _ if status.is_server_error() => "Something went wrong",
            _ => "Cannot do that",
        };
        let text = match self.0 {
            AppError::NotFound => "There is no such page.".to_string(),
            ref e => message(e),
        };
        let page = Message {
            nav: None,
            title,
            text: &text,
            back: "/",
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "rendering an error page");
                (status, text).into_response()
            }
        }
    }
}

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid`,
    /// `too_large`, `quota_exceeded`, `denied_by_policy`, `busy`, `interrupted`, `internal`.
    pub code: String,
    /// For people: what was wrong and, where it helps, what to do.
    pub message: String,
}
