//! `/api/v1/templates` for the provider: the list, and imports of an uploaded tarball (the
//! request's body) as operations.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::operations::{answer, result_json};
use crate::error::AppError;
use crate::http::error::ApiResult;
use crate::http::extract::Provider;
use crate::service::{templates, AppState};

/// Largest template tarball accepted.
pub const MAX_UPLOAD: usize = 8 << 30;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/templates",
        get(list)
            .post(import)
            .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
    )
}

async fn list(
    AxState(st): AxState<AppState>,
    Provider(me): Provider,
) -> ApiResult<Json<Vec<acetate_engine::TemplateInfo>>> {
    Ok(Json(templates::list(&st, &me).await?))
}

#[derive(Debug, Deserialize)]
struct ImportQuery {
    name: String,
    wait: Option<u64>,
}

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
    let op = templates::import(&st, &me, &q.name, path).await?;
    answer(&st, op, q.wait, |r| result_json(r, StatusCode::CREATED))
        .await
        .map(IntoResponse::into_response)
}
