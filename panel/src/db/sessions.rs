//! Browser sessions.

use super::{now, Db};
use crate::domain::User;
use crate::error::AppResult;

impl Db {
    // ---- sessions ------------------------------------------------------------------

    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        ttl: i64,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $4)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now())
        .bind(now() + ttl)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user and CSRF token of a live session: not past its expiry, not idle for
    /// `idle` seconds. Its use is noted (at most once a minute).
    pub async fn session(&self, id_hash: &str, idle: i64) -> AppResult<Option<(User, String)>> {
        let now = now();
        let Some((user_id, csrf, last_seen)): Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT user_id, csrf, last_seen FROM sessions \
             WHERE id_hash = $1 AND expires_at > $2 AND last_seen > $3",
        )
        .bind(id_hash)
        .bind(now)
        .bind(now - idle)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        if last_seen < now - 60 {
            sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(id_hash)
                .execute(&self.pool)
                .await?;
        }
        let user = sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(user.map(|u| (u, csrf)))
    }

    /// Sets a new password hash and ends every session of the user but `keep`.
    /// Marks the account's password as one someone else chose (to be changed at login).
    pub async fn require_password_change(&self, user_id: i64) -> AppResult<()> {
        sqlx::query("UPDATE users SET must_change_password = 1 WHERE id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_password(&self, user_id: i64, hash: &str, keep: &str) -> AppResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1, must_change_password = 0 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> AppResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of a user ("log out everywhere").
    pub async fn delete_sessions_of(&self, user_id: i64) -> AppResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// A user's live sessions: (started, last used), newest first.
    pub async fn sessions_of(&self, user_id: i64, idle: i64) -> AppResult<Vec<(i64, i64)>> {
        let now = now();
        Ok(sqlx::query_as(
            "SELECT created_at, last_seen FROM sessions WHERE user_id = $1 \
             AND expires_at > $2 AND last_seen > $3 ORDER BY created_at DESC",
        )
        .bind(user_id)
        .bind(now)
        .bind(now - idle)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets sessions past their expiry or idle for `idle` seconds.
    pub async fn purge_sessions(&self, idle: i64) -> AppResult<u64> {
        let now = now();
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen <= $2")
            .bind(now)
            .bind(now - idle)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
