//! The JSON API under `/api/v1`: thin handlers that parse requests into domain inputs,
//! call a service and answer JSON (errors as `{"error": {"code", "message"}}`).

pub mod accounts;
pub mod billing;
pub mod containers;
pub mod openapi;
pub mod operations;
pub mod plugins;
pub mod templates;
pub mod tokens;

use axum::routing::get;
use axum::{Json, Router};

use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/health", get(health))
        .merge(containers::router())
        .merge(accounts::router())
        .merge(tokens::router())
        .merge(billing::router())
        .merge(operations::router())
        .merge(openapi::router())
}

/// Routes that take large uploads (their own body limits).
pub fn upload_router() -> Router<AppState> {
    Router::new()
        .merge(plugins::router())
        .merge(templates::router())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
