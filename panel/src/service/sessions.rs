//! Getting in: logins (rate-limited in the database), browser sessions, password changes
//! and API tokens. The pages and the API only carry their results (cookies, JSON).

use super::auth::{self, Locked, Secret};
use super::AppState;
use crate::db::{AuditFilter, AuditRow, TokenRow};
use crate::domain::scopes::Scopes;
use crate::domain::{Role, User};
use crate::error::{AppError, AppResult};

/// Session lifetime in seconds, however busy.
pub const SESSION_TTL: i64 = 12 * 3600;
/// A session unused this long (seconds) ends.
pub const SESSION_IDLE: i64 = 2 * 3600;

/// Why a login did not succeed.
#[derive(Debug)]
pub enum LoginRefused {
    /// Locked out before the password was checked.
    Locked(Locked),
    /// Wrong name or password; `now_locked` if this failure locked the account for
    /// the address.
    Wrong {
        now_locked: bool,
    },
    Error(AppError),
    /// The login waiting for a code expired or took too many codes.
    Expired,
}

impl From<AppError> for LoginRefused {
    fn from(e: AppError) -> Self {
        LoginRefused::Error(e)
    }
}

/// A new browser session: the id for the cookie (shown once) and its CSRF token.
#[derive(Debug)]
pub struct NewSession {
    pub user: User,
    pub id: Secret,
}

fn random_hex() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// A random token for forms (login CSRF).
pub fn form_token() -> String {
    random_hex()
}

/// Checks `name`'s password, tried from `address`, within the login limits (every
/// failure counts towards a lock, whichever door it came through).
pub async fn check_password(
    st: &AppState,
    name: &str,
    password: Secret,
    address: &str,
) -> Result<User, LoginRefused> {
    let user = password_right(st, name, password, address).await?;
    if user.totp_enabled != 0 {
        // A password alone does not open an account with a second factor (the SSH
        // gateway's password logins): keys do, or the pages with a code.
        let now_locked = st
            .logins
            .failed(name, address, crate::domain::now())
            .await?;
        let _ = st
            .db
            .audit(
                None,
                "login",
                name,
                "refused: the account needs a second factor",
            )
            .await;
        return Err(LoginRefused::Wrong { now_locked });
    }
    st.logins
        .succeeded(name, address, crate::domain::now())
        .await?;
    Ok(user)
}

/// The account if `password` is its password and no lock holds; failures are counted.
/// A success does not clear the counters: the second factor may still fail.
async fn password_right(
    st: &AppState,
    name: &str,
    password: Secret,
    address: &str,
) -> Result<User, LoginRefused> {
    let now = crate::domain::now();
    if let Err(why) = st.logins.check(name, address, now).await? {
        return Err(LoginRefused::Locked(why));
    }
    let user = st.db.user_by_name(name).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = auth::verify_bounded(password, stored).await?;
    let Some(user) = user.filter(|_| ok) else {
        let now_locked = st.logins.failed(name, address, now).await?;
        let _ = st.db.audit(None, "login", name, "failed").await;
        return Err(LoginRefused::Wrong { now_locked });
    };
    Ok(user)
}

/// What a right password leads to: a session, or (with a second factor) a challenge that
/// a code completes within [`CHALLENGE_TTL`].
#[derive(Debug)]
pub enum LoginStep {
    Session(NewSession),
    Code { challenge: Secret, user: String },
}

/// How long a login waits for its code.
pub const CHALLENGE_TTL: i64 = 300;
/// Codes one challenge takes (the login limiter counts them too).
const CHALLENGE_ATTEMPTS: i64 = 5;

/// Checks a login from `address`; on success a new session replaces `old_session` (the
/// id hash the browser had, if any), or a second factor is asked for.
pub async fn login(
    st: &AppState,
    name: &str,
    password: Secret,
    address: &str,
    old_session: Option<&str>,
) -> Result<LoginStep, LoginRefused> {
    let user = password_right(st, name, password, address).await?;
    if user.totp_enabled != 0 {
        let challenge = random_hex();
        st.db
            .create_login_challenge(&auth::token_hash(&challenge), user.id, CHALLENGE_TTL)
            .await?;
        return Ok(LoginStep::Code {
            challenge: Secret(challenge),
            user: user.name,
        });
    }
    st.logins
        .succeeded(name, address, crate::domain::now())
        .await?;
    Ok(LoginStep::Session(
        open_session(st, user, old_session).await?,
    ))
}

/// The second step of a login: `code` (from the app, or a recovery code) for the
/// challenge the password step gave.
pub async fn login_code(
    st: &AppState,
    challenge: &str,
    code: &str,
    address: &str,
    old_session: Option<&str>,
) -> Result<NewSession, LoginRefused> {
    let hash = auth::token_hash(challenge);
    let expired = || LoginRefused::Expired;
    let user_id = st
        .db
        .attempt_login_challenge(&hash, CHALLENGE_ATTEMPTS)
        .await?
        .ok_or_else(expired)?;
    let user = st.db.user_by_id(user_id).await?.ok_or_else(expired)?;
    let now = crate::domain::now();
    if let Err(why) = st.logins.check(&user.name, address, now).await? {
        return Err(LoginRefused::Locked(why));
    }
    if !super::totp::verify(st, &user, code).await? {
        let now_locked = st.logins.failed(&user.name, address, now).await?;
        let _ = st
            .db
            .audit(None, "login", &user.name, "failed: wrong code")
            .await;
        return Err(LoginRefused::Wrong { now_locked });
    }
    st.db.delete_login_challenge(&hash).await?;
    st.logins.succeeded(&user.name, address, now).await?;
    Ok(open_session(st, user, old_session).await?)
}

async fn open_session(
    st: &AppState,
    user: User,
    old_session: Option<&str>,
) -> AppResult<NewSession> {
    if let Some(old) = old_session {
        let _ = st.db.delete_session(old).await;
    }
    let id = random_hex();
    st.db
        .create_session(&auth::token_hash(&id), user.id, &random_hex(), SESSION_TTL)
        .await?;
    let _ = st.db.audit(Some(&user), "login", &user.name, "ok").await;
    Ok(NewSession {
        user,
        id: Secret(id),
    })
}

/// The account a live API token belongs to, and what the token may do.
pub async fn user_by_token(st: &AppState, token: &str) -> AppResult<Option<(User, Scopes)>> {
    match st.db.user_by_token(&auth::token_hash(token)).await? {
        Some((user, scopes)) => Ok(Some((user, Scopes::parse(&scopes)?))),
        None => Ok(None),
    }
}

/// The user and CSRF token of a live session, by the id in its cookie.
pub async fn session(st: &AppState, id: &str) -> AppResult<Option<(User, String)>> {
    st.db.session(&auth::token_hash(id), SESSION_IDLE).await
}

/// Ends every session of `user`, this one too ("log out everywhere").
pub async fn end_all_sessions(st: &AppState, user: &User) -> AppResult<u64> {
    let n = st.db.delete_sessions_of(user.id).await?;
    st.db
        .audit(
            Some(user),
            "sessions.end",
            &user.name,
            &format!("{n} ended"),
        )
        .await?;
    Ok(n)
}

/// `user`'s live sessions: (started, last used), newest first.
pub async fn sessions_of(st: &AppState, user: &User) -> AppResult<Vec<(i64, i64)>> {
    st.db.sessions_of(user.id, SESSION_IDLE).await
}

pub async fn logout(st: &AppState, id: &str) -> AppResult<()> {
    st.db.delete_session(&auth::token_hash(id)).await
}

/// Changes `user`'s password if `current` is right, ending every other session but
/// `keep` (the id of the one making the change).
pub async fn change_password(
    st: &AppState,
    user: &User,
    current: Secret,
    new: Secret,
    keep: &str,
) -> AppResult<()> {
    auth::check_password_strength(&new.0)?;
    let ok = auth::verify_bounded(current, Some(user.password_hash.clone())).await?;
    if !ok {
        let _ = st
            .db
            .audit(
                Some(user),
                "password.change",
                &user.name,
                "wrong current password",
            )
            .await;
        return Err(AppError::Forbidden("the current password is wrong".into()));
    }
    let hash = auth::hash_bounded(new).await?;
    st.db
        .set_password(user.id, &hash, &auth::token_hash(keep))
        .await?;
    st.db
        .audit(Some(user), "password.change", &user.name, "ok")
        .await
}

/// `user`'s API tokens (never the tokens themselves).
pub async fn tokens(st: &AppState, user: &User) -> AppResult<Vec<TokenRow>> {
    st.db.tokens_of(user.id).await
}

/// What a new token may do and how long it lives.
#[derive(Debug, Clone, Default)]
pub struct TokenGrant {
    pub scopes: Scopes,
    /// Days it works; forever if absent.
    pub days: Option<i64>,
}

impl TokenGrant {
    fn expires_at(&self) -> AppResult<Option<i64>> {
        match self.days {
            None => Ok(None),
            Some(d) if (1..=3650).contains(&d) => Ok(Some(crate::domain::now() + d * 86_400)),
            Some(_) => Err(AppError::Unprocessable("expires: 1 to 3650 days".into())),
        }
    }
}

/// A new API token for `user`: its id and the token, which is shown only now.
pub async fn create_token(
    st: &AppState,
    user: &User,
    label: &str,
    grant: &TokenGrant,
) -> AppResult<(i64, Secret)> {
    if label.len() > 100 {
        return Err(AppError::Unprocessable(
            "labels have at most 100 characters".into(),
        ));
    }
    let expires_at = grant.expires_at()?;
    let (token, hash) = auth::new_token();
    let id = st
        .db
        .insert_token(user.id, &hash, label, &grant.scopes.to_string(), expires_at)
        .await?;
    st.db
        .audit(Some(user), "token.create", &format!("token {id}"), "ok")
        .await?;
    Ok((id, token))
}

/// Revokes one of `user`'s live tokens; any other id is not found.
pub async fn revoke_token(st: &AppState, user: &User, id: i64) -> AppResult<()> {
    if !st.db.revoke_token(user.id, id).await? {
        return Err(AppError::NotFound);
    }
    st.db
        .audit(Some(user), "token.revoke", &format!("token {id}"), "ok")
        .await
}

/// The audit entries `user` may read, newest first (providers and resellers).
pub async fn audit(
    st: &AppState,
    user: &User,
    limit: Option<i64>,
    filter: &AuditFilter,
) -> AppResult<Vec<AuditRow>> {
    audit_page(st, user, None, limit.unwrap_or(100), filter).await
}

/// One page of the audit log as the caller may see it: `limit` entries older than
/// `before` (the newest without it), narrowed by `filter`.
pub async fn audit_page(
    st: &AppState,
    user: &User,
    before: Option<i64>,
    limit: i64,
    filter: &AuditFilter,
) -> AppResult<Vec<AuditRow>> {
    if user.role() == Role::Customer {
        return Err(AppError::Forbidden(
            "the audit log is for providers and resellers".into(),
        ));
    }
    st.db
        .audit_visible_before(user, before, limit.clamp(1, 1000), filter)
        .await
}

/// An audit filter with its dates (`since` and `until`, `YYYY-MM-DD`, the latter
/// included) checked.
pub fn audit_filter(
    mut filter: AuditFilter,
    since: Option<&str>,
    until: Option<&str>,
) -> AppResult<AuditFilter> {
    let day = |what: &str, s: Option<&str>| -> AppResult<Option<i64>> {
        match s.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Ok(Some(crate::domain::period::day_start(what, s)?)),
            None => Ok(None),
        }
    };
    filter.since = day("since", since)?;
    filter.until = day("until", until)?.map(|d| d + 86_400);
    Ok(filter)
}

/// A new API token for the account named `user`, from the host's command line.
pub async fn create_token_for(
    db: &crate::db::Db,
    user: &str,
    label: &str,
    grant: &TokenGrant,
) -> AppResult<Secret> {
    let u = db
        .user_by_name(user)
        .await?
        .ok_or_else(|| AppError::Unprocessable(format!("no user named {user:?}")))?;
    let expires_at = grant.expires_at()?;
    let (token, hash) = auth::new_token();
    db.insert_token(u.id, &hash, label, &grant.scopes.to_string(), expires_at)
        .await?;
    db.audit(None, "token.create", user, "ok").await?;
    Ok(token)
}

/// The tokens of the account named `user`, from the host's command line.
pub async fn tokens_for(db: &crate::db::Db, user: &str) -> AppResult<Vec<TokenRow>> {
    let u = db
        .user_by_name(user)
        .await?
        .ok_or_else(|| AppError::Unprocessable(format!("no user named {user:?}")))?;
    db.tokens_of(u.id).await
}

/// Revokes token `id` whoever owns it, from the host's command line.
pub async fn revoke_token_by_id(db: &crate::db::Db, id: i64) -> AppResult<()> {
    if !db.revoke_any_token(id).await? {
        return Err(AppError::Unprocessable(format!("no live token {id}")));
    }
    db.audit(None, "token.revoke", &format!("token {id}"), "ok")
        .await
}
