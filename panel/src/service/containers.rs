//! Customers' containers: who sees which (anything out of scope is "not found", exactly
//! like a name that does not exist), creating within plan and pool, the reseller's hooks
//! on every change, and the long actions as operations.
//!
//! Each action checks everything it can at once (scope, suspension, plan and pool, the
//! hooks' verdict) and answers the caller's mistakes straight away; only the engine's work
//! runs in the operation it returns.

use acetate_engine::{ContainerInfo, ContainerSpec, Limits, LimitsUpdate, Usage};
use serde::Serialize;

use super::hooks::{self, PendingKv, Verdict};
use super::operations::Done;
use super::AppState;
use crate::db::operations::OperationRow;
use crate::db::ContainerRow;
use crate::domain::{quota, ContainerName, Plan, Role, Totals, User};
use crate::error::{AppError, AppResult};
use crate::runtime::CommandOutcome;

/// A container as the API shows it.
#[derive(Debug, Clone, Serialize)]
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

pub fn view(row: &ContainerRow, info: Option<&ContainerInfo>) -> ContainerView {
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

/// The containers `caller` may see, from the snapshot (no engine reads).
pub async fn list(st: &AppState, caller: &User) -> AppResult<Vec<ContainerView>> {
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

/// Finds a container in the caller's scope (`owner`: whose, for providers and resellers;
/// the caller by default); anything else is not found.
pub async fn resolve(
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
            if !caller.has_in_scope(&user) {
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

/// One container with its current state read from the engine.
pub async fn show(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<ContainerView> {
    let row = resolve(st, caller, name, owner).await?;
    let engine_name = row.engine_name.clone();
    let info = st.engine(move |e| e.show(&engine_name)).await.ok();
    Ok(view(&row, info.as_ref()))
}

/// What a customer asks for when creating a container (unset limits: the engine's
/// defaults, capped by the plan).
#[derive(Debug, Clone)]
pub struct NewContainer {
    pub name: ContainerName,
    pub template: Option<String>,
    pub memory: Option<u64>,
    pub cpus_milli: Option<u32>,
    pub disk: Option<u64>,
    pub inodes: Option<u64>,
    pub procs: Option<u64>,
    pub io_weight: Option<u32>,
}

impl NewContainer {
    pub fn named(name: ContainerName) -> NewContainer {
        NewContainer {
            name,
            template: None,
            memory: None,
            cpus_milli: None,
            disk: None,
            inodes: None,
            procs: None,
            io_weight: None,
        }
    }

    fn spec(&self, owner: &User, engine_name: &str, plan: &Plan) -> AppResult<ContainerSpec> {
        let defaults = Limits::default();
        let cap = |v: u64, max: i64| v.min(max.max(0) as u64);
        let mut b = ContainerSpec::builder(engine_name)
            .template(self.template.clone().unwrap_or_else(|| "host".into()))
            .owner(Some(format!("panel:{}", owner.name)))
            .network(true)
            .memory(self.memory.unwrap_or(cap(defaults.memory, plan.ct_memory)))
            .cpus_milli(
                self.cpus_milli
                    .unwrap_or(cap(u64::from(defaults.cpus_milli), plan.ct_cpus_milli) as u32),
            )
            .procs(self.procs.unwrap_or(cap(defaults.procs, plan.ct_procs)))
            .disk(self.disk.unwrap_or(cap(defaults.disk, plan.ct_disk)));
        if let Some(i) = self.inodes {
            b = b.inodes(i);
        }
        if let Some(w) = self.io_weight {
            b = b.io_weight(w);
        }
        b.build()
            .map_err(|e| AppError::Unprocessable(e.to_string()))
    }
}

/// A container as plugins see it: its owner's name for it, template and limits.
pub fn plugin_spec(name: &str, template: &str, l: &Limits) -> acetate_plugins::ContainerSpec {
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

/// Runs the customer's reseller's hooks on an event; a refusal is the error.
pub(super) async fn run_hooks(
    st: &AppState,
    customer: &User,
    kind: acetate_plugins::EventKind,
    current: Option<acetate_plugins::ContainerSpec>,
    requested: Option<acetate_plugins::ContainerSpec>,
) -> AppResult<(Verdict, PendingKv)> {
    let Some(reseller_id) = customer.reseller_id else {
        return Ok((Verdict::Allow, PendingKv::default()));
    };
    let event = acetate_plugins::Event {
        kind,
        at: crate::domain::now(),
        tenant: hooks::tenant_of(&st.db, customer).await?,
        current,
        requested,
    };
    let (verdict, kv) = hooks::run_hooks(&st.db, &st.plugins, reseller_id, event).await?;
    verdict.refused()?;
    Ok((verdict, kv))
}

/// Takes a last sample of a container before the panel stops or destroys it, so that the
/// usage since the previous sample is not lost with its counters.
pub async fn final_sample(st: &AppState, engine_name: &str) {
    if let Err(e) = super::metering::sample(&st.db, &st.runtime, Some(engine_name)).await {
        tracing::warn!(container = %engine_name, error = %e, "final usage sample");
    }
}

fn engine_name() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("ct-{n:016x}")
}

async fn customer_plan(st: &AppState, customer: &User) -> AppResult<Plan> {
    let plan = match customer.plan_id {
        Some(id) => st.db.plan(id).await?,
        None => None,
    };
    plan.ok_or_else(|| AppError::Forbidden("you have no plan yet: ask your reseller".into()))
}

/// The plan-and-pool check for a container holding `holds` with `procs` processes.
fn fits<'a>(
    plan: &'a Plan,
    holds: &'a Totals,
    procs: u64,
) -> impl FnOnce(Option<&crate::domain::Pool>, &Totals, &Totals) -> Result<(), String> + 'a {
    move |pool, mine, theirs| quota::check(plan, pool, mine, theirs, holds, procs as i64)
}

/// The account owning a container.
async fn owner_of(st: &AppState, row: &ContainerRow) -> AppResult<User> {
    st.db
        .user_by_id(row.owner_id)
        .await?
        .ok_or(AppError::NotFound)
}

/// The account owning a container, refused if it is suspended.
async fn active_owner_of(st: &AppState, row: &ContainerRow) -> AppResult<User> {
    let owner = owner_of(st, row).await?;
    if owner.is_suspended() {
        return Err(AppError::Forbidden(
            "the account owning this container is suspended".into(),
        ));
    }
    Ok(owner)
}

fn target(row: &ContainerRow) -> String {
    format!("{}/{}", row.owner, row.name)
}

fn outcome_text<T>(result: &AppResult<T>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    }
}

fn as_json(view: &ContainerView) -> Option<serde_json::Value> {
    serde_json::to_value(view).ok()
}

/// Creates and starts a container for customer `user`, within its plan and its
/// reseller's pool, as its reseller's hooks decide.
#[tracing::instrument(skip_all, fields(user = %user.name, container = %req.name))]
pub async fn create(st: &AppState, user: &User, req: NewContainer) -> AppResult<OperationRow> {
    if user.role() != Role::Customer {
        return Err(AppError::Forbidden(
            "containers belong to customers: create them from a customer account".into(),
        ));
    }
    if user.is_suspended() {
        return Err(AppError::Forbidden("your account is suspended".into()));
    }
    let plan = customer_plan(st, user).await?;
    // A taken name is the answer whatever the capacity (the reservation re-checks it).
    if st.db.container(user.id, req.name.as_str()).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "you already have a container named {:?}",
            req.name.as_str()
        )));
    }
    let engine_name = engine_name();
    let mut spec = req.spec(user, &engine_name, &plan)?;
    let mut name = req.name.to_string();
    let requested = plugin_spec(&name, &spec.template, &spec.limits);
    let (verdict, kv) = run_hooks(
        st,
        user,
        acetate_plugins::EventKind::Create,
        None,
        Some(requested),
    )
    .await?;
    if let Verdict::Amend(amended) = &verdict {
        spec.limits = amended_limits(&spec.limits, &amended.limits)?;
        spec.template = amended.template.clone();
        if amended.name != name {
            ContainerName::parse(&amended.name).map_err(|e| {
                AppError::Unprocessable(format!("your reseller's hook renamed the container: {e}"))
            })?;
            if st.db.container(user.id, &amended.name).await?.is_some() {
                return Err(AppError::Conflict(format!(
                    "you already have a container named {:?} (the name your reseller's hook chose)",
                    amended.name
                )));
            }
            name = amended.name.clone();
        }
    }
    let holds = Totals::of(&spec.limits);
    let id = st
        .db
        .reserve_container(
            user.id,
            user.reseller_id.unwrap_or(-1),
            &name,
            &engine_name,
            &holds,
            fits(&plan, &holds, spec.limits.procs),
        )
        .await?;
    let target = format!("{}/{}", user.name, name);
    let (st2, user2) = (st.clone(), user.clone());
    let work = async move {
        let created = st2
            .change(&engine_name, move |e| e.create_and_start(&spec))
            .await;
        st2.db
            .audit(
                Some(&user2),
                "container.create",
                &name,
                &outcome_text(&created),
            )
            .await?;
        match created {
            Ok(info) => {
                st2.db.set_container_state(id, "ready").await?;
                kv.commit(&st2.db).await?;
                let row = st2
                    .db
                    .container(user2.id, &name)
                    .await?
                    .ok_or(AppError::NotFound)?;
                Ok(Done {
                    message: format!("container {name} created and started"),
                    result: as_json(&view(&row, Some(&info))),
                })
            }
            Err(e) => {
                st2.db.delete_container(id).await?;
                Err(e)
            }
        }
    };
    st.operations
        .spawn(user, "container.create", &target, Some(id), work)
        .await
}

/// New limits for a container; unset ones stay as they are.
#[derive(Debug, Clone, Default)]
pub struct Resize {
    pub memory: Option<u64>,
    pub cpus_milli: Option<u32>,
    pub disk: Option<u64>,
    pub procs: Option<u64>,
}

/// Resizes a container within the owner's plan and the reseller's pool (live if running).
pub async fn resize(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    req: Resize,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = owner_of(st, &row).await?;
    let plan = customer_plan(st, &owner).await?;
    let update = LimitsUpdate {
        memory: req.memory,
        cpus_milli: req.cpus_milli,
        disk: req.disk,
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
    let (verdict, kv) = run_hooks(
        st,
        &owner,
        acetate_plugins::EventKind::Resize,
        Some(plugin_spec(&row.name, &current.template, &current.limits)),
        Some(plugin_spec(&row.name, &current.template, &next)),
    )
    .await?;
    let update = match &verdict {
        Verdict::Amend(amended) => {
            next = amended_limits(&next, &amended.limits)?;
            LimitsUpdate {
                memory: Some(next.memory),
                cpus_milli: Some(next.cpus_milli),
                disk: Some(next.disk),
                procs: Some(next.procs),
                ..Default::default()
            }
        }
        _ => update,
    };
    let holds = Totals::of(&next);
    st.db
        .reserve_holds(
            row.id,
            owner.id,
            owner.reseller_id.unwrap_or(-1),
            &holds,
            fits(&plan, &holds, next.procs),
        )
        .await?;
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        let engine_name = row2.engine_name.clone();
        let result = st2
            .change(&row2.engine_name, move |e| e.set(&engine_name, &update))
            .await;
        st2.db
            .audit(
                Some(&caller2),
                "container.resize",
                &target(&row2),
                &outcome_text(&result),
            )
            .await?;
        // What it holds is what it has: the new limits, or the old ones if that failed.
        let limits = match &result {
            Ok(info) => info.limits.clone(),
            Err(_) => current.limits.clone(),
        };
        st2.db
            .set_container_holds(row2.id, &Totals::of(&limits))
            .await?;
        let info = result?;
        kv.commit(&st2.db).await?;
        Ok(Done {
            message: format!("container {} resized", row2.name),
            result: as_json(&view(&row2, Some(&info))),
        })
    };
    st.operations
        .spawn(
            caller,
            "container.resize",
            &target(&row),
            Some(row.id),
            work,
        )
        .await
}

/// Reinstalls a container in the caller's scope: a fresh writable layer, same limits
/// (checked against the plan and pool again, like any other path).
pub async fn reinstall(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    template: Option<String>,
) -> AppResult<OperationRow> {
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
    st.db
        .reserve_holds(
            row.id,
            owner.id,
            owner.reseller_id.unwrap_or(-1),
            &holds,
            fits(&plan, &holds, procs),
        )
        .await?;
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        final_sample(&st2, &row2.engine_name).await;
        let engine_name = row2.engine_name.clone();
        let result = st2
            .change(&row2.engine_name, move |e| {
                e.reinstall(
                    &engine_name,
                    template.as_deref(),
                    acetate_engine::DEFAULT_STOP_TIMEOUT,
                )
            })
            .await;
        st2.db
            .audit(
                Some(&caller2),
                "container.reinstall",
                &target(&row2),
                &outcome_text(&result),
            )
            .await?;
        let info = result?;
        Ok(Done {
            message: format!("container {} reinstalled", row2.name),
            result: as_json(&view(&row2, Some(&info))),
        })
    };
    st.operations
        .spawn(
            caller,
            "container.reinstall",
            &target(&row),
            Some(row.id),
            work,
        )
        .await
}

/// What `act` does to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Action::Start => "started",
            Action::Stop => "stopped",
            Action::Restart => "restarted",
        }
    }
}

/// Starts, stops or restarts a container in the caller's scope. A suspended owner's
/// containers may be stopped, not started.
pub async fn act(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    action: Action,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    if action != Action::Stop {
        active_owner_of(st, &row).await?;
    }
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        if action != Action::Start {
            final_sample(&st2, &row2.engine_name).await;
        }
        let engine_name = row2.engine_name.clone();
        let timeout = acetate_engine::DEFAULT_STOP_TIMEOUT;
        let result = st2
            .change(&row2.engine_name, move |e| match action {
                Action::Start => e.start(&engine_name),
                Action::Stop => e.stop(&engine_name, timeout),
                Action::Restart => e.restart(&engine_name, timeout),
            })
            .await;
        st2.db
            .audit(
                Some(&caller2),
                &format!("container.{}", action.as_str()),
                &target(&row2),
                &outcome_text(&result),
            )
            .await?;
        let info = result?;
        Ok(Done {
            message: format!("container {} {}", row2.name, action.done()),
            result: as_json(&view(&row2, Some(&info))),
        })
    };
    let kind = format!("container.{}", action.as_str());
    st.operations
        .spawn(caller, &kind, &target(&row), Some(row.id), work)
        .await
}

/// Destroys a container in the caller's scope, if the owner's reseller's hooks allow.
pub async fn destroy(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = owner_of(st, &row).await?;
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
    let (_, kv) = run_hooks(
        st,
        &owner,
        acetate_plugins::EventKind::Destroy,
        Some(current),
        None,
    )
    .await?;
    st.db.set_container_state(row.id, "destroying").await?;
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        let result = finish_destroy(&st2, &row2).await;
        st2.db
            .audit(
                Some(&caller2),
                "container.destroy",
                &target(&row2),
                &outcome_text(&result),
            )
            .await?;
        result?;
        kv.commit(&st2.db).await?;
        Ok(Done {
            message: format!("container {} destroyed", row2.name),
            result: None,
        })
    };
    st.operations
        .spawn(
            caller,
            "container.destroy",
            &target(&row),
            Some(row.id),
            work,
        )
        .await
}

/// The engine's part of a destroy (also finishing one a panel restart interrupted): the
/// row goes once the container is gone; if the engine fails, the container stays usable.
async fn finish_destroy(st: &AppState, row: &ContainerRow) -> AppResult<()> {
    // On a full disk the reserve makes room for the database writes of a destroy.
    let _ = st.engine(|e| e.relieve_disk()).await;
    final_sample(st, &row.engine_name).await;
    let engine_name = row.engine_name.clone();
    let result = st
        .change(&row.engine_name, move |e| {
            e.destroy(&engine_name, acetate_engine::DEFAULT_STOP_TIMEOUT)
        })
        .await;
    match result {
        Ok(()) => st.db.delete_container(row.id).await,
        Err(e) => {
            st.db.set_container_state(row.id, "ready").await?;
            Err(e)
        }
    }
}

/// Runs a command in a container of the caller's scope, within the caller's share of
/// concurrent commands, its timeout and the output bound.
pub async fn exec(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    command: Vec<String>,
    timeout_seconds: Option<u64>,
) -> AppResult<CommandOutcome> {
    if command.is_empty() {
        return Err(AppError::Unprocessable(
            "command: give at least the program to run".into(),
        ));
    }
    let timeout = st.exec.timeout(timeout_seconds)?;
    let row = resolve(st, caller, name, owner).await?;
    let _permit = st.exec.admit(caller.id)?;
    let max_output = st.exec.limits().max_output;
    let done = st
        .runtime
        .run_command(&row.engine_name, command, timeout, max_output)
        .await?;
    let mut result = format!("exit {}", done.exit_code);
    if done.timed_out {
        result.push_str(", timed out");
    }
    if done.truncated {
        result.push_str(", output cut");
    }
    st.db
        .audit(Some(caller), "container.exec", &target(&row), &result)
        .await?;
    Ok(done)
}

/// At start: the operations of panel processes that are gone are finished or failed,
/// then container rows a crash left half-way (with no operation running on them) are
/// finished off. An interrupted create is undone (nothing half-made stays), an interrupted
/// destroy is completed, anything else is failed with the container's state now.
pub async fn recover_operations(st: &AppState) -> AppResult<()> {
    use super::operations::{Runner, STALE_AFTER};
    let now = crate::domain::now();
    let here = super::operations::host_id();
    for op in st.db.running_operations().await? {
        if op.runner == st.operations.runner() {
            continue;
        }
        let runner = Runner::parse(&op.runner);
        let local = runner.as_ref().is_some_and(|r| r.host == here);
        let orphan = match &runner {
            Some(r) if local => !r.is_alive_here(),
            _ => op.updated_at < now - STALE_AFTER,
        };
        if !orphan {
            continue;
        }
        let row = match op.container_id {
            Some(id) => st.db.container_by_id(id).await?,
            None => None,
        };
        let (ok, message) = match (op.kind.as_str(), row) {
            ("container.create", Some(row)) if local => {
                let engine_name = row.engine_name.clone();
                st.engine(move |e| e.destroy(&engine_name, acetate_engine::DEFAULT_STOP_TIMEOUT))
                    .await?;
                st.db.delete_container(row.id).await?;
                (
                    false,
                    "interrupted: the panel stopped while creating the container; nothing was kept"
                        .to_string(),
                )
            }
            ("container.destroy", Some(row)) if local => match finish_destroy(st, &row).await {
                Ok(()) => (
                    true,
                    format!(
                        "container {} destroyed (finished after a panel restart)",
                        row.name
                    ),
                ),
                Err(e) => (false, format!("interrupted by a panel restart, then: {e}")),
            },
            (_, Some(row)) => {
                let state = st
                    .snapshot
                    .get(&row.engine_name)
                    .map_or("unknown".to_string(), |i| i.state.to_string());
                (false, format!("interrupted: the panel stopped before this finished; the container is {state} now"))
            }
            (_, None) => (
                false,
                "interrupted: the panel stopped before this finished".to_string(),
            ),
        };
        let code = (!ok).then_some("interrupted");
        st.db
            .finish_operation(op.id, ok, &message, code, None)
            .await?;
        st.db
            .audit(None, &op.kind, &op.target, &format!("recovered: {message}"))
            .await?;
        tracing::warn!(id = op.id, kind = %op.kind, target = %op.target, %message, "operation recovered");
    }
    for row in st.db.unfinished_containers().await? {
        if st.db.container_busy(row.id).await? {
            continue;
        }
        let name = row.engine_name.clone();
        let result = st
            .engine(move |e| e.destroy(&name, std::time::Duration::from_secs(10)))
            .await;
        match result {
            Ok(()) => {
                st.db.delete_container(row.id).await?;
                st.db
                    .audit(None, "container.reconcile", &target(&row), "removed")
                    .await?;
            }
            Err(e) => {
                tracing::error!(container = %row.engine_name, error = %e, "reconcile failed")
            }
        }
    }
    Ok(())
}
