//! `/api/v1/tokens` (the caller's own API tokens) and `/api/v1/audit`.

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::db::{AuditRow, TokenRow};
use crate::http::error::ApiResult;
use crate::http::extract::{ApiJson, Caller};
use crate::service::sessions;
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(list).post(create))
        .route("/api/v1/tokens/{id}", delete(revoke))
        .route("/api/v1/audit", get(audit))
}

async fn list(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<TokenRow>>> {
    Ok(Json(sessions::tokens(&st, &caller.0).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    #[serde(default)]
    label: String,
}

#[derive(Debug, Serialize)]
struct NewToken {
    id: i64,
    label: String,
    /// Shown only in this response.
    token: String,
}

async fn create(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    let (id, token) = sessions::create_token(&st, &caller.0, &req.label).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            id,
            label: req.label,
            token: token.0,
        }),
    ))
}

async fn revoke(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    sessions::revoke_token(&st, &caller.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    limit: Option<i64>,
}

async fn audit(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditRow>>> {
    Ok(Json(sessions::audit(&st, &caller.0, q.limit).await?))
}
