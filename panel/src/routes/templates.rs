//! Templates for the provider: list, and import from an uploaded tarball as a background job
//! (`/api/v1/templates`, the form on `/provider`, the job's page `/jobs/{id}`).

use std::path::PathBuf;

use askama::Template;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::web::{page_error, render, Session};
use super::Caller;
use crate::app::AppState;
use crate::db::{Role, User};
use crate::error::{AppError, AppResult};
use crate::jobs::{Job, JobState};

/// Largest template tarball accepted.
pub const MAX_UPLOAD: usize = 8 << 30;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/templates",
            get(list)
                .post(import_api)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/api/v1/jobs/{id}", get(job_api))
        .route(
            "/provider/templates",
            post(import_form).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/jobs/{id}", get(job_page))
}

fn provider(user: &User) -> AppResult<()> {
    if user.role() == Role::Provider {
        Ok(())
    } else {
        Err(AppError::Forbidden("templates are the provider's".into()))
    }
}

async fn list(
    AxState(st): AxState<AppState>,
    caller: Caller,
) -> AppResult<Json<Vec<acetate_engine::template::TemplateInfo>>> {
    provider(&caller.0)?;
    Ok(Json(st.engine(|e| e.templates()).await?))
}

/// A new file for an upload in `<state>/uploads`, removed by whoever ends up with it.
async fn upload_file(st: &AppState) -> AppResult<(PathBuf, tokio::fs::File)> {
    use rand::Rng;
    let dir = st.engine.state_dir().join("uploads");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| AppError::Internal(format!("create {}: {e}", dir.display())))?;
    let n: u64 = rand::thread_rng().gen();
    let path = dir.join(format!("upload-{n:016x}"));
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| AppError::Internal(format!("create {}: {e}", path.display())))?;
    Ok((path, file))
}

/// Checks the name, then imports `upload` (removed afterwards) as template `name` in a job.
pub(crate) async fn start_import(
    st: &AppState,
    caller: &User,
    name: &str,
    upload: PathBuf,
) -> AppResult<u64> {
    let refuse = |e: AppError| {
        let _ = std::fs::remove_file(&upload);
        e
    };
    provider(caller).map_err(refuse)?;
    acetate_engine::spec::validate_name(name)
        .map_err(|e| refuse(AppError::Unprocessable(format!("template name: {e}"))))?;
    let exists = st
        .engine(|e| e.templates())
        .await
        .map_err(refuse)?
        .iter()
        .any(|t| t.name == name);
    if exists {
        return Err(refuse(AppError::Conflict(format!(
            "a template named {name:?} exists"
        ))));
    }
    let (engine, name_owned) = (st.engine.clone(), name.to_string());
    let id = st
        .jobs
        .spawn(caller.id, format!("import template {name}"), async move {
            let path = upload.clone();
            let result =
                tokio::task::spawn_blocking(move || engine.import_template(&name_owned, &path))
                    .await;
            let _ = tokio::fs::remove_file(&upload).await;
            match result {
                Ok(Ok(info)) => Ok(format!(
                    "template {} imported ({} entries)",
                    info.name, info.entries
                )),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("the import stopped: {e}")),
            }
        });
    st.db
        .audit(Some(caller), "template.import", name, &format!("job {id}"))
        .await?;
    Ok(id)
}

#[derive(Debug, Deserialize)]
struct ImportQuery {
    name: String,
}

/// `POST /api/v1/templates?name=N` with the tarball as the body: 202 and the job.
async fn import_api(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> AppResult<(StatusCode, Json<Job>)> {
    provider(&caller.0)?;
    let (path, mut file) = upload_file(&st).await?;
    let mut stream = body.into_data_stream();
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        let written = match chunk {
            Ok(bytes) => file
                .write_all(&bytes)
                .await
                .map_err(|e| AppError::Internal(e.to_string())),
            Err(e) => Err(AppError::BadRequest(format!(
                "the upload did not arrive whole: {e}"
            ))),
        };
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
    }
    file.flush()
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let id = start_import(&st, &caller.0, &q.name, path).await?;
    let job = st.jobs.get(id, caller.0.id).ok_or(AppError::NotFound)?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

async fn job_api(
    AxState(st): AxState<AppState>,
    caller: Caller,
    Path(id): Path<u64>,
) -> AppResult<Json<Job>> {
    st.jobs
        .get(id, caller.0.id)
        .map(Json)
        .ok_or(AppError::NotFound)
}

/// The provider page's form: multipart with `csrf`, `name` and `file`.
async fn import_form(
    AxState(st): AxState<AppState>,
    session: Session,
    mut form: Multipart,
) -> Response {
    if session.user.role() != Role::Provider {
        return page_error(StatusCode::NOT_FOUND, "Not found", "There is no such page.");
    }
    let (mut csrf, mut name, mut upload) = (String::new(), String::new(), None);
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
            "file" => {
                let (path, mut file) = match upload_file(&st).await {
                    Ok(f) => f,
                    Err(e) => return e.into_response(),
                };
                loop {
                    match field.chunk().await {
                        Ok(Some(bytes)) => {
                            if let Err(e) = file.write_all(&bytes).await {
                                let _ = tokio::fs::remove_file(&path).await;
                                return AppError::Internal(e.to_string()).into_response();
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
    match start_import(&st, &session.user, &name, upload).await {
        Ok(id) => Redirect::to(&format!("/jobs/{id}")).into_response(),
        Err(e) if e.status().is_client_error() => page_error(
            e.status(),
            "Cannot import",
            &format!("Cannot import {name:?}: {e}"),
        ),
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    job: Job,
    running: bool,
    message: String,
    failed: bool,
}

/// A job's page: refreshes itself every 2 seconds while the job runs.
async fn job_page(
    AxState(st): AxState<AppState>,
    session: Session,
    Path(id): Path<u64>,
) -> Response {
    let Some(job) = st.jobs.get(id, session.user.id) else {
        return page_error(StatusCode::NOT_FOUND, "Not found", "There is no such job.");
    };
    let (running, failed, message) = match &job.state {
        JobState::Running => (
            true,
            false,
            format!("Running for {} s…", crate::db::now() - job.started_at),
        ),
        JobState::Done(m) => (false, false, m.clone()),
        JobState::Failed(m) => (false, true, m.clone()),
    };
    render(&JobPage {
        job,
        running,
        message,
        failed,
    })
}
