//! Operations in the browser: a long action's page refreshes itself (no JavaScript
//! needed) until the action is done, and the provider's template upload form.

use askama::Template;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::io::AsyncWriteExt;

use crate::db::operations::OperationRow;
use crate::domain::Role;
use crate::error::AppError;
use crate::http::api::templates::MAX_UPLOAD;
use crate::http::error::{is_client_error, status, PageError};
use crate::http::render::{not_found, page_error, render};
use crate::http::session::Session;
use crate::service::{templates, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/provider/templates",
            post(import_form).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/jobs/{id}", get(page))
        .route("/operations/{id}", get(page))
}

/// The page that follows an operation.
pub fn page_of(op: &OperationRow) -> String {
    format!("/jobs/{}", op.id)
}

/// The provider page's form: multipart with `csrf`, `name`, `file` and `fit` (a box).
async fn import_form(
    AxState(st): AxState<AppState>,
    session: Session,
    mut form: Multipart,
) -> Response {
    if session.user.role() != Role::Provider {
        return not_found("page");
    }
    let (mut csrf, mut name, mut upload) = (String::new(), String::new(), None);
    let mut fit = false;
    let failed = |msg: String| page_error(StatusCode::BAD_REQUEST, "Upload failed", &msg);
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return failed(format!("The upload did not arrive whole: {e}")),
        };
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.unwrap_or_default(),
            "name" => name = field.text().await.unwrap_or_default().trim().to_string(),
            "fit" => fit = field.text().await.is_ok_and(|v| v == "on"),
            "file" => {
                let (path, mut file) = match templates::upload_file(&st).await {
                    Ok(f) => f,
                    Err(e) => return PageError(e).into_response(),
                };
                loop {
                    match field.chunk().await {
                        Ok(Some(bytes)) => {
                            if let Err(e) = file.write_all(&bytes).await {
                                let _ = tokio::fs::remove_file(&path).await;
                                return PageError(AppError::Internal(e.to_string()))
                                    .into_response();
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tokio::fs::remove_file(&path).await;
                            return failed(format!("The upload did not arrive whole: {e}"));
                        }
                    }
                }
                let _ = file.flush().await;
                upload = Some(path);
            }
            _ => {}
        }
    }
    let Some(upload) = upload else {
        return failed("Choose a tarball to upload.".into());
    };
    if let Some(r) = session.reject_forged(&csrf) {
        let _ = std::fs::remove_file(&upload);
        return r;
    }
    match templates::import(&st, &session.user, &name, upload, fit).await {
        Ok(op) => Redirect::to(&page_of(&op)).into_response(),
        Err(e) if is_client_error(&e) => page_error(
            status(&e),
            "Cannot import",
            &format!("Cannot import {name:?}: {e}"),
        ),
        Err(e) => PageError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "job.html")]
struct OperationPage {
    /// The sections of the role, the account and log out.
    nav: Option<crate::http::nav::Nav>,
    what: String,
    running: bool,
    message: String,
    failed: bool,
}

/// What an operation does, for people: "container.create alice/web" -> "Create alice/web".
fn what(op: &OperationRow) -> String {
    let verb = op.kind.rsplit('.').next().unwrap_or(&op.kind);
    let object = if op.kind.starts_with("template.") {
        "template "
    } else {
        ""
    };
    let mut verb = verb.to_string();
    if let Some(first) = verb.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    format!("{verb} {object}{}", op.target)
}

/// An operation's page: refreshes itself every 2 seconds while it runs.
async fn page(AxState(st): AxState<AppState>, session: Session, Path(id): Path<i64>) -> Response {
    let op = match st.operations.get(&session.user, id).await {
        Ok(op) => op,
        Err(AppError::NotFound) => return not_found("operation"),
        Err(e) => return PageError(e).into_response(),
    };
    let (running, failed, message) = match op.state.as_str() {
        "running" => (
            true,
            false,
            format!("Running for {} s…", crate::domain::now() - op.created_at),
        ),
        "failed" => (false, true, op.message.clone()),
        _ => (false, false, op.message.clone()),
    };
    render(&OperationPage {
        nav: session.nav("/provider"),
        what: what(&op),
        running,
        message,
        failed,
    })
}
