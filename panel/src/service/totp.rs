//! A second factor for logging in to the pages: TOTP (RFC 6238: SHA-1, six digits, 30 s,
//! one step of clock drift either way; totp-rs), set up from the account page with any
//! authenticator app, and ten one-time recovery codes (kept as SHA-256 hashes) for a lost
//! phone. A code counts once: the step of the last one accepted is kept. API tokens are
//! credentials of their own and need no code.

use rand::Rng;
use totp_rs::{Algorithm, Secret, TOTP};

use super::{auth, AppState};
use crate::domain::User;
use crate::error::{AppError, AppResult};

/// Seconds per code.
const STEP: u64 = 30;
/// Recovery codes made at a time.
const RECOVERY_CODES: usize = 10;

/// What the account page shows to set a second factor up.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The secret in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://` URI apps read from a QR code.
    pub uri: String,
    /// That URI as a QR code, an SVG image.
    pub qr_svg: String,
}

/// Whether `user` has a second factor, and how many recovery codes are left.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub enabled: bool,
    pub codes_left: i64,
}

fn totp(secret_b32: &str) -> AppResult<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|e| AppError::Internal(format!("a stored TOTP secret: {e:?}")))?;
    TOTP::new(Algorithm::SHA1, 6, 1, STEP, bytes)
        .map_err(|e| AppError::Internal(format!("a stored TOTP secret: {e}")))
}

/// The step of `code` around `now` (drift of one step either way), if it is right.
fn matching_step(t: &TOTP, code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = now / STEP;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|s| constant_time_eq(t.generate(s * STEP).as_bytes(), code.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_secs() -> u64 {
    u64::try_from(crate::domain::now()).unwrap_or(0)
}

pub async fn status(st: &AppState, user: &User) -> AppResult<Status> {
    Ok(Status {
        enabled: user.totp_enabled != 0,
        codes_left: st.db.recovery_codes_left(user.id).await?,
    })
}

/// Starts setting up a second factor: a new secret, kept unconfirmed until a code from it
/// comes back ([`confirm`]).
pub async fn begin(st: &AppState, user: &User, issuer: &str) -> AppResult<Enrolment> {
    if user.totp_enabled != 0 {
        return Err(AppError::Conflict(
            "a second factor is already on: turn it off first to set up another".into(),
        ));
    }
    let raw: [u8; 20] = rand::thread_rng().gen();
    let Secret::Encoded(secret) = Secret::Raw(raw.to_vec()).to_encoded() else {
        return Err(AppError::Internal("base32 encoding".into()));
    };
    st.db.set_pending_totp(user.id, &secret).await?;
    enrolment(secret, user, issuer)
}

/// The second factor being set up (after a wrong code, say), if there is one.
pub async fn pending(st: &AppState, user: &User, issuer: &str) -> AppResult<Option<Enrolment>> {
    match st
        .db
        .totp(user.id)
        .await?
        .filter(|r| r.enabled_at.is_none())
    {
        Some(row) => Ok(Some(enrolment(row.secret, user, issuer)?)),
        None => Ok(None),
    }
}

fn enrolment(secret: String, user: &User, issuer: &str) -> AppResult<Enrolment> {
    let label = format!("{issuer}:{}", user.name);
    let uri = format!(
        "otpauth://totp/{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period={STEP}",
        percent(&label),
        percent(issuer)
    );
    let qr_svg = qr_svg(&uri)?;
    Ok(Enrolment {
        secret,
        uri,
        qr_svg,
    })
}

/// Turns the second factor on once `code` proves the app has the secret; the recovery
/// codes, shown once.
pub async fn confirm(st: &AppState, user: &User, code: &str) -> AppResult<Vec<String>> {
    let row = st
        .db
        .totp(user.id)
        .await?
        .filter(|r| r.enabled_at.is_none())
        .ok_or_else(|| AppError::Conflict("there is no second factor being set up".into()))?;
    let step = matching_step(&totp(&row.secret)?, code, now_secs()).ok_or_else(|| {
        AppError::Unprocessable(
            "code: that is not the code your app shows now (check its clock)".into(),
        )
    })?;
    let (codes, hashes) = recovery_codes();
    st.db
        .enable_totp(user.id, i64::try_from(step).unwrap_or(i64::MAX), &hashes)
        .await?;
    st.db
        .audit(Some(user), "totp.enable", &user.name, "ok")
        .await?;
    Ok(codes)
}

/// Checks a code (or a recovery code, used up) of `user`'s second factor.
pub async fn verify(st: &AppState, user: &User, code: &str) -> AppResult<bool> {
    let Some(row) = st
        .db
        .totp(user.id)
        .await?
        .filter(|r| r.enabled_at.is_some())
    else {
        return Ok(false);
    };
    if let Some(step) = matching_step(&totp(&row.secret)?, code, now_secs()) {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        return st.db.advance_totp_step(user.id, step).await;
    }
    let normal = normalise_recovery(code);
    if normal.len() != 10 {
        return Ok(false);
    }
    let used = st
        .db
        .use_recovery_code(user.id, &auth::token_hash(&normal))
        .await?;
    if used {
        st.db
            .audit(Some(user), "totp.recovery-code", &user.name, "used")
            .await?;
    }
    Ok(used)
}

/// Turns the second factor off: the password and a current code (or a recovery code).
pub async fn disable(
    st: &AppState,
    user: &User,
    password: auth::Secret,
    code: &str,
) -> AppResult<()> {
    let ok = auth::verify_bounded(password, Some(user.password_hash.clone())).await?;
    if !ok {
        return Err(AppError::Unprocessable(
            "password: that is not your password".into(),
        ));
    }
    if !verify(st, user, code).await? {
        return Err(AppError::Unprocessable(
            "code: that is not a current code or an unused recovery code".into(),
        ));
    }
    st.db.disable_totp(user.id).await?;
    st.db
        .audit(Some(user), "totp.disable", &user.name, "ok")
        .await
}

/// New recovery codes (the old ones stop working), for a current code.
pub async fn renew_recovery_codes(
    st: &AppState,
    user: &User,
    code: &str,
) -> AppResult<Vec<String>> {
    if !verify(st, user, code).await? {
        return Err(AppError::Unprocessable(
            "code: that is not a current code or an unused recovery code".into(),
        ));
    }
    let (codes, hashes) = recovery_codes();
    st.db.replace_recovery_codes(user.id, &hashes).await?;
    st.db
        .audit(Some(user), "totp.recovery-codes", &user.name, "renewed")
        .await?;
    Ok(codes)
}

/// Removes someone else's second factor (with a password reset by the provider or their
/// reseller: the person lost access).
pub async fn reset(st: &AppState, actor: &User, target: &User) -> AppResult<()> {
    if st.db.disable_totp(target.id).await? {
        st.db
            .audit(Some(actor), "totp.reset", &target.name, "ok")
            .await?;
    }
    Ok(())
}

/// Ten codes as shown (`abcde-fghjk`) and their hashes as kept.
fn recovery_codes() -> (Vec<String>, Vec<String>) {
    // No 0/o, 1/l/i: codes are read off paper.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let code: String = (0..10)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        hashes.push(auth::token_hash(&code));
        shown.push(format!("{}-{}", &code[..5], &code[5..]));
    }
    (shown, hashes)
}

fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `text` as a QR code in SVG (black modules on white, a quiet zone of four).
fn qr_svg(text: &str) -> AppResult<String> {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium)
        .map_err(|e| AppError::Internal(format!("QR code: {e:?}")))?;
    let size = qr.size();
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + 4, y + 4));
            }
        }
    }
    let dim = size + 8;
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {dim} {dim}\" width=\"200\" \
         height=\"200\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_and_the_next_and_previous_only() {
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        let t = totp(secret).unwrap();
        let now = 1_800_000_000u64;
        let code = t.generate(now);
        assert_eq!(matching_step(&t, &code, now), Some(now / STEP));
        assert_eq!(matching_step(&t, &code, now + STEP), Some(now / STEP));
        assert_eq!(matching_step(&t, &code, now + 3 * STEP), None);
        assert_eq!(matching_step(&t, "12345", now), None);
        assert_eq!(matching_step(&t, "abcdef", now), None);
    }

    #[test]
    fn recovery_codes_are_read_off_paper_in_any_case() {
        let (shown, hashes) = recovery_codes();
        assert_eq!(shown.len(), 10);
        assert_eq!(shown[0].len(), 11);
        let typed = shown[0].to_uppercase().replace('-', " ");
        assert_eq!(auth::token_hash(&normalise_recovery(&typed)), hashes[0]);
    }

    #[test]
    fn the_qr_code_is_an_svg_of_the_uri() {
        let svg = qr_svg("otpauth://totp/Acetate:alice?secret=AAAA").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"));
    }
}
