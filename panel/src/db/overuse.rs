//! What the resellers' overuse policies work from and leave behind: limit hits not yet
//! handed to them, notices to customers, and the limits a temporary adjustment restores.

use serde::Serialize;
use sqlx::FromRow;

use super::Db;
use crate::domain::{Role, User};
use crate::error::AppResult;

/// A limit hit not yet handed to the owner's reseller's policies.
#[derive(Debug, Clone, FromRow)]
pub struct PendingFault {
    pub id: i64,
    pub container_id: i64,
    pub customer_id: i64,
    pub at: i64,
    pub kind: String,
    pub amount: i64,
    /// Seconds the sample covered.
    pub seconds: i64,
}

/// A message to a customer (from a reseller's overuse policy).
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct NoticeRow {
    pub at: i64,
    /// The customer's account name.
    pub owner: String,
    /// The owner's name for the container it is about ('' if none).
    pub container: String,
    /// Who says it: `plugin:<name>` for a reseller's plugin.
    pub source: String,
    pub message: String,
}

/// Limits to restore when a temporary adjustment ends.
#[derive(Debug, Clone, FromRow)]
pub struct Revert {
    pub container_id: i64,
    pub due_at: i64,
    /// The engine's limits as JSON.
    pub limits: String,
    pub source: String,
}

const NOTICES: &str = "SELECT n.at, u.name AS owner, n.container, n.source, n.message \
                       FROM notices n JOIN users u ON u.id = n.customer_id";

impl Db {
    /// The oldest limit hits not yet handed to the policies (at most `limit`).
    pub async fn undispatched_faults(&self, limit: i64) -> AppResult<Vec<PendingFault>> {
        Ok(sqlx::query_as(
            "SELECT id, container_id, customer_id, at, kind, amount, seconds FROM faults \
             WHERE dispatched_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Marks limit hits as handed to the policies.
    pub async fn mark_dispatched(&self, ids: &[i64], now: i64) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query("UPDATE faults SET dispatched_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_notice(
        &self,
        customer_id: i64,
        container: Option<(i64, &str)>,
        source: &str,
        message: &str,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO notices (customer_id, container_id, container, at, source, message) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(customer_id)
        .bind(container.map(|c| c.0))
        .bind(container.map_or("", |c| c.1))
        .bind(super::now())
        .bind(source)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A container's notices since `since`, newest first.
    pub async fn notices_of(&self, container_id: i64, since: i64) -> AppResult<Vec<NoticeRow>> {
        Ok(sqlx::query_as(&format!(
            "{NOTICES} WHERE n.container_id = $1 AND n.at >= $2 ORDER BY n.at DESC, n.id DESC \
             LIMIT 200"
        ))
        .bind(container_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The notices `user` may read since `since` (own, customers', all), newest first.
    pub async fn notices_visible_to(&self, user: &User, since: i64) -> AppResult<Vec<NoticeRow>> {
        let filter = match user.role() {
            Role::Customer => "AND n.customer_id = $2",
            Role::Reseller => "AND u.reseller_id = $2",
            Role::Provider => "AND $2 = $2",
        };
        Ok(sqlx::query_as(&format!(
            "{NOTICES} WHERE n.at >= $1 {filter} ORDER BY n.at DESC, n.id DESC LIMIT 500"
        ))
        .bind(since)
        .bind(user.id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Schedules the restoring of `limits` at `due_at`. While one is pending, a new
    /// adjustment moves its time but keeps the limits it restores (the ones from before
    /// the first adjustment).
    pub async fn set_revert(
        &self,
        container_id: i64,
        due_at: i64,
        limits: &str,
        source: &str,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO limit_reverts (container_id, due_at, limits, source) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (container_id) DO UPDATE SET due_at = excluded.due_at",
        )
        .bind(container_id)
        .bind(due_at)
        .bind(limits)
        .bind(source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The pending revert of a container, if any.
    pub async fn revert_of(&self, container_id: i64) -> AppResult<Option<Revert>> {
        Ok(sqlx::query_as(
            "SELECT container_id, due_at, limits, source FROM limit_reverts \
             WHERE container_id = $1",
        )
        .bind(container_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Reverts whose time has come.
    pub async fn due_reverts(&self, now: i64) -> AppResult<Vec<Revert>> {
        Ok(sqlx::query_as(
            "SELECT container_id, due_at, limits, source FROM limit_reverts \
             WHERE due_at <= $1 ORDER BY due_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn delete_revert(&self, container_id: i64) -> AppResult<()> {
        sqlx::query("DELETE FROM limit_reverts WHERE container_id = $1")
            .bind(container_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
