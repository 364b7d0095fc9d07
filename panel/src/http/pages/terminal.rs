//! The browser terminal: a page with xterm.js (vendored in `static/vendor`, served by the
//! panel itself) and its WebSocket, authenticated by the login session, accepted only from
//! the panel's own pages (the `Origin` is checked), and closed when the login ends.

use std::time::Duration;

use askama::Template;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State as AxState};
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::http::error::PageError;
use crate::http::render::{page_error, render};
use crate::http::session::{session_id, ClientAddr, Session};
use crate::runtime::interactive::SessionRequest;
use crate::service::shells::{self, SessionKind};
use crate::service::{sessions, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/containers/{name}/terminal", get(page))
        .route("/containers/{name}/terminal/ws", get(socket))
        .route("/static/terminal.js", get(terminal_js))
        .route("/static/vendor/xterm/xterm.js", get(xterm_js))
        .route("/static/vendor/xterm/addon-fit.js", get(fit_js))
        .route("/static/vendor/xterm/xterm.css", get(xterm_css))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, kind),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

const JS: &str = "text/javascript; charset=utf-8";

async fn terminal_js() -> Response {
    asset(JS, include_str!("../../../../static/terminal.js"))
}

async fn xterm_js() -> Response {
    asset(JS, include_str!("../../../../static/vendor/xterm/xterm.js"))
}

async fn fit_js() -> Response {
    asset(
        JS,
        include_str!("../../../../static/vendor/xterm/addon-fit.js"),
    )
}

async fn xterm_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../../../static/vendor/xterm/xterm.css"),
    )
}

#[derive(Debug, Deserialize)]
struct TerminalQuery {
    owner: Option<String>,
    cols: Option<u16>,
    rows: Option<u16>,
}

#[derive(Template)]
#[template(path = "terminal.html")]
struct TerminalPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    name: String,
    owner_q: String,
    login: String,
    host: String,
    ssh_port: Option<u16>,
    idle_minutes: u64,
}

async fn page(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<TerminalQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) =
        crate::service::containers::show(&st, &session.user, &name, q.owner.as_deref()).await
    {
        return PageError(e).into_response();
    }
    let host = super::access::host_of(&headers);
    let login = match &q.owner {
        Some(o) if *o != session.user.name => format!("{o}+{name}"),
        _ => name.clone(),
    };
    let page = TerminalPage {
        nav: session.nav("/"),
        owner_q: q.owner.map_or(String::new(), |o| format!("?owner={o}")),
        name,
        login,
        host,
        ssh_port: st.shells.ssh_port(),
        idle_minutes: st.shells.limits().idle.as_secs() / 60,
    };
    let mut resp = render(&page);
    // xterm.js styles its rows with a <style> element it creates.
    resp.headers_mut().insert(
        CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    resp
}

/// Whether the request comes from a page of this panel: its `Origin` names the host the
/// request was sent to (browsers always send it on WebSocket handshakes).
fn same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// How often an open terminal checks that its login is still valid.
const LOGIN_CHECK: Duration = Duration::from_secs(5);

async fn socket(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<TerminalQuery>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return page_error(
            StatusCode::FORBIDDEN,
            "Refused",
            "The terminal opens only from the panel's own pages.",
        );
    }
    let req = SessionRequest {
        argv: Vec::new(),
        env: vec![("TERM".into(), "xterm-256color".into())],
        tty: Some((
            q.cols.unwrap_or(80).clamp(1, 1000),
            q.rows.unwrap_or(24).clamp(1, 1000),
        )),
    };
    let open = match shells::open(
        &st,
        &session.user,
        &name,
        q.owner.as_deref(),
        SessionKind::Terminal,
        Some(peer),
        req,
        None,
    )
    .await
    {
        Ok(open) => open,
        Err(e) => return PageError(e).into_response(),
    };
    // The terminal ends with the login that opened it (logout, expiry, "log out
    // everywhere").
    let (id, cookie) = (open.ticket.id(), session_id(&headers).unwrap_or_default());
    let watcher = st.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(LOGIN_CHECK).await;
            if !watcher.shells.is_open(id) {
                return;
            }
            if !matches!(sessions::session(&watcher, &cookie).await, Ok(Some(_))) {
                watcher.shells.end_one(id);
                return;
            }
        }
    });
    let idle = st.shells.limits().idle;
    ws.on_upgrade(move |socket| crate::http::stream::bridge(socket, open, idle))
}
