//! The audit log.

use sqlx::FromRow;

use super::{now, Db};
use crate::domain::{Role, User};
use crate::error::AppResult;

/// One audit log entry.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub result: String,
}

impl Db {
    // ---- audit -------------------------------------------------------------------

    /// Records a state-changing action and its result.
    pub async fn audit(
        &self,
        actor: Option<&User>,
        action: &str,
        target: &str,
        result: &str,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor_id, actor, action, target, result) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now())
        .bind(actor.map(|u| u.id))
        .bind(actor.map_or("system", |u| u.name.as_str()))
        .bind(action)
        .bind(target)
        .bind(result)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit entries `user` may read: all for the provider; for a reseller, its own
    /// actions and its customers'. Newest first.
    pub async fn audit_visible_to(&self, user: &User, limit: i64) -> AppResult<Vec<AuditRow>> {
        self.audit_visible_before(user, None, limit).await
    }

    /// [`Db::audit_visible_to`], only entries older than `before` (an entry's id).
    pub async fn audit_visible_before(
        &self,
        user: &User,
        before: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<AuditRow>> {
        let (filter, id) = match user.role() {
            Role::Provider => ("WHERE a.id < $1", None),
            _ => (
                "WHERE a.id < $1 AND (a.actor_id = $2 OR a.actor_id IN \
                 (SELECT id FROM users WHERE reseller_id = $2))",
                Some(user.id),
            ),
        };
        let sql = format!(
            "SELECT a.id, a.at, a.actor, a.action, a.target, a.result FROM audit_log a \
             {filter} ORDER BY a.id DESC LIMIT {limit}"
        );
        let mut q = sqlx::query_as::<_, AuditRow>(&sql).bind(before.unwrap_or(i64::MAX));
        if let Some(id) = id {
            q = q.bind(id);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }
}
