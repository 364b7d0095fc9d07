//! `/api/v1/accounts/{name}`: one reseller or customer as the provider (or a customer as
//! its reseller) oversees it.

use axum::extract::{Path, State as AxState};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::Caller;
use crate::service::oversight::{self, AccountOverview};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(overview))
}

#[utoipa::path(get, operation_id = "accounts_overview", path = "/api/v1/accounts/{name}", tag = "accounts",
    summary = "One account overseen: holdings, pool, customers and plans (a reseller) or containers (a customer), invoices, 30 days of limit hits",
    params(("name" = String, Path, description = "the account")),
    responses((status = 200, description = "ok", body = AccountOverview),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn overview(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<AccountOverview>> {
    Ok(Json(oversight::overview(&st, &caller.0, &name).await?))
}
