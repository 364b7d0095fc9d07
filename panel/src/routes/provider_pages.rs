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

use super::accounts::{
    create_reseller_for, resellers_for, set_pool_for, PoolRequest, ResellerRequest,
};
use super::containers::Size;
use super::web::{page_error, render, Session};
use crate::app::AppState;
use crate::db::Role;
use crate::error::AppError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/provider", get(page))
        .route("/resellers/{name}/pool", post(pool))
        .route("/provider/resellers", post(new_reseller))
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
    let req = ResellerRequest {
        name: name.clone(),
        password: f.password,
    };
    match create_reseller_for(&st, &session.user, req).await {
        Ok(()) => Redirect::to("/provider").into_response(),
        Err(e) if e.status().is_client_error() => {
            let msg = format!("Could not create reseller {name:?}: {e}");
            render_page(&st, &session, e.status(), Some(msg)).await
        }
        Err(e) => e.into_response(),
    }
}

/// What the host has and uses now.
struct Host {
    cpus: usize,
    load: String,
    memory_total: String,
    memory_available: String,
    disk_total: String,
    disk_free: String,
    /// Disk quotas promised against what the over-commit ratio allows.
    disk_quotas: String,
    containers: usize,
    running: usize,
    committed_memory: String,
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

fn host(st: &AppState) -> Host {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "-".into());
    let disk = nix::sys::statvfs::statvfs(st.engine.state_dir()).ok();
    let all = st.snapshot.all();
    let promised = all.iter().map(|c| c.limits.disk).sum();
    let policy = st.engine.disk_policy();
    let disk_quotas =
        match acetate_engine::capacity::capacity(st.engine.state_dir(), policy, promised) {
            Ok(c) => format!(
                "{} promised of {} allowed (over-commit ratio {}; {} reserve {})",
                format_bytes(c.promised),
                format_bytes(c.allowed),
                policy.overcommit,
                format_bytes(c.reserve),
                if c.reserve_held {
                    "held"
                } else {
                    "released: the disk is full"
                }
            ),
            Err(_) => "-".into(),
        };
    let fmt = |v: Option<u64>| v.map_or("-".to_string(), format_bytes);
    Host {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load,
        memory_total: fmt(meminfo("MemTotal:")),
        memory_available: fmt(meminfo("MemAvailable:")),
        disk_total: fmt(disk.map(|d| d.blocks() * d.fragment_size())),
        disk_free: fmt(disk.map(|d| d.blocks_available() * d.fragment_size())),
        disk_quotas,
        containers: all.len(),
        running: all
            .iter()
            .filter(|c| c.state == acetate_engine::State::Running)
            .count(),
        committed_memory: format_bytes(all.iter().map(|c| c.limits.memory).sum()),
    }
}

struct ResellerRow {
    name: String,
    customers: usize,
    used: String,
    pool: Option<(String, String, String, i64)>,
}

#[derive(Template)]
#[template(path = "provider.html")]
struct ProviderPage {
    user: String,
    csrf: String,
    host: Host,
    templates: Vec<(String, String, usize)>,
    resellers: Vec<ResellerRow>,
    error: Option<String>,
}

async fn render_page(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    if session.user.role() != Role::Provider {
        return page_error(StatusCode::NOT_FOUND, "Not found", "There is no such page.");
    }
    let resellers = match resellers_for(st, &session.user).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let templates = match st.engine(|e| e.templates()).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let b = |v: i64| format_bytes(v.max(0) as u64);
    let c = |v: i64| format_cpus(v.clamp(0, i64::from(u32::MAX)) as u32);
    let page = ProviderPage {
        user: session.user.name.clone(),
        csrf: session.csrf.clone(),
        host: host(st),
        templates: templates
            .into_iter()
            .map(|t| (t.name, t.source, t.containers))
            .collect(),
        resellers: resellers
            .into_iter()
            .map(|r| ResellerRow {
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
        cpus: serde_json::Value::String(f.cpus.trim().to_string()),
        disk: Size::Text(f.disk.trim().to_string()),
        containers,
    };
    match set_pool_for(&st, &session.user, &name, req).await {
        Ok(_) => Redirect::to("/provider").into_response(),
        Err(AppError::NotFound) => page_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such reseller.",
        ),
        Err(e) if e.status().is_client_error() => {
            let msg = format!("Pool of {name}: {e}");
            render_page(&st, &session, e.status(), Some(msg)).await
        }
        Err(e) => e.into_response(),
    }
}
