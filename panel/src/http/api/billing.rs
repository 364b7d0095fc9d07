//! `/api/v1/invoices`, `/api/v1/revenue`, `/api/v1/billing/run` and container usage history.

use axum::extract::{Path, Query, State as AxState};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::Period;
use crate::error::{AppError, AppResult};
use crate::http::error::ApiResult;
use crate::http::extract::{ApiJson, Caller};
use crate::service::billing::{self, Invoice, Line, Revenue, RunReport};
use crate::service::metering::{self, UsageSeries};
use crate::service::{containers, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/invoices", get(list))
        .route("/api/v1/invoices/{id}", get(show))
        .route("/api/v1/invoices/{id}/csv", get(csv))
        .route("/api/v1/revenue", get(revenue))
        .route("/api/v1/billing/run", post(run))
        .route("/api/v1/containers/{name}/usage", get(usage))
}

async fn list(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<Invoice>>> {
    Ok(Json(billing::invoices(&st, &caller.0).await?))
}

#[derive(Debug, Serialize)]
struct InvoiceView {
    #[serde(flatten)]
    invoice: Invoice,
    lines: Vec<Line>,
}

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

async fn csv(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::response::Response> {
    let (invoice, lines) = billing::invoice(&st, &caller.0, id).await?;
    Ok(csv_response(&invoice, &lines))
}

async fn revenue(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<Revenue>>> {
    Ok(Json(billing::revenue(&st, &caller.0).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    period: String,
    #[serde(default)]
    open: bool,
}

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

#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    /// `hour` (raw samples of the last hour) or `month` (hours of the last 30 days).
    pub range: Option<String>,
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

async fn usage(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<UsageQuery>,
) -> ApiResult<Json<UsageSeries>> {
    let month = is_month(q.range.as_deref())?;
    let row = containers::resolve(&st, &caller.0, &name, q.owner.as_deref()).await?;
    Ok(Json(metering::series(&st.db, row.id, month).await?))
}
