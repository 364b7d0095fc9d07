//! Limit hits: `/api/v1/containers/{name}/faults` and `/api/v1/faults` (everything in the
//! caller's scope); what resellers' overuse policies told customers:
//! `/api/v1/containers/{name}/notices` and `/api/v1/notices`.

use axum::extract::{Path, Query, State as AxState};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::Caller;
use crate::service::faults::{self, FaultReport, Notices};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(of_container))
        .routes(routes!(in_scope))
        .routes(routes!(notices_of_container))
        .routes(routes!(notices_in_scope))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FaultQuery {
    /// Days of history (30 by default, 90 at most).
    days: Option<i64>,
    /// For providers and resellers: whose container (default: the caller).
    owner: Option<String>,
}

#[utoipa::path(get, operation_id = "faults_of_container", path = "/api/v1/containers/{name}/faults",
    tag = "containers",
    summary = "Limit hits of a container: OOM kills, memory limit, process limit, CPU throttling, full disk",
    params(("name" = String, Path, description = "the owner's name for the container"), FaultQuery),
    responses((status = 200, description = "ok", body = FaultReport),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "invalid input", body = ErrorBody)))]
async fn of_container(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<FaultQuery>,
) -> ApiResult<Json<FaultReport>> {
    Ok(Json(
        faults::of_container(&st, &caller.0, &name, q.owner.as_deref(), q.days).await?,
    ))
}

#[utoipa::path(get, operation_id = "faults_in_scope", path = "/api/v1/faults", tag = "containers",
    summary = "Limit hits of every container in the caller's scope (own, customers', all)",
    params(FaultQuery),
    responses((status = 200, description = "ok", body = FaultReport),
        (status = 422, description = "invalid input", body = ErrorBody)))]
async fn in_scope(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Query(q): Query<FaultQuery>,
) -> ApiResult<Json<FaultReport>> {
    Ok(Json(faults::in_scope(&st, &caller.0, q.days).await?))
}

#[utoipa::path(get, operation_id = "notices_of_container", path = "/api/v1/containers/{name}/notices",
    tag = "containers",
    summary = "What the reseller's overuse policies told the customer about a container, newest first",
    params(("name" = String, Path, description = "the owner's name for the container"), FaultQuery),
    responses((status = 200, description = "ok", body = Notices),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "invalid input", body = ErrorBody)))]
async fn notices_of_container(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<FaultQuery>,
) -> ApiResult<Json<Notices>> {
    Ok(Json(
        faults::notices_of_container(&st, &caller.0, &name, q.owner.as_deref(), q.days).await?,
    ))
}

#[utoipa::path(get, operation_id = "notices_in_scope", path = "/api/v1/notices", tag = "containers",
    summary = "Notices to the customers in the caller's scope (own, customers', all), newest first",
    params(FaultQuery),
    responses((status = 200, description = "ok", body = Notices),
        (status = 422, description = "invalid input", body = ErrorBody)))]
async fn notices_in_scope(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Query(q): Query<FaultQuery>,
) -> ApiResult<Json<Notices>> {
    Ok(Json(
        faults::notices_in_scope(&st, &caller.0, q.days).await?,
    ))
}
