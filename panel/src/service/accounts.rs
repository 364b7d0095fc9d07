//! Accounts: resellers and their pools (the provider's), plans and customers (a
//! reseller's), suspension. Accounts outside the caller's scope are not found.

use serde::Serialize;

use super::auth::{self, Secret};
use super::{require, AppState};
use crate::domain::{Plan, Pool, Role, Totals, User, UserName};
use crate::error::{AppError, AppResult};

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
) -> AppResult<PoolAnswer> {
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
    let others = st.db.pools_total(reseller.id).await?;
    let host = super::host::capacity(st).await;
    let warnings = crate::domain::quota::pool_warnings(&pool, &others, &host);
    st.db.set_pool(&pool).await?;
    st.db
        .audit(Some(caller), "reseller.pool", name, "ok")
        .await?;
    Ok(PoolAnswer { pool, warnings })
}

/// A pool as set, with warnings when it (or all pools together) is above what the host
/// has.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolAnswer {
    #[serde(flatten)]
    pub pool: Pool,
    pub warnings: Vec<String>,
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
pub(super) async fn managed_customer(st: &AppState, caller: &User, name: &str) -> AppResult<User> {
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
        st.shells.end_for_account(user.id);
        let names: Vec<String> = st
            .db
            .containers_visible_to(&user)
            .await?
            .into_iter()
            .map(|c| c.engine_name)
            .collect();
        for n in &names {
            super::containers::final_sample(st, n).await;
        }
        let stopping = names.clone();
        let stopped = st
            .engine(move |e| {
                for n in &stopping {
                    match e.stop(n, acetate_engine::DEFAULT_STOP_TIMEOUT) {
                        Ok(_)
                        | Err(acetate_engine::Error::NotRunning(_))
                        | Err(acetate_engine::Error::NoSuchContainer(_)) => {}
                        Err(err) => return Err(err),
                    }
                }
                Ok(())
            })
            .await;
        st.changed(names).await?;
        stopped?;
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
    st.db.require_password_change(user.id).await?;
    st.db.unlock_account(&user.name).await?;
    st.db
        .audit(Some(caller), "user.password_reset", &user.name, "ok")
        .await?;
    Ok(password)
}

/// Removes the second factor of an account the caller manages (its holder lost the phone
/// and the recovery codes), ending its sessions.
pub async fn reset_second_factor(st: &AppState, caller: &User, name: &str) -> AppResult<()> {
    let user = managed_account(st, caller, name).await?;
    super::totp::reset(st, caller, &user).await?;
    st.db.delete_sessions_of(user.id).await?;
    Ok(())
}
