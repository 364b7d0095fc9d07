//! `/api/v1/containers/{name}/domains` (names the front door serves from a container, with
//! automatic TLS) and `/api/v1/resellers/{name}/domains` (the suffixes a reseller allows).

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::domains::DomainRow;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller, OwnerQuery};
use crate::service::domains::{self, DomainChange, DomainRequest, DomainSuffixes};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove, change))
        .routes(routes!(get_suffixes, set_suffixes))
}

#[utoipa::path(get, operation_id = "domains_list", path = "/api/v1/containers/{name}/domains", tag = "containers",
    summary = "Domains the front door serves from the container, with their certificates",
    params(("name" = String, Path, description = "the owner's name for the container"), OwnerQuery),
    responses((status = 200, description = "ok", body = [DomainRow]),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn list(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> ApiResult<Json<Vec<DomainRow>>> {
    Ok(Json(
        domains::list(&st, &caller.0, &name, q.owner.as_deref()).await?,
    ))
}

#[utoipa::path(post, operation_id = "domains_add", path = "/api/v1/containers/{name}/domains", tag = "containers",
    summary = "Serve HTTP and HTTPS for a domain from a port of the container; a certificate is requested over ACME once the domain points at the host (self-signed until then)",
    params(("name" = String, Path, description = "the owner's name for the container"), OwnerQuery),
    request_body = DomainRequest,
    responses((status = 201, description = "the container's domains", body = [DomainRow]),
        (status = 403, description = "the owner is suspended", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 409, description = "the domain, a name above or below it belongs to another account, or it is the panel's own", body = ErrorBody),
        (status = 422, description = "not a domain name or a port, or outside the suffixes the reseller allows", body = ErrorBody)))]
async fn add(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
    ApiJson(req): ApiJson<DomainRequest>,
) -> ApiResult<(StatusCode, Json<Vec<DomainRow>>)> {
    let list = domains::add(&st, &caller.0, &name, q.owner.as_deref(), &req).await?;
    Ok((StatusCode::CREATED, Json(list)))
}

#[utoipa::path(delete, operation_id = "domains_remove", path = "/api/v1/containers/{name}/domains/{domain}", tag = "containers",
    summary = "Stop serving a domain from the container",
    params(("name" = String, Path, description = "the owner's name for the container"),
        ("domain" = String, Path, description = "the domain"), OwnerQuery),
    responses((status = 204, description = "removed"),
        (status = 404, description = "no such domain on the container, or outside the caller's scope", body = ErrorBody)))]
async fn remove(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path((name, domain)): Path<(String, String)>,
    Query(q): Query<OwnerQuery>,
) -> ApiResult<StatusCode> {
    domains::remove(&st, &caller.0, &name, q.owner.as_deref(), &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(patch, operation_id = "domains_change", path = "/api/v1/containers/{name}/domains/{domain}", tag = "containers",
    summary = "Send the domain's plain HTTP to HTTPS, or stop doing so",
    params(("name" = String, Path, description = "the owner's name for the container"),
        ("domain" = String, Path, description = "the domain"), OwnerQuery),
    request_body = DomainChange,
    responses((status = 200, description = "the container's domains", body = [DomainRow]),
        (status = 403, description = "the owner is suspended", body = ErrorBody),
        (status = 404, description = "no such domain on the container, or outside the caller's scope", body = ErrorBody)))]
async fn change(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path((name, domain)): Path<(String, String)>,
    Query(q): Query<OwnerQuery>,
    ApiJson(req): ApiJson<DomainChange>,
) -> ApiResult<Json<Vec<DomainRow>>> {
    Ok(Json(
        domains::change(&st, &caller.0, &name, q.owner.as_deref(), &domain, &req).await?,
    ))
}

#[utoipa::path(get, operation_id = "resellers_domains", path = "/api/v1/resellers/{name}/domains", tag = "accounts",
    summary = "The suffixes a reseller's customers may attach domains under (empty: any; the provider, or the reseller itself)",
    params(("name" = String, Path, description = "the reseller")),
    responses((status = 200, description = "ok", body = DomainSuffixes),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn get_suffixes(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<DomainSuffixes>> {
    Ok(Json(domains::suffixes(&st, &caller.0, &name).await?))
}

#[utoipa::path(put, operation_id = "resellers_set_domains", path = "/api/v1/resellers/{name}/domains", tag = "accounts",
    summary = "Restrict a reseller's customers to domains under these suffixes (empty: any)",
    params(("name" = String, Path, description = "the reseller")),
    request_body = DomainSuffixes,
    responses((status = 200, description = "ok", body = DomainSuffixes),
        (status = 403, description = "not the provider or the reseller", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "not a domain suffix, or customers hold domains outside", body = ErrorBody)))]
async fn set_suffixes(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<DomainSuffixes>,
) -> ApiResult<Json<DomainSuffixes>> {
    Ok(Json(
        domains::set_suffixes(&st, &caller.0, &name, &req).await?,
    ))
}
