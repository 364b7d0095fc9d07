//! Resellers' pools (set by the provider), plans and customers (managed by resellers),
//! and suspension. Like containers, accounts outside the caller's scope answer 404.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::size::{Cpus, Size};
use crate::domain::{Currency, Plan, UserName};
use crate::error::AppResult;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller, Provider, Reseller};
use crate::service::accounts::{self, CustomerView, PoolAnswer, PoolLimits, ResellerView};
use crate::service::auth::Secret;
use crate::service::plans::{self, Copies, NewPlan, PlanChange};
use crate::service::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_resellers, create_reseller))
        .routes(routes!(set_pool))
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(update_plan, delete_plan))
        .routes(routes!(move_customer))
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(suspend))
        .routes(routes!(unsuspend))
        .routes(routes!(unlock))
        .routes(routes!(reset_password))
        .routes(routes!(reset_second_factor))
}

#[utoipa::path(get, operation_id = "accounts_list_resellers", path = "/api/v1/resellers", tag = "accounts",
    summary = "Resellers with their pools and use (provider)",
    responses((status = 200, description = "ok", body = [ResellerView]), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody)))]
async fn list_resellers(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
) -> ApiResult<Json<Vec<ResellerView>>> {
    Ok(Json(accounts::resellers(&st, &me).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResellerRequest {
    name: String,
    password: String,
}

#[utoipa::path(post, operation_id = "accounts_create_reseller", path = "/api/v1/resellers", tag = "accounts",
    summary = "Create a reseller (provider)", request_body = ResellerRequest,
    responses((status = 201, description = "created", body = Object), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 409, description = "conflicts with the current state", body = ErrorBody), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn create_reseller(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
    ApiJson(req): ApiJson<ResellerRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let name = UserName::parse(&req.name)?;
    accounts::create_reseller(&st, &me, &name, Secret(req.password)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "ok": true }))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

#[utoipa::path(put, operation_id = "accounts_set_pool", path = "/api/v1/resellers/{name}/pool", tag = "accounts",
    summary = "Set a reseller's pool (provider)",
    params(("name" = String, Path, description = "the reseller")), request_body = PoolRequest,
    responses((status = 200, description = "ok (with warnings when above what the host has)", body = PoolAnswer), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn set_pool(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PoolRequest>,
) -> ApiResult<Json<PoolAnswer>> {
    Ok(Json(
        accounts::set_pool(&st, &me, &name, req.parse()?).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    /// Disk I/O caps every container of the plan gets (none by default).
    #[serde(default)]
    io: Option<IoCaps>,
    /// Templates the plan's customers may choose (every one by default).
    #[serde(default)]
    templates: Vec<String>,
    /// Snapshots and backups of each container (5 snapshots, backups on request keeping
    /// the last 7, by default).
    #[serde(default)]
    copies: Copies,
    /// Whether its containers reach the outside (default true; false: only the host's
    /// open ports and forwards to them).
    #[serde(default = "yes")]
    egress: bool,
    /// Its containers keep Acetate's minimal init even where their template boots its own (systemd, SysV init)
    /// (default false: they boot the template's own init).
    #[serde(default)]
    minimal_init: bool,
}

/// Disk I/O caps: bandwidth as bytes or text ("20M" per second), operations per second.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IoCaps {
    pub read_bps: Option<Size>,
    pub write_bps: Option<Size>,
    pub read_iops: Option<u64>,
    pub write_iops: Option<u64>,
}

impl IoCaps {
    pub fn parse(&self) -> AppResult<acetate_engine::IoLimits> {
        Ok(acetate_engine::IoLimits {
            read_bps: self
                .read_bps
                .as_ref()
                .map(|s| s.bytes("io read_bps"))
                .transpose()?,
            write_bps: self
                .write_bps
                .as_ref()
                .map(|s| s.bytes("io write_bps"))
                .transpose()?,
            read_iops: self.read_iops,
            write_iops: self.write_iops,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanLimits {
    memory: Size,
    cpus: Cpus,
    disk: Size,
    procs: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CustomerLimits {
    containers: i64,
    memory: Size,
    cpus: Cpus,
    disk: Size,
}

fn yes() -> bool {
    true
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
            io: self.io.unwrap_or_default().parse()?,
            templates: self.templates,
            copies: self.copies,
            egress: self.egress,
            minimal_init: self.minimal_init,
            name: self.name,
        })
    }
}

#[utoipa::path(get, operation_id = "accounts_list_plans", path = "/api/v1/plans", tag = "accounts",
    summary = "The reseller's plans",
    responses((status = 200, description = "ok", body = [Plan]), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody)))]
async fn list_plans(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
) -> ApiResult<Json<Vec<Plan>>> {
    Ok(Json(plans::plans(&st, &me).await?))
}

#[utoipa::path(post, operation_id = "accounts_create_plan", path = "/api/v1/plans", tag = "accounts",
    summary = "Create a plan (reseller)", request_body = PlanRequest,
    responses((status = 201, description = "created", body = Plan), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 409, description = "conflicts with the current state", body = ErrorBody), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn create_plan(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
    ApiJson(req): ApiJson<PlanRequest>,
) -> ApiResult<(StatusCode, Json<Plan>)> {
    let plan = plans::create_plan(&st, &me, req.parse()?).await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

#[utoipa::path(put, operation_id = "accounts_update_plan", path = "/api/v1/plans/{name}", tag = "accounts",
    summary = "Change a plan (reseller): the whole plan again, same name; the answer names the customers now over it",
    params(("name" = String, Path, description = "the plan")), request_body = PlanRequest,
    responses((status = 200, description = "changed", body = PlanChange), (status = 403, description = "not a reseller", body = ErrorBody),
        (status = 404, description = "no such plan of the caller's", body = ErrorBody), (status = 422, description = "invalid input (the message names the field)", body = ErrorBody)))]
async fn update_plan(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PlanRequest>,
) -> ApiResult<Json<PlanChange>> {
    Ok(Json(
        plans::update_plan(&st, &me, &name, req.parse()?).await?,
    ))
}

#[utoipa::path(delete, operation_id = "accounts_delete_plan", path = "/api/v1/plans/{name}", tag = "accounts",
    summary = "Delete a plan no customer is on (reseller)",
    params(("name" = String, Path, description = "the plan")),
    responses((status = 204, description = "deleted"), (status = 403, description = "not a reseller", body = ErrorBody),
        (status = 404, description = "no such plan of the caller's", body = ErrorBody), (status = 409, description = "customers are on it (named)", body = ErrorBody)))]
async fn delete_plan(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    plans::delete_plan(&st, &me, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MoveRequest {
    /// Another of the reseller's plans.
    plan: String,
}

#[utoipa::path(put, operation_id = "accounts_move_customer", path = "/api/v1/customers/{name}/plan", tag = "accounts",
    summary = "Move a customer to another plan, if what it holds fits (reseller)",
    params(("name" = String, Path, description = "the customer")), request_body = MoveRequest,
    responses((status = 200, description = "moved", body = CustomerView), (status = 403, description = "not a reseller", body = ErrorBody),
        (status = 404, description = "no such customer of the caller's", body = ErrorBody), (status = 422, description = "no such plan, or the customer holds more than it allows (named)", body = ErrorBody)))]
async fn move_customer(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<MoveRequest>,
) -> ApiResult<Json<CustomerView>> {
    Ok(Json(
        plans::move_customer(&st, &me, &name, &req.plan).await?,
    ))
}

#[utoipa::path(get, operation_id = "accounts_list_customers", path = "/api/v1/customers", tag = "accounts",
    summary = "The reseller's customers with their use",
    responses((status = 200, description = "ok", body = [CustomerView]), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody)))]
async fn list_customers(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
) -> ApiResult<Json<Vec<CustomerView>>> {
    Ok(Json(accounts::customers(&st, &me).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CustomerRequest {
    name: String,
    password: String,
    plan: String,
}

#[utoipa::path(post, operation_id = "accounts_create_customer", path = "/api/v1/customers", tag = "accounts",
    summary = "Create a customer on one of the reseller's plans", request_body = CustomerRequest,
    responses((status = 201, description = "created", body = CustomerView), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 409, description = "conflicts with the current state", body = ErrorBody), (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
async fn create_customer(
    AxState(st): AxState<AppState>,
    Reseller(me): Reseller,
    ApiJson(req): ApiJson<CustomerRequest>,
) -> ApiResult<(StatusCode, Json<CustomerView>)> {
    let name = UserName::parse(&req.name)?;
    let view = accounts::create_customer(&st, &me, &name, Secret(req.password), &req.plan).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(post, operation_id = "accounts_suspend", path = "/api/v1/customers/{name}/suspend", tag = "accounts",
    summary = "Suspend: stop the customer's containers and refuse starts (reseller, provider)",
    params(("name" = String, Path, description = "the customer")),
    responses((status = 200, description = "ok", body = CustomerView), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
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

#[utoipa::path(post, operation_id = "accounts_unsuspend", path = "/api/v1/customers/{name}/unsuspend", tag = "accounts",
    summary = "Lift a suspension (reseller, provider)",
    params(("name" = String, Path, description = "the customer")),
    responses((status = 200, description = "ok", body = CustomerView), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn unsuspend(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<CustomerView>> {
    Ok(Json(
        accounts::set_suspension(&st, &caller.0, &name, false).await?,
    ))
}

#[utoipa::path(post, operation_id = "accounts_unlock", path = "/api/v1/users/{name}/unlock",
    tag = "accounts",
    summary = "Lift the login lock of an account below the caller (provider: resellers and customers; reseller: its customers)",
    params(("name" = String, Path, description = "the account")),
    responses((status = 204, description = "unlocked"),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn unlock(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    accounts::unlock(&st, &caller.0, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct OneTimePassword {
    /// Shown only in this answer: give it to its owner, who should change it.
    password: String,
}

#[utoipa::path(post, operation_id = "accounts_reset_password", path = "/api/v1/users/{name}/password-reset",
    tag = "accounts",
    summary = "Give an account below the caller a new one-time password (ends its sessions, lifts its lock)",
    params(("name" = String, Path, description = "the account")),
    responses((status = 200, description = "the new password, shown once", body = OneTimePassword),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn reset_password(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<OneTimePassword>> {
    let password = accounts::reset_password(&st, &caller.0, &name).await?;
    Ok(Json(OneTimePassword {
        password: password.0,
    }))
}

#[utoipa::path(post, operation_id = "accounts_reset_second_factor", path = "/api/v1/users/{name}/totp-reset",
    tag = "accounts",
    summary = "Remove the second factor of an account below the caller (a lost phone without recovery codes); its sessions end",
    params(("name" = String, Path, description = "the account")),
    responses((status = 204, description = "removed (or there was none)"),
        (status = 404, description = "not found, or outside the caller's scope", body = ErrorBody)))]
async fn reset_second_factor(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    accounts::reset_second_factor(&st, &caller.0, &name).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
