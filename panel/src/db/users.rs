//! Accounts and their API tokens.

use sqlx::FromRow;

use super::{conflict, now, Db};
use crate::domain::{Role, User};
use crate::error::AppResult;

/// An API token as its owner sees it (never the token itself).
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    pub id: i64,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// When it stops working (Unix seconds); never if absent.
    pub expires_at: Option<i64>,
    /// What it may do, comma-separated; empty: every right of its owner.
    pub scopes: String,
}

impl Db {
    // ---- users -------------------------------------------------------------------

    pub async fn provider_count(&self) -> AppResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'provider'")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        reseller_id: Option<i64>,
        password_hash: &str,
    ) -> AppResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO users (name, role, reseller_id, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(reseller_id)
        .bind(password_hash)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!("a user named {name:?} already exists")))?;
        Ok(id)
    }

    pub async fn user_by_id(&self, id: i64) -> AppResult<Option<User>> {
        Ok(
            sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Deletes an account as far as anyone can tell: it is suspended, its sessions and tokens
    /// go, and it is listed and found by name nowhere; its row stays for the invoices, usage
    /// and audit entries that name it.
    pub async fn mark_user_deleted(&self, id: i64) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET deleted_at = $1, suspended = 1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn user_by_name(&self, name: &str) -> AppResult<Option<User>> {
        Ok(
            sqlx::query_as::<_, User>("SELECT * FROM users WHERE name = $1 AND deleted_at IS NULL")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The owner of a live token (not revoked, not expired) and the token's scopes.
    pub async fn user_by_token(&self, token_hash: &str) -> AppResult<Option<(User, String)>> {
        let Some((user_id, scopes)): Option<(i64, String)> = sqlx::query_as(
            "SELECT user_id, scopes FROM api_tokens WHERE token_hash = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(self.user_by_id(user_id).await?.map(|u| (u, scopes)))
    }

    pub async fn insert_token(
        &self,
        user_id: i64,
        token_hash: &str,
        label: &str,
        scopes: &str,
        expires_at: Option<i64>,
    ) -> AppResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (user_id, token_hash, label, created_at, scopes, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(label)
        .bind(now())
        .bind(scopes)
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn tokens_of(&self, user_id: i64) -> AppResult<Vec<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(
            "SELECT id, label, created_at, revoked_at, expires_at, scopes FROM api_tokens \
             WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes token `token_id`, whoever owns it; false if there is no such live token.
    pub async fn revoke_any_token(&self, token_id: i64) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(token_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes one of `user_id`'s tokens; false if it has no such live token.
    pub async fn revoke_token(&self, user_id: i64, token_id: i64) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 \
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(token_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
