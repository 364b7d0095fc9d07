//! The JSON API under `/api/v1`: thin handlers that parse requests into domain inputs,
//! call a service and answer JSON (errors as `{"error": {"code", "message"}}`). Each
//! handler carries its own OpenAPI description (`#[utoipa::path]`) and the routes are
//! registered from those descriptions, so the document at `/api/v1/openapi.json` is
//! generated from the handlers and their types and cannot drift from them.

pub mod access;
pub mod accounts;
pub mod billing;
pub mod closing;
pub mod containers;
pub mod copies;
pub mod domains;
pub mod faults;
pub mod forwards;
pub mod host;
pub mod openapi;
pub mod operations;
mod oversight;
pub mod plugins;
pub mod templates;
pub mod tokens;
pub mod totp;

use axum::extract::DefaultBodyLimit;
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::MAX_BODY;
use crate::service::AppState;

/// The API's routes and their OpenAPI document.
pub fn router() -> Router<AppState> {
    let (router, doc) = OpenApiRouter::new()
        .routes(routes!(health))
        .merge(containers::router())
        .merge(copies::router())
        .merge(accounts::router())
        .merge(closing::router())
        .merge(tokens::router())
        .merge(totp::router())
        .merge(access::router())
        .merge(billing::router())
        .merge(operations::router())
        .merge(faults::router())
        .merge(forwards::router())
        .merge(host::router())
        .merge(domains::router())
        .merge(oversight::router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // After the general limit, so that their own (larger) limits apply to uploads.
        .merge(plugins::router())
        .merge(templates::router())
        .split_for_parts();
    router.merge(openapi::router(doc))
}

/// Whether the panel answers.
#[utoipa::path(get, operation_id = "mod_health", path = "/api/v1/health", tag = "panel", security(()),
    responses((status = 200, description = "the panel answers", body = Object)))]
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
