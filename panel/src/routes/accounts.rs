//! Resellers' pools (set by the provider), plans and customers (managed by resellers),
//! and suspension. Like containers, accounts outside the caller's scope answer 404.

use acetate_engine::size::parse_cpus;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::containers::{ApiJson, Size};
use super::Caller;
use crate::app::AppState;
use crate::auth::{self, Secret};
use crate::db::{Plan, Pool, Role, Totals, User};
use crate::error::{AppError, AppResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/resellers",
            get(list_resellers).post(create_reseller),
        )
        .route("/api/v1/resellers/{name}/pool", put(set_pool))
        .route("/api/v1/plans", get(list_plans).post(create_plan))
        .route(
            "/api/v1/customers",
            get(list_customers).post(create_customer),
        )
        .route("/api/v1/customers/{name}/suspend", post(suspend))
        .route("/api/v1/customers/{name}/unsuspend", post(unsuspend))
}

fn require(caller: &User, role: Role) -> AppResult<()> {
    if caller.role() != role {
        return Err(AppError::Forbidden(format!(
            "only a {} account can do this",
            role.as_str()
        )));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub(crate) struct ResellerView {
    pub(crate) name: String,
    pub(crate) pool: Option<Pool>,
    pub(crate) used: Totals,
    pub(crate) customers: usize,
}

async fn list_resellers(
    AxState(st): AxState<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<ResellerView>>> {
    resellers_for(&st, &caller.0).await.map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResellerRequest {
    pub(crate) name: String,
    pub(crate) password: String,
}

async fn create_reseller(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ResellerRequest>,
) -> AppResult<(StatusCode, Json<serde_json::Value>)> {
    create_reseller_for(&st, &caller.0, req).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "ok": true }))))
}

/// Creates a reseller account, without a pool yet (provider; API and pages).
pub(crate) async fn create_reseller_for(
    st: &AppState,
    caller: &User,
    req: ResellerRequest,
) -> AppResult<()> {
    require(caller, Role::Provider)?;
    crate::cli::valid_user_name(&req.name).map_err(|e| AppError::Unprocessable(e.to_string()))?;
    auth::check_password_strength(&req.password)?;
    let pw = Secret(req.password);
    let hash = auth::hash_bounded(pw).await?;
    st.db
        .create_user(&req.name, Role::Reseller, None, &hash)
        .await?;
    st.db
        .audit(Some(caller), "reseller.create", &req.name, "ok")
        .await?;
    Ok(())
}

/// Resellers with their pools and use (provider; API and pages).
pub(crate) async fn resellers_for(st: &AppState, caller: &User) -> AppResult<Vec<ResellerView>> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolRequest {
    pub(crate) memory: Size,
    pub(crate) cpus: serde_json::Value,
    pub(crate) disk: Size,
    pub(crate) containers: i64,
}

fn cpus(v: &serde_json::Value, what: &str) -> AppResult<i64> {
    let text = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => {
            return Err(AppError::Unprocessable(format!(
                "{what}: give a number such as 4"
            )))
        }
    };
    parse_cpus(&text)
        .map(i64::from)
        .map_err(|e| AppError::Unprocessable(format!("{what}: {e}")))
}

fn bytes(s: &Size, what: &str) -> AppResult<i64> {
    let b = s.bytes(what)?;
    i64::try_from(b).map_err(|_| AppError::Unprocessable(format!("{what} is too large")))
}

async fn set_pool(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PoolRequest>,
) -> AppResult<Json<Pool>> {
    set_pool_for(&st, &caller.0, &name, req).await.map(Json)
}

/// Sets a reseller's pool (provider; API and pages).
pub(crate) async fn set_pool_for(
    st: &AppState,
    caller: &User,
    name: &str,
    req: PoolRequest,
) -> AppResult<Pool> {
    require(caller, Role::Provider)?;
    let reseller = st
        .db
        .user_by_name(name)
        .await?
        .filter(|u| u.role() == Role::Reseller)
        .ok_or(AppError::NotFound)?;
    if req.containers < 0 {
        return Err(AppError::Unprocessable(
            "containers cannot be negative".into(),
        ));
    }
    let pool = Pool {
        reseller_id: reseller.id,
        memory: bytes(&req.memory, "memory")?,
        cpus_milli: cpus(&req.cpus, "cpus")?,
        disk: bytes(&req.disk, "disk")?,
        containers: req.containers,
    };
    st.db.set_pool(&pool).await?;
    st.db
        .audit(Some(caller), "reseller.pool", name, "ok")
        .await?;
    Ok(pool)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanRequest {
    pub(crate) name: String,
    /// Limits of each container.
    pub(crate) container: PlanLimits,
    /// Limits of all of a customer's containers together.
    pub(crate) customer: CustomerLimits,
    /// Monthly price in minor units (cents) of `currency`.
    pub(crate) price_minor: i64,
    pub(crate) currency: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanLimits {
    pub(crate) memory: Size,
    pub(crate) cpus: serde_json::Value,
    pub(crate) disk: Size,
    pub(crate) procs: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomerLimits {
    pub(crate) containers: i64,
    pub(crate) memory: Size,
    pub(crate) cpus: serde_json::Value,
    pub(crate) disk: Size,
}

async fn list_plans(AxState(st): AxState<AppState>, caller: Caller) -> AppResult<Json<Vec<Plan>>> {
    require(&caller.0, Role::Reseller)?;
    Ok(Json(st.db.plans_of(caller.0.id).await?))
}

async fn create_plan(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<PlanRequest>,
) -> AppResult<(StatusCode, Json<Plan>)> {
    let plan = create_plan_for(&st, &caller.0, req).await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

/// Creates a plan (reseller; API and pages).
pub(crate) async fn create_plan_for(
    st: &AppState,
    caller: &User,
    req: PlanRequest,
) -> AppResult<Plan> {
    require(caller, Role::Reseller)?;
    if req.name.is_empty() || req.name.len() > 64 {
        return Err(AppError::Unprocessable(
            "plan names have 1 to 64 characters".into(),
        ));
    }
    if req.currency.len() != 3 || !req.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AppError::Unprocessable(
            "currency: a three-letter ISO 4217 code such as EUR".into(),
        ));
    }
    if req.price_minor < 0 || req.container.procs < 1 || req.customer.containers < 0 {
        return Err(AppError::Unprocessable(
            "price, processes and containers cannot be negative".into(),
        ));
    }
    let mut plan = Plan {
        id: 0,
        reseller_id: caller.id,
        name: req.name.clone(),
        ct_memory: bytes(&req.container.memory, "container memory")?,
        ct_cpus_milli: cpus(&req.container.cpus, "container cpus")?,
        ct_disk: bytes(&req.container.disk, "container disk")?,
        ct_procs: req.container.procs,
        max_containers: req.customer.containers,
        total_memory: bytes(&req.customer.memory, "customer memory")?,
        total_cpus_milli: cpus(&req.customer.cpus, "customer cpus")?,
        total_disk: bytes(&req.customer.disk, "customer disk")?,
        price_minor: req.price_minor,
        currency: req.currency.clone(),
        created_at: crate::db::now(),
    };
    plan.id = st.db.create_plan(&plan).await?;
    st.db
        .audit(Some(caller), "plan.create", &plan.name, "ok")
        .await?;
    Ok(plan)
}

#[derive(Debug, Serialize)]
pub(crate) struct CustomerView {
    pub(crate) name: String,
    pub(crate) plan: Option<String>,
    pub(crate) suspended: bool,
    pub(crate) used: Totals,
}

pub(crate) async fn customer_view(st: &AppState, c: &User) -> AppResult<CustomerView> {
    let plan = match c.plan_id {
        Some(id) => st.db.plan(id).await?.map(|p| p.name),
        None => None,
    };
    Ok(CustomerView {
        name: c.name.clone(),
        plan,
        suspended: c.suspended != 0,
        used: st.db.customer_totals(c.id, -1).await?,
    })
}

async fn list_customers(
    AxState(st): AxState<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<CustomerView>>> {
    require(&caller.0, Role::Reseller)?;
    let mut out = Vec::new();
    for c in st.db.customers_of(caller.0.id).await? {
        out.push(customer_view(&st, &c).await?);
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomerRequest {
    pub(crate) name: String,
    pub(crate) password: String,
    pub(crate) plan: String,
}

async fn create_customer(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CustomerRequest>,
) -> AppResult<(StatusCode, Json<CustomerView>)> {
    let view = create_customer_for(&st, &caller.0, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Creates a customer on one of the reseller's plans (API and pages).
pub(crate) async fn create_customer_for(
    st: &AppState,
    caller: &User,
    req: CustomerRequest,
) -> AppResult<CustomerView> {
    require(caller, Role::Reseller)?;
    crate::cli::valid_user_name(&req.name).map_err(|e| AppError::Unprocessable(e.to_string()))?;
    auth::check_password_strength(&req.password)?;
    let plan = st
        .db
        .plan_by_name(caller.id, &req.plan)
        .await?
        .ok_or_else(|| AppError::Unprocessable(format!("you have no plan named {:?}", req.plan)))?;
    let pw = Secret(req.password);
    let hash = auth::hash_bounded(pw).await?;
    let id = st
        .db
        .create_user(&req.name, Role::Customer, Some(caller.id), &hash)
        .await?;
    st.db.set_user_plan(id, plan.id).await?;
    st.db
        .audit(Some(caller), "customer.create", &req.name, "ok")
        .await?;
    let user = st
        .db
        .user_by_name(&req.name)
        .await?
        .ok_or(AppError::NotFound)?;
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
    match caller.role() {
        Role::Provider => Ok(user),
        Role::Reseller if user.reseller_id == Some(caller.id) => Ok(user),
        _ => Err(AppError::NotFound),
    }
}

/// Suspends a customer: its containers stop and cannot start until unsuspended.
async fn suspend(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> AppResult<Json<CustomerView>> {
    set_suspension(&st, &caller.0, &name, true).await.map(Json)
}

async fn unsuspend(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> AppResult<Json<CustomerView>> {
    set_suspension(&st, &caller.0, &name, false).await.map(Json)
}

/// Suspends (stopping its containers) or reinstates a customer the caller manages (API
/// and web pages).
pub(crate) async fn set_suspension(
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
    super::containers::hooks(st, &user, kind, None, None)
        .await?
        .refused()?;
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
    let action = if suspended {
        "customer.suspend"
    } else {
        "customer.unsuspend"
    };
    st.db.audit(Some(caller), action, name, "ok").await?;
    let user = st.db.user_by_name(name).await?.ok_or(AppError::NotFound)?;
    customer_view(st, &user).await
}
