//! The reseller's page: its pool and what its customers use of it, its plans, and its
//! customers with suspend / unsuspend.

use acetate_engine::size::{format_bytes, format_cpus};
use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};

use serde::Deserialize;

use crate::domain::size::{Cpus, Size};
use crate::domain::{Currency, Money, Pool, Role, UserName};
use crate::error::{AppError, AppResult};
use crate::http::error::{is_client_error, status, PageError};
use crate::http::render::{not_found, render};
use crate::http::session::{CsrfForm, Session};
use crate::service::accounts;
use crate::service::auth::Secret;
use crate::service::plans::{self, NewPlan};
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reseller", get(page))
        .route("/customers/{name}/{action}", post(suspension))
        .route("/reseller/plans", post(new_plan))
        .route("/reseller/customers", post(new_customer))
        .route("/reseller/customers/{name}/plan", post(move_customer))
        .route("/reseller/customers/{name}/unlock", post(unlock))
        .route(
            "/reseller/customers/{name}/password-reset",
            post(reset_password),
        )
        .route("/reseller/plans/{name}/delete", post(delete_plan))
}

/// Renders the page with an error (client errors) or answers the error (server errors).
async fn with_error(st: &AppState, session: &Session, e: AppError, what: &str) -> Response {
    if !is_client_error(&e) {
        return PageError(e).into_response();
    }
    let msg = format!("{what}: {e}");
    match build(st, session, Some(msg)).await {
        Ok(p) => (status(&e), render(&p)).into_response(),
        Err(e) => PageError(e).into_response(),
    }
}

/// The plan form of the reseller's page and of a plan's own page (which adds the
/// templates, copies and egress; absent fields keep their defaults).
#[derive(Deserialize)]
pub(super) struct PlanForm {
    pub(super) csrf: String,
    pub(super) name: String,
    price: String,
    currency: String,
    ct_memory: String,
    ct_cpus: String,
    ct_disk: String,
    ct_procs: String,
    #[serde(default)]
    ct_io_read: String,
    #[serde(default)]
    ct_io_write: String,
    containers: String,
    memory: String,
    cpus: String,
    disk: String,
    /// Template names, comma-separated (empty: every one).
    #[serde(default)]
    templates: String,
    #[serde(default)]
    max_snapshots: Option<String>,
    #[serde(default)]
    backup_every_hours: Option<String>,
    #[serde(default)]
    keep_last: Option<String>,
    /// Present (a ticked box) on the plan's page: egress on; absent there: off.
    #[serde(default)]
    egress: Option<String>,
    /// Whether the form had the egress box (the plan's page has it; the short form not).
    #[serde(default)]
    has_egress: Option<String>,
    /// Present (a ticked box): the plan's containers keep the minimal init.
    #[serde(default)]
    minimal_init: Option<String>,
}

impl PlanForm {
    /// The plan the form describes; each refusal names its field.
    pub(super) fn parse(&self) -> AppResult<NewPlan> {
        let f = self;
        let whole = |v: &str, what: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| AppError::Unprocessable(format!("{what}: give a whole number")))
        };
        let size = |v: &str, what: &str| Size::Text(v.trim().to_string()).bytes_i64(what);
        let cpus =
            |v: &str, what: &str| Cpus::Text(v.trim().to_string()).milli(what).map(i64::from);
        let currency = Currency::parse(&f.currency)?;
        let mut copies = plans::Copies::default();
        if let Some(v) = &f.max_snapshots {
            copies.max_snapshots = whole(v, "max_snapshots")?;
        }
        if let Some(v) = &f.backup_every_hours {
            copies.backup_every_hours = whole(v, "backup_every_hours")?;
        }
        if let Some(v) = &f.keep_last {
            copies.keep_last = whole(v, "keep_last")?;
        }
        Ok(NewPlan {
            name: f.name.trim().to_string(),
            ct_memory: size(&f.ct_memory, "container memory")?,
            ct_cpus_milli: cpus(&f.ct_cpus, "container cpus")?,
            ct_disk: size(&f.ct_disk, "container disk")?,
            ct_procs: whole(&f.ct_procs, "processes")?,
            max_containers: whole(&f.containers, "containers")?,
            total_memory: size(&f.memory, "customer memory")?,
            total_cpus_milli: cpus(&f.cpus, "customer cpus")?,
            total_disk: size(&f.disk, "customer disk")?,
            price_minor: currency.parse_amount(&f.price)?,
            currency,
            io: acetate_engine::IoLimits {
                read_bps: optional_size(&f.ct_io_read, "disk reads")?,
                write_bps: optional_size(&f.ct_io_write, "disk writes")?,
                ..Default::default()
            },
            templates: f
                .templates
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            copies,
            egress: f.has_egress.is_none() || f.egress.is_some(),
            minimal_init: f.minimal_init.is_some(),
        })
    }
}

/// An optional size field: empty means none.
fn optional_size(v: &str, what: &str) -> AppResult<Option<u64>> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    Size::Text(v.to_string()).bytes(what).map(Some)
}

async fn new_plan(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<PlanForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let what = format!("Could not create plan {:?}", f.name.trim());
    let parsed = f.parse();
    let created = match parsed {
        Ok(plan) => plans::create_plan(&st, &session.user, plan).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(_) => Redirect::to("/reseller").into_response(),
        Err(e) => with_error(&st, &session, e, &what).await,
    }
}

#[derive(Deserialize)]
struct CustomerForm {
    csrf: String,
    name: String,
    password: String,
    plan: String,
}

async fn new_customer(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<CustomerForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let what = format!("Could not create customer {:?}", f.name.trim());
    let created = match UserName::parse(f.name.trim()) {
        Ok(name) => {
            accounts::create_customer(&st, &session.user, &name, Secret(f.password), &f.plan).await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(_) => Redirect::to("/reseller").into_response(),
        Err(e) => with_error(&st, &session, e, &what).await,
    }
}

struct CustomerRow {
    name: String,
    plan: String,
    containers: i64,
    memory: String,
    suspended: bool,
}

#[derive(askama::Template)]
#[template(path = "reseller.html")]
struct ResellerPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    csrf: String,
    pool: Vec<(&'static str, String, String)>,
    customers: Vec<CustomerRow>,
    plans: Vec<(String, String, String, String)>,
    plan_names: Vec<String>,
    error: Option<String>,
    /// A one-time password just made, shown this once: (customer, password).
    one_time: Option<(String, String)>,
    /// Its customers' limit hits and notices this week.
    limit_hits: super::limits::ScopeView,
}

fn bytes(v: i64) -> String {
    format_bytes(v.max(0) as u64)
}

fn cpus(v: i64) -> String {
    format_cpus(v.clamp(0, u32::MAX as i64) as u32)
}

async fn build(st: &AppState, session: &Session, error: Option<String>) -> AppResult<ResellerPage> {
    let me = &session.user;
    let o = accounts::reseller_overview(st, me).await?;
    let (used, pool) = (o.used, o.pool);
    let cap = |f: fn(&Pool) -> String| pool.as_ref().map_or("none".to_string(), f);
    let pool_rows = vec![
        (
            "Containers",
            used.containers.to_string(),
            cap(|p| p.containers.to_string()),
        ),
        ("Memory", bytes(used.memory), cap(|p| bytes(p.memory))),
        ("CPUs", cpus(used.cpus_milli), cap(|p| cpus(p.cpus_milli))),
        ("Disk", bytes(used.disk), cap(|p| bytes(p.disk))),
    ];
    let customers = o
        .customers
        .into_iter()
        .map(|v| CustomerRow {
            name: v.name,
            plan: v.plan.unwrap_or_else(|| "-".into()),
            containers: v.used.containers,
            memory: bytes(v.used.memory),
            suspended: v.suspended,
        })
        .collect();
    let all_plans = o.plans;
    let plan_names = all_plans.iter().map(|p| p.name.clone()).collect();
    let plans = all_plans
        .into_iter()
        .map(|p| {
            (
                p.name.clone(),
                format!(
                    "{} RAM, {} CPU, {} disk, {} procs{}",
                    bytes(p.ct_memory),
                    cpus(p.ct_cpus_milli),
                    bytes(p.ct_disk),
                    p.ct_procs,
                    io_caps(&p)
                ),
                format!(
                    "{} containers, {} RAM, {} CPU, {} disk",
                    p.max_containers,
                    bytes(p.total_memory),
                    cpus(p.total_cpus_milli),
                    bytes(p.total_disk)
                ),
                format!(
                    "{} {}",
                    Money::amount_in(p.price_minor, &p.currency),
                    p.currency
                ),
            )
        })
        .collect();
    Ok(ResellerPage {
        nav: session.nav("/reseller"),
        csrf: session.csrf.clone(),
        pool: pool_rows,
        customers,
        plans,
        plan_names,
        error,
        one_time: None,
        limit_hits: super::limits::in_scope(st, me).await?,
    })
}

/// ", disk reads ≤ 50 MiB/s, writes ≤ 20 MiB/s" (empty without caps).
fn io_caps(p: &crate::domain::Plan) -> String {
    let caps = p.io_caps();
    let mut parts = Vec::new();
    if let Some(v) = caps.read_bps {
        parts.push(format!("disk reads ≤ {}/s", format_bytes(v)));
    }
    if let Some(v) = caps.write_bps {
        parts.push(format!("disk writes ≤ {}/s", format_bytes(v)));
    }
    if let Some(v) = caps.read_iops {
        parts.push(format!("≤ {v} reads/s"));
    }
    if let Some(v) = caps.write_iops {
        parts.push(format!("≤ {v} writes/s"));
    }
    parts.iter().map(|p| format!(", {p}")).collect()
}

async fn page(AxState(st): AxState<AppState>, session: Session) -> Response {
    if session.user.role() != Role::Reseller {
        return not_found("page");
    }
    match build(&st, &session, None).await {
        Ok(p) => render(&p),
        Err(e) => PageError(e).into_response(),
    }
}

async fn suspension(
    AxState(st): AxState<AppState>,
    session: Session,
    Path((name, action)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let suspended = match action.as_str() {
        "suspend" => true,
        "unsuspend" => false,
        _ => return not_found("page"),
    };
    match accounts::set_suspension(&st, &session.user, &name, suspended).await {
        Ok(_) => Redirect::to("/reseller").into_response(),
        Err(AppError::NotFound) => not_found("customer"),
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Deserialize)]
struct MoveForm {
    csrf: String,
    plan: String,
}

/// Moves a customer to another plan; a refusal (it holds too much) shows on the page.
async fn move_customer(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<MoveForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match plans::move_customer(&st, &session.user, &name, &f.plan).await {
        Ok(_) => Redirect::to("/reseller").into_response(),
        Err(AppError::NotFound) => not_found("customer"),
        Err(e) => {
            with_error(
                &st,
                &session,
                e,
                &format!("Could not move {name:?} to plan {:?}", f.plan),
            )
            .await
        }
    }
}

/// Deletes a plan nobody is on; otherwise the page says who is.
async fn delete_plan(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match plans::delete_plan(&st, &session.user, &name).await {
        Ok(()) => Redirect::to("/reseller").into_response(),
        Err(AppError::NotFound) => not_found("plan"),
        Err(e) => with_error(&st, &session, e, &format!("Could not delete plan {name:?}")).await,
    }
}

/// Lifts a customer's login lock.
async fn unlock(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match accounts::unlock(&st, &session.user, &name).await {
        Ok(()) => Redirect::to("/reseller").into_response(),
        Err(AppError::NotFound) => not_found("customer"),
        Err(e) => with_error(&st, &session, e, &format!("Could not unlock {name:?}")).await,
    }
}

/// Gives a customer a new one-time password, shown on this answer only (its sessions end).
async fn reset_password(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let reset = accounts::reset_password(&st, &session.user, &name).await;
    match reset {
        Ok(password) => match build(&st, &session, None).await {
            Ok(mut page) => {
                page.one_time = Some((name, password.0));
                let mut resp = render(&page);
                resp.headers_mut().insert(
                    axum::http::header::CACHE_CONTROL,
                    axum::http::HeaderValue::from_static("no-store"),
                );
                resp
            }
            Err(e) => PageError(e).into_response(),
        },
        Err(AppError::NotFound) => not_found("customer"),
        Err(e) => {
            with_error(
                &st,
                &session,
                e,
                &format!("Could not reset the password of {name:?}"),
            )
            .await
        }
    }
}
