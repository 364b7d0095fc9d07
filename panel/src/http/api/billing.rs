//! `/api/v1/invoices`, `/api/v1/revenue`, `/api/v1/billing/run` and container usage history.

use axum::extract::{Path, Query, State as AxState};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::Period;
use crate::error::{AppError, AppResult};
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller};
use crate::service::billing::{self, Invoice, Line, Revenue, RunReport};
use crate::service::metering::{self, UsageSeries};
use crate::service::{containers, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(csv))
        .routes(routes!(revenue))
        .routes(routes!(run))
        .routes(routes!(usage))
}

#[utoipa::path(get, operation_id = "billing_list", path = "/api/v1/invoices", tag = "billing",
    summary = "Invoices: own (customer), customers' (reseller), all (provider)",
    responses((status = 200, description = "ok", body = [Invoice])))]
async fn list(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<Invoice>>> {
    Ok(Json(billing::invoices(&st, &caller.0).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct InvoiceView {
    #[serde(flatten)]
    invoice: Invoice,
    lines: Vec<Line>,
}

#[utoipa::path(get, operation_id = "billing_show", path = "/api/v1/invoices/{id}", tag = "billing",
    summary = "One invoice with its lines", params(("id" = i64, Path, description = "the invoice")),
    responses((status = 200, description = "ok", body = InvoiceView), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn show(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<Json<InvoiceView>> {
    let (invoice, lines) = billing::invoice(&st, &caller.0, id).await?;
    Ok(Json(InvoiceView { invoice, lines }))
}

/// The invoice as a CSV download.
pub(crate) fn csv_response(invoice: &Invoice, lines: &[Line]) -> axum::response::Response {
    let filename = format!(
        "attachment; filename=\"invoice-{}-{}.csv\"",
        invoice.period, invoice.id
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        billing::csv(invoice, lines),
    )
        .into_response()
}

#[utoipa::path(get, operation_id = "billing_csv", path = "/api/v1/invoices/{id}/csv", tag = "billing",
    summary = "One invoice as CSV (amounts in the currency's own decimals)",
    params(("id" = i64, Path, description = "the invoice")),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn csv(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::response::Response> {
    let (invoice, lines) = billing::invoice(&st, &caller.0, id).await?;
    Ok(csv_response(&invoice, &lines))
}

#[utoipa::path(get, operation_id = "billing_revenue", path = "/api/v1/revenue", tag = "billing",
    summary = "Revenue per period and currency (reseller: its own; provider: all)",
    responses((status = 200, description = "ok", body = [Revenue])))]
async fn revenue(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<Revenue>>> {
    Ok(Json(billing::revenue(&st, &caller.0).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    period: String,
    #[serde(default)]
    open: bool,
}

#[utoipa::path(post, operation_id = "billing_run", path = "/api/v1/billing/run", tag = "billing",
    summary = "Bill a period (provider: every reseller; reseller: its customers); customers already invoiced are left as they are",
    request_body = RunRequest,
    responses((status = 200, description = "ok", body = RunReport), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
/// A billing run: the provider's covers every reseller, a reseller's its own customers.
async fn run(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RunRequest>,
) -> ApiResult<Json<RunReport>> {
    let period: Period = req.period.parse()?;
    let report = billing::run_for(&st, &caller.0, &period, req.open).await?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsageQuery {
    /// `hour` (raw samples of the last hour) or `month` (hours of the last 30 days).
    pub range: Option<String>,
    /// For providers and resellers: whose container (default: the caller).
    pub owner: Option<String>,
}

pub fn is_month(range: Option<&str>) -> AppResult<bool> {
    match range {
        None | Some("hour") => Ok(false),
        Some("month") => Ok(true),
        Some(other) => Err(AppError::Unprocessable(format!(
            "range {other:?}: use hour or month"
        ))),
    }
}

#[utoipa::path(get, operation_id = "billing_usage", path = "/api/v1/containers/{name}/usage", tag = "containers",
    summary = "Usage history: raw samples of the last hour (range=hour) or hours of the last 30 days (range=month)",
    params(("name" = String, Path, description = "the owner's name for the container"), UsageQuery),
    responses((status = 200, description = "ok", body = UsageSeries), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn usage(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<UsageQuery>,
) -> ApiResult<Json<UsageSeries>> {
    let month = is_month(q.range.as_deref())?;
    let row = containers::resolve(&st, &caller.0, &name, q.owner.as_deref()).await?;
    Ok(Json(metering::series(&st, row.id, month).await?))
}
