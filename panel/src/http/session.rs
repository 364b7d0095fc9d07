//! Browser sessions. Pages work without JavaScript: plain forms, each with a CSRF token
//! tied to the session, answered by redirects (POST/redirect/GET). Sessions live in
//! HttpOnly, SameSite=Strict cookies (Secure behind TLS), and a new one is issued at every
//! login.

use askama::Template;
use axum::extract::{FromRequestParts, State as AxState};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::error::{status, PageError};
use super::render::{page_error, render};
use crate::domain::User;
use crate::service::auth::{Locked, Secret};
use crate::service::sessions::{self, LoginRefused, LoginStep, SESSION_TTL};
use crate::service::AppState;

const SESSION_COOKIE: &str = "acetate_session";
const LOGIN_COOKIE: &str = "acetate_login";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/code", post(login_code))
        .route("/logout", post(logout))
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

/// The request's session id, if it has one.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
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

/// The logged-in user of a page request; anonymous requests go to the login page.
#[derive(Debug)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        match sessions::session(st, &id).await {
            // A password someone else chose is changed before anything else is done.
            Ok(Some((user, _)))
                if user.must_change_password != 0
                    && !matches!(
                        parts.uri.path(),
                        "/account" | "/account/password" | "/logout"
                    ) =>
            {
                Err(Redirect::to("/account").into_response())
            }
            // The provider requires a second factor of this role: set it up first.
            Ok(Some((user, _)))
                if user.totp_enabled == 0
                    && st.second_factor_roles.contains(&user.role())
                    && !parts.uri.path().starts_with("/account/totp")
                    && !matches!(parts.uri.path(), "/logout") =>
            {
                Err(Redirect::to("/account/totp").into_response())
            }
            Ok(Some((user, csrf))) => Ok(Session { user, csrf }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

impl Session {
    /// The navigation for this account's pages, `here` being the section of the page.
    pub fn nav(&self, here: &'static str) -> Option<crate::http::nav::Nav> {
        crate::http::nav::Nav::of(&self.user, &self.csrf, here)
    }

    /// The refusal of a form whose CSRF token is not this session's; `None` if it is.
    pub fn reject_forged(&self, token: &str) -> Option<Response> {
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

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<crate::http::nav::Nav>,
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
    let csrf = sessions::form_token();
    let page = LoginPage {
        nav: None,
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

#[derive(Template)]
#[template(path = "login_code.html")]
struct CodePage {
    nav: Option<crate::http::nav::Nav>,
    csrf: String,
    challenge: String,
    name: String,
    error: Option<String>,
}

/// The second step: a code for the challenge the password gave (the login form's CSRF
/// cookie stays).
fn code_form(
    headers: &HeaderMap,
    status: StatusCode,
    challenge: String,
    name: String,
    error: Option<String>,
) -> Response {
    let csrf = cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    let page = CodePage {
        nav: None,
        csrf,
        challenge,
        name,
        error,
    };
    (status, render(&page)).into_response()
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

/// The client's address, as an extractor (see [`client_address`]).
#[derive(Debug)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(
            &parts.extensions,
            &parts.headers,
        )))
    }
}

/// Proxies whose forwarding headers are believed besides this host's own (loopback).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<ipnet::IpNet>>);

impl TrustedProxies {
    fn trusts(&self, ip: std::net::IpAddr) -> bool {
        ip.is_loopback() || self.0.iter().any(|n| n.contains(&ip))
    }
}

fn peer_and_proxies(
    extensions: &axum::http::Extensions,
) -> (Option<std::net::IpAddr>, TrustedProxies) {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        // On a dual-stack socket ([::]) an IPv4 client shows as ::ffff:a.b.c.d.
        .map(|c| c.0.ip().to_canonical());
    let proxies = extensions
        .get::<TrustedProxies>()
        .cloned()
        .unwrap_or_default();
    (peer, proxies)
}

/// Whether the request reached the panel over HTTPS: a trusted proxy (one on this host,
/// or one the provider lists with `--trusted-proxy`) says so in `X-Forwarded-Proto`.
pub fn behind_tls(extensions: &axum::http::Extensions, headers: &HeaderMap) -> bool {
    let (peer, proxies) = peer_and_proxies(extensions);
    peer.is_some_and(|p| proxies.trusts(p))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Over HTTPS, every answer tells the browser to come back only over HTTPS (HSTS, a
/// year).
pub async fn strict_transport(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let tls = behind_tls(req.extensions(), req.headers());
    let mut resp = next.run(req).await;
    if tls {
        resp.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    resp
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not a trusted proxy itself (each proxy appends the
/// address it was reached from; only the trusted end of the list is believed).
fn client_address(extensions: &axum::http::Extensions, headers: &HeaderMap) -> String {
    let (peer, proxies) = peer_and_proxies(extensions);
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    match peer {
        Some(ip) => client_of(ip, &forwarded, &proxies).to_string(),
        None => "unknown".into(),
    }
}

fn client_of(
    peer: std::net::IpAddr,
    forwarded: &[&str],
    proxies: &TrustedProxies,
) -> std::net::IpAddr {
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        if !proxies.trusts(client) {
            break;
        }
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => client = ip,
            Err(_) => break,
        }
    }
    client
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
    let old = cookie(&headers, SESSION_COOKIE).map(|id| crate::service::auth::token_hash(&id));
    let result = sessions::login(&st, &f.name, Secret(f.password), &address, old.as_deref()).await;
    match result {
        Ok(LoginStep::Session(new)) => logged_in(&headers, &new),
        Ok(LoginStep::Code { challenge, user }) => {
            code_form(&headers, StatusCode::OK, challenge.0, user, None)
        }
        Err(refused) => match refusal(refused, "Wrong name or password.") {
            Ok((status, msg)) => login_form(&headers, status, f.name, Some(msg)),
            Err(e) => PageError(e).into_response(),
        },
    }
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    challenge: String,
    code: String,
}

async fn login_code(
    AxState(st): AxState<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let address = client_address(&extensions, &headers);
    if cookie(&headers, LOGIN_COOKIE).is_none_or(|c| c != f.csrf) {
        return login_form(
            &headers,
            StatusCode::FORBIDDEN,
            String::new(),
            Some("The form expired; please try again.".into()),
        );
    }
    let old = cookie(&headers, SESSION_COOKIE).map(|id| crate::service::auth::token_hash(&id));
    match sessions::login_code(&st, &f.challenge, &f.code, &address, old.as_deref()).await {
        Ok(new) => logged_in(&headers, &new),
        Err(LoginRefused::Expired) => login_form(
            &headers,
            StatusCode::UNAUTHORIZED,
            String::new(),
            Some(
                "This login expired or took too many codes: enter your name and password again."
                    .into(),
            ),
        ),
        Err(refused) => match refusal(refused, "That code is not right (or was used already).") {
            Ok((status, msg)) => code_form(&headers, status, f.challenge, String::new(), Some(msg)),
            Err(e) => PageError(e).into_response(),
        },
    }
}

/// The status and sentence for a refused login (`wrong`: what a wrong secret is called),
/// or the internal error behind it.
fn refusal(
    refused: LoginRefused,
    wrong: &str,
) -> Result<(StatusCode, String), crate::error::AppError> {
    Ok(match refused {
        LoginRefused::Locked(why) => {
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
            (StatusCode::TOO_MANY_REQUESTS, msg)
        }
        LoginRefused::Wrong { now_locked: true } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins: this account is locked for 15 minutes.".into(),
        ),
        LoginRefused::Wrong { now_locked: false } => (StatusCode::UNAUTHORIZED, wrong.into()),
        LoginRefused::Expired => (
            StatusCode::UNAUTHORIZED,
            "This login expired: enter your name and password again.".into(),
        ),
        LoginRefused::Error(e) if e.is_internal() => return Err(e),
        LoginRefused::Error(e) => (status(&e), e.to_string()),
    })
}

/// The session cookie of a new login, and on to the role's landing page (the provider's
/// host page, the reseller's customers and plans, the customer's containers).
fn logged_in(headers: &HeaderMap, new: &sessions::NewSession) -> Response {
    let landing = match new.user.role() {
        crate::domain::Role::Provider => "/provider",
        crate::domain::Role::Reseller => "/reseller",
        crate::domain::Role::Customer => "/",
    };
    (
        AppendHeaders([
            (
                SET_COOKIE,
                set_cookie(headers, SESSION_COOKIE, &new.id.0, SESSION_TTL),
            ),
            (SET_COOKIE, set_cookie(headers, LOGIN_COOKIE, "", 0)),
        ]),
        Redirect::to(landing),
    )
        .into_response()
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
        let _ = sessions::logout(&st, &id).await;
    }
    (
        [(SET_COOKIE, set_cookie(&headers, SESSION_COOKIE, "", 0))],
        Redirect::to("/login"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv4_client_of_a_dual_stack_socket_is_its_ipv4_address() {
        let mut ext = axum::http::Extensions::new();
        let mapped: std::net::SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        ext.insert(axum::extract::ConnectInfo(mapped));
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.5".parse().unwrap());
        // The loopback proxy is recognised as such, and believed.
        assert_eq!(client_address(&ext, &headers), "203.0.113.5");
        assert_eq!(peer_and_proxies(&ext).0, Some(ip("127.0.0.1")));
    }

    #[test]
    fn only_trusted_proxies_are_believed_and_only_their_end_of_the_list() {
        let none = TrustedProxies::default();
        let lan = TrustedProxies(std::sync::Arc::new(vec!["10.0.0.0/8".parse().unwrap()]));
        // A client talking directly is itself, whatever it claims.
        assert_eq!(
            client_of(ip("198.51.100.7"), &["192.0.2.1"], &lan),
            ip("198.51.100.7")
        );
        // A proxy on this host: the address it appended.
        assert_eq!(
            client_of(ip("127.0.0.1"), &["203.0.113.5"], &none),
            ip("203.0.113.5")
        );
        // Behind a listed proxy which itself forwarded for a client: the client; a forged
        // entry further left is not reached.
        let chain = ["192.0.2.66", "203.0.113.5", "10.1.2.3"];
        assert_eq!(client_of(ip("127.0.0.1"), &chain, &lan), ip("203.0.113.5"));
        assert_eq!(
            client_of(ip("10.9.9.9"), &["203.0.113.5"], &lan),
            ip("203.0.113.5")
        );
        // Without the setting, the unlisted proxy is the client.
        assert_eq!(client_of(ip("127.0.0.1"), &chain, &none), ip("10.1.2.3"));
        assert_eq!(
            client_of(ip("10.9.9.9"), &["203.0.113.5"], &none),
            ip("10.9.9.9")
        );
        // Garbage stops the walk at the last address believed.
        assert_eq!(client_of(ip("127.0.0.1"), &["x"], &none), ip("127.0.0.1"));
    }
}
