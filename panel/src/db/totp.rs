//! Second factors: TOTP secrets, recovery codes (hashed), and logins waiting for a code.

use super::{now, Db};
use crate::error::AppResult;

/// A user's TOTP secret (base32) and whether it is confirmed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRow {
    pub secret: String,
    pub enabled_at: Option<i64>,
    pub last_step: i64,
}

impl Db {
    pub async fn totp(&self, user_id: i64) -> AppResult<Option<TotpRow>> {
        let row: Option<TotpRow> =
            sqlx::query_as("SELECT secret, enabled_at, last_step FROM totp WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|mut r| {
            r.secret = self.unseal("totp.secret", &r.secret)?;
            Ok(r)
        })
        .transpose()
    }

    /// Keeps a new, unconfirmed secret (replacing an unconfirmed one).
    pub async fn set_pending_totp(&self, user_id: i64, secret: &str) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM totp WHERE user_id = $1 AND enabled_at IS NULL")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO totp (user_id, secret) VALUES ($1, $2)")
            .bind(user_id)
            .bind(self.seal("totp.secret", secret)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns the pending secret on, with the step of the code that confirmed it and new
    /// recovery codes (their hashes).
    pub async fn enable_totp(&self, user_id: i64, step: i64, codes: &[String]) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE totp SET enabled_at = $1, last_step = $2 WHERE user_id = $3")
            .bind(now())
            .bind(step)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET totp_enabled = 1 WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        replace_codes(&mut tx, user_id, codes).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn replace_recovery_codes(&self, user_id: i64, codes: &[String]) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        replace_codes(&mut tx, user_id, codes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the second factor (secret and recovery codes).
    pub async fn disable_totp(&self, user_id: i64) -> AppResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET totp_enabled = 0 WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records `step` as used if it is later than every step used before (so a code
    /// counts once, even raced by two logins).
    pub async fn advance_totp_step(&self, user_id: i64, step: i64) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE totp SET last_step = $1 WHERE user_id = $2 AND last_step < $1 \
             AND enabled_at IS NOT NULL",
        )
        .bind(step)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Uses up a recovery code (by hash); false if it is not one or was used.
    pub async fn use_recovery_code(&self, user_id: i64, hash: &str) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now())
        .bind(user_id)
        .bind(hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn recovery_codes_left(&self, user_id: i64) -> AppResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    pub async fn create_login_challenge(
        &self,
        id_hash: &str,
        user_id: i64,
        ttl: i64,
    ) -> AppResult<()> {
        sqlx::query("DELETE FROM login_challenges WHERE expires_at <= $1")
            .bind(now())
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO login_challenges (id_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(now() + ttl)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user of a live challenge, counting this attempt; `None` once expired or after
    /// `max_attempts`.
    pub async fn attempt_login_challenge(
        &self,
        id_hash: &str,
        max_attempts: i64,
    ) -> AppResult<Option<i64>> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE login_challenges SET attempts = attempts + 1 \
             WHERE id_hash = $1 AND expires_at > $2 RETURNING user_id, attempts",
        )
        .bind(id_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.filter(|(_, a)| *a <= max_attempts).map(|(u, _)| u))
    }

    pub async fn delete_login_challenge(&self, id_hash: &str) -> AppResult<()> {
        sqlx::query("DELETE FROM login_challenges WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

async fn replace_codes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    codes: &[String],
) -> AppResult<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for c in codes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(c)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
