//! `/api/v1/account/totp`: the caller's second factor (TOTP) through the API, as on the
//! account page: its state, setting it up (the key, then a first code), new recovery
//! codes, turning it off.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Caller};
use crate::service::auth::Secret;
use crate::service::{totp, AppState};

/// The name authenticator apps list the account under.
const ISSUER: &str = "Acetate";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(state, begin, disable))
        .routes(routes!(confirm))
        .routes(routes!(recovery_codes))
}

/// Whether the second factor is on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TotpState {
    enabled: bool,
    recovery_codes_left: i64,
}

/// A second factor being set up: the key for an authenticator app.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TotpKey {
    /// The key in base32, for typing into an app.
    secret: String,
    /// The `otpauth://` URI apps read from a QR code.
    uri: String,
}

/// A code from the app (or, where said, a recovery code).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TotpCode {
    code: String,
}

/// What turning the second factor off takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TotpOff {
    password: String,
    /// A current code or an unused recovery code.
    code: String,
}

/// Recovery codes, shown only in this answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

#[utoipa::path(get, operation_id = "totp_state", path = "/api/v1/account/totp", tag = "tokens",
    summary = "Whether the caller's second factor (TOTP) is on",
    responses((status = 200, description = "ok", body = TotpState)))]
async fn state(AxState(st): AxState<AppState>, caller: Caller) -> ApiResult<Json<TotpState>> {
    let s = totp::status(&st, &caller.0).await?;
    Ok(Json(TotpState {
        enabled: s.enabled,
        recovery_codes_left: s.codes_left,
    }))
}

#[utoipa::path(post, operation_id = "totp_begin", path = "/api/v1/account/totp", tag = "tokens",
    summary = "Start setting up a second factor: a new key, on once a first code comes back",
    responses((status = 201, description = "the key", body = TotpKey),
        (status = 409, description = "a second factor is already on", body = ErrorBody)))]
async fn begin(
    AxState(st): AxState<AppState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<TotpKey>)> {
    let e = totp::begin(&st, &caller.0, ISSUER).await?;
    Ok((
        StatusCode::CREATED,
        Json(TotpKey {
            secret: e.secret,
            uri: e.uri,
        }),
    ))
}

#[utoipa::path(post, operation_id = "totp_confirm", path = "/api/v1/account/totp/confirm", tag = "tokens",
    summary = "Turn the second factor on with a first code from the app; answers the recovery codes, once",
    request_body = TotpCode,
    responses((status = 200, description = "on", body = RecoveryCodes),
        (status = 409, description = "nothing is being set up", body = ErrorBody),
        (status = 422, description = "not the code the app shows now", body = ErrorBody)))]
async fn confirm(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TotpCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    Ok(Json(RecoveryCodes {
        recovery_codes: totp::confirm(&st, &caller.0, &req.code).await?,
    }))
}

#[utoipa::path(post, operation_id = "totp_recovery_codes", path = "/api/v1/account/totp/recovery-codes", tag = "tokens",
    summary = "New recovery codes for a current code (the old ones stop working)",
    request_body = TotpCode,
    responses((status = 200, description = "the new codes, once", body = RecoveryCodes),
        (status = 422, description = "not a current code or an unused recovery code", body = ErrorBody)))]
async fn recovery_codes(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TotpCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    Ok(Json(RecoveryCodes {
        recovery_codes: totp::renew_recovery_codes(&st, &caller.0, &req.code).await?,
    }))
}

#[utoipa::path(delete, operation_id = "totp_disable", path = "/api/v1/account/totp", tag = "tokens",
    summary = "Turn the second factor off (the password and a code)",
    request_body = TotpOff,
    responses((status = 204, description = "off"),
        (status = 422, description = "a wrong password or code", body = ErrorBody)))]
async fn disable(
    AxState(st): AxState<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<TotpOff>,
) -> ApiResult<StatusCode> {
    totp::disable(&st, &caller.0, Secret(req.password), &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}
