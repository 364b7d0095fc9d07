//! `DELETE /api/v1/customers/{name}` and `DELETE /api/v1/resellers/{name}`: deleting an
//! account and everything it holds, after its name is typed again (an operation).

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::operations::{answer, OperationView};
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller, Provider};
use crate::service::{closing, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(delete_customer))
        .routes(routes!(delete_reseller))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    /// The account's name, typed again.
    pub confirm: String,
}

/// `?wait=SECONDS` on deletions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait until the operation ends, at most this many seconds (600 at most).
    pub wait: Option<u64>,
}

#[utoipa::path(delete, operation_id = "closing_delete_customer", path = "/api/v1/customers/{name}", tag = "accounts",
    summary = "Delete a customer and destroy its containers (its reseller, or the provider); its usage up to now is billed",
    params(("name" = String, Path, description = "the customer"), WaitQuery), request_body = DeleteAccount,
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 204, description = "with ?wait: deleted"),
        (status = 404, description = "no such customer in the caller's scope", body = ErrorBody),
        (status = 422, description = "the name was not typed again", body = ErrorBody)))]
async fn delete_customer(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<WaitQuery>,
    ApiJson(req): ApiJson<DeleteAccount>,
) -> ApiResult<Response> {
    let op = closing::delete_customer(&st, &caller.0, &name, &req.confirm).await?;
    answer(&st, op, q.wait, |_| StatusCode::NO_CONTENT.into_response()).await
}

#[utoipa::path(delete, operation_id = "closing_delete_reseller", path = "/api/v1/resellers/{name}", tag = "accounts",
    summary = "Delete a reseller with all its customers and their containers (provider)",
    params(("name" = String, Path, description = "the reseller"), WaitQuery), request_body = DeleteAccount,
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 204, description = "with ?wait: deleted"),
        (status = 403, description = "not the provider", body = ErrorBody),
        (status = 404, description = "no such reseller", body = ErrorBody),
        (status = 422, description = "the name was not typed again", body = ErrorBody)))]
async fn delete_reseller(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
    Path(name): Path<String>,
    Query(q): Query<WaitQuery>,
    ApiJson(req): ApiJson<DeleteAccount>,
) -> ApiResult<Response> {
    let op = closing::delete_reseller(&st, &me, &name, &req.confirm).await?;
    answer(&st, op, q.wait, |_| StatusCode::NO_CONTENT.into_response()).await
}
