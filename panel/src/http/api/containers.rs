//! `/api/v1/containers`: a caller's containers, addressed by their owner's name for them.
//! Anything outside the caller's scope answers 404, exactly like a name that does not
//! exist. Changes are operations (see [`super::operations`]).

use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::operations::{answer, result_json};
use crate::domain::size::{Cpus, Size};
use crate::domain::ContainerName;
use crate::error::AppError;
use crate::http::error::ApiResult;
use crate::http::extract::{ActionQuery, ApiJson, Caller, OwnerQuery};
use crate::runtime::CommandOutcome;
use crate::service::containers::{self, Action, ContainerView, NewContainer, Resize};
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/containers", get(list).post(create))
        .route(
            "/api/v1/containers/{name}",
            get(show).delete(destroy).patch(resize),
        )
        .route("/api/v1/containers/{name}/start", post(lifecycle::<START>))
        .route("/api/v1/containers/{name}/stop", post(lifecycle::<STOP>))
        .route(
            "/api/v1/containers/{name}/restart",
            post(lifecycle::<RESTART>),
        )
        .route("/api/v1/containers/{name}/exec", post(exec))
        .route("/api/v1/containers/{name}/reinstall", post(reinstall))
}

/// Lists the caller's containers. The body is built from the snapshot and cached per
/// user until a container row or the snapshot changes (at most `snapshot::REFRESH`).
async fn list(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Response> {
    // Read the generations first: a change during the build makes the next call rebuild.
    let rows_gen = st.db.containers_generation();
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

#[derive(Debug, Deserialize)]
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
        })
    }
}

/// `POST /api/v1/containers`: creates and starts a container (an operation; with
/// `?wait`, 201 and the container).
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeRequest {
    pub memory: Option<Size>,
    pub cpus: Option<Cpus>,
    pub disk: Option<Size>,
    pub procs: Option<u64>,
}

/// Resizes a container within the owner's plan and the reseller's pool (live if running).
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
    };
    let op = containers::resize(&st, &caller.0, &name, q.owner.as_deref(), resize).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::OK)).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReinstallRequest {
    /// Another template (default: the container's own).
    pub template: Option<String>,
}

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

const START: u8 = 0;
const STOP: u8 = 1;
const RESTART: u8 = 2;

/// `POST .../start|stop|restart`, the action chosen by the route.
async fn lifecycle<const ACTION: u8>(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> ApiResult<Response> {
    let action = match ACTION {
        START => Action::Start,
        STOP => Action::Stop,
        _ => Action::Restart,
    };
    let op = containers::act(&st, &caller.0, &name, q.owner.as_deref(), action).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::OK)).await
}

async fn destroy(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ActionQuery>,
) -> ApiResult<Response> {
    let op = containers::destroy(&st, &caller.0, &name, q.owner.as_deref()).await?;
    answer(&st, op, q.wait, |_| StatusCode::NO_CONTENT.into_response()).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// Seconds before the command is killed (default 60, at most 600).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// Runs a command and answers what it did (not an operation: it is bounded in time and
/// output, and its answer is the point).
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
