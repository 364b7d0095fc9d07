//! The panel's error type: 4xx carry a clear message for the user, 5xx are logged with
//! their cause chain and answer a generic message. Errors render as
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Quota(String),
    /// Refused by the reseller's provisioning hooks.
    #[error("{0}")]
    Denied(String),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("engine: {0}")]
    Engine(acetate_engine::Error),
    #[error("{0}")]
    Internal(String),
    /// Too much at once (a per-user or panel-wide bound): 429, try again later.
    #[error("{0}")]
    Busy(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl From<acetate_engine::Error> for AppError {
    fn from(e: acetate_engine::Error) -> Self {
        use acetate_engine::Error as E;
        match e {
            E::NoSuchContainer(_) => AppError::NotFound,
            E::NameTaken(n) => {
                AppError::Conflict(format!("a container named {n:?} already exists"))
            }
            E::AlreadyRunning(_) | E::NotRunning(_) => AppError::Conflict(e.to_string()),
            e if e.is_user_error() => AppError::Unprocessable(e.to_string()),
            e => AppError::Engine(e),
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Internal(format!("background task failed: {e}"))
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Quota(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Denied(_) => StatusCode::FORBIDDEN,
            AppError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Db(_) | AppError::Engine(_) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::Unprocessable(_) => "invalid",
            AppError::TooLarge(_) => "too_large",
            AppError::Quota(_) => "quota_exceeded",
            AppError::Denied(_) => "denied_by_policy",
            AppError::Busy(_) => "busy",
            AppError::Db(_) | AppError::Engine(_) | AppError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            let mut chain = self.to_string();
            let mut src = std::error::Error::source(&self);
            while let Some(s) = src {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                src = s.source();
            }
            tracing::error!(error = %chain, "request failed");
            "internal error; the provider can find the cause in the panel's log".to_string()
        } else {
            self.to_string()
        };
        let body = serde_json::json!({ "error": { "code": self.code(), "message": message } });
        (status, Json(body)).into_response()
    }
}
