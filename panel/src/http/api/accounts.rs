//! Resellers' pools (set by the provider), plans and customers (managed by resellers),
//! and suspension. Like containers, accounts outside the caller's scope answer 404.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::domain::size::{Cpus, Size};
use crate::domain::{Currency, Plan, Pool, UserName};
use crate::error::AppResult;
use crate::http::error::ApiResult;
use crate::http::extract::{ApiJson, Caller, Provider, Reseller};
use crate::service::accounts::{self, CustomerView, NewPlan, PoolLimits, ResellerView};
use crate::service::auth::Secret;
use crate::service::AppState;

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

async fn list_resellers(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
) -> ApiResult<Json<Vec<ResellerView>>> {
    Ok(Json(accounts::resellers(&st, &me).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResellerRequest {
    name: String,
    password: String,
}

async fn create_reseller(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
    ApiJson(req): ApiJson<ResellerRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let name = UserName::parse(&req.name)?;
    accounts::create_reseller(&st, &me, &name, Secret(req.password)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "ok": true }))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRequest {
    pub memory: Size,
    pub cpus: Cpus,
    pub disk: Size,
    pub containers: i64,
}

impl PoolRequest {
    pub fn parse(&self) -> AppResult<PoolLimits> {
        Ok(PoolLimits {
            memory: self.memory.bytes_i64("memory")?,
            cpus_milli: i64::from(self.cpus.milli("cpus")?),
            disk: self.disk.bytes_i64("disk")?,
            containers: self.containers,
        })
    }
}

async fn set_pool(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PoolRequest>,
) -> ApiResult<Json<Pool>> {
    Ok(Json(
        accounts::set_pool(&st, &me, &name, req.parse()?).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanRequest {
    name: String,
    /// Limits of each container.
    container: PlanLimits,
    /// Limits of all of a customer's containers together.
    customer: CustomerLimits,
    /// Monthly price in minor units of `currency` (cents of EUR, yen of JPY, fils of KWD).
    price_minor: i64,
    /// An ISO 4217 code such as EUR.
    currency: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanLimits {
    memory: Size,
    cpus: Cpus,
    disk: Size,
    procs: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerLimits {
    containers: i64,
    memory: Size,
    cpus: Cpus,
    disk: Size,
}

impl PlanRequest {
    fn parse(self) -> AppResult<NewPlan> {
        let cpus = |c: &Cpus, what: &str| c.milli(what).map(i64::from);
        Ok(NewPlan {
            ct_memory: self.container.memory.bytes_i64("container memory")?,
            ct_cpus_milli: cpus(&self.container.cpus, "container cpus")?,
            ct_disk: self.container.disk.bytes_i64("container disk")?,
            ct_procs: self.container.procs,
            max_containers: self.customer.containers,
            total_memory: self.customer.memory.bytes_i64("customer memory")?,
            total_cpus_milli: cpus(&self.customer.cpus, "customer cpus")?,
            total_disk: self.customer.disk.bytes_i64("customer disk")?,
            price_minor: self.price_minor,
            currency: Currency::parse(&self.currency)?,
            name: self.name,
        })
    }
}

async fn list_plans(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
) -> ApiResult<Json<Vec<Plan>>> {
    Ok(Json(accounts::plans(&st, &me).await?))
}

async fn create_plan(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
    ApiJson(req): ApiJson<PlanRequest>,
) -> ApiResult<(StatusCode, Json<Plan>)> {
    let plan = accounts::create_plan(&st, &me, req.parse()?).await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

async fn list_customers(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
) -> ApiResult<Json<Vec<CustomerView>>> {
    Ok(Json(accounts::customers(&st, &me).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerRequest {
    name: String,
    password: String,
    plan: String,
}

async fn create_customer(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
    ApiJson(req): ApiJson<CustomerRequest>,
) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    let name = UserName::parse(&req.name)?;
    let view = accounts::create_customer(&st, &me, &name, Secret(req.password), &req.plan).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Suspends a customer: its containers stop and cannot start until unsuspended.
async fn suspend(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<CustomerView>> {
    Ok(Json(
        accounts::set_suspension(&st, &caller.0, &name, true).await?,
    ))
}

async fn unsuspend(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<CustomerView>> {
    Ok(Json(
        accounts::set_suspension(&st, &caller.0, &name, false).await?,
    ))
}
