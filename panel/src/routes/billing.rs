//! `/api/v1/invoices`, `/api/v1/revenue`, `/api/v1/billing/run` and container usage history.

use axum::extract::{Path, Query, State as AxState};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::containers::{resolve, ApiJson};
use super::Caller;
use crate::app::AppState;
use crate::billing::{self, Invoice, Line, Period, Revenue, RunReport};
use crate::db::{now, Role};
use crate::error::{AppError, AppResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/invoices", get(list))
        .route("/api/v1/invoices/{id}", get(show))
        .route("/api/v1/invoices/{id}/csv", get(csv))
        .route("/api/v1/revenue", get(revenue))
        .route("/api/v1/billing/run", post(run))
        .route("/api/v1/containers/{name}/usage", get(usage))
}

async fn list(AxState(st): AxState<AppState>, caller: Caller) -> AppResult<Json<Vec<Invoice>>> {
    Ok(Json(billing::invoices_visible_to(&st.db, &caller.0).await?))
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
) -> AppResult<Json<InvoiceView>> {
    let (invoice, lines) = billing::invoice(&st.db, &caller.0, id).await?;
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
) -> AppResult<axum::response::Response> {
    let (invoice, lines) = billing::invoice(&st.db, &caller.0, id).await?;
    Ok(csv_response(&invoice, &lines))
}

async fn revenue(AxState(st): AxState<AppState>, caller: Caller) -> AppResult<Json<Vec<Revenue>>> {
    Ok(Json(billing::revenue(&st.db, &caller.0).await?))
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
) -> AppResult<Json<RunReport>> {
    let period: Period = req.period.parse()?;
    let resellers = match caller.0.role() {
        Role::Provider => st.db.users_with_role(Role::Reseller).await?,
        Role::Reseller => vec![caller.0.clone()],
        Role::Customer => {
            return Err(AppError::Forbidden(
                "billing runs are for resellers and the provider".into(),
            ))
        }
    };
    let report = billing::run(&st.db, &st.plugins, &period, &resellers, req.open).await?;
    st.db
        .audit(Some(&caller.0), "billing.run", &period.label, "ok")
        .await?;
    Ok(Json(report))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    /// `hour` (raw samples of the last hour) or `month` (hours of the last 30 days).
    pub range: Option<String>,
    pub owner: Option<String>,
}

/// One point of a usage graph.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Point {
    /// End of the interval (Unix seconds).
    pub at: i64,
    pub seconds: i64,
    pub cpu_us: i64,
    /// Average memory over the interval (bytes).
    pub memory: i64,
    pub disk: i64,
    /// Bytes the container received and sent in the interval.
    pub net_rx: i64,
    pub net_tx: i64,
}

#[derive(Debug, Serialize)]
pub struct UsageSeries {
    pub range: &'static str,
    pub from: i64,
    pub to: i64,
    pub points: Vec<Point>,
}

/// Usage history of a container (by its row id).
pub(crate) async fn series(
    st: &AppState,
    container_id: i64,
    month: bool,
) -> AppResult<UsageSeries> {
    let to = now();
    if month {
        let from = to - 30 * 86_400;
        let points = sqlx::query_as(
            "SELECT hour + 3600 AS at, seconds, cpu_us, \
             CASE WHEN seconds_running > 0 THEN memory_byte_seconds / seconds_running ELSE 0 END AS memory, \
             CASE WHEN seconds > 0 THEN disk_byte_seconds / seconds ELSE 0 END AS disk, \
             net_rx, net_tx FROM usage_hourly WHERE container_id = $1 AND hour >= $2 ORDER BY hour",
        )
        .bind(container_id)
        .bind(from)
        .fetch_all(&st.db.pool)
        .await?;
        Ok(UsageSeries {
            range: "month",
            from,
            to,
            points,
        })
    } else {
        let from = to - 3600;
        let points = sqlx::query_as(
            "SELECT at, seconds, cpu_us, memory, disk, net_rx, net_tx FROM usage_samples \
             WHERE container_id = $1 AND at >= $2 ORDER BY at",
        )
        .bind(container_id)
        .bind(from)
        .fetch_all(&st.db.pool)
        .await?;
        Ok(UsageSeries {
            range: "hour",
            from,
            to,
            points,
        })
    }
}

pub(crate) fn is_month(range: Option<&str>) -> AppResult<bool> {
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
) -> AppResult<Json<UsageSeries>> {
    let month = is_month(q.range.as_deref())?;
    let row = resolve(&st, &caller.0, &name, q.owner.as_deref()).await?;
    Ok(Json(series(&st, row.id, month).await?))
}
