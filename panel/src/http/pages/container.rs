//! A container's page (customers): state, limits, address, usage graphs, and the forms
//! that start, stop, resize, reinstall, destroy it or run a command in it.

use acetate_engine::size::{format_bytes, format_cpus};
use askama::Template;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::dashboard::{self, dashboard_page, opt, Row};
use crate::db::metering::Point;
use crate::db::operations::OperationRow;
use crate::domain::size::{Cpus, Size};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::http::error::{is_client_error, status, PageError};
use crate::http::extract::OwnerQuery;
use crate::http::render::{not_found, page_error, render};
use crate::http::session::Session;
use crate::runtime::CommandOutcome;
use crate::service::containers::{self, copies, Action, Resize};
use crate::service::{metering, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/containers/{name}", get(container_page))
        .route("/containers/{name}/{action}", post(action))
}

/// One usage graph of the container page.
struct Graph {
    title: String,
    svg: String,
}

/// CPU, memory and network over the last hour (raw samples) and the last 30 days (hours).
async fn graphs(st: &AppState, container_id: i64) -> Result<Vec<Graph>, AppError> {
    use super::graph::{clock, day, line, TimeAxis};
    let mut out = Vec::new();
    for month in [false, true] {
        let series = metering::series(st, container_id, month).await?;
        let (gap, when, axis) = if month {
            let axis = TimeAxis {
                step: 5 * 86_400,
                label: day,
            };
            (2 * 3600, "last 30 days", axis)
        } else {
            let axis = TimeAxis {
                step: 600,
                label: clock,
            };
            (180, "last hour", axis)
        };
        let per_second = |f: fn(&Point) -> i64| -> Vec<(i64, f64)> {
            series
                .points
                .iter()
                .filter(|p| p.seconds > 0)
                .map(|p| (p.at, f(p) as f64 / p.seconds as f64))
                .collect()
        };
        let cpu: Vec<(i64, f64)> = per_second(|p| p.cpu_us)
            .into_iter()
            .map(|(t, us)| (t, us / 1e4))
            .collect();
        let memory: Vec<(i64, f64)> = series
            .points
            .iter()
            .map(|p| (p.at, p.memory as f64))
            .collect();
        let net = per_second(|p| p.net_rx + p.net_tx);
        let io = per_second(|p| p.io_read + p.io_write);
        let bytes = |v: f64| format_bytes(v as u64);
        let rate = |v: f64| format!("{}/s", format_bytes(v as u64));
        out.push(Graph {
            title: format!("CPU, {when} (% of one core)"),
            svg: line(
                &cpu,
                series.from,
                series.to,
                gap,
                |v| format!("{v:.0}%"),
                &axis,
            ),
        });
        out.push(Graph {
            title: format!("Memory, {when}"),
            svg: line(&memory, series.from, series.to, gap, bytes, &axis),
        });
        out.push(Graph {
            title: format!("Network in and out, {when}"),
            svg: line(&net, series.from, series.to, gap, rate, &axis),
        });
        out.push(Graph {
            title: format!("Disk reads and writes, {when}"),
            svg: line(&io, series.from, series.to, gap, rate, &axis),
        });
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "container.html")]
struct ContainerPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    c: Row,
    /// `?owner=NAME` when the provider or a reseller looks at a customer's container.
    owner_q: String,
    /// Current limits, as the resize form shows them.
    limits: Option<(String, String, String, u64)>,
    /// Its address on the host's network, and the gateway.
    address: Option<(String, String)>,
    graphs: Vec<Graph>,
    /// Templates the owner may reinstall from, and the container's own.
    templates: Vec<String>,
    c_template: Option<String>,
    /// Its template and what it boots.
    system: Option<String>,
    /// Limit hits and the reseller's notices.
    limit_hits: super::limits::LimitsView,
    /// Snapshots: (name, taken, size, "running"/"stopped"), oldest first.
    snapshots: Vec<(String, String, String, &'static str)>,
    /// Backups: (id, short id, taken, size, added), oldest first.
    backups: Vec<(String, String, String, String, String)>,
    /// Public ports of the host that lead to it.
    forwards: Vec<crate::db::forwards::ForwardRow>,
    /// Domains served from it.
    domains: Vec<crate::db::domains::DomainRow>,
    csrf: String,
    command: String,
    output: Option<CommandOutcome>,
    error: Option<String>,
}

/// The container a page is about: its owner's name for it, and whose it is when the
/// provider or a reseller looks at a customer's (`?owner=`).
struct Target {
    name: String,
    owner: Option<String>,
}

impl Target {
    fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The query that keeps the owner on links and forms ("" for one's own).
    fn query(&self) -> String {
        self.owner
            .as_deref()
            .map_or(String::new(), |o| format!("?owner={o}"))
    }
}

async fn render_container(
    st: &AppState,
    session: &Session,
    t: &Target,
    status: StatusCode,
    command: String,
    output: Option<CommandOutcome>,
    error: Option<String>,
) -> Response {
    let name = t.name.as_str();
    if session.user.role() == Role::Customer && t.owner.is_some() {
        return not_found("container");
    }
    // Only this container: one row, and its entry in the snapshot.
    let row = match containers::resolve(st, &session.user, name, t.owner()).await {
        Ok(row) => row,
        Err(AppError::NotFound) => {
            return page_error(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such container.",
            )
        }
        Err(e) => return PageError(e).into_response(),
    };
    let view = match containers::snapshot_view(st, &row).await {
        Ok(view) => view,
        Err(e) => return PageError(e).into_response(),
    };
    let templates = match crate::service::templates::list(st, &session.user).await {
        Ok(t) => t.into_iter().map(|t| t.name).collect(),
        Err(e) => return PageError(e).into_response(),
    };
    let c_template = view.template.clone();
    let system = view.template.as_ref().zip(view.init).map(|(t, i)| match i {
        acetate_engine::spec::Init::Minimal => format!("{t}, with {}", i.describe()),
        _ => format!("{t}, booting {}", i.describe()),
    });
    let limit_hits = match super::limits::of_container(st, &session.user, name, t.owner()).await {
        Ok(l) => l,
        Err(e) => return PageError(e).into_response(),
    };
    let (snapshots, backups) = match copies_of(st, session, t).await {
        Ok(c) => c,
        Err(e) => return PageError(e).into_response(),
    };
    let forwards = match crate::service::forwards::list(st, &session.user, name, t.owner()).await {
        Ok(f) => f,
        Err(e) => return PageError(e).into_response(),
    };
    let domains = match st.db.domains_of(row.id).await {
        Ok(d) => d,
        Err(e) => return PageError(e).into_response(),
    };
    let graphs = match graphs(st, row.id).await {
        Ok(g) => g,
        Err(e) => return PageError(e).into_response(),
    };
    let limits = view.limits.as_ref().map(|l| {
        (
            format_bytes(l.memory),
            format_cpus(l.cpus_milli),
            format_bytes(l.disk),
            l.procs,
        )
    });
    let address = view
        .network
        .as_ref()
        .map(|n| (n.address.to_string(), n.gateway.to_string()));
    let page = ContainerPage {
        nav: session.nav("/"),
        owner_q: t.query(),
        c: dashboard::row(&view),
        limits,
        address,
        graphs,
        templates,
        c_template,
        system,
        limit_hits,
        snapshots,
        backups,
        forwards,
        domains,
        csrf: session.csrf.clone(),
        command,
        output,
        error,
    };
    (status, render(&page)).into_response()
}

async fn container_page(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> Response {
    let t = Target {
        name,
        owner: q.owner,
    };
    render_container(&st, &session, &t, StatusCode::OK, String::new(), None, None).await
}

/// The container page again, saying that the name typed did not match.
async fn unconfirmed(st: &AppState, session: &Session, t: &Target, done: &str) -> Response {
    let msg = format!("Type {:?} to confirm: nothing was {done}.", t.name);
    render_container(
        st,
        session,
        t,
        StatusCode::UNPROCESSABLE_ENTITY,
        String::new(),
        None,
        Some(msg),
    )
    .await
}

/// After a change made from the container page: back to it once done (or to the
/// operation's page while it runs), or the page with the reason.
type Copies = (
    Vec<(String, String, String, &'static str)>,
    Vec<(String, String, String, String, String)>,
);

/// The container's snapshots and backups as the page lists them.
async fn copies_of(st: &AppState, session: &Session, t: &Target) -> AppResult<Copies> {
    let snaps = copies::snapshots(st, &session.user, &t.name, t.owner()).await?;
    let backups = copies::backups(st, &session.user, &t.name, t.owner()).await?;
    Ok((
        snaps
            .into_iter()
            .map(|s| {
                let state = if s.live { "running" } else { "stopped" };
                (
                    s.name,
                    super::human_time(s.created_at as i64),
                    format_bytes(s.bytes),
                    state,
                )
            })
            .collect(),
        backups
            .into_iter()
            .map(|b| {
                let short = b.id[..8].to_string();
                let when = super::human_time(b.time as i64);
                (
                    b.id,
                    short,
                    when,
                    format_bytes(b.bytes),
                    format_bytes(b.added),
                )
            })
            .collect(),
    ))
}

async fn after_change(
    st: &AppState,
    session: &Session,
    t: &Target,
    verb: &str,
    started: AppResult<OperationRow>,
) -> Response {
    let result = match started {
        Ok(op) => super::finish(st, &op).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(None) => Redirect::to(&format!("/containers/{}{}", t.name, t.query())).into_response(),
        Ok(Some(progress)) => progress,
        Err(AppError::NotFound) => not_found("container"),
        Err(e) if is_client_error(&e) => {
            let msg = format!("Could not {verb} {:?}: {e}", t.name);
            render_container(st, session, t, status(&e), String::new(), None, Some(msg)).await
        }
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    /// For `resize`: new limits (empty fields stay as they are).
    memory: Option<String>,
    cpus: Option<String>,
    disk: Option<String>,
    procs: Option<String>,
    /// For `exec`: the command line, run by `sh -c`.
    command: Option<String>,
    /// For `destroy`: the container's name, typed again.
    confirm: Option<String>,
    /// For `reinstall`: another template.
    template: Option<String>,
    /// For `snapshot` (a name, optional), `rollback` and `snapshot-delete`.
    snapshot: Option<String>,
    /// For `restore-backup`: the backup's id.
    backup: Option<String>,
}

async fn action(
    AxState(st): AxState<AppState>,
    session: Session,
    Path((name, action)): Path<(String, String)>,
    Query(q): Query<OwnerQuery>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let t = Target {
        name: name.clone(),
        owner: q.owner,
    };
    let owner = t.owner.clone();
    let owner = owner.as_deref();
    let action = match action.as_str() {
        "start" => Action::Start,
        "stop" => Action::Stop,
        "restart" => Action::Restart,
        "exec" => {
            let command = f.command.unwrap_or_default();
            let argv = vec!["sh".to_string(), "-c".to_string(), command.clone()];
            return match containers::exec(&st, &session.user, &name, owner, argv, None).await {
                Ok(out) => {
                    render_container(&st, &session, &t, StatusCode::OK, command, Some(out), None)
                        .await
                }
                Err(AppError::NotFound) => not_found("container"),
                Err(e) if is_client_error(&e) => {
                    let msg = format!("Could not run the command: {e}");
                    render_container(&st, &session, &t, status(&e), command, None, Some(msg)).await
                }
                Err(e) => PageError(e).into_response(),
            };
        }
        "resize" => {
            let text = |v: &Option<String>| v.as_deref().and_then(opt);
            let parsed = (|| {
                let procs = text(&f.procs)
                    .map(|p| p.parse::<u64>())
                    .transpose()
                    .map_err(|_| {
                        AppError::Unprocessable("Processes: give a whole number.".into())
                    })?;
                Ok::<_, AppError>(Resize {
                    memory: text(&f.memory)
                        .map(Size::Text)
                        .map(|m| m.bytes("memory"))
                        .transpose()?,
                    cpus_milli: text(&f.cpus)
                        .map(Cpus::Text)
                        .map(|c| c.milli("cpus"))
                        .transpose()?,
                    disk: text(&f.disk)
                        .map(Size::Text)
                        .map(|d| d.bytes("disk"))
                        .transpose()?,
                    procs,
                    io: Default::default(),
                })
            })();
            let resize = match parsed {
                Ok(r) => r,
                Err(e) => {
                    return render_container(
                        &st,
                        &session,
                        &t,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        String::new(),
                        None,
                        Some(e.to_string()),
                    )
                    .await;
                }
            };
            let started = containers::resize(&st, &session.user, &name, owner, resize).await;
            return after_change(&st, &session, &t, "resize", started).await;
        }
        "reinstall" => {
            if f.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return unconfirmed(&st, &session, &t, "reinstalled").await;
            }
            let template = f.template.as_deref().and_then(opt);
            let started = containers::reinstall(&st, &session.user, &name, owner, template).await;
            return after_change(&st, &session, &t, "reinstall", started).await;
        }
        "snapshot" => {
            let snap = f.snapshot.as_deref().and_then(opt);
            let started = copies::take_snapshot(&st, &session.user, &name, owner, snap).await;
            return after_change(&st, &session, &t, "snapshot", started).await;
        }
        "rollback" => {
            if f.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return unconfirmed(&st, &session, &t, "rolled back").await;
            }
            let snap = f.snapshot.unwrap_or_default();
            let started = copies::restore_snapshot(&st, &session.user, &name, owner, snap).await;
            return after_change(&st, &session, &t, "roll back", started).await;
        }
        "snapshot-delete" => {
            let snap = f.snapshot.unwrap_or_default();
            return match copies::delete_snapshot(&st, &session.user, &name, owner, snap).await {
                Ok(()) => Redirect::to(&format!("/containers/{name}{}", t.query())).into_response(),
                Err(e) => after_change(&st, &session, &t, "delete the snapshot of", Err(e)).await,
            };
        }
        "backup" => {
            let started = copies::backup(&st, &session.user, &name, owner).await;
            return after_change(&st, &session, &t, "back up", started).await;
        }
        "restore-backup" => {
            if f.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return unconfirmed(&st, &session, &t, "restored").await;
            }
            let id = f.backup.unwrap_or_default();
            let started = copies::restore_backup(&st, &session.user, &name, owner, id, None).await;
            return after_change(&st, &session, &t, "restore", started).await;
        }
        "destroy" => {
            if f.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return unconfirmed(&st, &session, &t, "destroyed").await;
            }
            let result = match containers::destroy(&st, &session.user, &name, None).await {
                Ok(op) => super::finish(&st, &op).await,
                Err(e) => Err(e),
            };
            return match result {
                Ok(None) => Redirect::to("/").into_response(),
                Ok(Some(progress)) => progress,
                Err(AppError::NotFound) => not_found("container"),
                Err(e) => PageError(e).into_response(),
            };
        }
        _ => return not_found("page"),
    };
    let result = match containers::act(&st, &session.user, &name, owner, action).await {
        Ok(op) => super::finish(&st, &op).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(None) => Redirect::to("/").into_response(),
        Ok(Some(progress)) => progress,
        Err(AppError::NotFound) => not_found("container"),
        Err(e) if is_client_error(&e) => {
            let msg = format!("Could not {} {name:?}: {e}", action.as_str());
            dashboard_page(&st, &session, status(&e), None, Some(msg)).await
        }
        Err(e) => PageError(e).into_response(),
    }
}
