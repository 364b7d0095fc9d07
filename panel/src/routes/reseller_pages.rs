//! The reseller's page: its pool and what its customers use of it, its plans, and its
//! customers with suspend / unsuspend.

use acetate_engine::size::{format_bytes, format_cpus};
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};

use super::accounts::{customer_view, set_suspension};
use super::web::{page_error, render, CsrfForm, Session};
use crate::app::AppState;
use crate::db::Role;
use crate::error::{AppError, AppResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reseller", get(page))
        .route("/customers/{name}/{action}", post(suspension))
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
    let plans = st
        .db
        .plans_of(me.id)
        .await?
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
