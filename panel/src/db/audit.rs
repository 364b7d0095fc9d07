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

    /// Audit entries `user` may read (all for the provider; for a reseller, its own
    /// actions and its customers'), newest first, older than `before` (an entry's id) and
    /// as `filter` narrows them.
    pub async fn audit_visible_before(
        &self,
        user: &User,
        before: Option<i64>,
        limit: i64,
        filter: &AuditFilter,
    ) -> AppResult<Vec<AuditRow>> {
        let (filter_sql, id) = match user.role() {
            Role::Provider => ("WHERE a.id < $1", None),
            _ => (
                "WHERE a.id < $1 AND (a.actor_id = $2 OR a.actor_id IN \
                 (SELECT id FROM users WHERE reseller_id = $2))",
                Some(user.id),
            ),
        };
        let mut sql = String::from(
            "SELECT a.id, a.at, a.actor, a.action, a.target, a.result FROM audit_log a ",
        );
        sql.push_str(filter_sql);
        let mut n = if id.is_some() { 2 } else { 1 };
        let mut texts: Vec<String> = Vec::new();
        let mut times: Vec<i64> = Vec::new();
        let mut arg = |sql: &mut String, cond: &str| {
            n += 1;
            sql.push_str(&cond.replace('?', &format!("${n}")));
        };
        if let Some(who) = &filter.actor {
            arg(&mut sql, " AND a.actor = ?");
            texts.push(who.clone());
        }
        if let Some(what) = &filter.action {
            arg(&mut sql, " AND a.action LIKE ?");
            texts.push(format!("{}%", like_literal(what)));
        }
        if let Some(on) = &filter.target {
            arg(&mut sql, " AND (a.target = ?");
            texts.push(on.clone());
            arg(&mut sql, " OR a.target LIKE ?)");
            texts.push(format!("{}/%", like_literal(on)));
        }
        if let Some(since) = filter.since {
            arg(&mut sql, " AND a.at >= ?");
            times.push(since);
        }
        if let Some(until) = filter.until {
            arg(&mut sql, " AND a.at < ?");
            times.push(until);
        }
        sql.push_str(&format!(" ORDER BY a.id DESC LIMIT {limit}"));
        let mut q = sqlx::query_as::<_, AuditRow>(&sql).bind(before.unwrap_or(i64::MAX));
        if let Some(id) = id {
            q = q.bind(id);
        }
        for t in texts {
            q = q.bind(t);
        }
        for t in times {
            q = q.bind(t);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }
}

/// What an audit query narrows to (each unset part: anything).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Who did it: an account's name, exactly.
    #[serde(default, rename = "who", deserialize_with = "empty_none")]
    pub actor: Option<String>,
    /// What: an action or the start of one (`container.`, `login`).
    #[serde(default, rename = "what", deserialize_with = "empty_none")]
    pub action: Option<String>,
    /// On what: an account (its containers too, `alice/web`) or a container.
    #[serde(default, rename = "on", deserialize_with = "empty_none")]
    pub target: Option<String>,
    /// From this time on (seconds since the epoch).
    #[serde(skip)]
    pub since: Option<i64>,
    /// Before this time (seconds since the epoch).
    #[serde(skip)]
    pub until: Option<i64>,
}

fn empty_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
}

/// `s` with LIKE's wildcards taken literally (`\` escapes them, as both databases read
/// `LIKE ... ESCAPE` by default... which SQLite does not: so they are refused instead).
fn like_literal(s: &str) -> String {
    s.replace(['%', '_'], "")
}
