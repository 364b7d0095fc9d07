//! `/api/v1/containers/{name}/forwards` (public ports leading to a container) and
//! `/api/v1/resellers/{name}/ports` (the ranges of public ports a reseller gives out, one
//! per address of the host).

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::forwards::{ForwardRow, PortRange};
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller, OwnerQuery};
use crate::service::forwards::{self, ForwardRequest};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
        .routes(routes!(get_ports, set_ports, remove_ports))
        .routes(routes!(list_ports))
}

/// Which public port: the address it is published on (none: the forward or range on
/// every address).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AddressQuery {
    /// The host's address (IPv4 or IPv6); none: every address.
    address: Option<String>,
    /// The owner of the container, for the provider and resellers.
    owner: Option<String>,
}

#[utoipa::path(get, operation_id = "forwards_list", path = "/api/v1/containers/{name}/forwards", tag = "containers",
    summary = "Public ports of the host that lead to the container",
    params(("name" = String, Path, description = "the owner's name for the container"), OwnerQuery),
    responses((status = 200, description = "ok", body = [ForwardRow]),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn list(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> ApiResult<Json<Vec<ForwardRow>>> {
    Ok(Json(
        forwards::list(&st, &caller.0, &name, q.owner.as_deref()).await?,
    ))
}

#[utoipa::path(post, operation_id = "forwards_add", path = "/api/v1/containers/{name}/forwards", tag = "containers",
    summary = "Forward a public port of the host (within the reseller's range) to a port of the container; kept across restarts",
    params(("name" = String, Path, description = "the owner's name for the container"), OwnerQuery),
    request_body = ForwardRequest,
    responses((status = 201, description = "the container's forwards", body = [ForwardRow]),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 409, description = "the public port is already forwarded", body = ErrorBody),
        (status = 422, description = "not a port, outside the reseller's range, or no range", body = ErrorBody)))]
async fn add(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
    ApiJson(req): ApiJson<ForwardRequest>,
) -> ApiResult<(StatusCode, Json<Vec<ForwardRow>>)> {
    let list = forwards::add(&st, &caller.0, &name, q.owner.as_deref(), &req).await?;
    Ok((StatusCode::CREATED, Json(list)))
}

#[utoipa::path(delete, operation_id = "forwards_remove", path = "/api/v1/containers/{name}/forwards/{proto}/{port}", tag = "containers",
    summary = "Remove the forward of a public port",
    params(("name" = String, Path, description = "the owner's name for the container"),
        ("proto" = String, Path, description = "tcp or udp"),
        ("port" = i64, Path, description = "the public port"), AddressQuery),
    responses((status = 204, description = "removed"),
        (status = 404, description = "no such forward, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "not a port, protocol or address", body = ErrorBody)))]
async fn remove(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path((name, proto, port)): Path<(String, String, i64)>,
    Query(q): Query<AddressQuery>,
) -> ApiResult<StatusCode> {
    let (owner, at) = (q.owner.as_deref(), q.address.as_deref());
    forwards::remove(&st, &caller.0, &name, owner, port, &proto, at).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, operation_id = "resellers_ports", path = "/api/v1/resellers/{name}/ports", tag = "accounts",
    summary = "A reseller's range of public ports on one address (none: on every address); the provider, or the reseller itself",
    params(("name" = String, Path, description = "the reseller"), AddressQuery),
    responses((status = 200, description = "ok", body = PortRange),
        (status = 404, description = "no range there, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "not an IP address", body = ErrorBody)))]
async fn get_ports(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<AddressQuery>,
) -> ApiResult<Json<PortRange>> {
    Ok(Json(
        forwards::port_range(&st, &caller.0, &name, q.address.as_deref()).await?,
    ))
}

#[utoipa::path(delete, operation_id = "resellers_remove_ports", path = "/api/v1/resellers/{name}/ports", tag = "accounts",
    summary = "Take a reseller's range of public ports on one address (none: on every address) away (provider); refused while customers forward ports of it",
    params(("name" = String, Path, description = "the reseller"), AddressQuery),
    responses((status = 204, description = "removed"),
        (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "no range there, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "not an IP address, or customers forward ports of it", body = ErrorBody)))]
async fn remove_ports(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<AddressQuery>,
) -> ApiResult<StatusCode> {
    forwards::remove_port_range(&st, &caller.0, &name, q.address.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, operation_id = "resellers_port_ranges", path = "/api/v1/resellers/{name}/port-ranges", tag = "accounts",
    summary = "All of a reseller's ranges of public ports, by address (the provider, or the reseller itself)",
    params(("name" = String, Path, description = "the reseller")),
    responses((status = 200, description = "ok", body = [PortRange]),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn list_ports(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<PortRange>>> {
    Ok(Json(forwards::port_ranges(&st, &caller.0, &name).await?))
}

#[utoipa::path(put, operation_id = "resellers_set_ports", path = "/api/v1/resellers/{name}/ports", tag = "accounts",
    summary = "Give a reseller a range of the host's public ports, on one address or on every address, for its customers' forwards (provider; replaces its range on that address)",
    params(("name" = String, Path, description = "the reseller")),
    request_body = PortRange,
    responses((status = 200, description = "ok", body = PortRange),
        (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 409, description = "overlaps another reseller's range on the same address (or on every address)", body = ErrorBody),
        (status = 422, description = "not a range of ports, or customers forward ports outside it", body = ErrorBody)))]
async fn set_ports(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(range): ApiJson<PortRange>,
) -> ApiResult<Json<PortRange>> {
    Ok(Json(
        forwards::set_port_range(&st, &caller.0, &name, range).await?,
    ))
}
