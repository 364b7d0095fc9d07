//! `/api/v1/ssh-keys` (the caller's keys for the SSH gateway) and `/api/v1/shells` (open
//! interactive sessions: SSH, terminals, streamed exec).

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::keys::SshKey;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller};
use crate::http::session::ClientAddr;
use crate::runtime::interactive::SessionRequest;
use crate::service::shells::{self, SessionInfo, SessionKind};
use crate::service::{keys, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, add_key))
        .routes(routes!(remove_key))
        .routes(routes!(list_shells))
        .routes(routes!(end_shell))
        .routes(routes!(exec_stream))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamQuery {
    /// For providers and resellers: whose container (default: the caller).
    owner: Option<String>,
    /// A command line, run by `/bin/sh -c` (default: the root's login shell).
    command: Option<String>,
    /// Run it on a terminal (stdout and stderr then arrive merged, as stream 1).
    #[serde(default)]
    tty: bool,
    /// The terminal's size (80×24 by default).
    cols: Option<u16>,
    rows: Option<u16>,
}

/// A command (or a shell) in a container, streamed both ways over a WebSocket.
#[utoipa::path(get, operation_id = "containers_exec_stream", path = "/api/v1/containers/{name}/exec/stream", tag = "containers",
    summary = "Run a command or a shell inside, streamed over a WebSocket (stdin, stdout, stderr, resize, exit code)",
    description = "Upgrade to a WebSocket. Server to client, binary frames: one byte naming the stream \
(1 stdout, 2 stderr; with a terminal everything is 1), then the bytes. Client to server: binary frames \
are stdin; text frames are JSON controls, `{\"type\":\"resize\",\"cols\":C,\"rows\":R}` or \
`{\"type\":\"eof\"}` (closes stdin). The last frame is text, `{\"type\":\"exit\",\"code\":N}`, or \
`{\"type\":\"ended\",\"reason\":R}` if the session was ended, went idle or its client left; \
then the server closes. Closing the socket hangs the command up (SIGHUP, then SIGKILL to its process group). \
Each session is listed under /api/v1/shells and audited.",
    params(("name" = String, Path, description = "the owner's name for the container"), StreamQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody),
        (status = 409, description = "the container is not running", body = ErrorBody),
        (status = 429, description = "too many sessions open", body = ErrorBody)))]
async fn exec_stream(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<StreamQuery>,
    ClientAddr(peer): ClientAddr,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let argv = match q.command {
        Some(c) if c.trim().is_empty() => {
            return Err(crate::error::AppError::Unprocessable(
                "command: give a command line, or leave it out for a shell".into(),
            )
            .into())
        }
        Some(c) => vec!["/bin/sh".into(), "-c".into(), c],
        None => Vec::new(),
    };
    let req = SessionRequest {
        argv,
        env: Vec::new(),
        tty: q
            .tty
            .then(|| (q.cols.unwrap_or(80).max(1), q.rows.unwrap_or(24).max(1))),
    };
    let open = shells::open(
        &st,
        &caller.0,
        &name,
        q.owner.as_deref(),
        SessionKind::Exec,
        Some(peer),
        req,
        None,
    )
    .await?;
    let idle = st.shells.limits().idle;
    Ok(ws.on_upgrade(move |socket| crate::http::stream::bridge(socket, open, idle)))
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
