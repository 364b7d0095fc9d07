//! `/api/v1/containers`: a caller's containers, addressed by their owner's name for them.
//! Anything outside the caller's scope answers 404, exactly like a name that does not
//! exist. Changes are operations (see [`super::operations`]).

use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::operations::{answer, result_json, OperationView};
use crate::domain::size::{Cpus, Size};
use crate::domain::ContainerName;
use crate::error::AppError;
use crate::http::api::accounts::IoCaps;
use crate::http::error::ApiResult;
use crate::http::error::ErrorBody;
use crate::http::extract::{ActionQuery, ApiJson, Caller, OwnerQuery};
use crate::runtime::CommandOutcome;
use crate::service::containers::{self, Action, ContainerView, NewContainer, Resize};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, destroy, resize))
        .routes(routes!(start))
        .routes(routes!(stop))
        .routes(routes!(restart))
        .routes(routes!(exec))
        .routes(routes!(reinstall))
}

/// Lists the caller's containers. The body is built from the snapshot and cached per
/// user until a container row (changed by any panel on the database) or the snapshot
/// changes (at most `snapshot::REFRESH`).
#[utoipa::path(get, operation_id = "containers_list", path = "/api/v1/containers", tag = "containers",
    summary = "Containers in the caller's scope (the provider also sees unowned ones)",
    responses((status = 200, description = "ok", body = [ContainerView]), (status = 401, description = "no valid token", body = ErrorBody)))]
async fn list(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Response> {
    // Read the generations first: a change during the build makes the next call rebuild.
    let rows_gen = (
        st.db.containers_generation(),
        st.db.containers_revision().await?,
    );
    let snap_gen = st.snapshot.generation();
    let cached = st
        .list_cache
        .lock()
        .expect("list cache lock")
        .get(&caller.0.id)
        .filter(|(r, s, _)| *r == rows_gen && *s == snap_gen)
        .map(|(_, _, body)| body.clone());
    let body = match cached {
        Some(body) => body,
        None => {
            let views = containers::list(&st, &caller.0).await?;
            let body = bytes::Bytes::from(
                serde_json::to_vec(&views).map_err(|e| AppError::Internal(e.to_string()))?,
            );
            st.list_cache
                .lock()
                .expect("list cache lock")
                .insert(caller.0.id, (rows_gen, snap_gen, body.clone()));
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub template: Option<String>,
    pub memory: Option<Size>,
    pub cpus: Option<Cpus>,
    pub disk: Option<Size>,
    pub inodes: Option<u64>,
    pub procs: Option<u64>,
    pub io_weight: Option<u32>,
    /// Disk I/O caps (the plan's by default; never above them).
    pub io: Option<IoCaps>,
    /// Start with the files of this backup of one of the customer's containers (its id
    /// or first 8+ hex digits; see `GET /api/v1/backups`); its template by default.
    pub from_backup: Option<String>,
}

impl CreateRequest {
    fn parse(self) -> Result<NewContainer, AppError> {
        Ok(NewContainer {
            name: ContainerName::parse(&self.name)?,
            template: self.template,
            memory: self.memory.map(|m| m.bytes("memory")).transpose()?,
            cpus_milli: self.cpus.map(|c| c.milli("cpus")).transpose()?,
            disk: self.disk.map(|d| d.bytes("disk")).transpose()?,
            inodes: self.inodes,
            procs: self.procs,
            io_weight: self.io_weight,
            io: self.io.unwrap_or_default().parse()?,
            from_backup: self.from_backup,
        })
    }
}

/// `POST /api/v1/containers`: creates and starts a container (an operation; with
/// `?wait`, 201 and the container).
#[utoipa::path(post, operation_id = "containers_create", path = "/api/v1/containers", tag = "containers",
    summary = "Create and start a container (customers; within plan and pool, as the reseller's hooks decide)",
    params(("wait" = Option<u64>, Query, description = "wait for the operation, at most this many seconds")),
    request_body = CreateRequest,
    responses(
        (status = 202, description = "accepted: follow the operation at Location", body = OperationView),
        (status = 201, description = "with ?wait: created", body = ContainerView),
        (status = 400, description = "malformed request", body = ErrorBody), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 409, description = "conflicts with the current state", body = ErrorBody), (status = 413, description = "the body is too large", body = ErrorBody),
        (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user = %caller.0.name))]
async fn create(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Query(q): Query<ActionQuery>,
    ApiJson(req): ApiJson<CreateRequest>,
) -> ApiResult<Response> {
    let op = containers::create(&st, &caller.0, req.parse()?).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::CREATED)).await
}

#[utoipa::path(get, operation_id = "containers_show", path = "/api/v1/containers/{name}", tag = "containers",
    summary = "One container: state, limits, address, usage",
    params(("name" = String, Path, description = "the owner's name for the container"), OwnerQuery),
    responses((status = 200, description = "ok", body = ContainerView), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn show(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> ApiResult<Json<ContainerView>> {
    Ok(Json(
        containers::show(&st, &caller.0, &name, q.owner.as_deref()).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeRequest {
    pub memory: Option<Size>,
    pub cpus: Option<Cpus>,
    pub disk: Option<Size>,
    pub procs: Option<u64>,
    /// New disk I/O caps (0 lifts one, where the plan allows).
    pub io: Option<IoCaps>,
}

/// Resizes a container within the owner's plan and the reseller's pool (live if running).
#[utoipa::path(patch, operation_id = "containers_resize", path = "/api/v1/containers/{name}", tag = "containers",
    summary = "Resize (live if running), within plan and pool",
    params(("name" = String, Path, description = "the owner's name for the container"), ActionQuery),
    request_body = ResizeRequest,
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 200, description = "with ?wait: resized", body = ContainerView),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn resize(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
    ApiJson(req): ApiJson<ResizeRequest>,
) -> ApiResult<Response> {
    let resize = Resize {
        memory: req.memory.map(|m| m.bytes("memory")).transpose()?,
        cpus_milli: req.cpus.map(|c| c.milli("cpus")).transpose()?,
        disk: req.disk.map(|d| d.bytes("disk")).transpose()?,
        procs: req.procs,
        io: req.io.unwrap_or_default().parse()?,
    };
    let op = containers::resize(&st, &caller.0, &name, q.owner.as_deref(), resize).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::OK)).await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReinstallRequest {
    /// Another template (default: the container's own).
    pub template: Option<String>,
}

#[utoipa::path(post, operation_id = "containers_reinstall", path = "/api/v1/containers/{name}/reinstall", tag = "containers",
    summary = "Reinstall: a fresh writable layer (optionally another template), same limits",
    params(("name" = String, Path, description = "the owner's name for the container"), ActionQuery),
    request_body = ReinstallRequest,
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 200, description = "with ?wait: reinstalled", body = ContainerView),
        (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn reinstall(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
    ApiJson(req): ApiJson<ReinstallRequest>,
) -> ApiResult<Response> {
    let op = containers::reinstall(&st, &caller.0, &name, q.owner.as_deref(), req.template).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::OK)).await
}

macro_rules! lifecycle {
    ($fn:ident, $action:expr, $path:literal, $summary:literal) => {
        #[utoipa::path(post, operation_id = concat!("containers_", stringify!($fn)), path = $path, tag = "containers", summary = $summary,
            params(("name" = String, Path, description = "the owner's name for the container"), ActionQuery),
            responses(
                (status = 202, description = "accepted", body = OperationView),
                (status = 200, description = "with ?wait: done", body = ContainerView),
                (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
                (status = 409, description = "conflicts with the current state", body = ErrorBody)))]
        async fn $fn(
            AxState(st): AxState<AppState>,
            caller: Caller,
            Path(name): Path<String>,
            Query(q): Query<ActionQuery>,
        ) -> ApiResult<Response> {
            let op = containers::act(&st, &caller.0, &name, q.owner.as_deref(), $action).await?;
            answer(&st, op, q.wait, |r| result_json(r, StatusCode::OK)).await
        }
    };
}

lifecycle!(
    start,
    Action::Start,
    "/api/v1/containers/{name}/start",
    "Start"
);
lifecycle!(stop, Action::Stop, "/api/v1/containers/{name}/stop", "Stop");
lifecycle!(
    restart,
    Action::Restart,
    "/api/v1/containers/{name}/restart",
    "Restart"
);

#[utoipa::path(delete, operation_id = "containers_destroy", path = "/api/v1/containers/{name}", tag = "containers",
    summary = "Destroy (stops it first), if the reseller's hooks allow",
    params(("name" = String, Path, description = "the owner's name for the container"), ActionQuery),
    responses(
        (status = 202, description = "accepted", body = OperationView),
        (status = 204, description = "with ?wait: destroyed"),
        (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn destroy(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> ApiResult<Response> {
    let op = containers::destroy(&st, &caller.0, &name, q.owner.as_deref()).await?;
    answer(&st, op, q.wait, |_| StatusCode::NO_CONTENT.into_response()).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// Seconds before the command is killed (default 60, at most 600).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// Runs a command and answers what it did (not an operation: it is bounded in time and
/// output, and its answer is the point).
#[utoipa::path(post, operation_id = "containers_exec", path = "/api/v1/containers/{name}/exec", tag = "containers",
    summary = "Run a command inside, as its root (4 at once per user; 429 beyond)",
    params(("name" = String, Path, description = "the owner's name for the container"), OwnerQuery),
    request_body = ExecRequest,
    responses((status = 200, description = "ok", body = CommandOutcome), (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 409, description = "conflicts with the current state", body = ErrorBody), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody),
        (status = 429, description = "too much at once: try again shortly", body = ErrorBody)))]
async fn exec(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
    ApiJson(req): ApiJson<ExecRequest>,
) -> ApiResult<Json<CommandOutcome>> {
    Ok(Json(
        containers::exec(
            &st,
            &caller.0,
            &name,
            q.owner.as_deref(),
            req.command,
            req.timeout_seconds,
        )
        .await?,
    ))
}
