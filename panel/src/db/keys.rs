//! Public keys of the SSH gateway.

use super::{conflict, now, Db};
use crate::domain::User;
use crate::error::AppResult;

/// One public key of an account.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct SshKey {
    pub id: i64,
    #[serde(skip)]
    pub user_id: i64,
    pub name: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`...
    pub algorithm: String,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    pub public_key: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl Db {
    pub async fn add_ssh_key(
        &self,
        user_id: i64,
        name: &str,
        algorithm: &str,
        fingerprint: &str,
        public_key: &str,
    ) -> AppResult<SshKey> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO ssh_keys (user_id, name, algorithm, fingerprint, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(algorithm)
        .bind(fingerprint)
        .bind(public_key)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!(
            "public_key: the key {fingerprint} is already registered (a key belongs to one account)"
        )))?;
        Ok(sqlx::query_as("SELECT * FROM ssh_keys WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn ssh_keys(&self, user_id: i64) -> AppResult<Vec<SshKey>> {
        Ok(
            sqlx::query_as("SELECT * FROM ssh_keys WHERE user_id = $1 ORDER BY id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Deletes key `id` of `user_id`; whether there was one.
    pub async fn delete_ssh_key(&self, user_id: i64, id: i64) -> AppResult<bool> {
        let done = sqlx::query("DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether some account holds the key with this fingerprint.
    pub async fn ssh_key_exists(&self, fingerprint: &str) -> AppResult<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM ssh_keys WHERE fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The live account a key with this fingerprint logs in as, and notes the use.
    pub async fn user_by_ssh_key(&self, fingerprint: &str) -> AppResult<Option<(User, SshKey)>> {
        let key: Option<SshKey> = sqlx::query_as("SELECT * FROM ssh_keys WHERE fingerprint = $1")
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        let Some(key) = key else {
            return Ok(None);
        };
        let user: Option<User> =
            sqlx::query_as("SELECT * FROM users WHERE id = $1 AND deleted_at IS NULL")
                .bind(key.user_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(user) = user else {
            return Ok(None);
        };
        sqlx::query("UPDATE ssh_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now())
            .bind(key.id)
            .execute(&self.pool)
            .await?;
        Ok(Some((user, key)))
    }
}
