//! Browser pages for plugins (resellers) and invoices (everyone in scope).

use askama::Template;
use axum::extract::{Multipart, Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::db::plugins::{CallRow, EventRow, PluginRow};
use crate::domain::{Money, Period, Role};
use crate::error::AppError;
use crate::http::error::{is_client_error, PageError};
use crate::http::render::{not_found as missing, render};
use crate::http::session::{CsrfForm, Session};
use crate::service::plugins::{
    self, delete, find, store, try_plugin, update, DryRunRequest, DryRunResult, PluginChange,
};
use crate::service::{accounts, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/plugins",
            get(plugins_page)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::max(
                    acetate_plugins::MAX_COMPONENT_BYTES + 64 * 1024,
                )),
        )
        .route("/plugins/{name}", get(plugin_page))
        .route("/plugins/{name}/dry-run", post(dry_run))
        .route("/plugins/{name}/{action}", post(switch))
        .merge(super::invoices::router())
}

fn not_found() -> Response {
    missing("page")
}

/// Client errors shown on the page they came from; server errors as the API does.
fn shown(e: AppError) -> Result<String, AppError> {
    if is_client_error(&e) {
        Ok(e.to_string())
    } else {
        Err(e)
    }
}

#[derive(Template)]
#[template(path = "plugins.html")]
struct PluginsPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    csrf: String,
    plugins: Vec<PluginRow>,
    error: Option<String>,
}

async fn plugins_list(
    st: &AppState,
    session: &Session,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    if session.user.role() != Role::Reseller {
        return not_found();
    }
    match plugins::list(st, &session.user).await {
        Ok(plugins) => (
            status,
            render(&PluginsPage {
                nav: session.nav("/plugins"),
                csrf: session.csrf.clone(),
                plugins,
                error,
            }),
        )
            .into_response(),
        Err(e) => PageError(e).into_response(),
    }
}

async fn plugins_page(AxState(st): AxState<AppState>, session: Session) -> Response {
    plugins_list(&st, &session, StatusCode::OK, None).await
}

/// The upload form: multipart with `csrf`, `name` and `file`.
async fn upload(AxState(st): AxState<AppState>, session: Session, mut form: Multipart) -> Response {
    if session.user.role() != Role::Reseller {
        return not_found();
    }
    let (mut csrf, mut name, mut file) = (String::new(), String::new(), None);
    // A new version of an existing plugin (from its page), or a new plugin.
    let mut replacing = false;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let field_name = field.name().unwrap_or_default().to_string();
                match field_name.as_str() {
                    "csrf" => csrf = field.text().await.unwrap_or_default(),
                    "name" => name = field.text().await.unwrap_or_default().trim().to_string(),
                    "file" => file = field.bytes().await.ok(),
                    "replace" => replacing = true,
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                let msg = format!("The upload did not arrive whole: {e}");
                return plugins_list(&st, &session, StatusCode::BAD_REQUEST, Some(msg)).await;
            }
        }
    }
    if let Some(r) = session.reject_forged(&csrf) {
        return r;
    }
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        let msg = "Choose a .wasm file to upload.".to_string();
        return plugins_list(&st, &session, StatusCode::UNPROCESSABLE_ENTITY, Some(msg)).await;
    };
    let done = if replacing {
        crate::service::plugins::replace(&st, &session.user, &name, file).await
    } else {
        store(&st, &session.user, &name, file).await
    };
    match done {
        Ok(_) => Redirect::to(&format!("/plugins/{name}")).into_response(),
        Err(e) => match shown(e) {
            Ok(msg) => {
                let msg = format!("Could not upload {name:?}: {msg}");
                plugins_list(&st, &session, StatusCode::UNPROCESSABLE_ENTITY, Some(msg)).await
            }
            Err(e) => PageError(e).into_response(),
        },
    }
}

async fn switch(
    AxState(st): AxState<AppState>,
    session: Session,
    Path((name, action)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    if session.user.role() != Role::Reseller {
        return not_found();
    }
    let me = &session.user;
    let patch = |enabled: Option<bool>, on_failure: Option<&str>| PluginChange {
        enabled,
        on_failure: on_failure.map(str::to_string),
    };
    let result = match action.as_str() {
        "enable" => update(&st, me, &name, &patch(Some(true), None))
            .await
            .map(|_| ()),
        "disable" => update(&st, me, &name, &patch(Some(false), None))
            .await
            .map(|_| ()),
        "fail-open" => update(&st, me, &name, &patch(None, Some("allow")))
            .await
            .map(|_| ()),
        "fail-closed" => update(&st, me, &name, &patch(None, Some("deny")))
            .await
            .map(|_| ()),
        "delete" => delete(&st, me, &name).await,
        "rollback" => crate::service::plugins::roll_back(&st, me, &name)
            .await
            .map(|_| ()),
        _ => return not_found(),
    };
    match result {
        Ok(()) if action == "rollback" => Redirect::to(&format!("/plugins/{name}")).into_response(),
        Ok(()) => Redirect::to("/plugins").into_response(),
        Err(AppError::NotFound) => not_found(),
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "plugin.html")]
struct PluginPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    csrf: String,
    p: PluginRow,
    calls: Vec<CallView>,
    events: Vec<EventRow>,
    customers: Vec<String>,
    period: String,
    /// The contract's example events a hook can be dry-run on.
    samples: Vec<&'static str>,
    result: Option<DryRunView>,
    error: Option<String>,
}

struct CallView {
    c: CallRow,
    log: String,
}

struct DryRunView {
    outcome: String,
    lines: Vec<(String, String, String)>,
    total: String,
    fuel: u64,
    micros: u128,
    log: String,
}

fn log_text(lines: &[acetate_plugins::LogLine]) -> String {
    lines
        .iter()
        .map(|l| format!("{}: {}", l.level.as_str(), l.message))
        .collect::<Vec<_>>()
        .join("\n")
}

fn dry_run_view(r: DryRunResult) -> DryRunView {
    let outcome = match (&r.failure, &r.decision) {
        (Some(f), _) => format!("failed: the plugin {f}"),
        (None, None) if r.actions.as_ref().is_some_and(Vec::is_empty) => "no action".into(),
        (None, None) if r.actions.is_some() => r
            .actions
            .iter()
            .flatten()
            .map(|a| serde_json::to_string(a).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("; "),
        (None, Some(acetate_plugins::Decision::Allow)) => "allow".into(),
        (None, Some(acetate_plugins::Decision::Deny(m))) => format!("deny: {m}"),
        (None, Some(acetate_plugins::Decision::Amend(s))) => {
            format!("amend to {}", serde_json::to_string(s).unwrap_or_default())
        }
        (None, None) => format!("{} invoice lines", r.lines.as_ref().map_or(0, Vec::len)),
    };
    let lines = r.lines.as_deref().unwrap_or_default();
    DryRunView {
        outcome,
        total: Money::amount_in(
            lines.iter().map(|l| l.amount.amount).sum(),
            lines.first().map_or("EUR", |l| l.amount.currency.as_str()),
        ),
        lines: lines
            .iter()
            .map(|l| {
                (
                    l.description.clone(),
                    format!(
                        "{}.{:03} {}",
                        l.quantity_millis / 1000,
                        l.quantity_millis % 1000,
                        l.unit
                    ),
                    format!(
                        "{} {}",
                        Money::amount_in(l.amount.amount, &l.amount.currency),
                        l.amount.currency
                    ),
                )
            })
            .collect(),
        fuel: r.fuel_used,
        micros: r.micros,
        log: log_text(&r.log),
    }
}

async fn plugin_view(
    st: &AppState,
    session: &Session,
    name: &str,
    status: StatusCode,
    result: Option<DryRunView>,
    error: Option<String>,
) -> Response {
    if session.user.role() != Role::Reseller {
        return not_found();
    }
    let me = &session.user;
    let built = async {
        let p = find(st, me, name).await?;
        let calls = plugins::calls(st, me, name)
            .await?
            .into_iter()
            .take(30)
            .map(|c| {
                let log: Vec<acetate_plugins::LogLine> =
                    serde_json::from_str(&c.log).unwrap_or_default();
                CallView {
                    log: log_text(&log),
                    c,
                }
            })
            .collect();
        let events = plugins::events(st, me).await?;
        let customers = accounts::customers(st, me)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        Ok::<_, AppError>((p, calls, events, customers))
    }
    .await;
    match built {
        Ok((p, calls, events, customers)) => (
            status,
            render(&PluginPage {
                nav: session.nav("/plugins"),
                csrf: session.csrf.clone(),
                p,
                calls,
                events,
                customers,
                period: Period::containing(crate::domain::now()).label,
                samples: acetate_plugins::SAMPLES
                    .into_iter()
                    .filter(|s| *s != "billing")
                    .collect(),
                result,
                error,
            }),
        )
            .into_response(),
        Err(AppError::NotFound) => not_found(),
        Err(e) => PageError(e).into_response(),
    }
}

async fn plugin_page(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
) -> Response {
    plugin_view(&st, &session, &name, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
struct DryRunForm {
    csrf: String,
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    period: String,
    /// An event typed as JSON (a hook's or an overuse event).
    #[serde(default)]
    input: String,
    /// One of the contract's example inputs, when nothing is typed.
    #[serde(default)]
    example: String,
}

/// A typed event, or else the chosen example, as the dry-run request's event.
fn typed_event(f: &DryRunForm) -> Result<Option<DryRunRequest>, String> {
    let text = match (f.input.trim(), f.example.trim()) {
        ("", "") => return Ok(None),
        ("", example) => acetate_plugins::sample_input(example)?,
        (typed, _) => typed.to_string(),
    };
    if let Ok(event) = serde_json::from_str(&text) {
        return Ok(Some(DryRunRequest {
            event: Some(event),
            ..Default::default()
        }));
    }
    serde_json::from_str(&text)
        .map(|overuse| {
            Some(DryRunRequest {
                overuse: Some(overuse),
                ..Default::default()
            })
        })
        .map_err(|e| format!("The event is neither a hook event nor an overuse event: {e}."))
}

async fn dry_run(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(f): Form<DryRunForm>,
) -> Response {
    if let Some(r) = session.reject_forged(&f.csrf) {
        return r;
    }
    if session.user.role() != Role::Reseller {
        return not_found();
    }
    let req = match typed_event(&f) {
        Ok(Some(req)) => req,
        Ok(None) => DryRunRequest {
            event_id: f.event_id.trim().parse().ok(),
            event: None,
            overuse: None,
            customer: Some(f.customer.trim().to_string()).filter(|c| !c.is_empty()),
            period: Some(f.period.trim().to_string()).filter(|p| !p.is_empty()),
        },
        Err(msg) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return plugin_view(&st, &session, &name, status, None, Some(msg)).await;
        }
    };
    match try_plugin(&st, &session.user, &name, req).await {
        Ok(result) => {
            plugin_view(
                &st,
                &session,
                &name,
                StatusCode::OK,
                Some(dry_run_view(result)),
                None,
            )
            .await
        }
        Err(AppError::NotFound) => {
            plugin_view(
                &st,
                &session,
                &name,
                StatusCode::NOT_FOUND,
                None,
                Some("No such event or customer.".into()),
            )
            .await
        }
        Err(e) => match shown(e) {
            Ok(msg) => {
                plugin_view(
                    &st,
                    &session,
                    &name,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(msg),
                )
                .await
            }
            Err(e) => PageError(e).into_response(),
        },
    }
}
