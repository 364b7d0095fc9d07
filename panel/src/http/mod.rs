//! HTTP: the JSON API (`api/`) and the browser pages (`pages/`), thin handlers over the
//! services. Every request gets an id (`x-request-id`, kept if a proxy set one), echoed in
//! the response and carried by every log line of the request.

pub mod api;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod nav;
pub mod pages;
pub mod render;
pub mod session;
pub mod stream;

use axum::http::{HeaderName, HeaderValue, Request};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::AppError;
use crate::service::AppState;
use error::ApiError;

/// Largest request body accepted (uploads have their own limits).
pub const MAX_BODY: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole panel: pages, API, static files; logged per request.
pub fn router(state: AppState) -> Router {
    let proxies = session::TrustedProxies(state.trusted_proxies.clone());
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        .on_failure(DefaultOnFailure::new().level(Level::ERROR));
    Router::new()
        .merge(pages::router())
        .merge(session::router())
        .merge(render::router())
        .merge(metrics::router())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        // After the general limit, so that their own (larger) limits apply to uploads.
        .merge(pages::upload_router())
        .merge(api::router())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::from_fn(session::strict_transport))
        .layer(axum::Extension(proxies))
        // What every answer tells the browser: scripts, styles and images from the panel
        // itself only, never inside a frame (clickjacking), no content-type guessing, no
        // full URLs in the Referer sent elsewhere.
        .layer(header(
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ))
        .layer(header("x-frame-options", "DENY"))
        .layer(header("x-content-type-options", "nosniff"))
        .layer(header("referrer-policy", "same-origin"))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// A header every answer gets unless its handler set it.
fn header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

async fn not_found() -> ApiError {
    ApiError(AppError::NotFound)
}
