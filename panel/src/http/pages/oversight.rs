//! `/accounts/{name}`: one reseller or customer as the provider (or a customer as its
//! reseller) oversees it, with links down to its customers and containers.

use acetate_engine::size::{format_bytes, format_cpus};
use askama::Template;
use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::domain::{Money, Role};
use crate::error::AppError;
use crate::http::error::PageError;
use crate::http::render::{not_found, render};
use crate::http::session::Session;
use crate::service::oversight::{self, AccountOverview};
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/accounts/{name}", get(account_page))
}

#[derive(Template)]
#[template(path = "account_overview.html")]
struct AccountPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    a: AccountOverview,
    /// (label, used, pool) rows.
    holds: Vec<(&'static str, String, String)>,
    /// Customers: (name, plan, containers, memory, suspended).
    customers: Vec<(String, String, i64, String, bool)>,
    /// Containers: (name, state, template, page).
    containers: Vec<(String, String, String, String)>,
    /// Invoices: (id, period, customer, total).
    invoices: Vec<(i64, String, String, String)>,
    /// Limit hits: (when, owner, container, what, page).
    hits: Vec<super::limits::ScopeRow>,
    /// Whether the viewer may open the reseller's own page (the provider).
    provider: bool,
}

fn holds(a: &AccountOverview) -> Vec<(&'static str, String, String)> {
    let b = |v: i64| format_bytes(v.max(0) as u64);
    let c = |v: i64| format_cpus(v.clamp(0, i64::from(u32::MAX)) as u32);
    let pool = |f: &dyn Fn(&crate::domain::Pool) -> String| {
        a.pool.as_ref().map_or_else(|| "-".to_string(), f)
    };
    vec![
        (
            "Containers",
            a.used.containers.to_string(),
            pool(&|p| p.containers.to_string()),
        ),
        ("Memory", b(a.used.memory), pool(&|p| b(p.memory))),
        ("CPUs", c(a.used.cpus_milli), pool(&|p| c(p.cpus_milli))),
        ("Disk", b(a.used.disk), pool(&|p| b(p.disk))),
    ]
}

async fn account_page(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Response {
    let a = match oversight::overview(&st, &session.user, &name).await {
        Ok(a) => a,
        Err(AppError::NotFound) => return not_found("account"),
        Err(e) => return PageError(e).into_response(),
    };
    let owner = a.name.clone();
    let page = AccountPage {
        nav: session.nav(if session.user.role() == Role::Provider {
            "/provider"
        } else {
            "/reseller"
        }),
        holds: holds(&a),
        customers: a
            .customers
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.plan.clone().unwrap_or_else(|| "-".into()),
                    c.used.containers,
                    format_bytes(c.used.memory.max(0) as u64),
                    c.suspended,
                )
            })
            .collect(),
        containers: a
            .containers
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.state.clone(),
                    c.template.clone().unwrap_or_default(),
                    super::limits::page_of(&owner, &c.name),
                )
            })
            .collect(),
        invoices: a
            .invoices
            .iter()
            .map(|i| {
                (
                    i.id,
                    i.period.clone(),
                    i.customer.clone(),
                    format!("{} {}", Money::amount_in(i.total, &i.currency), i.currency),
                )
            })
            .collect(),
        hits: a
            .faults
            .iter()
            .take(50)
            .map(super::limits::scope_row)
            .collect(),
        provider: session.user.role() == Role::Provider,
        a,
    };
    render(&page)
}
