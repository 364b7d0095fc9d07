//! HTTP routes: the JSON API under `/api/v1`.

mod account;
mod accounts;
mod billing;
mod containers;
mod openapi;
mod plugin_pages;
mod plugins;
mod provider_pages;
mod reseller_pages;
mod templates;
mod tokens;
mod web;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};

use crate::app::AppState;
use crate::auth;
use crate::db::User;
use crate::error::AppError;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .merge(containers::router())
        .merge(accounts::router())
        .merge(tokens::router())
        .merge(openapi::router())
        .merge(web::router())
        .merge(account::router())
        .merge(reseller_pages::router())
        .merge(provider_pages::router())
        .merge(billing::router())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        // After the general limit, so that its own (larger) limit applies to uploads.
        .merge(plugins::router())
        .merge(plugin_pages::router())
        .merge(templates::router())
        .fallback(not_found)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// The authenticated user of an API request (bearer token).
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AppError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or(AppError::Unauthorized)?
            .trim();
        let user = state
            .db
            .user_by_token(&auth::token_hash(token))
            .await?
            .ok_or(AppError::Unauthorized)?;
        Ok(Caller(user))
    }
}
