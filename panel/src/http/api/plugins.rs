//! `/api/v1/plugins`: a reseller's WebAssembly plugins (upload, enable, dry-run, calls), the
//! hook events recorded for dry runs, and the WIT contract.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::db::plugins::{CallRow, EventRow, PluginRow};
use crate::http::error::ApiResult;
use crate::http::extract::{ApiJson, Caller};
use crate::service::plugins::{self, DryRunRequest, DryRunResult, PluginChange};
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/plugins",
            get(list)
                .post(upload)
                .layer(DefaultBodyLimit::max(acetate_plugins::MAX_COMPONENT_BYTES)),
        )
        .route(
            "/api/v1/plugins/{name}",
            get(show).patch(patch).delete(remove),
        )
        .route("/api/v1/plugins/{name}/dry-run", post(dry_run))
        .route("/api/v1/plugins/{name}/calls", get(calls))
        .route("/api/v1/hook-events", get(events))
        .route("/api/v1/plugins-wit", get(wit))
}

async fn list(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<PluginRow>>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::list(&st, me).await?))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    name: String,
}

async fn upload(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PluginRow>)> {
    let me = plugins::reseller(&caller.0)?;
    Ok((
        StatusCode::CREATED,
        Json(plugins::store(&st, me, &q.name, body).await?),
    ))
}

async fn show(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginRow>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::find(&st, me, &name).await?))
}

async fn patch(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PluginChange>,
) -> ApiResult<Json<PluginRow>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::update(&st, me, &name, &req).await?))
}

async fn remove(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let me = plugins::reseller(&caller.0)?;
    plugins::delete(&st, me, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn dry_run(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<DryRunRequest>,
) -> ApiResult<Json<DryRunResult>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::try_plugin(&st, me, &name, req).await?))
}

async fn calls(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<CallRow>>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::calls(&st, me, &name).await?))
}

async fn events(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<EventRow>>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::events(&st, me).await?))
}

async fn wit() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        acetate_plugins::WIT,
    )
}
