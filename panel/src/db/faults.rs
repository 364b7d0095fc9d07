//! Limit hits as stored by the metering job.

use serde::Serialize;
use sqlx::FromRow;

use super::Db;
use crate::domain::{Role, User};
use crate::error::AppResult;

/// One kind of limit hit seen by one sample.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct FaultRow {
    pub at: i64,
    /// The owner's account name.
    pub owner: String,
    /// The owner's name for the container.
    pub container: String,
    /// `oom_kill`, `memory_limit`, `process_limit`, `cpu_throttled`, `disk_full`,
    /// `inodes_full`.
    pub kind: String,
    /// Processes, times or refusals; milliseconds for `cpu_throttled`; percent used for
    /// `disk_full` and `inodes_full`.
    pub amount: i64,
}

const SELECT: &str = "SELECT f.at, u.name AS owner, f.container, f.kind, f.amount \
                      FROM faults f JOIN users u ON u.id = f.customer_id";

impl Db {
    /// A container's limit hits since `since`, newest first.
    pub async fn faults_of(&self, container_id: i64, since: i64) -> AppResult<Vec<FaultRow>> {
        Ok(sqlx::query_as(&format!(
            "{SELECT} WHERE f.container_id = $1 AND f.at >= $2 ORDER BY f.at DESC, f.id DESC \
             LIMIT 1000"
        ))
        .bind(container_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The limit hits `user` may see since `since` (own, customers', all), newest first.
    pub async fn faults_visible_to(&self, user: &User, since: i64) -> AppResult<Vec<FaultRow>> {
        let filter = match user.role() {
            Role::Customer => "AND f.customer_id = $2",
            Role::Reseller => "AND u.reseller_id = $2",
            Role::Provider => "AND $2 = $2",
        };
        Ok(sqlx::query_as(&format!(
            "{SELECT} WHERE f.at >= $1 {filter} ORDER BY f.at DESC, f.id DESC LIMIT 1000"
        ))
        .bind(since)
        .bind(user.id)
        .fetch_all(&self.pool)
        .await?)
    }
}
