//! Passwords (argon2id, verified off the async threads, with a dummy hash for unknown
//! users so timing does not reveal which names exist) and API tokens (random, shown once,
//! stored as SHA-256).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::db::Db;
use crate::error::{AppError, AppResult};

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

pub fn check_password_strength(password: &str) -> AppResult<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::Unprocessable(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(AppError::Unprocessable("the password is too long".into()));
    }
    Ok(())
}

/// Hashes a password with argon2id (blocking: call from `spawn_blocking` in handlers).
pub fn hash_password(password: &Secret) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("hash password: {e}")))
}

/// Verifies a password against a stored hash, or against a fixed dummy hash when the user
/// does not exist (same work either way). Blocking.
pub fn verify_password(password: &Secret, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| {
        hash_password(&Secret("not a real password, only for timing".into())).unwrap_or_default()
    });
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.0.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false);
    ok && real
}

/// A new random API token (`act_` + 48 hex digits) and its stored hash.
pub fn new_token() -> (Secret, String) {
    let bytes: [u8; 24] = rand::thread_rng().gen();
    let token = format!("act_{}", hex::encode(bytes));
    let hash = token_hash(&token);
    (Secret(token), hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random password for the first provider account.
pub fn generate_password() -> Secret {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    Secret(
        (0..20)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let pw = Secret("correct horse battery".into());
        let hash = hash_password(&pw).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&pw, Some(&hash)));
        assert!(!verify_password(
            &Secret("wrong password!".into()),
            Some(&hash)
        ));
        assert!(!verify_password(&pw, None), "unknown users never verify");
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a.0, b.0);
        assert!(a.0.starts_with("act_") && a.0.len() == 52);
        assert_eq!(token_hash(&a.0), ha);
        assert_ne!(ha, a.0);
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_password_strength("short").is_err());
        assert!(check_password_strength("long enough pass").is_ok());
        assert_eq!(generate_password().0.len(), 20);
    }
}

/// Login rate limiting that an attacker cannot turn against the owner.
///
/// Failures are counted three ways within `WINDOW`: per account *and* address (5 lock
/// that pair), per address over all accounts (30 lock the address), and per account over
/// all addresses (50 lock the account, but only for addresses it has never logged in
/// from). Someone guessing from elsewhere is throttled; the owner logs in from their usual
/// address all the same. The counters live in the database, so every panel on it counts
/// the same attempts and a restart forgets nothing.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    db: Db,
}

/// Why a login is refused before its password is even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// Too many failures from this address (over all accounts).
    Address(std::time::Duration),
    /// Too many failures for this account from this address, or from everywhere and this
    /// address is not one the account is known to use.
    Account(std::time::Duration),
}

fn ip_key(address: &str) -> String {
    format!("ip:{address}")
}

/// The counter of one account from one address (`|` appears in neither: account names are
/// letters, digits and `-_.`, addresses are IP text; PostgreSQL text cannot hold NUL).
fn pair_key(name: &str, address: &str) -> String {
    format!("pair:{address}|{name}")
}

fn account_key(name: &str) -> String {
    format!("acct:{name}")
}

impl LoginLimiter {
    pub const MAX_FAILURES: i64 = 5;
    /// Failures from one address (over all names) before it is locked out: guessing many
    /// accounts' passwords from one place is stopped too.
    pub const MAX_FAILURES_PER_ADDRESS: i64 = 30;
    /// Failures for one account over all addresses before unknown addresses are refused.
    pub const MAX_FAILURES_PER_ACCOUNT: i64 = 50;
    /// Seconds in which failures add up.
    pub const WINDOW: i64 = 15 * 60;
    /// Seconds a lock lasts.
    pub const LOCK: i64 = 15 * 60;
    const KNOWN_PER_ACCOUNT: i64 = 16;

    pub fn new(db: Db) -> LoginLimiter {
        LoginLimiter { db }
    }

    /// `Err` while a login of `name` from `address` is refused at `now` (Unix seconds).
    pub async fn check(
        &self,
        name: &str,
        address: &str,
        now: i64,
    ) -> AppResult<Result<(), Locked>> {
        let secs = |s: i64| std::time::Duration::from_secs(s.max(0) as u64);
        let (ip, pair, acct) = (ip_key(address), pair_key(name, address), account_key(name));
        let locks = self.db.login_locks(&[&ip, &pair, &acct], now).await?;
        let left = |key: &str| locks.iter().find(|(k, _)| k == key).map(|(_, s)| *s);
        if let Some(s) = left(&ip) {
            return Ok(Err(Locked::Address(secs(s))));
        }
        if let Some(s) = left(&pair) {
            return Ok(Err(Locked::Account(secs(s))));
        }
        if let Some(s) = left(&acct) {
            if !self.db.is_known_login_address(name, address).await? {
                return Ok(Err(Locked::Account(secs(s))));
            }
        }
        Ok(Ok(()))
    }

    /// Records a failed login; returns true if it locked `name` for `address` (a lock of
    /// the address itself shows from the next attempt on).
    pub async fn failed(&self, name: &str, address: &str, now: i64) -> AppResult<bool> {
        let count = |key: String, max: i64| async move {
            self.db
                .count_login_failure(&key, now, Self::WINDOW, max, Self::LOCK)
                .await
        };
        count(ip_key(address), Self::MAX_FAILURES_PER_ADDRESS).await?;
        count(account_key(name), Self::MAX_FAILURES_PER_ACCOUNT).await?;
        count(pair_key(name, address), Self::MAX_FAILURES).await?;
        Ok(matches!(
            self.check(name, address, now).await?,
            Err(Locked::Account(_))
        ))
    }

    /// A successful login: the pair's failures are forgotten and the address is known.
    pub async fn succeeded(&self, name: &str, address: &str, now: i64) -> AppResult<()> {
        self.db
            .forget_login_failures(&pair_key(name, address))
            .await?;
        self.db
            .remember_login_address(name, address, now, Self::KNOWN_PER_ACCOUNT)
            .await
    }

    /// Drops counters that no longer matter (run now and then).
    pub async fn prune(&self, now: i64) -> AppResult<()> {
        self.db.prune_login_counters(now, Self::WINDOW).await
    }
}

/// At most this many password hashes are computed at once (argon2id takes 19 MiB and a
/// core's worth of work each); more wait, and past `HASH_QUEUE` waiting, requests are
/// refused at once instead of piling up memory.
const HASH_QUEUE: usize = 64;

fn hash_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.clamp(1, 4))
    })
}

static HASH_WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs password work in the bounded pool.
async fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    use std::sync::atomic::Ordering;
    if HASH_WAITING.fetch_add(1, Ordering::SeqCst) >= HASH_QUEUE {
        HASH_WAITING.fetch_sub(1, Ordering::SeqCst);
        return Err(AppError::Busy(
            "too many logins at once: try again in a moment".into(),
        ));
    }
    let permit = hash_slots().acquire().await;
    HASH_WAITING.fetch_sub(1, Ordering::SeqCst);
    let _permit = permit.map_err(|_| AppError::Internal("hash pool closed".into()))?;
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// [`hash_password`] in the bounded pool.
pub async fn hash_bounded(password: Secret) -> AppResult<String> {
    bounded(move || hash_password(&password)).await?
}

/// [`verify_password`] in the bounded pool.
pub async fn verify_bounded(password: Secret, stored: Option<String>) -> AppResult<bool> {
    bounded(move || verify_password(&password, stored.as_deref())).await
}

#[cfg(test)]
mod pool_tests {
    use super::{bounded, HASH_QUEUE};
    use crate::error::AppError;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_work_beyond_the_queue_is_refused_at_once() {
        let slow = || std::thread::sleep(std::time::Duration::from_millis(100));
        let tasks: Vec<_> = (0..HASH_QUEUE + 20)
            .map(|_| tokio::spawn(bounded(slow)))
            .collect();
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => {}
                Err(AppError::Busy(_)) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        // 2 to 4 run, 64 wait, the rest (about 16) are refused.
        assert!(busy >= 10, "{busy} of the flood refused");
        // Once the flood is gone, work is admitted again.
        assert!(bounded(|| ()).await.is_ok());
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::{Locked, LoginLimiter};

    async fn limiter() -> (LoginLimiter, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::db::default_url(dir.path());
        let db = crate::db::Db::connect(&url).await.unwrap();
        (LoginLimiter::new(db), dir)
    }

    #[tokio::test]
    async fn locks_after_repeated_failures_and_unlocks_later() {
        let (l, _dir) = limiter().await;
        let t = 1_000_000;
        for i in 0..LoginLimiter::MAX_FAILURES - 1 {
            assert!(!l.failed("alice", "10.0.0.1", t + i).await.unwrap());
            assert!(l.check("alice", "10.0.0.1", t).await.unwrap().is_ok());
        }
        assert!(l.failed("alice", "10.0.0.1", t + 10).await.unwrap());
        assert!(matches!(
            l.check("alice", "10.0.0.1", t + 11).await.unwrap(),
            Err(Locked::Account(_))
        ));
        assert!(
            l.check("bob", "10.0.0.1", t).await.unwrap().is_ok(),
            "other accounts are not affected"
        );
        assert!(l
            .check("alice", "10.0.0.1", t + LoginLimiter::LOCK + 11)
            .await
            .unwrap()
            .is_ok());
    }

    #[tokio::test]
    async fn an_attacker_elsewhere_does_not_lock_the_owner_out() {
        let (l, _dir) = limiter().await;
        let t = 1_000_000;
        l.succeeded("admin", "192.0.2.10", t).await.unwrap();
        // Five failures from the attacker's address lock that address out of the account.
        for _ in 0..LoginLimiter::MAX_FAILURES {
            l.failed("admin", "203.0.113.66", t).await.unwrap();
        }
        assert!(l.check("admin", "203.0.113.66", t).await.unwrap().is_err());
        assert!(
            l.check("admin", "192.0.2.10", t).await.unwrap().is_ok(),
            "owner still gets in"
        );
        assert!(
            l.check("admin", "198.51.100.7", t).await.unwrap().is_ok(),
            "a new address too"
        );
        // Many addresses (a botnet): the account refuses unknown addresses, the owner's
        // usual one still works.
        for i in 0..LoginLimiter::MAX_FAILURES_PER_ACCOUNT {
            l.failed("admin", &format!("203.0.113.{}", i % 200), t)
                .await
                .unwrap();
        }
        assert!(l.check("admin", "198.51.100.7", t).await.unwrap().is_err());
        assert!(l.check("admin", "192.0.2.10", t).await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn one_address_guessing_many_accounts_is_locked_out() {
        let (l, _dir) = limiter().await;
        let t = 1_000_000;
        for i in 0..LoginLimiter::MAX_FAILURES_PER_ADDRESS - 1 {
            assert!(!l.failed(&format!("user{i}"), "10.0.0.9", t).await.unwrap());
        }
        assert!(l.check("someone", "10.0.0.9", t).await.unwrap().is_ok());
        assert!(!l.failed("user-last", "10.0.0.9", t).await.unwrap());
        assert!(matches!(
            l.check("someone", "10.0.0.9", t).await.unwrap(),
            Err(Locked::Address(_))
        ));
        assert!(
            l.check("someone", "10.0.0.10", t).await.unwrap().is_ok(),
            "other addresses are not affected"
        );
    }

    #[tokio::test]
    async fn failures_outside_the_window_do_not_count() {
        let (l, _dir) = limiter().await;
        let t = 1_000_000;
        for i in 0..10 {
            assert!(!l
                .failed("alice", "10.0.0.1", t + LoginLimiter::WINDOW * i)
                .await
                .unwrap());
        }
        l.succeeded("alice", "10.0.0.1", t).await.unwrap();
        assert!(l.check("alice", "10.0.0.1", t).await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn two_panels_on_one_database_count_the_same_failures() {
        let (a, dir) = limiter().await;
        let url = crate::db::default_url(dir.path());
        let b = LoginLimiter::new(crate::db::Db::connect(&url).await.unwrap());
        let t = 1_000_000;
        for i in 0..LoginLimiter::MAX_FAILURES {
            let panel = if i % 2 == 0 { &a } else { &b };
            panel.failed("alice", "10.0.0.1", t).await.unwrap();
        }
        assert!(a.check("alice", "10.0.0.1", t).await.unwrap().is_err());
        assert!(b.check("alice", "10.0.0.1", t).await.unwrap().is_err());
    }
}
