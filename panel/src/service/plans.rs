//! Plans: a reseller defines them, changes them (re-checking the customers on them and
//! saying who is over), deletes those nobody uses, and moves customers between them.

use serde::Serialize;

use super::{require, AppState};
use crate::domain::{quota, Currency, Plan, Role, Totals, User};
use crate::error::{AppError, AppResult};

/// A plan as a reseller defines it.
#[derive(Debug, Clone)]
pub struct NewPlan {
    pub name: String,
    pub ct_memory: i64,
    pub ct_cpus_milli: i64,
    pub ct_disk: i64,
    pub ct_procs: i64,
    pub max_containers: i64,
    pub total_memory: i64,
    pub total_cpus_milli: i64,
    pub total_disk: i64,
    /// Monthly price in minor units of `currency`.
    pub price_minor: i64,
    pub currency: Currency,
    /// Disk I/O caps of each container (none where unset).
    pub io: acetate_engine::IoLimits,
    /// Templates the plan offers (empty: every one).
    pub templates: Vec<String>,
    /// Snapshots and backups of each container.
    pub copies: Copies,
    /// Its containers may reach the outside.
    pub egress: bool,
    /// Its containers keep Acetate's minimal init even where the template has its own (systemd, SysV init).
    pub minimal_init: bool,
}

/// What a plan gives each container in snapshots and backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Copies {
    /// Snapshots it may keep (0: none).
    pub max_snapshots: i64,
    /// Hours between scheduled backups (0: only when asked).
    pub backup_every_hours: i64,
    /// Backups kept: the last N, one per day, week and month (0: that rule is off).
    pub keep_last: i64,
    pub keep_daily: i64,
    pub keep_weekly: i64,
    pub keep_monthly: i64,
}

impl Default for Copies {
    fn default() -> Self {
        Copies {
            max_snapshots: 5,
            backup_every_hours: 0,
            keep_last: 7,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
        }
    }
}

/// The reseller's plans.
pub async fn plans(st: &AppState, caller: &User) -> AppResult<Vec<Plan>> {
    require(caller, Role::Reseller)?;
    st.db.plans_of(caller.id).await
}

/// Creates a plan (reseller).
pub async fn create_plan(st: &AppState, caller: &User, p: NewPlan) -> AppResult<Plan> {
    require(caller, Role::Reseller)?;
    let mut plan = checked_plan(st, caller, p).await?;
    plan.id = st.db.create_plan(&plan).await?;
    st.db
        .audit(Some(caller), "plan.create", &plan.name, "ok")
        .await?;
    Ok(plan)
}

/// A plan from what the reseller asked, every field checked (the refusal names it).
async fn checked_plan(st: &AppState, caller: &User, p: NewPlan) -> AppResult<Plan> {
    if p.name.is_empty() || p.name.len() > 64 {
        return Err(AppError::Unprocessable(
            "plan names have 1 to 64 characters".into(),
        ));
    }
    let cap = |v: Option<u64>| match v {
        Some(0) => Err(AppError::Unprocessable(
            "I/O caps are above zero (leave one out for no cap)".into(),
        )),
        Some(v) => {
            i64::try_from(v).map_err(|_| AppError::Unprocessable("an I/O cap is too large".into()))
        }
        None => Ok(0),
    };
    if p.price_minor < 0 || p.ct_procs < 1 || p.max_containers < 0 {
        return Err(AppError::Unprocessable(
            "price, processes and containers cannot be negative".into(),
        ));
    }
    let c = p.copies;
    let copies = [
        ("max_snapshots", c.max_snapshots),
        ("backup_every_hours", c.backup_every_hours),
        ("keep_last", c.keep_last),
        ("keep_daily", c.keep_daily),
        ("keep_weekly", c.keep_weekly),
        ("keep_monthly", c.keep_monthly),
    ];
    if let Some((field, _)) = copies.iter().find(|(_, v)| !(0..=100_000).contains(v)) {
        return Err(AppError::Unprocessable(format!(
            "{field}: give a whole number from 0 to 100000"
        )));
    }
    if c.backup_every_hours > 0 && c.keep_last + c.keep_daily + c.keep_weekly + c.keep_monthly == 0
    {
        return Err(AppError::Unprocessable(
            "keep_last: scheduled backups need a rule saying which to keep".into(),
        ));
    }
    let installed = st.engine(|e| e.installed_templates()).await?;
    for t in &p.templates {
        if !installed.iter().any(|i| &i.name == t) {
            return Err(AppError::Unprocessable(format!(
                "templates: there is no template named {t:?} (the provider installs them)"
            )));
        }
    }
    let plan = Plan {
        id: 0,
        reseller_id: caller.id,
        name: p.name,
        ct_memory: p.ct_memory,
        ct_cpus_milli: p.ct_cpus_milli,
        ct_disk: p.ct_disk,
        ct_procs: p.ct_procs,
        max_containers: p.max_containers,
        total_memory: p.total_memory,
        total_cpus_milli: p.total_cpus_milli,
        total_disk: p.total_disk,
        price_minor: p.price_minor,
        currency: p.currency.code().to_string(),
        created_at: crate::domain::now(),
        ct_io_read_bps: cap(p.io.read_bps)?,
        ct_io_write_bps: cap(p.io.write_bps)?,
        ct_io_read_iops: cap(p.io.read_iops)?,
        ct_io_write_iops: cap(p.io.write_iops)?,
        templates: p.templates.join(","),
        max_snapshots: c.max_snapshots,
        backup_every_hours: c.backup_every_hours,
        backup_keep_last: c.keep_last,
        backup_keep_daily: c.keep_daily,
        backup_keep_weekly: c.keep_weekly,
        backup_keep_monthly: c.keep_monthly,
        egress: i64::from(p.egress),
        minimal_init: i64::from(p.minimal_init),
    };
    plan.check().map_err(AppError::Unprocessable)?;
    Ok(plan)
}

/// One of the caller's plans by name; another reseller's is not found.
async fn own_plan(st: &AppState, caller: &User, name: &str) -> AppResult<Plan> {
    require(caller, Role::Reseller)?;
    st.db
        .plan_by_name(caller.id, name)
        .await?
        .ok_or(AppError::NotFound)
}

/// A customer who holds more than a plan allows, and what.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Over {
    pub customer: String,
    pub reasons: Vec<String>,
}

/// A changed plan, and the customers on it who now hold more than it allows (they keep
/// what they have; new containers and resizes are held to the new limits).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanChange {
    pub plan: Plan,
    pub over: Vec<Over>,
}

/// What `customer` holds beyond `plan`, as sentences naming the limit.
async fn over_plan(st: &AppState, customer: &User, plan: &Plan) -> AppResult<Vec<String>> {
    let rows = st.db.containers_visible_to(customer).await?;
    let largest = rows.iter().fold(Totals::default(), |m, r| Totals {
        containers: 1,
        memory: m.memory.max(r.memory),
        cpus_milli: m.cpus_milli.max(r.cpus_milli),
        disk: m.disk.max(r.disk),
    });
    let held = st.db.customer_totals(customer.id, -1).await?;
    Ok(quota::over_plan(plan, &held, &largest))
}

/// Changes a plan (its name stays). Every customer on it is checked against the new
/// limits; those over are named in the answer and keep what they hold.
pub async fn update_plan(
    st: &AppState,
    caller: &User,
    name: &str,
    p: NewPlan,
) -> AppResult<PlanChange> {
    let old = own_plan(st, caller, name).await?;
    if p.name != old.name {
        return Err(AppError::Unprocessable(format!(
            "name: a plan keeps its name ({:?}); make a new plan and move customers to it",
            old.name
        )));
    }
    let mut plan = checked_plan(st, caller, p).await?;
    plan.id = old.id;
    plan.created_at = old.created_at;
    st.db.update_plan(&plan).await?;
    if plan.egress != old.egress {
        apply_egress(st, &plan).await?;
    }
    if plan.minimal_init != old.minimal_init {
        apply_init(st, &plan).await?;
    }
    let mut over = Vec::new();
    for customer in st.db.customers_on_plan(plan.id).await? {
        let reasons = over_plan(st, &customer, &plan).await?;
        if !reasons.is_empty() {
            over.push(Over {
                customer: customer.name,
                reasons,
            });
        }
    }
    let outcome = if over.is_empty() {
        "ok".to_string()
    } else {
        let names: Vec<&str> = over.iter().map(|o| o.customer.as_str()).collect();
        format!("ok; over the new limits: {}", names.join(", "))
    };
    st.db
        .audit(Some(caller), "plan.update", &plan.name, &outcome)
        .await?;
    Ok(PlanChange { plan, over })
}

/// Gives every container of the plan's customers the plan's egress, live.
async fn apply_egress(st: &AppState, plan: &Plan) -> AppResult<()> {
    for customer in st.db.customers_on_plan(plan.id).await? {
        give_plan(st, &customer, plan, true, false).await?;
    }
    Ok(())
}

/// Gives every container of the plan's customers the plan's init, from its next start.
async fn apply_init(st: &AppState, plan: &Plan) -> AppResult<()> {
    for customer in st.db.customers_on_plan(plan.id).await? {
        give_plan(st, &customer, plan, false, true).await?;
    }
    Ok(())
}

/// Gives `customer`'s containers the plan's egress (live) and init (from their next
/// start). The plan is saved by then: a container that cannot take its init is logged,
/// not a reason to undo the plan; containers being made or destroyed are left alone.
async fn give_plan(
    st: &AppState,
    customer: &User,
    plan: &Plan,
    egress: bool,
    init: bool,
) -> AppResult<()> {
    let (allowed, asked) = (plan.egress != 0, plan_init(plan));
    for row in st.db.containers_visible_to(customer).await? {
        if row.state != "ready" {
            continue;
        }
        if egress {
            let name = row.engine_name.clone();
            st.engine(move |rt| rt.set_egress(&name, allowed)).await?;
        }
        if init {
            let name = row.engine_name.clone();
            if let Err(e) = st.engine(move |rt| rt.set_init(&name, asked)).await {
                tracing::warn!(container = %row.engine_name, error = %e, "plan's init not applied");
            }
        }
    }
    Ok(())
}

/// The init a plan's containers ask for: the minimal one, or their template's own.
pub fn plan_init(plan: &Plan) -> Option<acetate_engine::spec::Init> {
    (plan.minimal_init != 0).then_some(acetate_engine::spec::Init::Minimal)
}

/// Deletes a plan no customer is on.
pub async fn delete_plan(st: &AppState, caller: &User, name: &str) -> AppResult<()> {
    let plan = own_plan(st, caller, name).await?;
    let users = st.db.customers_on_plan(plan.id).await?;
    if !users.is_empty() {
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        return Err(AppError::Conflict(format!(
            "plan {:?} is used by {} customer(s) ({}): move them to another plan first",
            plan.name,
            users.len(),
            names.join(", ")
        )));
    }
    st.db.delete_plan(plan.id).await?;
    st.db
        .audit(Some(caller), "plan.delete", &plan.name, "ok")
        .await
}

/// Moves one of the caller's customers to another of its plans, if what the customer
/// holds fits it (the refusal names what does not).
pub async fn move_customer(
    st: &AppState,
    caller: &User,
    customer: &str,
    plan: &str,
) -> AppResult<super::accounts::CustomerView> {
    require(caller, Role::Reseller)?;
    let user = st
        .db
        .user_by_name(customer)
        .await?
        .filter(|u| u.role() == Role::Customer && u.reseller_id == Some(caller.id))
        .ok_or(AppError::NotFound)?;
    let target =
        st.db.plan_by_name(caller.id, plan).await?.ok_or_else(|| {
            AppError::Unprocessable(format!("plan: you have no plan named {plan:?}"))
        })?;
    let reasons = over_plan(st, &user, &target).await?;
    if !reasons.is_empty() {
        return Err(AppError::Quota(format!(
            "{} holds more than plan {:?} allows: {}",
            user.name,
            target.name,
            reasons.join("; ")
        )));
    }
    st.db.set_user_plan(user.id, target.id).await?;
    give_plan(st, &user, &target, true, true).await?;
    st.db
        .audit(
            Some(caller),
            "customer.plan",
            &user.name,
            &format!("ok: {}", target.name),
        )
        .await?;
    let user = st.db.user_by_id(user.id).await?.ok_or(AppError::NotFound)?;
    super::accounts::customer_view(st, &user).await
}
