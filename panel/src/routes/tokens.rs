//! `/api/v1/tokens` (the caller's own API tokens) and `/api/v1/audit`.

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::containers::ApiJson;
use super::Caller;
use crate::app::AppState;
use crate::auth;
use crate::db::{AuditRow, Role, TokenRow};
use crate::error::{AppError, AppResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", get(list).post(create))
        .route("/api/v1/tokens/{id}", delete(revoke))
        .route("/api/v1/audit", get(audit))
}

async fn list(AxState(st): AxState<AppState>, caller: Caller) -> AppResult<Json<Vec<TokenRow>>> {
    Ok(Json(st.db.tokens_of(caller.0.id).await?))
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
) -> AppResult<(StatusCode, Json<NewToken>)> {
    if req.label.len() > 100 {
        return Err(AppError::Unprocessable(
            "labels have at most 100 characters".into(),
        ));
    }
    let (token, hash) = auth::new_token();
    let id = st.db.insert_token(caller.0.id, &hash, &req.label).await?;
    st.db
        .audit(
            Some(&caller.0),
            "token.create",
            &format!("token {id}"),
            "ok",
        )
        .await?;
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
) -> AppResult<StatusCode> {
    if !st.db.revoke_token(caller.0.id, id).await? {
        return Err(AppError::NotFound);
    }
    st.db
        .audit(
            Some(&caller.0),
            "token.revoke",
            &format!("token {id}"),
            "ok",
        )
        .await?;
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
) -> AppResult<Json<Vec<AuditRow>>> {
    if caller.0.role() == Role::Customer {
        return Err(AppError::Forbidden(
            "the audit log is for providers and resellers".into(),
        ));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(st.db.audit_visible_to(&caller.0, limit).await?))
}
