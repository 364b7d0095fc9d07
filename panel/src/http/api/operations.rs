//! `/api/v1/operations`: long actions. An action answers `202 Accepted` with
//! `Location: /api/v1/operations/{id}` and the operation; `?wait=SECONDS` blocks until it
//! ends (at most 600 s) and then answers as the action always did when it was
//! synchronous: the container with 200 (201 for a create), 204 for a destroy, or the
//! error it failed with. Still running when the wait is over: 202 as without a wait.

use std::time::Duration;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::operations::OperationRow;
use crate::error::AppError;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::Caller;
use crate::service::operations::failure_of;
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        // The name template imports had before they were operations.
        .route("/api/v1/jobs/{id}", axum::routing::get(show))
}

/// An operation as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperationView {
    #[serde(flatten)]
    pub operation: OperationRow,
    /// What it made or changed, once it succeeded (for containers: the container).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Where to follow it.
    pub location: String,
}

pub fn location(id: i64) -> String {
    format!("/api/v1/operations/{id}")
}

impl From<OperationRow> for OperationView {
    fn from(operation: OperationRow) -> Self {
        let result = operation
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        OperationView {
            location: location(operation.id),
            operation,
            result,
        }
    }
}

/// 202 with the operation and where to follow it.
fn accepted(op: OperationRow) -> Response {
    let loc = location(op.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, loc)],
        Json(OperationView::from(op)),
    )
        .into_response()
}

/// How an action answers: at once with 202, or after `wait` seconds with the answer the
/// action gave when it was synchronous (`done`, or the error), or 202 if still running.
pub async fn answer(
    st: &AppState,
    op: OperationRow,
    wait: Option<u64>,
    done: impl FnOnce(Option<serde_json::Value>) -> Response,
) -> ApiResult<Response> {
    let Some(wait) = wait else {
        return Ok(accepted(op));
    };
    let row = st.operations.wait(op.id, Duration::from_secs(wait)).await?;
    if let Some(e) = failure_of(&row) {
        return Err(ApiError(e));
    }
    if row.state == "running" {
        return Ok(accepted(row));
    }
    let loc = location(row.id);
    let view = OperationView::from(row);
    let mut resp = done(view.result);
    if let Ok(v) = loc.parse() {
        resp.headers_mut().insert("operation-location", v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WaitQuery {
    /// Wait while it runs, at most this many seconds.
    wait: Option<u64>,
}

#[utoipa::path(get, operation_id = "operations_show", path = "/api/v1/operations/{id}", tag = "operations",
    summary = "One operation in the caller's scope; ?wait=SECONDS blocks until it ends",
    params(("id" = i64, Path, description = "the operation"), WaitQuery),
    responses((status = 200, description = "ok", body = OperationView), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn show(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Json<OperationView>> {
    let row = st.operations.get(&caller.0, id).await?;
    let row = match q.wait {
        Some(s) if row.state == "running" => {
            st.operations.wait(row.id, Duration::from_secs(s)).await?
        }
        _ => row,
    };
    Ok(Json(row.into()))
}

#[utoipa::path(get, operation_id = "operations_list", path = "/api/v1/operations", tag = "operations",
    summary = "The newest operations the caller started",
    responses((status = 200, description = "ok", body = [OperationView])))]
async fn list(
    AxState(st): AxState<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<OperationView>>> {
    let rows = st.operations.recent(&caller.0).await?;
    Ok(Json(rows.into_iter().map(OperationView::from).collect()))
}

/// The JSON of a finished action's result, or a 500 if it has none (a bug).
pub fn result_json(result: Option<serde_json::Value>, status: StatusCode) -> Response {
    match result {
        Some(v) => (status, Json(v)).into_response(),
        None => ApiError(AppError::Internal("the operation left no result".into())).into_response(),
    }
}
