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
            "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
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

    /// The user and CSRF token of a live session.
    pub async fn session(&self, id_hash: &str) -> AppResult<Option<(User, String)>> {
        let Some((user_id, csrf)): Option<(i64, String)> = sqlx::query_as(
            "SELECT user_id, csrf FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let user = sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(user.map(|u| (u, csrf)))
    }

    /// Sets a new password hash and ends every session of the user but `keep`.
    pub async fn set_password(&self, user_id: i64, hash: &str, keep: &str) -> AppResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
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
}
