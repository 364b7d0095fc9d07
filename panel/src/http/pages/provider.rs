//! The provider's page: the host (capacity, load, containers), templates, and resellers with
//! their pools (set from the page).

use acetate_engine::size::{format_bytes, format_cpus};
use askama::Template;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::domain::size::{Cpus, Size};
use crate::domain::{Role, UserName};
use crate::error::AppError;
use crate::http::api::accounts::PoolRequest;
use crate::http::error::{is_client_error, status, PageError};
use crate::http::render::{not_found, render};
use crate::http::session::Session;
use crate::service::accounts;
use crate::service::auth::Secret;
use crate::service::host::{self, HostOverview};
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/provider", get(page))
        .route("/resellers/{name}/pool", post(pool))
        .route("/provider/resellers", post(new_reseller))
        .route("/provider/resellers/{name}/unlock", post(unlock))
        .route(
            "/provider/resellers/{name}/password-reset",
            post(reset_password),
        )
}

#[derive(Deserialize)]
struct ResellerForm {
    csrf: String,
    name: String,
    password: String,
}

async fn new_reseller(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<ResellerForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let name = f.name.trim().to_string();
    let created = match UserName::parse(&name) {
        Ok(n) => accounts::create_reseller(&st, &session.user, &n, Secret(f.password)).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(()) => Redirect::to("/provider").into_response(),
        Err(e) if is_client_error(&e) => {
            let msg = format!("Could not create reseller {name:?}: {e}");
            render_page(&st, &session, status(&e), Some(msg)).await
        }
        Err(e) => PageError(e).into_response(),
    }
}

struct ResellerRow {
    name: String,
    customers: usize,
    used: String,
    pool: Option<(String, String, String, i64)>,
    /// Its ranges of public ports: first, last, address ("" for every address).
    ports: Vec<(i64, i64, String)>,
}

#[derive(Template)]
#[template(path = "provider.html")]
struct ProviderPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    csrf: String,
    host: HostOverview,
    /// (name, OS, source, size, made, containers)
    templates: Vec<(String, String, String, String, String, usize)>,
    resellers: Vec<ResellerRow>,
    error: Option<String>,
    /// A one-time password just made, shown this once: (reseller, password).
    one_time: Option<(String, String)>,
    /// Every container's limit hits and notices this week.
    limit_hits: super::limits::ScopeView,
}

async fn render_page(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    render_page_with(st, session, status, error, None).await
}

async fn render_page_with(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
    one_time: Option<(String, String)>,
) -> Response {
    if session.user.role() != Role::Provider {
        return not_found("page");
    }
    let resellers = match accounts::resellers(st, &session.user).await {
        Ok(r) => r,
        Err(e) => return PageError(e).into_response(),
    };
    let templates = match crate::service::templates::list(st, &session.user).await {
        Ok(t) => t,
        Err(e) => return PageError(e).into_response(),
    };
    let mut ranges = std::collections::HashMap::new();
    for r in &resellers {
        if let Ok(list) = crate::service::forwards::port_ranges(st, &session.user, &r.name).await {
            let list: Vec<_> = list
                .into_iter()
                .map(|p| (p.first_port, p.last_port, p.address))
                .collect();
            ranges.insert(r.name.clone(), list);
        }
    }
    let b = |v: i64| format_bytes(v.max(0) as u64);
    let c = |v: i64| format_cpus(v.clamp(0, i64::from(u32::MAX)) as u32);
    let page = ProviderPage {
        nav: session.nav("/provider"),
        csrf: session.csrf.clone(),
        host: host::overview(st).await,
        templates: templates
            .into_iter()
            .map(|t| {
                (
                    t.name,
                    format!(
                        "{}, boots {}",
                        t.os.unwrap_or_else(|| "-".into()),
                        t.init.describe()
                    ),
                    t.source,
                    format_bytes(t.bytes),
                    super::human_time(t.created_at as i64),
                    t.containers,
                )
            })
            .collect(),
        resellers: resellers
            .into_iter()
            .map(|r| ResellerRow {
                ports: ranges.remove(&r.name).unwrap_or_default(),
                used: format!(
                    "{} containers, {} RAM, {} CPU, {} disk",
                    r.used.containers,
                    b(r.used.memory),
                    c(r.used.cpus_milli),
                    b(r.used.disk)
                ),
                pool: r
                    .pool
                    .map(|p| (b(p.memory), c(p.cpus_milli), b(p.disk), p.containers)),
                customers: r.customers,
                name: r.name,
            })
            .collect(),
        error,
        one_time,
        limit_hits: super::limits::in_scope(st, &session.user)
            .await
            .unwrap_or_default(),
    };
    (status, render(&page)).into_response()
}

async fn page(AxState(st): AxState<AppState>, session: Session) -> Response {
    render_page(&st, &session, StatusCode::OK, None).await
}

#[derive(Deserialize)]
struct PoolForm {
    csrf: String,
    memory: String,
    cpus: String,
    disk: String,
    containers: String,
}

async fn pool(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<PoolForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let Ok(containers) = f.containers.trim().parse::<i64>() else {
        let msg = format!("Pool of {name}: containers must be a whole number.");
        return render_page(&st, &session, StatusCode::UNPROCESSABLE_ENTITY, Some(msg)).await;
    };
    let req = PoolRequest {
        memory: Size::Text(f.memory.trim().to_string()),
        cpus: Cpus::Text(f.cpus.trim().to_string()),
        disk: Size::Text(f.disk.trim().to_string()),
        containers,
    };
    let set = match req.parse() {
        Ok(limits) => accounts::set_pool(&st, &session.user, &name, limits).await,
        Err(e) => Err(e),
    };
    match set {
        Ok(answer) if !answer.warnings.is_empty() => {
            let msg = format!(
                "Pool of {name} set. Warning: {}",
                answer.warnings.join("; ")
            );
            render_page(&st, &session, StatusCode::OK, Some(msg)).await
        }
        Ok(_) => Redirect::to("/provider").into_response(),
        Err(AppError::NotFound) => not_found("reseller"),
        Err(e) if is_client_error(&e) => {
            let msg = format!("Pool of {name}: {e}");
            render_page(&st, &session, status(&e), Some(msg)).await
        }
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

/// Lifts a reseller's login lock.
async fn unlock(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match accounts::unlock(&st, &session.user, &name).await {
        Ok(()) => Redirect::to("/provider").into_response(),
        Err(AppError::NotFound) => not_found("reseller"),
        Err(e) if is_client_error(&e) => {
            render_page(
                &st,
                &session,
                status(&e),
                Some(format!("Unlock {name}: {e}")),
            )
            .await
        }
        Err(e) => PageError(e).into_response(),
    }
}

/// Gives a reseller a new one-time password, shown on this answer only.
async fn reset_password(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match accounts::reset_password(&st, &session.user, &name).await {
        Ok(password) => {
            let mut resp = render_page_with(
                &st,
                &session,
                StatusCode::OK,
                None,
                Some((name, password.0)),
            )
            .await;
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(AppError::NotFound) => not_found("reseller"),
        Err(e) if is_client_error(&e) => {
            let msg = format!("New password for {name}: {e}");
            render_page(&st, &session, status(&e), Some(msg)).await
        }
        Err(e) => PageError(e).into_response(),
    }
}
