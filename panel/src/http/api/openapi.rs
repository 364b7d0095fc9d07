//! `/api/v1/openapi.json`: the OpenAPI 3.1 document generated from the handlers' own
//! descriptions and types, with what applies to all of them (authentication, errors).

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, SecurityRequirement, Server};

use crate::service::AppState;

/// Serves `doc`, completed, as it is built once at start.
pub fn router(doc: OpenApi) -> Router<AppState> {
    let body: Arc<str> = document(doc)
        .to_json()
        .expect("the OpenAPI document serialises")
        .into();
    Router::new().route(
        "/api/v1/openapi.json",
        get(move || {
            let body = body.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response()
            }
        }),
    )
}

/// The document with its title, server and bearer authentication on every operation
/// (but those that say otherwise).
pub fn document(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("Acetate API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Containers are addressed by their owner's name for them; anything outside the \
             caller's scope answers 404. Authenticate with `Authorization: Bearer <token>`. \
             Long actions answer 202 with `Location: /api/v1/operations/{id}`; add \
             `?wait=SECONDS` to wait for them and get the answer they give when done. \
             Errors are `{\"error\": {\"code\", \"message\"}}`.",
        ))
        .build();
    doc.servers = Some(vec![Server::new("/")]);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "an API token (`acetate token create`, or the account page)",
                ))
                .build(),
        ),
    );
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    doc
}
