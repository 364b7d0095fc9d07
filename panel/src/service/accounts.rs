//! Accounts: resellers and their pools (the provider's), plans and customers (a
//! reseller's), suspension. Accounts outside the caller's scope are not found.

use serde::Serialize;

use super::auth::{self, Secret};
use super::AppState;
use crate::domain::{Currency, Plan, Pool, Role, Totals, User, UserName};
use crate::error::{AppError, AppResult};

fn require(caller: &User, role: Role) -> AppResult<()> {
    if caller.role() != role {
        return Err(AppError::Forbidden(format!(
            "only a {} account can do this",
            role.as_str()
        )));
    }
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResellerView {
    pub name: String,
    pub pool: Option<Pool>,
    pub used: Totals,
    pub customers: usize,
}

/// Creates a reseller account, without a pool yet (provider).
pub async fn create_reseller(
    st: &AppState,
    caller: &User,
    name: &UserName,
    password: Secret,
) -> AppResult<()> {
    require(caller, Role::Provider)?;
    auth::check_password_strength(&password.0)?;
    let hash = auth::hash_bounded(password).await?;
    st.db
        .create_user(name.as_str(), Role::Reseller, None, &hash)
        .await?;
    st.db
        .audit(Some(caller), "reseller.create", name.as_str(), "ok")
        .await?;
    Ok(())
}

/// Resellers with their pools and use (provider).
pub async fn resellers(st: &AppState, caller: &User) -> AppResult<Vec<ResellerView>> {
    require(caller, Role::Provider)?;
    let mut out = Vec::new();
    for r in st.db.users_with_role(Role::Reseller).await? {
        out.push(ResellerView {
            pool: st.db.pool(r.id).await?,
            used: st.db.reseller_totals(r.id, -1).await?,
            customers: st.db.customers_of(r.id).await?.len(),
            name: r.name,
        });
    }
    Ok(out)
}

/// What the provider gives a reseller.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    pub memory: i64,
    pub cpus_milli: i64,
    pub disk: i64,
    pub containers: i64,
}

/// Sets a reseller's pool (provider).
pub async fn set_pool(
    st: &AppState,
    caller: &User,
    name: &str,
    limits: PoolLimits,
) -> AppResult<Pool> {
    require(caller, Role::Provider)?;
    let reseller = st
        .db
        .user_by_name(name)
        .await?
        .filter(|u| u.role() == Role::Reseller)
        .ok_or(AppError::NotFound)?;
    let pool = Pool {
        reseller_id: reseller.id,
        memory: limits.memory,
        cpus_milli: limits.cpus_milli,
        disk: limits.disk,
        containers: limits.containers,
    };
    let used = st.db.reseller_totals(reseller.id, -1).await?;
    crate::domain::quota::check_pool(&pool, &used).map_err(AppError::Unprocessable)?;
    st.db.set_pool(&pool).await?;
    st.db
        .audit(Some(caller), "reseller.pool", name, "ok")
        .await?;
    Ok(pool)
}

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
    let mut plan = Plan {
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
    };
    plan.check().map_err(AppError::Unprocessable)?;
    plan.id = st.db.create_plan(&plan).await?;
    st.db
        .audit(Some(caller), "plan.create", &plan.name, "ok")
        .await?;
    Ok(plan)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub name: String,
    pub plan: Option<String>,
    pub suspended: bool,
    pub used: Totals,
}

pub async fn customer_view(st: &AppState, c: &User) -> AppResult<CustomerView> {
    let plan = match c.plan_id {
        Some(id) => st.db.plan(id).await?.map(|p| p.name),
        None => None,
    };
    Ok(CustomerView {
        name: c.name.clone(),
        plan,
        suspended: c.is_suspended(),
        used: st.db.customer_totals(c.id, -1).await?,
    })
}

/// The reseller's customers.
pub async fn customers(st: &AppState, caller: &User) -> AppResult<Vec<CustomerView>> {
    require(caller, Role::Reseller)?;
    let mut out = Vec::new();
    for c in st.db.customers_of(caller.id).await? {
        out.push(customer_view(st, &c).await?);
    }
    Ok(out)
}

/// Creates a customer on one of the reseller's plans.
pub async fn create_customer(
    st: &AppState,
    caller: &User,
    name: &UserName,
    password: Secret,
    plan: &str,
) -> AppResult<CustomerView> {
    require(caller, Role::Reseller)?;
    auth::check_password_strength(&password.0)?;
    let plan = st
        .db
        .plan_by_name(caller.id, plan)
        .await?
        .ok_or_else(|| AppError::Unprocessable(format!("you have no plan named {plan:?}")))?;
    let hash = auth::hash_bounded(password).await?;
    let id = st
        .db
        .create_user(name.as_str(), Role::Customer, Some(caller.id), &hash)
        .await?;
    st.db.set_user_plan(id, plan.id).await?;
    st.db
        .audit(Some(caller), "customer.create", name.as_str(), "ok")
        .await?;
    let user = st.db.user_by_id(id).await?.ok_or(AppError::NotFound)?;
    customer_view(st, &user).await
}

/// A customer the caller manages: its reseller's, or any for the provider.
async fn managed_customer(st: &AppState, caller: &User, name: &str) -> AppResult<User> {
    let user = st
        .db
        .user_by_name(name)
        .await?
        .filter(|u| u.role() == Role::Customer)
        .ok_or(AppError::NotFound)?;
    if caller.role() == Role::Customer || !caller.has_in_scope(&user) {
        return Err(AppError::NotFound);
    }
    Ok(user)
}

/// Suspends (stopping its containers) or reinstates a customer the caller manages, as
/// the reseller's hooks allow.
pub async fn set_suspension(
    st: &AppState,
    caller: &User,
    name: &str,
    suspended: bool,
) -> AppResult<CustomerView> {
    let user = managed_customer(st, caller, name).await?;
    let kind = if suspended {
        acetate_plugins::EventKind::Suspend
    } else {
        acetate_plugins::EventKind::Unsuspend
    };
    let (_, kv) = super::containers::run_hooks(st, &user, kind, None, None).await?;
    st.db.set_suspended(user.id, suspended).await?;
    if suspended {
        let names: Vec<String> = st
            .db
            .containers_visible_to(&user)
            .await?
            .into_iter()
            .map(|c| c.engine_name)
            .collect();
        let snap = st.snapshot.clone();
        for n in &names {
            super::containers::final_sample(st, n).await;
        }
        st.engine(move |e| {
            for n in &names {
                let stopped = e.stop(n, acetate_engine::DEFAULT_STOP_TIMEOUT);
                snap.refresh_one(e, n);
                match stopped {
                    Ok(_)
                    | Err(acetate_engine::Error::NotRunning(_))
                    | Err(acetate_engine::Error::NoSuchContainer(_)) => {}
                    Err(err) => return Err(err),
                }
            }
            Ok(())
        })
        .await?;
    }
    kv.commit(&st.db).await?;
    let action = if suspended {
        "customer.suspend"
    } else {
        "customer.unsuspend"
    };
    st.db.audit(Some(caller), action, name, "ok").await?;
    let user = st.db.user_by_id(user.id).await?.ok_or(AppError::NotFound)?;
    customer_view(st, &user).await
}

/// What a reseller's page shows: its pool and use, customers and plans.
#[derive(Debug)]
pub struct ResellerOverview {
    pub used: Totals,
    pub pool: Option<Pool>,
    pub customers: Vec<CustomerView>,
    pub plans: Vec<Plan>,
}

pub async fn reseller_overview(st: &AppState, me: &User) -> AppResult<ResellerOverview> {
    require(me, Role::Reseller)?;
    Ok(ResellerOverview {
        used: st.db.reseller_totals(me.id, -1).await?,
        pool: st.db.pool(me.id).await?,
        customers: customers(st, me).await?,
        plans: st.db.plans_of(me.id).await?,
    })
}

/// Adds an account from the host's command line (the provider's own tool: no caller to
/// check, the audit log says "system").
pub async fn add_user(
    db: &crate::db::Db,
    name: &UserName,
    role: Role,
    reseller: Option<&str>,
    plan: Option<&str>,
    password: Secret,
) -> AppResult<()> {
    auth::check_password_strength(&password.0)?;
    let bad = |m: String| AppError::Unprocessable(m);
    let reseller_id = match (role, reseller) {
        (Role::Customer, Some(r)) => Some(
            db.user_by_name(r)
                .await?
                .filter(|u| u.role() == Role::Reseller)
                .ok_or_else(|| bad(format!("no reseller named {r:?}")))?
                .id,
        ),
        (Role::Customer, None) => return Err(bad("a customer needs --reseller".into())),
        (_, Some(_)) => return Err(bad("only customers belong to a reseller".into())),
        (_, None) => None,
    };
    let plan_id = match (plan, reseller_id) {
        (Some(p), Some(r)) => Some(
            db.plan_by_name(r, p)
                .await?
                .ok_or_else(|| bad(format!("the reseller has no plan named {p:?}")))?
                .id,
        ),
        (Some(_), None) => return Err(bad("only customers have a plan".into())),
        (None, _) => None,
    };
    let hash = auth::hash_bounded(password).await?;
    let id = db
        .create_user(name.as_str(), role, reseller_id, &hash)
        .await?;
    if let Some(plan_id) = plan_id {
        db.set_user_plan(id, plan_id).await?;
    }
    db.audit(
        None,
        "user.create",
        &format!("{name} ({})", role.as_str()),
        "ok",
    )
    .await
}

/// An account the caller manages: the provider manages resellers and customers, a reseller
/// its own customers. Anything else is not found.
async fn managed_account(st: &AppState, caller: &User, name: &str) -> AppResult<User> {
    let user = st.db.user_by_name(name).await?.ok_or(AppError::NotFound)?;
    let below = match caller.role() {
        Role::Provider => user.role() != Role::Provider,
        Role::Reseller => user.reseller_id == Some(caller.id),
        Role::Customer => false,
    };
    if !below {
        return Err(AppError::NotFound);
    }
    Ok(user)
}

/// Lifts the login lock of an account the caller manages.
pub async fn unlock(st: &AppState, caller: &User, name: &str) -> AppResult<()> {
    let user = managed_account(st, caller, name).await?;
    let n = st.db.unlock_account(&user.name).await?;
    st.db
        .audit(
            Some(caller),
            "user.unlock",
            &user.name,
            &format!("{n} counters cleared"),
        )
        .await
}

/// Gives an account the caller manages a new one-time password (shown once), ending its
/// sessions and lifting its login lock.
pub async fn reset_password(st: &AppState, caller: &User, name: &str) -> AppResult<Secret> {
    let user = managed_account(st, caller, name).await?;
    let password = auth::generate_password();
    let hash = auth::hash_bounded(password.clone()).await?;
    st.db.set_password(user.id, &hash, "").await?;
    st.db.unlock_account(&user.name).await?;
    st.db
        .audit(Some(caller), "user.password_reset", &user.name, "ok")
        .await?;
    Ok(password)
}
