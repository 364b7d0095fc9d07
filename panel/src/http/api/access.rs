//! `/api/v1/ssh-keys` (the caller's keys for the SSH gateway) and `/api/v1/shells` (open
//! interactive sessions: SSH, terminals, streamed exec).

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::keys::SshKey;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller};
use crate::service::shells::{self, SessionInfo};
use crate::service::{keys, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, add_key))
        .routes(routes!(remove_key))
        .routes(routes!(list_shells))
        .routes(routes!(end_shell))
}

#[utoipa::path(get, operation_id = "ssh_keys_list", path = "/api/v1/ssh-keys", tag = "access",
    summary = "The caller's public keys for the SSH gateway",
    responses((status = 200, description = "ok", body = [SshKey])))]
async fn list_keys(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<Vec<SshKey>>> {
    Ok(Json(keys::list(&st, &caller.0).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddKey {
    /// One line of an OpenSSH `.pub` file (`ssh-ed25519 AAAA... comment`).
    public_key: String,
    /// A name for it (default: the key's comment).
    #[serde(default)]
    name: Option<String>,
}

#[utoipa::path(post, operation_id = "ssh_keys_add", path = "/api/v1/ssh-keys", tag = "access",
    summary = "Add a public key: it logs in to the SSH gateway as the caller (`ssh -p 2222 CONTAINER@HOST`)",
    request_body = AddKey,
    responses((status = 201, description = "added", body = SshKey),
        (status = 409, description = "the key is already registered (a key belongs to one account)", body = ErrorBody),
        (status = 422, description = "not a usable public key", body = ErrorBody)))]
async fn add_key(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<AddKey>,
) -> ApiResult<(StatusCode, Json<SshKey>)> {
    let key = keys::add(&st, &caller.0, req.name.as_deref(), &req.public_key).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(delete, operation_id = "ssh_keys_remove", path = "/api/v1/ssh-keys/{id}", tag = "access",
    summary = "Remove one of the caller's public keys",
    params(("id" = i64, Path, description = "the key's id")),
    responses((status = 204, description = "removed"), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn remove_key(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    keys::remove(&st, &caller.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, operation_id = "shells_list", path = "/api/v1/shells", tag = "access",
    summary = "Open interactive sessions (SSH, terminals, streamed exec): the caller's, and those in containers of accounts it manages",
    responses((status = 200, description = "ok", body = [SessionInfo])))]
async fn list_shells(
    AxState(st): AxState<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    Ok(Json(shells::list(&st, &caller.0).await?))
}

#[utoipa::path(delete, operation_id = "shells_end", path = "/api/v1/shells/{id}", tag = "access",
    summary = "End an open session: its process and every process of its group are killed",
    params(("id" = u64, Path, description = "the session's id")),
    responses((status = 204, description = "ended"), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn end_shell(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> ApiResult<StatusCode> {
    shells::end(&st, &caller.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
