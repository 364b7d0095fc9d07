//! Durable operations: one row per long action, updated as it runs and when it ends.

use serde::Serialize;
use sqlx::FromRow;

use super::{now, Db};
use crate::error::AppResult;

/// An operation as stored.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct OperationRow {
    pub id: i64,
    #[serde(skip)]
    pub owner_id: i64,
    /// What it does: `container.create`, `template.import`...
    pub kind: String,
    /// What it acts on: `owner/name` for a container, the template's name.
    pub target: String,
    #[serde(skip)]
    pub container_id: Option<i64>,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// For people: progress while it runs, then how it ended.
    pub message: String,
    /// The error's code when it failed (as in the API's error bodies).
    pub error_code: Option<String>,
    /// What it produced, as JSON (the container it made or changed).
    #[serde(skip)]
    pub result: Option<String>,
    /// The panel process running it.
    #[serde(skip)]
    pub runner: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

const COLUMNS: &str = "id, owner_id, kind, target, container_id, state, message, error_code, \
                       result, runner, created_at, updated_at, finished_at";

impl Db {
    pub async fn insert_operation(
        &self,
        owner_id: i64,
        kind: &str,
        target: &str,
        container_id: Option<i64>,
        runner: &str,
    ) -> AppResult<OperationRow> {
        let now = now();
        Ok(sqlx::query_as(&format!(
            "INSERT INTO operations (owner_id, kind, target, container_id, state, message, runner, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'running', '', $5, $6, $6) \
             RETURNING {COLUMNS}"
        ))
        .bind(owner_id)
        .bind(kind)
        .bind(target)
        .bind(container_id)
        .bind(runner)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Ends a running operation; false if it had ended already (another panel failed it).
    pub async fn finish_operation(
        &self,
        id: i64,
        succeeded: bool,
        message: &str,
        error_code: Option<&str>,
        result: Option<&str>,
    ) -> AppResult<bool> {
        let now = now();
        let done = sqlx::query(
            "UPDATE operations SET state = $1, message = $2, error_code = $3, result = $4, \
             updated_at = $5, finished_at = $5 WHERE id = $6 AND state = 'running'",
        )
        .bind(if succeeded { "succeeded" } else { "failed" })
        .bind(message)
        .bind(error_code)
        .bind(result)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Says how far a running operation got (its message, for people).
    pub async fn operation_progress(&self, id: i64, message: &str) -> AppResult<()> {
        sqlx::query(
            "UPDATE operations SET message = $1, updated_at = $2 WHERE id = $3 AND state = 'running'",
        )
        .bind(message)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Says a runner's operations are still being worked on.
    pub async fn heartbeat_operations(&self, runner: &str) -> AppResult<()> {
        sqlx::query(
            "UPDATE operations SET updated_at = $1 WHERE runner = $2 AND state = 'running'",
        )
        .bind(now())
        .bind(runner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn operation(&self, id: i64) -> AppResult<Option<OperationRow>> {
        Ok(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM operations WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The newest operations started by `owner_id`.
    pub async fn operations_of(&self, owner_id: i64, limit: i64) -> AppResult<Vec<OperationRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM operations WHERE owner_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(owner_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every operation still marked running, whoever runs it.
    pub async fn running_operations(&self) -> AppResult<Vec<OperationRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM operations WHERE state = 'running' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether a running operation works on container row `container_id`.
    pub async fn container_busy(&self, container_id: i64) -> AppResult<bool> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM operations WHERE container_id = $1 AND state = 'running'",
        )
        .bind(container_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Forgets finished operations older than `before`.
    pub async fn prune_operations(&self, before: i64) -> AppResult<()> {
        sqlx::query("DELETE FROM operations WHERE state <> 'running' AND finished_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
