//! The reseller's page: its pool and what its customers use of it, its plans, and its
//! customers with suspend / unsuspend.

use acetate_engine::size::{format_bytes, format_cpus};
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};

use serde::Deserialize;

use super::accounts::{
    create_customer_for, create_plan_for, customer_view, set_suspension, CustomerLimits,
    CustomerRequest, PlanLimits, PlanRequest,
};
use super::containers::Size;
use super::web::{page_error, render, CsrfForm, Session};
use crate::app::AppState;
use crate::db::Role;
use crate::error::{AppError, AppResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reseller", get(page))
        .route("/customers/{name}/{action}", post(suspension))
        .route("/reseller/plans", post(new_plan))
        .route("/reseller/customers", post(new_customer))
}

/// Renders the page with an error (client errors) or answers the error (server errors).
async fn with_error(st: &AppState, session: &Session, e: AppError, what: &str) -> Response {
    if !e.status().is_client_error() {
        return e.into_response();
    }
    let msg = format!("{what}: {e}");
    match build(st, session, Some(msg)).await {
        Ok(p) => (e.status(), render(&p)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct PlanForm {
    csrf: String,
    name: String,
    price: String,
    currency: String,
    ct_memory: String,
    ct_cpus: String,
    ct_disk: String,
    ct_procs: String,
    containers: String,
    memory: String,
    cpus: String,
    disk: String,
}

/// "12.50" -> 1250 minor units.
fn minor_units(price: &str) -> Option<i64> {
    let price = price.trim();
    let (whole, frac) = price.split_once('.').unwrap_or((price, ""));
    if frac.len() > 2
        || whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac = format!("{frac:0<2}");
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac.parse::<i64>().ok()?)
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
    let (Some(price), Ok(procs), Ok(containers)) = (
        minor_units(&f.price),
        f.ct_procs.trim().parse::<i64>(),
        f.containers.trim().parse::<i64>(),
    ) else {
        let e = AppError::Unprocessable(
            "give the price as 12.50 and processes and containers as whole numbers".into(),
        );
        return with_error(&st, &session, e, &what).await;
    };
    let text = |v: &str| serde_json::Value::String(v.trim().to_string());
    let size = |v: &str| Size::Text(v.trim().to_string());
    let req = PlanRequest {
        name: f.name.trim().to_string(),
        container: PlanLimits {
            memory: size(&f.ct_memory),
            cpus: text(&f.ct_cpus),
            disk: size(&f.ct_disk),
            procs,
        },
        customer: CustomerLimits {
            containers,
            memory: size(&f.memory),
            cpus: text(&f.cpus),
            disk: size(&f.disk),
        },
        price_minor: price,
        currency: f.currency.trim().to_uppercase(),
    };
    match create_plan_for(&st, &session.user, req).await {
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
    let req = CustomerRequest {
        name: f.name.trim().to_string(),
        password: f.password,
        plan: f.plan,
    };
    match create_customer_for(&st, &session.user, req).await {
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
    user: String,
    csrf: String,
    pool: Vec<(&'static str, String, String)>,
    customers: Vec<CustomerRow>,
    plans: Vec<(String, String, String, String)>,
    plan_names: Vec<String>,
    error: Option<String>,
}

fn bytes(v: i64) -> String {
    format_bytes(v.max(0) as u64)
}

fn cpus(v: i64) -> String {
    format_cpus(v.clamp(0, u32::MAX as i64) as u32)
}

async fn build(st: &AppState, session: &Session, error: Option<String>) -> AppResult<ResellerPage> {
    let me = &session.user;
    let used = st.db.reseller_totals(me.id, -1).await?;
    let pool = st.db.pool(me.id).await?;
    let cap = |f: fn(&crate::db::Pool) -> String| pool.as_ref().map_or("none".to_string(), f);
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
    let mut customers = Vec::new();
    for c in st.db.customers_of(me.id).await? {
        let v = customer_view(st, &c).await?;
        customers.push(CustomerRow {
            name: v.name,
            plan: v.plan.unwrap_or_else(|| "-".into()),
            containers: v.used.containers,
            memory: bytes(v.used.memory),
            suspended: v.suspended,
        });
    }
    let all_plans = st.db.plans_of(me.id).await?;
    let plan_names = all_plans.iter().map(|p| p.name.clone()).collect();
    let plans = all_plans
        .into_iter()
        .map(|p| {
            (
                p.name.clone(),
                format!(
                    "{} RAM, {} CPU, {} disk, {} procs",
                    bytes(p.ct_memory),
                    cpus(p.ct_cpus_milli),
                    bytes(p.ct_disk),
                    p.ct_procs
                ),
                format!(
                    "{} containers, {} RAM, {} CPU, {} disk",
                    p.max_containers,
                    bytes(p.total_memory),
                    cpus(p.total_cpus_milli),
                    bytes(p.total_disk)
                ),
                format!(
                    "{}.{:02} {}",
                    p.price_minor / 100,
                    p.price_minor % 100,
                    p.currency
                ),
            )
        })
        .collect();
    Ok(ResellerPage {
        user: me.name.clone(),
        csrf: session.csrf.clone(),
        pool: pool_rows,
        customers,
        plans,
        plan_names,
        error,
    })
}

async fn page(AxState(st): AxState<AppState>, session: Session) -> Response {
    if session.user.role() != Role::Reseller {
        return page_error(StatusCode::NOT_FOUND, "Not found", "There is no such page.");
    }
    match build(&st, &session, None).await {
        Ok(p) => render(&p),
        Err(e) => e.into_response(),
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
        _ => return page_error(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
    };
    match set_suspension(&st, &session.user, &name, suspended).await {
        Ok(_) => Redirect::to("/reseller").into_response(),
        Err(AppError::NotFound) => page_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such customer.",
        ),
        Err(e) => e.into_response(),
    }
}
