//! The browser pages. They work without JavaScript: plain forms, each with a CSRF token
//! tied to the session, answered by redirects (POST/redirect/GET). Sessions live in
//! HttpOnly, SameSite=Strict cookies (Secure behind TLS), and a new one is issued at every
//! login.

use std::time::Instant;

use acetate_engine::size::{format_bytes, format_cpus};
use askama::Template;
use axum::extract::{FromRequestParts, Path, State as AxState};
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::containers::{
    act, create_for, destroy_for, exec_in, list_views, resolve, view, ContainerView, CreateRequest,
    ExecResponse, Size,
};
use crate::app::AppState;
use crate::auth::{self, Secret};
use crate::db::{Role, User};
use crate::error::AppError;

const SESSION_COOKIE: &str = "acetate_session";
const LOGIN_COOKIE: &str = "acetate_login";
/// Session lifetime in seconds.
const SESSION_TTL: i64 = 12 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/containers", post(create))
        .route("/containers/{name}", get(container_page))
        .route("/containers/{name}/{action}", post(action))
        .route("/static/acetate.css", get(css))
        .route("/static/acetate.js", get(js))
}

async fn css() -> Response {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../static/acetate.css"),
    )
        .into_response()
}

/// Progressive enhancement only: every page works without it.
async fn js() -> Response {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../../static/acetate.js"),
    )
        .into_response()
}

fn random_hex() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The stored hash of the request's session id, if it has one.
pub(super) fn session_hash(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE).map(|id| auth::token_hash(&id))
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> String {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

pub(super) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => AppError::Internal(format!("render page: {e}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
    back: &'a str,
}

pub(super) fn page_error(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        render(&Message {
            title,
            text,
            back: "/",
        }),
    )
        .into_response()
}

/// The logged-in user of a page request; anonymous requests go to the login page.
pub(super) struct Session {
    pub(super) user: User,
    pub(super) csrf: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        match st.db.session(&auth::token_hash(&id)).await {
            Ok(Some((user, csrf))) => Ok(Session { user, csrf }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(e.into_response()),
        }
    }
}

impl Session {
    /// The refusal of a form whose CSRF token is not this session's; `None` if it is.
    pub(super) fn reject_forged(&self, token: &str) -> Option<Response> {
        if token.is_empty() || token != self.csrf {
            return Some(page_error(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not come from your current session. Reload the page and try again.",
            ));
        }
        None
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    name: String,
    error: Option<String>,
}

/// Login form, with a double-submit CSRF token (cookie + hidden field).
fn login_form(
    headers: &HeaderMap,
    status: StatusCode,
    name: String,
    error: Option<String>,
) -> Response {
    let csrf = random_hex();
    let page = LoginPage {
        csrf: csrf.clone(),
        name,
        error,
    };
    (
        status,
        [(SET_COOKIE, set_cookie(headers, LOGIN_COOKIE, &csrf, 3600))],
        render(&page),
    )
        .into_response()
}

async fn login_page(headers: HeaderMap) -> Response {
    login_form(&headers, StatusCode::OK, String::new(), None)
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    name: String,
    password: String,
}

/// The client's address: the peer, or (only when the peer is a proxy on this host) the
/// last address a proxy added to `X-Forwarded-For`.
fn client_address(extensions: &axum::http::Extensions, headers: &HeaderMap) -> String {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = || {
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
    };
    match peer {
        Some(ip) if ip.is_loopback() => forwarded().unwrap_or_else(|| ip.to_string()),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    }
}

async fn login(
    AxState(st): AxState<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let address = client_address(&extensions, &headers);
    if cookie(&headers, LOGIN_COOKIE).is_none_or(|c| c != f.csrf) {
        return login_form(
            &headers,
            StatusCode::FORBIDDEN,
            f.name,
            Some("The form expired; please try again.".into()),
        );
    }
    let locked = st
        .logins
        .lock()
        .expect("login limiter")
        .check(&f.name, &address, Instant::now());
    if let Err(why) = locked {
        use crate::auth::Locked;
        let msg = match why {
            Locked::Address(left) => format!(
                "Too many failed logins from your address: try again in {} minute(s).",
                left.as_secs().div_ceil(60)
            ),
            Locked::Account(left) => format!(
                "Too many failed logins: this account is locked for {} more minute(s) \
                 from your address.",
                left.as_secs().div_ceil(60)
            ),
        };
        return login_form(&headers, StatusCode::TOO_MANY_REQUESTS, f.name, Some(msg));
    }
    let user = match st.db.user_by_name(&f.name).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let password = Secret(f.password);
    let ok = match auth::verify_bounded(password, stored).await {
        Ok(ok) => ok,
        Err(e) => {
            let msg = e.to_string();
            return login_form(&headers, e.status(), f.name, Some(msg));
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        let now_locked =
            st.logins
                .lock()
                .expect("login limiter")
                .failed(&f.name, &address, Instant::now());
        let _ = st.db.audit(None, "login", &f.name, "failed").await;
        let msg = if now_locked {
            "Too many failed logins: this account is locked for 15 minutes."
        } else {
            "Wrong name or password."
        };
        let status = if now_locked {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::UNAUTHORIZED
        };
        return login_form(&headers, status, f.name, Some(msg.into()));
    };
    st.logins
        .lock()
        .expect("login limiter")
        .succeeded(&f.name, &address);
    // A new session at every login; the one this browser had, if any, ends.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        let _ = st.db.delete_session(&auth::token_hash(&old)).await;
    }
    let id = random_hex();
    if let Err(e) = st
        .db
        .create_session(&auth::token_hash(&id), user.id, &random_hex(), SESSION_TTL)
        .await
    {
        return e.into_response();
    }
    let _ = st.db.audit(Some(&user), "login", &user.name, "ok").await;
    (
        AppendHeaders([
            (
                SET_COOKIE,
                set_cookie(&headers, SESSION_COOKIE, &id, SESSION_TTL),
            ),
            (SET_COOKIE, set_cookie(&headers, LOGIN_COOKIE, "", 0)),
        ]),
        Redirect::to("/"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    pub(super) csrf: String,
}

async fn logout(
    AxState(st): AxState<AppState>,
    headers: HeaderMap,
    session: Session,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        let _ = st.db.delete_session(&auth::token_hash(&id)).await;
    }
    (
        [(SET_COOKIE, set_cookie(&headers, SESSION_COOKIE, "", 0))],
        Redirect::to("/login"),
    )
        .into_response()
}

/// One container row of the dashboard, formatted.
struct Row {
    name: String,
    owner: String,
    state: String,
    cpu: String,
    memory: String,
    disk: String,
    procs: String,
    actions: Vec<&'static str>,
}

fn row(c: &ContainerView) -> Row {
    let cg = c.usage.and_then(|u| u.cgroup);
    let limits = c.limits.as_ref();
    let running = c.state == "running";
    Row {
        name: c.name.clone(),
        owner: c.owner.clone().unwrap_or_else(|| "(unowned)".into()),
        state: c.state.clone(),
        cpu: cg.map_or("-".into(), |u| format!("{:.1}s", u.cpu_ns as f64 / 1e9)),
        memory: match (cg, limits) {
            (Some(u), Some(l)) => format!(
                "{} / {}",
                format_bytes(u.memory_bytes),
                format_bytes(l.memory)
            ),
            (None, Some(l)) => format_bytes(l.memory),
            _ => "-".into(),
        },
        disk: match (c.usage.and_then(|u| u.disk), limits) {
            (Some(d), _) => format!(
                "{} / {}",
                format_bytes(d.bytes_used),
                format_bytes(d.bytes_total)
            ),
            (None, Some(l)) => format_bytes(l.disk),
            _ => "-".into(),
        },
        procs: match (cg, limits) {
            (Some(u), Some(l)) => format!("{} / {}", u.procs, l.procs),
            _ => limits.map_or("-".into(), |l| {
                format!("{} (limit {})", format_cpus(l.cpus_milli), l.procs)
            }),
        },
        actions: if running {
            vec!["restart", "stop"]
        } else {
            vec!["start"]
        },
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    user: String,
    role: &'static str,
    customer: bool,
    csrf: String,
    empty: bool,
    /// The table's rows, rendered by [`DashboardRows`] (trusted HTML).
    rows_html: std::sync::Arc<str>,
    message: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard_rows.html")]
struct DashboardRows<'a> {
    customer: bool,
    csrf: &'a str,
    rows: Vec<Row>,
}

/// The dashboard's rows for a session: rendered again only when a container row or the
/// snapshot changed (the forms in them carry the session's CSRF token, hence per session).
async fn dashboard_rows(
    st: &AppState,
    session: &Session,
) -> Result<(bool, std::sync::Arc<str>), AppError> {
    let gens = (st.db.containers_generation(), st.snapshot.generation());
    let key = session.csrf.clone();
    if let Some((g, empty, html)) = st.page_cache.lock().expect("page cache").get(&key) {
        if *g == gens {
            return Ok((*empty, html.clone()));
        }
    }
    let views = list_views(st, &session.user).await?;
    let rows = DashboardRows {
        customer: session.user.role() == Role::Customer,
        csrf: &session.csrf,
        rows: views.iter().map(row).collect(),
    };
    let empty = rows.rows.is_empty();
    let html: std::sync::Arc<str> = rows
        .render()
        .map_err(|e| AppError::Internal(format!("render page: {e}")))?
        .into();
    let mut cache = st.page_cache.lock().expect("page cache");
    if cache.len() >= 10_000 {
        cache.clear();
    }
    cache.insert(key, (gens, empty, html.clone()));
    Ok((empty, html))
}

async fn dashboard_page(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let (empty, rows_html) = match dashboard_rows(st, session).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let page = Dashboard {
        user: session.user.name.clone(),
        role: session.user.role().as_str(),
        customer: session.user.role() == Role::Customer,
        csrf: session.csrf.clone(),
        empty,
        rows_html,
        message,
        error,
    };
    (status, render(&page)).into_response()
}

async fn dashboard(AxState(st): AxState<AppState>, session: Session) -> Response {
    dashboard_page(&st, &session, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
struct CreateForm {
    csrf: String,
    name: String,
    #[serde(default)]
    memory: String,
    #[serde(default)]
    cpus: String,
    #[serde(default)]
    disk: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

async fn create(
    AxState(st): AxState<AppState>,
    session: Session,
    Form(f): Form<CreateForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let req = CreateRequest {
        name: f.name.trim().to_string(),
        template: None,
        memory: opt(&f.memory).map(Size::Text),
        cpus: opt(&f.cpus).map(serde_json::Value::String),
        disk: opt(&f.disk).map(Size::Text),
        inodes: None,
        procs: None,
        io_weight: None,
    };
    let name = req.name.clone();
    match create_for(&st, session.user.clone(), req).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) if e.status().is_client_error() => {
            let msg = format!("Could not create {name:?}: {e}");
            dashboard_page(&st, &session, e.status(), None, Some(msg)).await
        }
        Err(e) => e.into_response(),
    }
}

/// One usage graph of the container page.
struct Graph {
    title: &'static str,
    svg: String,
}

/// CPU and memory over the last hour (raw samples) and the last 30 days (hours).
async fn graphs(st: &AppState, container_id: i64) -> Result<Vec<Graph>, AppError> {
    let mut out = Vec::new();
    for month in [false, true] {
        let series = super::billing::series(st, container_id, month).await?;
        let gap = if month { 2 * 3600 } else { 180 };
        let cpu: Vec<(i64, f64)> = series
            .points
            .iter()
            .filter(|p| p.seconds > 0)
            .map(|p| (p.at, p.cpu_us as f64 / (p.seconds as f64 * 1e4)))
            .collect();
        let memory: Vec<(i64, f64)> = series
            .points
            .iter()
            .map(|p| (p.at, p.memory as f64))
            .collect();
        out.push(Graph {
            title: if month {
                "CPU, last 30 days (% of one core)"
            } else {
                "CPU, last hour (% of one core)"
            },
            svg: crate::graph::line(&cpu, series.from, series.to, gap, |v| format!("{v:.0}%")),
        });
        out.push(Graph {
            title: if month {
                "Memory, last 30 days"
            } else {
                "Memory, last hour"
            },
            svg: crate::graph::line(&memory, series.from, series.to, gap, |v| {
                format_bytes(v as u64)
            }),
        });
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "container.html")]
struct ContainerPage {
    c: Row,
    /// Current limits, as the resize form shows them.
    limits: Option<(String, String, String, u64)>,
    /// Its address on the host's network, and the gateway.
    address: Option<(String, String)>,
    graphs: Vec<Graph>,
    csrf: String,
    command: String,
    output: Option<ExecResponse>,
    error: Option<String>,
}

async fn render_container(
    st: &AppState,
    session: &Session,
    name: &str,
    status: StatusCode,
    command: String,
    output: Option<ExecResponse>,
    error: Option<String>,
) -> Response {
    if session.user.role() != Role::Customer {
        return page_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such container.",
        );
    }
    // Only this container: one row, and its entry in the snapshot.
    let row = match resolve(st, &session.user, name, None).await {
        Ok(row) => row,
        Err(AppError::NotFound) => {
            return page_error(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such container.",
            )
        }
        Err(e) => return e.into_response(),
    };
    let view = view(&row, st.snapshot.get(&row.engine_name).as_deref());
    let graphs = match graphs(st, row.id).await {
        Ok(g) => g,
        Err(e) => return e.into_response(),
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
        c: self::row(&view),
        limits,
        address,
        graphs,
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
) -> Response {
    render_container(
        &st,
        &session,
        &name,
        StatusCode::OK,
        String::new(),
        None,
        None,
    )
    .await
}

/// The container page again, saying that the name typed did not match.
async fn unconfirmed(st: &AppState, session: &Session, name: &str, done: &str) -> Response {
    let msg = format!("Type {name:?} to confirm: nothing was {done}.");
    render_container(
        st,
        session,
        name,
        StatusCode::UNPROCESSABLE_ENTITY,
        String::new(),
        None,
        Some(msg),
    )
    .await
}

/// After a change made from the container page: back to it, or the page with the reason.
async fn after_change(
    st: &AppState,
    session: &Session,
    name: &str,
    verb: &str,
    result: Result<(), AppError>,
) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/containers/{name}")).into_response(),
        Err(AppError::NotFound) => page_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such container.",
        ),
        Err(e) if e.status().is_client_error() => {
            let msg = format!("Could not {verb} {name:?}: {e}");
            render_container(
                st,
                session,
                name,
                e.status(),
                String::new(),
                None,
                Some(msg),
            )
            .await
        }
        Err(e) => e.into_response(),
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
}

async fn action(
    AxState(st): AxState<AppState>,
    session: Session,
    Path((name, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let not_found = || {
        page_error(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such container.",
        )
    };
    let action: &'static str = match action.as_str() {
        "start" => "start",
        "stop" => "stop",
        "restart" => "restart",
        "exec" => {
            let command = f.command.unwrap_or_default();
            let argv = vec!["sh".to_string(), "-c".to_string(), command.clone()];
            return match exec_in(&st, &session.user, &name, None, argv, None).await {
                Ok(out) => {
                    render_container(
                        &st,
                        &session,
                        &name,
                        StatusCode::OK,
                        command,
                        Some(out),
                        None,
                    )
                    .await
                }
                Err(AppError::NotFound) => not_found(),
                Err(e) if e.status().is_client_error() => {
                    let msg = format!("Could not run the command: {e}");
                    render_container(&st, &session, &name, e.status(), command, None, Some(msg))
                        .await
                }
                Err(e) => e.into_response(),
            };
        }
        "resize" => {
            let text = |v: &Option<String>| v.as_deref().and_then(opt);
            let procs = match text(&f.procs).map(|p| p.parse::<u64>()) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(_)) => {
                    let msg = "Processes: give a whole number.".to_string();
                    return render_container(
                        &st,
                        &session,
                        &name,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        String::new(),
                        None,
                        Some(msg),
                    )
                    .await;
                }
            };
            let req = super::containers::ResizeRequest {
                memory: text(&f.memory).map(Size::Text),
                cpus: text(&f.cpus).map(serde_json::Value::String),
                disk: text(&f.disk).map(Size::Text),
                procs,
            };
            let result = super::containers::resize_for(&st, &session.user, &name, None, req).await;
            return after_change(&st, &session, &name, "resize", result.map(|_| ())).await;
        }
        "reinstall" => {
            if f.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return unconfirmed(&st, &session, &name, "reinstalled").await;
            }
            let req = super::containers::ReinstallRequest::default();
            let result =
                super::containers::reinstall_for(&st, &session.user, &name, None, req).await;
            return after_change(&st, &session, &name, "reinstall", result.map(|_| ())).await;
        }
        "destroy" => {
            if f.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return unconfirmed(&st, &session, &name, "destroyed").await;
            }
            return match destroy_for(&st, &session.user, &name, None).await {
                Ok(()) => Redirect::to("/").into_response(),
                Err(AppError::NotFound) => not_found(),
                Err(e) => e.into_response(),
            };
        }
        _ => return page_error(StatusCode::NOT_FOUND, "Not found", "There is no such page."),
    };
    match act(st.clone(), session.user.clone(), name.clone(), None, action).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(AppError::NotFound) => not_found(),
        Err(e) if e.status().is_client_error() => {
            let msg = format!("Could not {action} {name:?}: {e}");
            dashboard_page(&st, &session, e.status(), None, Some(msg)).await
        }
        Err(e) => e.into_response(),
    }
}
