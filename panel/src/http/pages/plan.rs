//! A plan's own page (resellers): every field of the plan in one form, saved with the
//! same checks as the API, and the customers now over its limits named.

use acetate_engine::size::{format_bytes, format_cpus};
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};

use super::reseller::PlanForm;
use crate::domain::{Money, Plan};
use crate::http::error::{is_client_error, status, PageError};
use crate::http::render::{not_found, render};
use crate::http::session::Session;
use crate::service::plans;
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/reseller/plans/{name}", get(page).post(save))
}

/// The form's fields as text, from a plan.
struct Fields {
    price: String,
    currency: String,
    ct_memory: String,
    ct_cpus: String,
    ct_disk: String,
    ct_procs: i64,
    ct_io_read: String,
    ct_io_write: String,
    egress: bool,
    minimal_init: bool,
    containers: i64,
    memory: String,
    cpus: String,
    disk: String,
    templates: String,
    max_snapshots: i64,
    backup_every_hours: i64,
    keep_last: i64,
}

impl Fields {
    fn of(p: &Plan) -> Fields {
        let b = |v: i64| format_bytes(v.max(0) as u64);
        let c = |v: i64| format_cpus(v.clamp(0, i64::from(u32::MAX)) as u32);
        let cap = |v: i64| if v > 0 { b(v) } else { String::new() };
        let price = Money::amount_in(p.price_minor, &p.currency);
        Fields {
            price,
            currency: p.currency.clone(),
            ct_memory: b(p.ct_memory),
            ct_cpus: c(p.ct_cpus_milli),
            ct_disk: b(p.ct_disk),
            ct_procs: p.ct_procs,
            ct_io_read: cap(p.ct_io_read_bps),
            ct_io_write: cap(p.ct_io_write_bps),
            egress: p.egress != 0,
            minimal_init: p.minimal_init != 0,
            containers: p.max_containers,
            memory: b(p.total_memory),
            cpus: c(p.total_cpus_milli),
            disk: b(p.total_disk),
            templates: p.templates.clone(),
            max_snapshots: p.max_snapshots,
            backup_every_hours: p.backup_every_hours,
            keep_last: p.backup_keep_last,
        }
    }
}

#[derive(askama::Template)]
#[template(path = "plan.html")]
struct PlanPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    name: String,
    csrf: String,
    f: Fields,
    message: Option<String>,
    over: Vec<String>,
    error: Option<String>,
}

async fn show(
    st: &AppState,
    session: &Session,
    name: &str,
    code: StatusCode,
    message: Option<String>,
    over: Vec<String>,
    error: Option<String>,
) -> Response {
    let plan = match plans::plans(st, &session.user).await {
        Ok(list) => list.into_iter().find(|p| p.name == name),
        Err(e) => return PageError(e).into_response(),
    };
    let Some(plan) = plan else {
        return not_found("plan");
    };
    let page = PlanPage {
        nav: session.nav("/reseller"),
        name: plan.name.clone(),
        csrf: session.csrf.clone(),
        f: Fields::of(&plan),
        message,
        over,
        error,
    };
    (code, render(&page)).into_response()
}

async fn page(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Response {
    show(&st, &session, &name, StatusCode::OK, None, Vec::new(), None).await
}

async fn save(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<PlanForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let changed = match f.parse() {
        Ok(p) => plans::update_plan(&st, &session.user, &name, p).await,
        Err(e) => Err(e),
    };
    match changed {
        Ok(change) => {
            let over = change
                .over
                .iter()
                .map(|o| {
                    format!(
                        "{} is over the new limits: {}",
                        o.customer,
                        o.reasons.join("; ")
                    )
                })
                .collect();
            let msg = Some("Plan saved.".to_string());
            show(&st, &session, &name, StatusCode::OK, msg, over, None).await
        }
        Err(e) if is_client_error(&e) => {
            let code = status(&e);
            let msg = format!("Nothing was changed: {e}");
            show(&st, &session, &name, code, None, Vec::new(), Some(msg)).await
        }
        Err(e) => PageError::from(e).into_response(),
    }
}
