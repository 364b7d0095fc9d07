//! `/api/v1/containers`: a caller's containers, addressed by their owner's name for them.
//! Anything outside the caller's scope answers 404, exactly like a name that does not
//! exist.

use std::time::Duration;

use acetate_engine::size::{parse_bytes, parse_cpus};
use acetate_engine::{ContainerInfo, ContainerSpec, Limits, Usage};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{Caller, MAX_BODY};
use crate::app::AppState;
use crate::db::{ContainerRow, Plan, Role, Totals, User};
use crate::error::{AppError, AppResult};
use crate::quota;

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

/// JSON body whose rejections use the API's error format.
pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(match r {
                JsonRejection::JsonDataError(e) => AppError::Unprocessable(e.body_text()),
                JsonRejection::MissingJsonContentType(_) => AppError::BadRequest(
                    "send the body as JSON with `Content-Type: application/json`".into(),
                ),
                r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge(MAX_BODY),
                r => AppError::BadRequest(r.body_text()),
            }),
        }
    }
}

/// A container as the API shows it.
#[derive(Debug, Serialize)]
pub struct ContainerView {
    pub name: String,
    /// Owner's account name; `null` for containers made outside the panel (CLI).
    pub owner: Option<String>,
    /// `running`, `stopped`, or `creating`/`destroying` while the panel works on it.
    pub state: String,
    pub template: Option<String>,
    pub limits: Option<Limits>,
    /// Its address on the host bridge.
    pub network: Option<acetate_engine::network::NetInfo>,
    pub usage: Option<Usage>,
    pub created_at: i64,
}

pub(crate) fn view(row: &ContainerRow, info: Option<&ContainerInfo>) -> ContainerView {
    let state = match (row.state.as_str(), info) {
        ("ready", Some(i)) => i.state.to_string(),
        ("ready", None) => "missing".to_string(),
        (s, _) => s.to_string(),
    };
    ContainerView {
        name: row.name.clone(),
        owner: Some(row.owner.clone()),
        state,
        template: info.map(|i| i.template.clone()),
        limits: info.map(|i| i.limits.clone()),
        network: info.and_then(|i| i.network.clone()),
        usage: info.map(|i| i.usage),
        created_at: row.created_at,
    }
}

/// Lists the caller's containers. The body is built from the snapshot and cached per
/// user until a container row or the snapshot changes (at most `snapshot::REFRESH`).
async fn list(AxState(st): AxState<AppState>, caller: Caller) -> AppResult<Response> {
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
            let views = list_views(&st, &caller.0).await?;
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

pub(crate) async fn list_views(st: &AppState, caller: &User) -> AppResult<Vec<ContainerView>> {
    let rows = st.db.containers_visible_to(caller).await?;
    let mut out: Vec<ContainerView> = rows
        .iter()
        .map(|r| view(r, st.snapshot.get(&r.engine_name).as_deref()))
        .collect();
    if caller.role() == Role::Provider {
        // The provider sees every container on the host, also those made with the CLI.
        let known = st.db.all_engine_names().await?;
        out.extend(
            st.snapshot
                .all()
                .iter()
                .filter(|i| !known.contains(&i.name))
                .map(|i| ContainerView {
                    name: i.name.clone(),
                    owner: None,
                    state: i.state.to_string(),
                    template: Some(i.template.clone()),
                    limits: Some(i.limits.clone()),
                    network: i.network.clone(),
                    usage: Some(i.usage),
                    created_at: i.created_at as i64,
                }),
        );
    }
    Ok(out)
}

/// A size given as a number of bytes or as text such as "512M".
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    pub fn bytes(&self, what: &str) -> AppResult<u64> {
        match self {
            Size::Bytes(b) => Ok(*b),
            Size::Text(t) => {
                parse_bytes(t).map_err(|e| AppError::Unprocessable(format!("{what}: {e}")))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub template: Option<String>,
    pub memory: Option<Size>,
    pub cpus: Option<serde_json::Value>,
    pub disk: Option<Size>,
    pub inodes: Option<u64>,
    pub procs: Option<u64>,
    pub io_weight: Option<u32>,
}

/// Longest name a customer may give a container.
pub const MAX_NAME: usize = 40;

fn parse_cpus_value(c: &serde_json::Value) -> AppResult<u32> {
    let text = match c {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => {
            return Err(AppError::Unprocessable(
                "cpus: give a number such as 1.5".into(),
            ))
        }
    };
    parse_cpus(&text).map_err(|e| AppError::Unprocessable(format!("cpus: {e}")))
}

fn spec_for(
    req: &CreateRequest,
    owner: &User,
    engine_name: &str,
    plan: &Plan,
) -> AppResult<ContainerSpec> {
    acetate_engine::spec::validate_name(&req.name)
        .map_err(|e| AppError::Unprocessable(e.to_string()))?;
    if req.name.len() > MAX_NAME {
        return Err(AppError::Unprocessable(format!(
            "container names have at most {MAX_NAME} characters"
        )));
    }
    // Unset limits default to the engine's defaults, capped by the plan.
    let defaults = Limits::default();
    let cap = |v: u64, max: i64| v.min(max.max(0) as u64);
    let mut b = ContainerSpec::builder(engine_name)
        .template(req.template.clone().unwrap_or_else(|| "host".into()))
        .owner(Some(format!("panel:{}", owner.name)))
        .network(true)
        .memory(cap(defaults.memory, plan.ct_memory))
        .cpus_milli(cap(u64::from(defaults.cpus_milli), plan.ct_cpus_milli) as u32)
        .procs(cap(defaults.procs, plan.ct_procs));
    if let Some(m) = &req.memory {
        b = b.memory(m.bytes("memory")?);
    }
    if let Some(c) = &req.cpus {
        b = b.cpus_milli(parse_cpus_value(c)?);
    }
    if let Some(i) = req.inodes {
        b = b.inodes(i);
    }
    b = b.disk(match &req.disk {
        Some(d) => d.bytes("disk")?,
        None => cap(defaults.disk, plan.ct_disk),
    });
    if let Some(p) = req.procs {
        b = b.procs(p);
    }
    if let Some(w) = req.io_weight {
        b = b.io_weight(w);
    }
    b.build()
        .map_err(|e| AppError::Unprocessable(e.to_string()))
}

/// A container as plugins see it: its owner's name for it, template and limits.
pub(crate) fn plugin_spec(
    name: &str,
    template: &str,
    l: &Limits,
) -> acetate_plugins::ContainerSpec {
    acetate_plugins::ContainerSpec {
        name: name.to_string(),
        template: template.to_string(),
        limits: acetate_plugins::Limits {
            memory_bytes: l.memory,
            cpu_millis: l.cpus_milli,
            processes: l.procs.min(u64::from(u32::MAX)) as u32,
            disk_bytes: l.disk,
            inodes: l.inodes,
            io_weight: l.io_weight.min(u32::from(u16::MAX)) as u16,
        },
    }
}

/// Limits with a hook's amendment applied, checked like any request.
fn amended_limits(limits: &Limits, a: &acetate_plugins::Limits) -> AppResult<Limits> {
    let next = Limits {
        memory: a.memory_bytes,
        cpus_milli: a.cpu_millis,
        procs: u64::from(a.processes),
        disk: a.disk_bytes,
        inodes: a.inodes,
        io_weight: u32::from(a.io_weight),
        ..limits.clone()
    };
    next.validate().map_err(|e| {
        AppError::Unprocessable(format!(
            "your reseller's hook asked for impossible limits: {e}"
        ))
    })?;
    Ok(next)
}

/// Runs the customer's reseller's hooks on an event.
pub(crate) async fn hooks(
    st: &AppState,
    customer: &User,
    kind: acetate_plugins::EventKind,
    current: Option<acetate_plugins::ContainerSpec>,
    requested: Option<acetate_plugins::ContainerSpec>,
) -> AppResult<crate::plugins::Verdict> {
    let Some(reseller_id) = customer.reseller_id else {
        return Ok(crate::plugins::Verdict::Allow);
    };
    let event = acetate_plugins::Event {
        kind,
        at: crate::db::now(),
        tenant: crate::plugins::tenant_of(&st.db, customer).await?,
        current,
        requested,
    };
    crate::plugins::run_hooks(&st.db, &st.plugins, reseller_id, event).await
}

/// Takes a last sample of a container before the panel stops or destroys it, so that the
/// usage since the previous sample is not lost with its counters.
pub(crate) async fn final_sample(st: &AppState, engine_name: &str) {
    if let Err(e) = crate::metering::sample(&st.db, &st.engine, Some(engine_name)).await {
        tracing::warn!(container = %engine_name, error = %e, "final usage sample");
    }
}

fn engine_name() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("ct-{n:016x}")
}

#[tracing::instrument(skip_all, fields(user = %caller.0.name))]
async fn create(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateRequest>,
) -> AppResult<(StatusCode, Json<ContainerView>)> {
    let view = create_for(&st, caller.0, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Creates and starts a container for customer `user`, within its plan and its
/// reseller's pool (shared by the API and the web pages).
pub(crate) async fn create_for(
    st: &AppState,
    user: User,
    req: CreateRequest,
) -> AppResult<ContainerView> {
    if user.role() != Role::Customer {
        return Err(AppError::Forbidden(
            "containers belong to customers: create them from a customer account".into(),
        ));
    }
    if user.suspended != 0 {
        return Err(AppError::Forbidden("your account is suspended".into()));
    }
    let plan = customer_plan(st, &user).await?;
    // A taken name is the answer whatever the capacity (the insert below re-checks it).
    if st.db.container(user.id, &req.name).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "you already have a container named {:?}",
            req.name
        )));
    }
    let engine_name = engine_name();
    let mut spec = spec_for(&req, &user, &engine_name, &plan)?;
    let mut target = req.name.clone();
    let requested = plugin_spec(&target, &spec.template, &spec.limits);
    let verdict = hooks(
        st,
        &user,
        acetate_plugins::EventKind::Create,
        None,
        Some(requested),
    )
    .await?;
    verdict.refused()?;
    if let crate::plugins::Verdict::Amend(amended) = &verdict {
        spec.limits = amended_limits(&spec.limits, &amended.limits)?;
        spec.template = amended.template.clone();
        if amended.name != target {
            acetate_engine::spec::validate_name(&amended.name).map_err(|e| {
                AppError::Unprocessable(format!("your reseller's hook renamed the container: {e}"))
            })?;
            if st.db.container(user.id, &amended.name).await?.is_some() {
                return Err(AppError::Conflict(format!(
                    "you already have a container named {:?} (the name your reseller's hook chose)",
                    amended.name
                )));
            }
            target = amended.name.clone();
        }
    }
    let holds = holds_of(&spec.limits);
    let id = {
        let _alloc = st.alloc.lock().await;
        check_capacity(st, &user, &plan, -1, &holds, spec.limits.procs).await?;
        st.db
            .insert_container(user.id, &target, &engine_name, &holds)
            .await?
    };
    let created = st
        .change(&engine_name, move |e| {
            e.create(&spec)?;
            match e.start(&spec.name) {
                Ok(info) => Ok(info),
                Err(err) => {
                    let _ = e.destroy(&spec.name, Duration::from_secs(5));
                    Err(err)
                }
            }
        })
        .await;
    match created {
        Ok(info) => {
            st.db.set_container_state(id, "ready").await?;
            st.db
                .audit(Some(&user), "container.create", &target, "ok")
                .await?;
            let row = st
                .db
                .container(user.id, &target)
                .await?
                .ok_or(AppError::NotFound)?;
            Ok(view(&row, Some(&info)))
        }
        Err(e) => {
            st.db.delete_container(id).await?;
            st.db
                .audit(
                    Some(&user),
                    "container.create",
                    &target,
                    &format!("failed: {e}"),
                )
                .await?;
            Err(e)
        }
    }
}

/// What a container with `limits` holds of plans and pools.
fn holds_of(limits: &Limits) -> Totals {
    Totals {
        containers: 1,
        memory: limits.memory as i64,
        cpus_milli: i64::from(limits.cpus_milli),
        disk: limits.disk as i64,
    }
}

async fn customer_plan(st: &AppState, customer: &User) -> AppResult<Plan> {
    let plan = match customer.plan_id {
        Some(id) => st.db.plan(id).await?,
        None => None,
    };
    plan.ok_or_else(|| AppError::Forbidden("you have no plan yet: ask your reseller".into()))
}

/// Checks plan and pool for a container (`except`: the one being resized, or -1).
async fn check_capacity(
    st: &AppState,
    customer: &User,
    plan: &Plan,
    except: i64,
    holds: &Totals,
    procs: u64,
) -> AppResult<()> {
    let reseller_id = customer.reseller_id.unwrap_or(-1);
    let pool = st.db.pool(reseller_id).await?;
    let mine = st.db.customer_totals(customer.id, except).await?;
    let theirs = st.db.reseller_totals(reseller_id, except).await?;
    quota::check(plan, pool.as_ref(), &mine, &theirs, holds, procs as i64).map_err(AppError::Quota)
}

/// The account owning a container.
async fn owner_of(st: &AppState, row: &ContainerRow) -> AppResult<User> {
    st.db
        .user_by_name(&row.owner)
        .await?
        .ok_or(AppError::NotFound)
}

/// The account owning a container, refused if it is suspended.
async fn active_owner_of(st: &AppState, row: &ContainerRow) -> AppResult<User> {
    let owner = owner_of(st, row).await?;
    if owner.suspended != 0 {
        return Err(AppError::Forbidden(
            "the account owning this container is suspended".into(),
        ));
    }
    Ok(owner)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeRequest {
    pub memory: Option<Size>,
    pub cpus: Option<serde_json::Value>,
    pub disk: Option<Size>,
    pub procs: Option<u64>,
}

/// Resizes a container within the owner's plan and the reseller's pool (live if running).
async fn resize(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
    ApiJson(req): ApiJson<ResizeRequest>,
) -> AppResult<Json<ContainerView>> {
    resize_for(&st, &caller.0, &name, q.owner.as_deref(), req)
        .await
        .map(Json)
}

/// Resizes a container in the caller's scope (API and web pages).
pub(crate) async fn resize_for(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    req: ResizeRequest,
) -> AppResult<ContainerView> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = owner_of(st, &row).await?;
    let plan = customer_plan(st, &owner).await?;
    let update = acetate_engine::LimitsUpdate {
        memory: req.memory.as_ref().map(|m| m.bytes("memory")).transpose()?,
        cpus_milli: req.cpus.as_ref().map(parse_cpus_value).transpose()?,
        disk: req.disk.as_ref().map(|d| d.bytes("disk")).transpose()?,
        procs: req.procs,
        ..Default::default()
    };
    if update.is_empty() {
        return Err(AppError::Unprocessable(
            "give at least one of memory, cpus, disk, procs".into(),
        ));
    }
    let engine_name = row.engine_name.clone();
    let current = st.engine(move |e| e.show(&engine_name)).await?;
    let mut next = update.applied_to(&current.limits);
    next.validate()
        .map_err(|e| AppError::Unprocessable(e.to_string()))?;
    let verdict = hooks(
        st,
        &owner,
        acetate_plugins::EventKind::Resize,
        Some(plugin_spec(&row.name, &current.template, &current.limits)),
        Some(plugin_spec(&row.name, &current.template, &next)),
    )
    .await?;
    verdict.refused()?;
    let update = match &verdict {
        crate::plugins::Verdict::Amend(amended) => {
            next = amended_limits(&next, &amended.limits)?;
            acetate_engine::LimitsUpdate {
                memory: Some(next.memory),
                cpus_milli: Some(next.cpus_milli),
                disk: Some(next.disk),
                procs: Some(next.procs),
                ..Default::default()
            }
        }
        _ => update,
    };
    let holds = holds_of(&next);
    let _alloc = st.alloc.lock().await;
    check_capacity(st, &owner, &plan, row.id, &holds, next.procs).await?;
    let engine_name = row.engine_name.clone();
    let result = st
        .change(&row.engine_name, move |e| e.set(&engine_name, &update))
        .await;
    let target = format!("{}/{}", row.owner, row.name);
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    st.db
        .audit(Some(caller), "container.resize", &target, &outcome)
        .await?;
    let info = result?;
    st.db
        .set_container_holds(row.id, &holds_of(&info.limits))
        .await?;
    Ok(view(&row, Some(&info)))
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
    Query(q): Query<OwnerQuery>,
    ApiJson(req): ApiJson<ReinstallRequest>,
) -> AppResult<Json<ContainerView>> {
    reinstall_for(&st, &caller.0, &name, q.owner.as_deref(), req)
        .await
        .map(Json)
}

/// Reinstalls a container in the caller's scope: a fresh writable layer, same limits
/// (checked against the plan and pool again, like any other path).
pub(crate) async fn reinstall_for(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    req: ReinstallRequest,
) -> AppResult<ContainerView> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = active_owner_of(st, &row).await?;
    let plan = customer_plan(st, &owner).await?;
    let holds = Totals {
        containers: 1,
        memory: row.memory,
        cpus_milli: row.cpus_milli,
        disk: row.disk,
    };
    let procs = st
        .snapshot
        .get(&row.engine_name)
        .map_or(0, |i| i.limits.procs);
    {
        let _alloc = st.alloc.lock().await;
        check_capacity(st, &owner, &plan, row.id, &holds, procs).await?;
    }
    final_sample(st, &row.engine_name).await;
    let engine_name = row.engine_name.clone();
    let template = req.template.clone();
    let result = st
        .change(&row.engine_name, move |e| {
            e.reinstall(
                &engine_name,
                template.as_deref(),
                acetate_engine::DEFAULT_STOP_TIMEOUT,
            )
        })
        .await;
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    st.db
        .audit(
            Some(caller),
            "container.reinstall",
            &format!("{}/{}", row.owner, row.name),
            &outcome,
        )
        .await?;
    Ok(view(&row, Some(&result?)))
}

#[derive(Debug, Deserialize)]
pub struct OwnerQuery {
    /// For providers and resellers: whose container (defaults to the caller).
    pub owner: Option<String>,
}

/// Finds a container in the caller's scope; anything else is 404.
pub(crate) async fn resolve(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<ContainerRow> {
    let owner = match owner {
        None => caller.clone(),
        Some(o) if o == caller.name => caller.clone(),
        Some(o) => {
            let user = st.db.user_by_name(o).await?.ok_or(AppError::NotFound)?;
            let in_scope = match caller.role() {
                Role::Provider => true,
                Role::Reseller => user.reseller_id == Some(caller.id),
                Role::Customer => false,
            };
            if !in_scope {
                return Err(AppError::NotFound);
            }
            user
        }
    };
    match st.db.container(owner.id, name).await? {
        Some(row) if row.state == "ready" => Ok(row),
        _ => Err(AppError::NotFound),
    }
}

async fn show(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> AppResult<Json<ContainerView>> {
    let row = resolve(&st, &caller.0, &name, q.owner.as_deref()).await?;
    let engine_name = row.engine_name.clone();
    let info = st.engine(move |e| e.show(&engine_name)).await.ok();
    Ok(Json(view(&row, info.as_ref())))
}

const START: u8 = 0;
const STOP: u8 = 1;
const RESTART: u8 = 2;

/// `POST .../start|stop|restart`, the action chosen by the route.
async fn lifecycle<const ACTION: u8>(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> AppResult<Json<ContainerView>> {
    let action = match ACTION {
        START => "start",
        STOP => "stop",
        _ => "restart",
    };
    act(st, caller.0, name, q.owner, action).await.map(Json)
}

/// Starts, stops or restarts a container in the caller's scope (API and web pages).
pub(crate) async fn act(
    st: AppState,
    caller: User,
    name: String,
    owner: Option<String>,
    action: &'static str,
) -> AppResult<ContainerView> {
    let row = resolve(&st, &caller, &name, owner.as_deref()).await?;
    if action != "stop" {
        active_owner_of(&st, &row).await?;
    }
    if action != "start" {
        final_sample(&st, &row.engine_name).await;
    }
    let engine_name = row.engine_name.clone();
    let result = st
        .change(&row.engine_name, move |e| match action {
            "start" => e.start(&engine_name),
            "stop" => e.stop(&engine_name, acetate_engine::DEFAULT_STOP_TIMEOUT),
            _ => e.restart(&engine_name, acetate_engine::DEFAULT_STOP_TIMEOUT),
        })
        .await;
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    st.db
        .audit(
            Some(&caller),
            &format!("container.{action}"),
            &format!("{}/{}", row.owner, row.name),
            &outcome,
        )
        .await?;
    Ok(view(&row, Some(&result?)))
}

async fn destroy(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> AppResult<StatusCode> {
    destroy_for(&st, &caller.0, &name, q.owner.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Destroys a container in the caller's scope (API and web pages).
pub(crate) async fn destroy_for(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<()> {
    let caller = Caller(caller.clone());
    let row = resolve(st, &caller.0, name, owner).await?;
    if let Some(owner) = st.db.user_by_name(&row.owner).await? {
        let limits = Limits {
            memory: row.memory.max(0) as u64,
            cpus_milli: row.cpus_milli.clamp(0, i64::from(u32::MAX)) as u32,
            disk: row.disk.max(0) as u64,
            ..Limits::default()
        };
        let current = match st.snapshot.get(&row.engine_name) {
            Some(info) => plugin_spec(&row.name, &info.template, &info.limits),
            None => plugin_spec(&row.name, "host", &limits),
        };
        hooks(
            st,
            &owner,
            acetate_plugins::EventKind::Destroy,
            Some(current),
            None,
        )
        .await?
        .refused()?;
    }
    // On a full disk the reserve makes room for the database writes of a destroy.
    let _ = st.engine(|e| e.relieve_disk()).await;
    final_sample(st, &row.engine_name).await;
    st.db.set_container_state(row.id, "destroying").await?;
    let engine_name = row.engine_name.clone();
    let result = st
        .change(&row.engine_name, move |e| {
            match e.destroy(&engine_name, acetate_engine::DEFAULT_STOP_TIMEOUT) {
                Err(acetate_engine::Error::NoSuchContainer(_)) => Ok(()),
                other => other,
            }
        })
        .await;
    let target = format!("{}/{}", row.owner, row.name);
    match result {
        Ok(()) => {
            st.db.delete_container(row.id).await?;
            st.db
                .audit(Some(&caller.0), "container.destroy", &target, "ok")
                .await?;
            Ok(())
        }
        Err(e) => {
            st.db.set_container_state(row.id, "ready").await?;
            st.db
                .audit(
                    Some(&caller.0),
                    "container.destroy",
                    &target,
                    &format!("failed: {e}"),
                )
                .await?;
            Err(e)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// Seconds before the command is killed (default 60, at most 600).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// What a command run through the API or a page did.
pub type ExecResponse = crate::exec::Outcome;

async fn exec(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
    ApiJson(req): ApiJson<ExecRequest>,
) -> AppResult<Json<ExecResponse>> {
    exec_in(
        &st,
        &caller.0,
        &name,
        q.owner.as_deref(),
        req.command,
        req.timeout_seconds,
    )
    .await
    .map(Json)
}

/// Runs a command in a container of the caller's scope, within the caller's share of
/// concurrent commands, its timeout and the output bound (API and web pages).
pub(crate) async fn exec_in(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    command: Vec<String>,
    timeout_seconds: Option<u64>,
) -> AppResult<ExecResponse> {
    if command.is_empty() {
        return Err(AppError::Unprocessable(
            "command: give at least the program to run".into(),
        ));
    }
    let timeout = st.exec.timeout(timeout_seconds)?;
    let row = resolve(st, caller, name, owner).await?;
    let _permit = st.exec.admit(caller.id)?;
    let max_output = st.exec.limits().max_output;
    let done = crate::exec::run(
        st.engine.clone(),
        row.engine_name.clone(),
        command,
        timeout,
        max_output,
    )
    .await?;
    let mut result = format!("exit {}", done.exit_code);
    if done.timed_out {
        result.push_str(", timed out");
    }
    if done.truncated {
        result.push_str(", output cut");
    }
    st.db
        .audit(
            Some(caller),
            "container.exec",
            &format!("{}/{}", row.owner, row.name),
            &result,
        )
        .await?;
    Ok(done)
}
