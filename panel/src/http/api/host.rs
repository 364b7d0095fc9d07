//! `/api/v1/host/network`: the engine's network and ranges, for the provider.

use axum::extract::State as AxState;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::Caller;
use crate::service::host::{self, HostNetwork};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(network))
}

#[utoipa::path(get, operation_id = "host_network", path = "/api/v1/host/network", tag = "host",
    summary = "The engine's network and ranges: bridge, subnets and gateways, host ids, capacity, cgroup parent (provider)",
    responses((status = 200, description = "ok", body = HostNetwork),
        (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "this panel has no engine", body = ErrorBody)))]
async fn network(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<HostNetwork>> {
    Ok(Json(host::network(&st, &caller.0)?))
}
