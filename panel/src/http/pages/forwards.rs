//! The container page's forms for publishing: add or remove a forward or a domain; the
//! provider's form for a reseller's ports.

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;

use crate::error::AppError;
use crate::http::error::PageError;
use crate::http::extract::OwnerQuery;
use crate::http::render::page_error;
use crate::http::session::{CsrfForm, Session};
use crate::service::domains::{self, DomainChange, DomainRequest};
use crate::service::forwards::{self, ForwardRequest};
use crate::service::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/resellers/{name}/ports", post(set_ports))
        .route("/resellers/{name}/ports/delete", post(remove_ports))
        .route("/containers/{name}/forwards", post(add))
        .route(
            "/containers/{name}/forwards/{proto}/{port}/delete",
            post(remove),
        )
        .route("/containers/{name}/domains", post(add_domain))
        .route(
            "/containers/{name}/domains/{domain}/delete",
            post(remove_domain),
        )
        .route(
            "/containers/{name}/domains/{domain}/https",
            post(https_domain),
        )
}

#[derive(Deserialize)]
struct ForwardForm {
    csrf: String,
    public_port: String,
    private_port: String,
    proto: String,
    #[serde(default)]
    public_address: String,
}

#[derive(Deserialize)]
struct RemoveForm {
    csrf: String,
    #[serde(default)]
    public_address: String,
}

/// A port typed into a form.
fn port_number(what: &str, v: &str) -> Result<i64, AppError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| AppError::Unprocessable(format!("{what}: {v:?} is not a port number")))
}

fn back(name: &str, owner: &Option<String>) -> Response {
    back_to(name, owner, "forwards")
}

fn back_to(name: &str, owner: &Option<String>, section: &str) -> Response {
    let q = owner
        .as_deref()
        .map_or(String::new(), |o| format!("?owner={o}"));
    Redirect::to(&format!("/containers/{name}{q}#{section}")).into_response()
}

fn refused_as(title: &str, e: AppError) -> Response {
    match e {
        AppError::Unprocessable(m) | AppError::Conflict(m) => page_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            title,
            &format!("{m}. Nothing changed."),
        ),
        e => PageError(e).into_response(),
    }
}

fn refused(e: AppError) -> Response {
    refused_as("Not forwarded", e)
}

async fn add(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
    Form(f): Form<ForwardForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let req = match (
        port_number("public_port", &f.public_port),
        port_number("private_port", &f.private_port),
    ) {
        (Ok(public_port), Ok(private_port)) => ForwardRequest {
            public_port,
            private_port,
            proto: Some(f.proto),
            public_address: Some(f.public_address),
        },
        (Err(e), _) | (_, Err(e)) => return refused(e),
    };
    match forwards::add(&st, &session.user, &name, q.owner.as_deref(), &req).await {
        Ok(_) => back(&name, &q.owner),
        Err(e) => refused(e),
    }
}

async fn remove(
    AxState(st): AxState<AppState>,
    session: Session,
    Path((name, proto, port)): Path<(String, String, i64)>,
    Query(q): Query<OwnerQuery>,
    Form(f): Form<RemoveForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let at = Some(f.public_address.as_str());
    match forwards::remove(
        &st,
        &session.user,
        &name,
        q.owner.as_deref(),
        port,
        &proto,
        at,
    )
    .await
    {
        Ok(_) => back(&name, &q.owner),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
struct PortsForm {
    csrf: String,
    first_port: String,
    last_port: String,
    #[serde(default)]
    address: String,
}

/// The provider gives a reseller its range of public ports.
async fn set_ports(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<PortsForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let range = match (
        port_number("first_port", &f.first_port),
        port_number("last_port", &f.last_port),
    ) {
        (Ok(first_port), Ok(last_port)) => crate::db::forwards::PortRange {
            first_port,
            last_port,
            address: f.address,
        },
        (Err(e), _) | (_, Err(e)) => return refused_as("Ports not set", e),
    };
    match forwards::set_port_range(&st, &session.user, &name, range).await {
        Ok(_) => Redirect::to(&format!("/provider#reseller-{name}")).into_response(),
        Err(e) => refused_as("Ports not set", e),
    }
}

#[derive(Deserialize)]
struct RangeForm {
    csrf: String,
    #[serde(default)]
    address: String,
}

/// The provider takes a reseller's range on one address away.
async fn remove_ports(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<RangeForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match forwards::remove_port_range(&st, &session.user, &name, Some(&f.address)).await {
        Ok(()) => Redirect::to(&format!("/provider#reseller-{name}")).into_response(),
        Err(e) => refused_as("Ports not removed", e),
    }
}

#[derive(Deserialize)]
struct DomainForm {
    csrf: String,
    domain: String,
    port: String,
    /// A checkbox: present ("on") when ticked.
    #[serde(default)]
    https_only: Option<String>,
}

#[derive(Deserialize)]
struct HttpsForm {
    csrf: String,
    /// "on" or "off".
    https_only: String,
}

async fn add_domain(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
    Form(f): Form<DomainForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let req = match port_number("port", &f.port) {
        Ok(port) => DomainRequest {
            domain: f.domain,
            port: Some(port),
            https_only: Some(f.https_only.is_some()),
        },
        Err(e) => return refused_as("Domain not added", e),
    };
    match domains::add(&st, &session.user, &name, q.owner.as_deref(), &req).await {
        Ok(_) => back_to(&name, &q.owner, "domains"),
        Err(e) => refused_as("Domain not added", e),
    }
}

async fn remove_domain(
    AxState(st): AxState<AppState>,
    session: Session,
    Path((name, domain)): Path<(String, String)>,
    Query(q): Query<OwnerQuery>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    match domains::remove(&st, &session.user, &name, q.owner.as_deref(), &domain).await {
        Ok(_) => back_to(&name, &q.owner, "domains"),
        Err(e) => refused_as("Domain not removed", e),
    }
}

async fn https_domain(
    AxState(st): AxState<AppState>,
    session: Session,
    Path((name, domain)): Path<(String, String)>,
    Query(q): Query<OwnerQuery>,
    Form(f): Form<HttpsForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    let req = DomainChange {
        https_only: f.https_only == "on",
    };
    match domains::change(&st, &session.user, &name, q.owner.as_deref(), &domain, &req).await {
        Ok(_) => back_to(&name, &q.owner, "domains"),
        Err(e) => refused_as("Domain not changed", e),
    }
}
