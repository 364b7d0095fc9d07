//! `/api/v1/templates` for the provider: the list, and imports of an uploaded tarball (the
//! request's body) as operations.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::operations::{answer, result_json, OperationView};
use crate::error::AppError;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::Provider;
use crate::service::{templates, AppState};

/// Largest template tarball accepted.
pub const MAX_UPLOAD: usize = 8 << 30;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, import))
        .routes(routes!(delete))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD))
}

#[utoipa::path(get, operation_id = "templates_list", path = "/api/v1/templates", tag = "templates",
    summary = "Templates: all with their source and use (provider), those the plan offers (customer)",
    responses((status = 200, description = "ok", body = [Object]), (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody)))]
async fn list(
    AxState(st): AxState<AppState>,
    caller: crate::http::extract::Caller,
) -> ApiResult<Json<Vec<acetate_engine::TemplateInfo>>> {
    Ok(Json(templates::list(&st, &caller.0).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// The template's name.
    name: String,
    /// Wait for the import, at most this many seconds.
    wait: Option<u64>,
    /// Fit the tree for containers as Acetate's own templates are (systemd's idle units
    /// masked, reboots from inside noted, SysV console gettys off; all in its `/etc`).
    #[serde(default)]
    fit: bool,
}

#[utoipa::path(post, operation_id = "templates_import", path = "/api/v1/templates", tag = "templates",
    summary = "Import a template from a rootfs tarball (the body; gzip, xz, zstd or plain) as an operation (provider)",
    params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 202, description = "accepted", body = OperationView),
        (status = 201, description = "with ?wait: imported", body = Object),
        (status = 403, description = "not allowed: role, suspension or the reseller's policy", body = ErrorBody), (status = 409, description = "conflicts with the current state", body = ErrorBody),
        (status = 422, description = "invalid input, or over a plan or pool limit", body = ErrorBody)))]
/// `POST /api/v1/templates?name=N` with the tarball as the body: 202 and the operation
/// (with `?wait`, 201 and the template once imported).
async fn import(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> ApiResult<Response> {
    let (path, mut file) = templates::upload_file(&st).await?;
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
            return Err(e.into());
        }
    }
    if let Err(e) = file.flush().await {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(AppError::Internal(e.to_string()).into());
    }
    let op = templates::import(&st, &me, &q.name, path, q.fit).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::CREATED))
        .await
        .map(IntoResponse::into_response)
}

#[utoipa::path(delete, operation_id = "templates_delete", path = "/api/v1/templates/{name}",
    tag = "templates", summary = "Delete a template no container uses (provider)",
    params(("name" = String, Path, description = "the template")),
    responses((status = 204, description = "deleted"),
        (status = 403, description = "not the provider", body = ErrorBody),
        (status = 404, description = "no such template", body = ErrorBody),
        (status = 409, description = "containers use it", body = ErrorBody)))]
async fn delete(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    templates::delete(&st, &me, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
