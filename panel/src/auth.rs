//! Passwords (argon2id, verified off the async threads, with a dummy hash for unknown
//! users so timing does not reveal which names exist) and API tokens (random, shown once,
//! stored as SHA-256).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use sha2::{Digest, Sha256};

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

/// Login rate limiting with lockout: after `MAX_FAILURES` failed logins for one account
/// within `WINDOW`, that account is locked for `LOCK`, whatever the password.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    accounts: std::collections::HashMap<String, Attempts>,
}

#[derive(Debug, Default)]
struct Attempts {
    failures: Vec<std::time::Instant>,
    locked_until: Option<std::time::Instant>,
}

impl LoginLimiter {
    pub const MAX_FAILURES: usize = 5;
    /// Failures from one address (over all names) before it is locked out: guessing many
    /// accounts' passwords from one place is stopped too.
    pub const MAX_FAILURES_PER_ADDRESS: usize = 30;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    pub const LOCK: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    /// Accounts tracked at most (oldest forgotten first), so guessing names cannot
    /// exhaust memory.
    const CAPACITY: usize = 100_000;

    /// `Err(time left)` while `name` is locked.
    pub fn check(
        &mut self,
        name: &str,
        now: std::time::Instant,
    ) -> Result<(), std::time::Duration> {
        match self.accounts.get(name).and_then(|a| a.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failure; returns true if it locked the account.
    pub fn failed(&mut self, name: &str, now: std::time::Instant) -> bool {
        self.failed_up_to(name, Self::MAX_FAILURES, now)
    }

    /// Records a failure from a client address (key `ip:ADDR`); true if it locked it.
    pub fn failed_from(&mut self, address: &str, now: std::time::Instant) -> bool {
        self.failed_up_to(
            &format!("ip:{address}"),
            Self::MAX_FAILURES_PER_ADDRESS,
            now,
        )
    }

    /// `Err(time left)` while the client address is locked out.
    pub fn check_from(
        &mut self,
        address: &str,
        now: std::time::Instant,
    ) -> Result<(), std::time::Duration> {
        self.check(&format!("ip:{address}"), now)
    }

    fn failed_up_to(&mut self, name: &str, max: usize, now: std::time::Instant) -> bool {
        if self.accounts.len() >= Self::CAPACITY && !self.accounts.contains_key(name) {
            self.accounts
                .retain(|_, a| a.locked_until.is_some_and(|u| u > now));
        }
        let a = self.accounts.entry(name.to_string()).or_default();
        a.failures.retain(|t| now.duration_since(*t) < Self::WINDOW);
        a.failures.push(now);
        if a.failures.len() >= max {
            a.failures.clear();
            a.locked_until = Some(now + Self::LOCK);
            return true;
        }
        false
    }

    pub fn succeeded(&mut self, name: &str) {
        self.accounts.remove(name);
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::LoginLimiter;
    use std::time::{Duration, Instant};

    #[test]
    fn locks_after_repeated_failures_and_unlocks_later() {
        let mut l = LoginLimiter::default();
        let t = Instant::now();
        for i in 0..LoginLimiter::MAX_FAILURES - 1 {
            assert!(!l.failed("alice", t + Duration::from_secs(i as u64)));
            assert!(l.check("alice", t).is_ok());
        }
        assert!(l.failed("alice", t + Duration::from_secs(10)));
        assert!(l.check("alice", t + Duration::from_secs(11)).is_err());
        assert!(l.check("bob", t).is_ok(), "other accounts are not affected");
        assert!(l
            .check("alice", t + LoginLimiter::LOCK + Duration::from_secs(11))
            .is_ok());
    }

    #[test]
    fn one_address_guessing_many_accounts_is_locked_out() {
        let mut l = LoginLimiter::default();
        let t = Instant::now();
        for i in 0..LoginLimiter::MAX_FAILURES_PER_ADDRESS - 1 {
            assert!(!l.failed_from("10.0.0.9", t));
            assert!(!l.failed(&format!("user{i}"), t));
        }
        assert!(l.check_from("10.0.0.9", t).is_ok());
        assert!(l.failed_from("10.0.0.9", t));
        assert!(l.check_from("10.0.0.9", t).is_err());
        assert!(
            l.check_from("10.0.0.10", t).is_ok(),
            "other addresses are not affected"
        );
        assert!(
            l.check("ip:10.0.0.9", t).is_err(),
            "addresses and names do not mix: the key is prefixed"
        );
        assert!(l.check("10.0.0.9", t).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut l = LoginLimiter::default();
        let t = Instant::now();
        for i in 0..10 {
            assert!(!l.failed("alice", t + LoginLimiter::WINDOW * i));
        }
        l.succeeded("alice");
        assert!(l.check("alice", t).is_ok());
    }
}
