//! `/api/v1/tokens` (the caller's own API tokens) and `/api/v1/audit`.

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::{AuditFilter, AuditRow, TokenRow};
use crate::domain::scopes::Scopes;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller};
use crate::service::sessions;
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
        .routes(routes!(audit))
}

#[utoipa::path(get, operation_id = "tokens_list", path = "/api/v1/tokens", tag = "tokens",
    summary = "The caller's API tokens (never their values)",
    responses((status = 200, description = "ok", body = [TokenRow])))]
async fn list(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<TokenRow>>> {
    Ok(Json(sessions::tokens(&st, &caller.0).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    #[serde(default)]
    label: String,
    /// Limit it to `read`, `containers`, `billing` and/or `metrics` (none: every right of
    /// its owner).
    #[serde(default)]
    scopes: Vec<String>,
    /// Days it works (forever if absent).
    #[serde(default)]
    expires_days: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NewToken {
    id: i64,
    label: String,
    /// Shown only in this response.
    token: String,
}

#[utoipa::path(post, operation_id = "tokens_create", path = "/api/v1/tokens", tag = "tokens",
    summary = "Create a token; its value is shown only in this answer", request_body = CreateToken,
    responses((status = 201, description = "created", body = NewToken), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn create(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    let grant = sessions::TokenGrant {
        scopes: Scopes::parse(&req.scopes.join(","))?,
        days: req.expires_days,
    };
    let (id, token) = sessions::create_token(&st, &caller.0, &req.label, &grant).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            id,
            label: req.label,
            token: token.0,
        }),
    ))
}

#[utoipa::path(delete, operation_id = "tokens_revoke", path = "/api/v1/tokens/{id}", tag = "tokens",
    summary = "Revoke one of the caller's tokens",
    params(("id" = i64, Path, description = "the token's id")),
    responses((status = 204, description = "revoked"), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn revoke(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    sessions::revoke_token(&st, &caller.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Entries at most (100 by default, 1000 at most).
    limit: Option<i64>,
    /// From this day on (`YYYY-MM-DD`, UTC).
    since: Option<String>,
    /// Up to this day, included (`YYYY-MM-DD`, UTC).
    until: Option<String>,
}

#[utoipa::path(get, operation_id = "tokens_audit", path = "/api/v1/audit", tag = "tokens",
    summary = "Audit log: everything (provider), own and customers' (reseller); narrowed by who, what (an action or its start), on (an account with its containers, or a container) and days",
    params(AuditQuery, AuditFilter),
    responses((status = 200, description = "ok", body = [AuditRow]), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody)))]
async fn audit(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
    Query(f): Query<AuditFilter>,
) -> ApiResult<Json<Vec<AuditRow>>> {
    let filter = sessions::audit_filter(f, q.since.as_deref(), q.until.as_deref())?;
    Ok(Json(
        sessions::audit(&st, &caller.0, q.limit, &filter).await?,
    ))
}
