//! What handlers take from requests: the API caller (bearer token) and its role, JSON
//! bodies whose rejections use the API's error format, and the `owner` and `wait`
//! parameters.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::MAX_BODY;
use crate::domain::{Role, User};
use crate::error::AppError;
use crate::service::sessions;
use crate::service::AppState;

/// The authenticated user of an API request (bearer token).
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AppError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(AppError::Unauthorized)?
            .trim();
        let (user, scopes) = sessions::user_by_token(state, token)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let (method, path) = (parts.method.as_str(), parts.uri.path());
        if !scopes.allows(method, path) {
            return Err(AppError::Forbidden(format!(
                "this token may only do what its scopes ({scopes}) allow, not {method} {path}"
            ))
            .into());
        }
        Ok(Caller(user))
    }
}

/// A caller of one role; others are refused with 403 and what the action needs.
macro_rules! role_extractor {
    ($name:ident, $role:expr, $why:expr) => {
        #[derive(Debug, Clone)]
        pub struct $name(pub User);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let Caller(user) = Caller::from_request_parts(parts, state).await?;
                if user.role() != $role {
                    return Err(AppError::Forbidden($why.into()).into());
                }
                Ok($name(user))
            }
        }
    };
}

role_extractor!(
    Provider,
    Role::Provider,
    "only a provider account can do this"
);
role_extractor!(
    Reseller,
    Role::Reseller,
    "only a reseller account can do this"
);
role_extractor!(
    Customer,
    Role::Customer,
    "only a customer account can do this"
);

/// JSON body whose rejections use the API's error format.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(ApiError(match r {
                JsonRejection::JsonDataError(e) => AppError::Unprocessable(e.body_text()),
                JsonRejection::MissingJsonContentType(_) => AppError::BadRequest(
                    "send the body as JSON with `Content-Type: application/json`".into(),
                ),
                r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge(MAX_BODY),
                r => AppError::BadRequest(r.body_text()),
            })),
        }
    }
}

/// `?owner=NAME`: whose container, for providers and resellers (the caller by default).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnerQuery {
    /// For providers and resellers: whose container (default: the caller).
    pub owner: Option<String>,
}

/// `?owner=NAME&wait=SECONDS` on long actions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActionQuery {
    /// For providers and resellers: whose container (default: the caller).
    pub owner: Option<String>,
    /// Wait until the operation ends, at most this many seconds (600 at most), and answer
    /// as the action did when it was synchronous; without it, 202 and the operation.
    pub wait: Option<u64>,
}
