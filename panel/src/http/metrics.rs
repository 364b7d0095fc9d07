//! `/metrics` for Prometheus: the provider's bearer token on the panel's own address, or no
//! authentication on a separate `--metrics-listen` address the provider keeps private.
//! Every request is counted and timed here too.

use std::time::Instant;

use axum::extract::{Request, State as AxState};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiResult;
use super::extract::Provider;
use crate::service::{metrics, AppState};

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// The router of the separate metrics address: `/metrics` alone, without a token.
pub fn open_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape_open))
        .with_state(state)
}

async fn scrape(AxState(st): AxState<AppState>, _: Provider) -> ApiResult<Response> {
    scrape_open(AxState(st)).await
}

async fn scrape_open(AxState(st): AxState<AppState>) -> ApiResult<Response> {
    let text = metrics::render(&st).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Counts and times every request by method and status code.
pub async fn track(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let m = metrics::panel();
    m.http_duration
        .with_label_values(&[method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[method.as_str(), resp.status().as_str()])
        .inc();
    resp
}
