//! `/api/v1/containers/{name}/snapshots` and `/backups`: a container's snapshots (local,
//! fast rollback) and backups (in the provider's restic-format repository), within the
//! owner's plan. Taking and restoring are operations, like every other change.

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::operations::{answer, result_json, OperationView};
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ActionQuery, ApiJson, Caller, OwnerQuery};
use crate::service::containers::{copies, ContainerView};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_snapshots, take_snapshot))
        .routes(routes!(delete_snapshot))
        .routes(routes!(restore_snapshot))
        .routes(routes!(list_backups, backup))
        .routes(routes!(restore_backup))
        .routes(routes!(customer_backups))
}

/// One snapshot of a container.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SnapshotView {
    pub name: String,
    /// Unix time it was taken.
    pub created_at: u64,
    /// Host disk it takes (counted against the customer's disk allowance).
    pub bytes: u64,
    /// Size of the disk it holds.
    pub disk_size: u64,
    /// Taken while the container ran (its filesystem frozen for the copy).
    pub live: bool,
}

impl From<acetate_engine::snapshot::SnapshotInfo> for SnapshotView {
    fn from(s: acetate_engine::snapshot::SnapshotInfo) -> Self {
        SnapshotView {
            name: s.name,
            created_at: s.created_at,
            bytes: s.bytes,
            disk_size: s.disk_size,
            live: s.live,
        }
    }
}

/// One backup of a container in the provider's repository.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackupView {
    /// The repository's snapshot id (as `restic snapshots` shows it).
    pub id: String,
    /// The container's engine name (its name in the repository).
    pub container: String,
    pub template: String,
    /// Unix time it was taken.
    pub time: u64,
    /// Bytes of files in it.
    pub bytes: u64,
    /// Bytes it added to the repository (what changed since the last one and nothing
    /// else holds).
    pub added: u64,
}

impl From<acetate_engine::backup::BackupInfo> for BackupView {
    fn from(b: acetate_engine::backup::BackupInfo) -> Self {
        BackupView {
            id: b.id,
            container: b.container,
            template: b.template,
            time: b.time,
            bytes: b.bytes,
            added: b.added,
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// Its name (lower-case letters, digits, '-'); from the time by default.
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBackupRequest {
    /// Another container of the same owner and template to restore into (a new one made
    /// for it, say); the backed-up container itself by default.
    pub into: Option<String>,
}

#[utoipa::path(get, operation_id = "copies_list_snapshots", path = "/api/v1/containers/{name}/snapshots", tag = "snapshots",
    summary = "A container's snapshots, oldest first",
    params(("name" = String, Path, description = "the owner's name for the container"), OwnerQuery),
    responses((status = 200, description = "ok", body = [SnapshotView]), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn list_snapshots(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> ApiResult<Json<Vec<SnapshotView>>> {
    let list = copies::snapshots(&st, &caller.0, &name, q.owner.as_deref()).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, operation_id = "copies_take_snapshot", path = "/api/v1/containers/{name}/snapshots", tag = "snapshots",
    summary = "Take a snapshot (of a running container too: its filesystem is frozen while the image is copied)",
    params(("name" = String, Path, description = "the owner's name for the container"), ActionQuery),
    request_body = SnapshotRequest,
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 201, description = "with ?wait: taken", body = SnapshotView),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "invalid name, or over the plan's snapshots or disk allowance", body = ErrorBody)))]
async fn take_snapshot(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
    ApiJson(req): ApiJson<SnapshotRequest>,
) -> ApiResult<Response> {
    let op = copies::take_snapshot(&st, &caller.0, &name, q.owner.as_deref(), req.name).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::CREATED)).await
}

#[utoipa::path(delete, operation_id = "copies_delete_snapshot", path = "/api/v1/containers/{name}/snapshots/{snapshot}", tag = "snapshots",
    summary = "Delete a snapshot",
    params(("name" = String, Path, description = "the owner's name for the container"), ("snapshot" = String, Path, description = "the snapshot's name"), OwnerQuery),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such container or snapshot in the caller's scope", body = ErrorBody)))]
async fn delete_snapshot(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path((name, snap)): Path<(String, String)>,
    Query(q): Query<OwnerQuery>,
) -> ApiResult<Response> {
    copies::delete_snapshot(&st, &caller.0, &name, q.owner.as_deref(), snap).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, operation_id = "copies_restore_snapshot", path = "/api/v1/containers/{name}/snapshots/{snapshot}/restore", tag = "snapshots",
    summary = "Roll the container back to a snapshot (a running one is stopped and started again)",
    params(("name" = String, Path, description = "the owner's name for the container"), ("snapshot" = String, Path, description = "the snapshot's name"), ActionQuery),
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 200, description = "with ?wait: restored", body = ContainerView),
        (status = 403, description = "suspended", body = ErrorBody),
        (status = 404, description = "no such container or snapshot in the caller's scope", body = ErrorBody)))]
async fn restore_snapshot(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path((name, snap)): Path<(String, String)>,
    Query(q): Query<ActionQuery>,
) -> ApiResult<Response> {
    let op = copies::restore_snapshot(&st, &caller.0, &name, q.owner.as_deref(), snap).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::OK)).await
}

#[utoipa::path(get, operation_id = "copies_list_backups", path = "/api/v1/containers/{name}/backups", tag = "backups",
    summary = "A container's backups in the provider's repository, oldest first",
    params(("name" = String, Path, description = "the owner's name for the container"), OwnerQuery),
    responses((status = 200, description = "ok", body = [BackupView]), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn list_backups(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> ApiResult<Json<Vec<BackupView>>> {
    let list = copies::backups(&st, &caller.0, &name, q.owner.as_deref()).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, operation_id = "copies_backup", path = "/api/v1/containers/{name}/backups", tag = "backups",
    summary = "Back the container up now (then the plan's retention applies)",
    params(("name" = String, Path, description = "the owner's name for the container"), ActionQuery),
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 201, description = "with ?wait: backed up", body = BackupView),
        (status = 403, description = "suspended", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn backup(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> ApiResult<Response> {
    let op = copies::backup(&st, &caller.0, &name, q.owner.as_deref()).await?;
    answer(&st, op, q.wait, |r| {
        let view = r
            .and_then(|v| serde_json::from_value::<acetate_engine::backup::BackupInfo>(v).ok())
            .map(|b| serde_json::to_value(BackupView::from(b)).unwrap_or_default());
        result_json(view, StatusCode::CREATED)
    })
    .await
}

#[utoipa::path(post, operation_id = "copies_restore_backup", path = "/api/v1/containers/{name}/backups/{id}/restore", tag = "backups",
    summary = "Restore a backup into this container or another of the same owner and template",
    params(("name" = String, Path, description = "the owner's name for the backed-up container"), ("id" = String, Path, description = "the backup's id (at least its first 8 hex digits)"), ActionQuery),
    request_body = RestoreBackupRequest,
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 200, description = "with ?wait: restored", body = ContainerView),
        (status = 403, description = "suspended", body = ErrorBody),
        (status = 404, description = "no such container or backup in the caller's scope", body = ErrorBody),
        (status = 422, description = "the target has another template", body = ErrorBody)))]
async fn restore_backup(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<ActionQuery>,
    ApiJson(req): ApiJson<RestoreBackupRequest>,
) -> ApiResult<Response> {
    let op =
        copies::restore_backup(&st, &caller.0, &name, q.owner.as_deref(), id, req.into).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::OK)).await
}

#[utoipa::path(get, operation_id = "copies_customer_backups", path = "/api/v1/backups", tag = "backups",
    summary = "Every backup of the customer's containers, those since destroyed included (create a container `from_backup` to restore one)",
    responses((status = 200, description = "ok", body = [BackupView]), (status = 403, description = "not a customer account", body = ErrorBody)))]
async fn customer_backups(
    AxState(st): AxState<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<BackupView>>> {
    if caller.0.role() != crate::domain::Role::Customer {
        return Err(crate::error::AppError::Forbidden(
            "backups belong to customers: list a container's with /api/v1/containers/{name}/backups"
                .into(),
        )
        .into());
    }
    let list = copies::customer_backups(&st, &caller.0).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}
