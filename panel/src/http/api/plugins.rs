//! `/api/v1/plugins`: a reseller's WebAssembly plugins (upload, enable, dry-run, calls), the
//! hook events recorded for dry runs, and the WIT contract.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::plugins::{CallRow, EventRow, PluginRow};
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller};
use crate::service::plugins::{self, DryRunRequest, DryRunResult, PluginChange};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(show, patch, replace, remove))
        .routes(routes!(roll_back))
        .routes(routes!(dry_run))
        .routes(routes!(calls))
        .routes(routes!(events))
        .routes(routes!(wit))
        .layer(DefaultBodyLimit::max(acetate_plugins::MAX_COMPONENT_BYTES))
}

#[utoipa::path(get, operation_id = "plugins_list", path = "/api/v1/plugins", tag = "plugins", summary = "The reseller's plugins",
    responses((status = 200, description = "ok", body = [PluginRow]), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody)))]
async fn list(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<PluginRow>>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::list(&st, me).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// What the reseller calls it.
    name: String,
}

#[utoipa::path(post, operation_id = "plugins_upload", path = "/api/v1/plugins", tag = "plugins",
    summary = "Upload a WebAssembly component (up to 16 MiB), checked against the hook and billing-rule worlds; stored disabled",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, description = "created", body = PluginRow), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 409, description = "conflicts with the current state", body = ErrorBody), (status = 413, description = "the body is too large", body = ErrorBody),
        (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
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

#[utoipa::path(get, operation_id = "plugins_show", path = "/api/v1/plugins/{name}", tag = "plugins", summary = "One plugin",
    params(("name" = String, Path, description = "the plugin")),
    responses((status = 200, description = "ok", body = PluginRow), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn show(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginRow>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::find(&st, me, &name).await?))
}

#[utoipa::path(patch, operation_id = "plugins_patch", path = "/api/v1/plugins/{name}", tag = "plugins",
    summary = "Enable or disable (one billing rule at a time); on_failure deny|allow for hooks",
    params(("name" = String, Path, description = "the plugin")), request_body = PluginChange,
    responses((status = 200, description = "ok", body = PluginRow), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn patch(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PluginChange>,
) -> ApiResult<Json<PluginRow>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::update(&st, me, &name, &req).await?))
}

#[utoipa::path(put, operation_id = "plugins_replace", path = "/api/v1/plugins/{name}", tag = "plugins",
    summary = "Replace a plugin in place with a new version of the same kind (switches, store and calls kept; the old version kept for a rollback)",
    params(("name" = String, Path, description = "the plugin")),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 200, description = "ok", body = PluginRow), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody), (status = 413, description = "the body is too large", body = ErrorBody),
        (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn replace(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<PluginRow>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::replace(&st, me, &name, body).await?))
}

#[utoipa::path(post, operation_id = "plugins_rollback", path = "/api/v1/plugins/{name}/rollback", tag = "plugins",
    summary = "Bring back the version before the last replacement (a second rollback undoes the first)",
    params(("name" = String, Path, description = "the plugin")),
    responses((status = 200, description = "ok", body = PluginRow), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 409, description = "it was never replaced", body = ErrorBody)))]
async fn roll_back(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginRow>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::roll_back(&st, me, &name).await?))
}

#[utoipa::path(delete, operation_id = "plugins_remove", path = "/api/v1/plugins/{name}", tag = "plugins",
    summary = "Delete a plugin, its store and its calls",
    params(("name" = String, Path, description = "the plugin")),
    responses((status = 204, description = "deleted"), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn remove(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let me = plugins::reseller(&caller.0)?;
    plugins::delete(&st, me, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "plugins_dry_run", path = "/api/v1/plugins/{name}/dry-run", tag = "plugins",
    summary = "Run without effect: a hook on event_id (recorded) or event; a billing rule on customer and period",
    params(("name" = String, Path, description = "the plugin")), request_body = DryRunRequest,
    responses((status = 200, description = "ok", body = DryRunResult), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn dry_run(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<DryRunRequest>,
) -> ApiResult<Json<DryRunResult>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::try_plugin(&st, me, &name, req).await?))
}

#[utoipa::path(get, operation_id = "plugins_calls", path = "/api/v1/plugins/{name}/calls", tag = "plugins",
    summary = "Recent calls: outcome, fuel, time, log",
    params(("name" = String, Path, description = "the plugin")),
    responses((status = 200, description = "ok", body = [CallRow]), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn calls(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<CallRow>>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::calls(&st, me, &name).await?))
}

#[utoipa::path(get, operation_id = "plugins_events", path = "/api/v1/hook-events", tag = "plugins",
    summary = "Recent hook events of the reseller's customers (for dry runs)",
    responses((status = 200, description = "ok", body = [EventRow]), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody)))]
async fn events(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<EventRow>>> {
    let me = plugins::reseller(&caller.0)?;
    Ok(Json(plugins::events(&st, me).await?))
}

#[utoipa::path(get, operation_id = "plugins_wit", path = "/api/v1/plugins-wit", tag = "plugins",
    summary = "The WIT package plugins are built against",
    responses((status = 200, description = "the WIT text", content_type = "text/plain", body = String)))]
async fn wit() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        acetate_plugins::WIT,
    )
}
