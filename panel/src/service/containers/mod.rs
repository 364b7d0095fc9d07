//! Customers' containers: who sees which (anything out of scope is "not found", exactly
//! like a name that does not exist), creating within plan and pool, the reseller's hooks
//! on every change, and the long actions as operations.
//!
//! Each action checks everything it can at once (scope, suspension, plan and pool, the
//! hooks' verdict) and answers the caller's mistakes straight away; only the engine's work
//! runs in the operation it returns.

use acetate_engine::{ContainerInfo, Limits, Usage};
use serde::Serialize;

use super::hooks::{self, PendingKv, Verdict};
use super::AppState;
use crate::db::ContainerRow;
use crate::domain::{quota, Plan, Role, Totals, User};
use crate::error::{AppError, AppResult};

mod change;
pub mod copies;
mod create;
mod recovery;

pub use change::{act, destroy, destroy_all_of, exec, reinstall, resize, Action, Resize};
pub use create::{create, NewContainer};
pub use recovery::{reconcile_vanished, recover_operations, settle_inside_halts, HaltWatch};

/// A container as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContainerView {
    pub name: String,
    /// Owner's account name; `null` for containers made outside the panel (CLI).
    pub owner: Option<String>,
    /// `running`, `stopped`, or `creating`/`destroying` while the panel works on it.
    pub state: String,
    pub template: Option<String>,
    /// What runs as its PID 1: `systemd` or `sysvinit` (its template's) or `minimal`
    /// (Acetate's own); while stopped, what it will boot.
    #[schema(value_type = Option<String>)]
    pub init: Option<acetate_engine::spec::Init>,
    /// Memory, swap, CPUs (thousandths), processes, disk and inodes, I/O weight and caps,
    /// network rate.
    #[schema(value_type = Option<Object>)]
    pub limits: Option<Limits>,
    /// Its address on the host bridge.
    #[schema(value_type = Option<Object>)]
    pub network: Option<acetate_engine::network::NetInfo>,
    /// CPU time, memory, processes (while running), disk blocks and inodes, network bytes.
    #[schema(value_type = Option<Object>)]
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
        init: info.map(|i| i.init),
        limits: info.map(|i| i.limits.clone()),
        network: info.and_then(|i| i.network.clone()),
        usage: info.map(|i| i.usage),
        created_at: row.created_at,
    }
}

/// Reads again the few of `rows` that a panel (another, or this one) made or changed since
/// the snapshot read them.
async fn freshen(st: &AppState, rows: &[ContainerRow]) -> AppResult<()> {
    let stale: Vec<String> = rows
        .iter()
        .filter(|r| r.state == "ready" && !st.snapshot.read_after(&r.engine_name, r.changed_at))
        .map(|r| r.engine_name.clone())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    st.refresh(stale).await
}

/// Container `row` as the snapshot shows it (read again if a panel changed it since).
pub async fn snapshot_view(st: &AppState, row: &ContainerRow) -> AppResult<ContainerView> {
    freshen(st, std::slice::from_ref(row)).await?;
    Ok(view(row, st.snapshot.get(&row.engine_name).as_deref()))
}

/// The containers `caller` may see, from the snapshot (engine reads only for those changed
/// since it was read).
pub async fn list(st: &AppState, caller: &User) -> AppResult<Vec<ContainerView>> {
    let rows = st.db.containers_visible_to(caller).await?;
    freshen(st, &rows).await?;
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
                    init: Some(i.init),
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
pub(super) fn amended_limits(limits: &Limits, a: &acetate_plugins::Limits) -> AppResult<Limits> {
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
pub(crate) async fn run_hooks(
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

pub(crate) async fn customer_plan(st: &AppState, customer: &User) -> AppResult<Plan> {
    let plan = match customer.plan_id {
        Some(id) => st.db.plan(id).await?,
        None => None,
    };
    plan.ok_or_else(|| AppError::Forbidden("you have no plan yet: ask your reseller".into()))
}

/// The plan-and-pool check for a container holding `holds` with `procs` processes.
pub(super) fn fits<'a>(
    plan: &'a Plan,
    holds: &'a Totals,
    procs: u64,
) -> impl FnOnce(Option<&crate::domain::Pool>, &Totals, &Totals) -> Result<(), String> + 'a {
    move |pool, mine, theirs| quota::check(plan, pool, mine, theirs, holds, procs as i64)
}

/// Holds the larger of a container's current and `next` limits against its owner's plan
/// and the reseller's pool, while the engine changes it (set the final holds after).
pub(super) async fn reserve_limits(
    st: &AppState,
    row: &ContainerRow,
    owner: &User,
    plan: &Plan,
    next: &Limits,
) -> AppResult<()> {
    let holds = Totals::of(next);
    st.db
        .reserve_holds(
            row.id,
            owner.id,
            owner.reseller_id.unwrap_or(-1),
            &holds,
            fits(plan, &holds, next.procs),
        )
        .await
}

/// The account owning a container.
pub(super) async fn owner_of(st: &AppState, row: &ContainerRow) -> AppResult<User> {
    st.db
        .user_by_id(row.owner_id)
        .await?
        .ok_or(AppError::NotFound)
}

/// The account owning a container, refused if it is suspended.
pub(super) async fn active_owner_of(st: &AppState, row: &ContainerRow) -> AppResult<User> {
    let owner = owner_of(st, row).await?;
    if owner.is_suspended() {
        return Err(AppError::Forbidden(
            "the account owning this container is suspended".into(),
        ));
    }
    Ok(owner)
}

pub(super) fn target(row: &ContainerRow) -> String {
    format!("{}/{}", row.owner, row.name)
}

pub(super) fn outcome_text<T>(result: &AppResult<T>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("failed: {e}"),
    }
}

pub(super) fn as_json(view: &ContainerView) -> Option<serde_json::Value> {
    serde_json::to_value(view).ok()
}
