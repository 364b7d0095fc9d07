//! Resellers' plugins: stored components, their key-value stores, the record of their
//! calls and of hook events.

use std::collections::BTreeMap;

use acetate_plugins::{Event, Kind, Kv, KvChanges, Plugin};
use serde::Serialize;
use sqlx::FromRow;

use super::{now, Db};
use crate::error::{AppError, AppResult};

/// Recorded hook events kept per reseller (for dry runs).
const KEEP_EVENTS: i64 = 50;
/// Calls kept per plugin.
const KEEP_CALLS: i64 = 200;

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct PluginRow {
    pub id: i64,
    #[serde(skip)]
    pub reseller_id: i64,
    pub name: String,
    pub kind: String,
    pub sha256: String,
    pub size: i64,
    #[serde(serialize_with = "as_bool")]
    #[schema(value_type = bool)]
    pub enabled: i64,
    pub on_failure: String,
    pub calls: i64,
    pub failures: i64,
    pub created_at: i64,
    /// The version before the last replacement, kept for a rollback.
    pub previous_sha256: Option<String>,
    pub replaced_at: Option<i64>,
}

fn as_bool<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

const COLUMNS: &str = "id, reseller_id, name, kind, sha256, size, enabled, on_failure, calls, \
                       failures, created_at, previous_sha256, replaced_at";

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct CallRow {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub detail: String,
    pub fuel: i64,
    pub micros: i64,
    #[serde(serialize_with = "as_json")]
    #[schema(value_type = Vec<Object>)]
    pub log: String,
    #[serde(serialize_with = "as_bool")]
    #[schema(value_type = bool)]
    pub dry_run: i64,
}

fn as_json<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    let value: serde_json::Value = serde_json::from_str(v).unwrap_or(serde_json::Value::Null);
    value.serialize(s)
}

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    #[serde(serialize_with = "as_json")]
    #[schema(value_type = Object)]
    pub event: String,
}

/// One call of a plugin, as recorded for its owner.
#[derive(Debug, Clone, Copy)]
pub struct CallRecord<'a> {
    /// The event kind, `overuse` or `billing`.
    pub event: &'a str,
    /// `allow`, `deny`, `amend`, `ok`, `actions`, `none` or `failure`.
    pub outcome: &'a str,
    pub detail: &'a str,
    pub fuel: u64,
    pub micros: u128,
    pub log: &'a [acetate_plugins::LogLine],
    /// Dry runs are recorded but not counted.
    pub dry_run: bool,
}

impl<'a> CallRecord<'a> {
    /// The record of a real (not dry) call: its fuel, time and log.
    pub fn of<T>(
        event: &'a str,
        outcome: &'a str,
        detail: &'a str,
        call: &'a acetate_plugins::Call<T>,
    ) -> Self {
        CallRecord {
            event,
            outcome,
            detail,
            fuel: call.fuel_used,
            micros: call.elapsed.as_micros(),
            log: &call.log,
            dry_run: false,
        }
    }
}

/// A valid plugin name: what a reseller calls it.
pub fn validate_plugin_name(name: &str) -> AppResult<()> {
    let ok = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(AppError::Unprocessable(
            "plugin names are 1 to 40 letters, digits, dots, dashes and underscores".into(),
        ))
    }
}

/// Plugins one reseller may keep.
pub const MAX_PLUGINS: i64 = 16;
/// Bytes of components one reseller may keep, all plugins together (each key-value
/// store is bounded by the host: [`acetate_plugins::KV_MAX_BYTES`]).
pub const MAX_PLUGIN_BYTES: i64 = 64 << 20;

impl Db {
    pub async fn plugins_of(&self, reseller_id: i64) -> AppResult<Vec<PluginRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM plugins WHERE reseller_id = $1 ORDER BY id"
        ))
        .bind(reseller_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn plugin_by_name(
        &self,
        reseller_id: i64,
        name: &str,
    ) -> AppResult<Option<PluginRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM plugins WHERE reseller_id = $1 AND name = $2"
        ))
        .bind(reseller_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn enabled_plugins(&self, reseller_id: i64, kind: Kind) -> AppResult<Vec<PluginRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM plugins WHERE reseller_id = $1 AND kind = $2 AND enabled = 1 \
             ORDER BY id"
        ))
        .bind(reseller_id)
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores a plugin, within the reseller's storage: at most [`MAX_PLUGINS`] plugins and
    /// [`MAX_PLUGIN_BYTES`] of components (checked in the statement that inserts).
    pub async fn insert_plugin(
        &self,
        reseller_id: i64,
        name: &str,
        plugin: &Plugin,
        wasm: &[u8],
    ) -> AppResult<i64> {
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO plugins (reseller_id, name, kind, sha256, size, wasm, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 \
             WHERE (SELECT COUNT(*) FROM plugins WHERE reseller_id = $1) < $8 \
               AND (SELECT COALESCE(SUM(size + previous_size), 0) FROM plugins \
                    WHERE reseller_id = $1) + $5 <= $9 \
             RETURNING id",
        )
        .bind(reseller_id)
        .bind(name)
        .bind(plugin.kind().as_str())
        .bind(plugin.sha256())
        .bind(wasm.len() as i64)
        .bind(wasm.to_vec())
        .bind(now())
        .bind(MAX_PLUGINS)
        .bind(MAX_PLUGIN_BYTES)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => AppError::Conflict(format!(
                "you already have a plugin named {name:?}: upload a new version of it from its page \
             (or PUT /api/v1/plugins/{name}) to replace it"
            )),
            _ => AppError::Db(e),
        })?;
        if let Some((id,)) = id {
            return Ok(id);
        }
        let (count, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(size + previous_size), 0) FROM plugins \
             WHERE reseller_id = $1",
        )
        .bind(reseller_id)
        .fetch_one(&self.pool)
        .await?;
        Err(AppError::Quota(format!(
            "your plugin storage is full: {count} plugins, {} of components (at most \
             {MAX_PLUGINS} plugins and {} in all); delete one first",
            acetate_engine::size::format_bytes(bytes.max(0) as u64),
            acetate_engine::size::format_bytes(MAX_PLUGIN_BYTES as u64)
        )))
    }

    pub async fn plugin_wasm(&self, id: i64) -> AppResult<Vec<u8>> {
        let (wasm,): (Vec<u8>,) = sqlx::query_as("SELECT wasm FROM plugins WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(wasm)
    }

    /// Sets a plugin's switches; enabling a billing rule disables the reseller's others.
    pub async fn set_plugin(
        &self,
        row: &PluginRow,
        enabled: Option<bool>,
        on_failure: Option<&str>,
    ) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        if enabled == Some(true) && row.kind == Kind::Billing.as_str() {
            sqlx::query(
                "UPDATE plugins SET enabled = 0 WHERE reseller_id = $1 AND kind = 'billing'",
            )
            .bind(row.reseller_id)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(enabled) = enabled {
            sqlx::query("UPDATE plugins SET enabled = $1 WHERE id = $2")
                .bind(i64::from(enabled))
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(policy) = on_failure {
            sqlx::query("UPDATE plugins SET on_failure = $1 WHERE id = $2")
                .bind(policy)
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_plugin(&self, id: i64) -> AppResult<()> {
        sqlx::query("DELETE FROM plugins WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn plugin_kv(&self, plugin_id: i64) -> AppResult<Kv> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT key, value FROM plugin_kv WHERE plugin_id = $1")
                .bind(plugin_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect::<BTreeMap<_, _>>())
    }

    pub async fn apply_kv(&self, plugin_id: i64, changes: &KvChanges) -> AppResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (key, value) in &changes.0 {
            sqlx::query("DELETE FROM plugin_kv WHERE plugin_id = $1 AND key = $2")
                .bind(plugin_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            if let Some(value) = value {
                sqlx::query("INSERT INTO plugin_kv (plugin_id, key, value) VALUES ($1, $2, $3)")
                    .bind(plugin_id)
                    .bind(key)
                    .bind(value.clone())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a call and what it cost; counts calls and failures of real (not dry) runs.
    pub async fn record_call(&self, plugin_id: i64, r: CallRecord<'_>) -> AppResult<()> {
        let CallRecord {
            event,
            outcome,
            detail,
            fuel,
            micros,
            log,
            dry_run,
        } = r;
        let call_cost = (fuel, micros);
        let log = serde_json::to_string(log).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO plugin_calls (plugin_id, at, event, outcome, detail, fuel, micros, log, dry_run) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(plugin_id)
        .bind(now())
        .bind(event)
        .bind(outcome)
        .bind(detail)
        .bind(call_cost.0 as i64)
        .bind(call_cost.1.min(i64::MAX as u128) as i64)
        .bind(log)
        .bind(i64::from(dry_run))
        .execute(&self.pool)
        .await?;
        if !dry_run {
            let failed = i64::from(outcome == "failure");
            sqlx::query(
                "UPDATE plugins SET calls = calls + 1, failures = failures + $1 WHERE id = $2",
            )
            .bind(failed)
            .bind(plugin_id)
            .execute(&self.pool)
            .await?;
        }
        self.keep_newest("plugin_calls", "plugin_id", plugin_id, KEEP_CALLS)
            .await
    }

    /// Deletes all but the newest `keep` rows of `table` whose `owner` column is `id`.
    async fn keep_newest(&self, table: &str, owner: &str, id: i64, keep: i64) -> AppResult<()> {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {owner} = $1 AND id <= \
             (SELECT id FROM {table} WHERE {owner} = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)"
        ))
        .bind(id)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn plugin_calls(&self, plugin_id: i64, limit: i64) -> AppResult<Vec<CallRow>> {
        Ok(sqlx::query_as(
            "SELECT id, at, event, outcome, detail, fuel, micros, log, dry_run FROM plugin_calls \
             WHERE plugin_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(plugin_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn record_event(&self, reseller_id: i64, event: &Event) -> AppResult<()> {
        let json = serde_json::to_string(event).map_err(|e| AppError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO hook_events (reseller_id, at, kind, event) VALUES ($1, $2, $3, $4)",
        )
        .bind(reseller_id)
        .bind(event.at)
        .bind(event.kind.as_str())
        .bind(json)
        .execute(&self.pool)
        .await?;
        self.keep_newest("hook_events", "reseller_id", reseller_id, KEEP_EVENTS)
            .await
    }

    pub async fn hook_events(&self, reseller_id: i64) -> AppResult<Vec<EventRow>> {
        Ok(sqlx::query_as(
            "SELECT id, at, kind, event FROM hook_events WHERE reseller_id = $1 ORDER BY id DESC",
        )
        .bind(reseller_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn hook_event(&self, reseller_id: i64, id: i64) -> AppResult<Option<Event>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT event FROM hook_events WHERE reseller_id = $1 AND id = $2")
                .bind(reseller_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(json,)| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| AppError::Internal(format!("a recorded event does not parse: {e}")))
    }
}

impl Db {
    /// The name of account `id` (empty if it is gone).
    pub async fn user_name(&self, id: i64) -> AppResult<String> {
        Ok(
            sqlx::query_as::<_, (String,)>("SELECT name FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map(|(n,)| n)
                .unwrap_or_default(),
        )
    }

    /// How many containers a customer has (in any state).
    pub async fn container_count(&self, owner_id: i64) -> AppResult<i64> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM containers WHERE owner_id = $1")
                .bind(owner_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(count)
    }

    /// Calls and failures of every plugin (dry runs left out).
    pub async fn plugin_call_totals(&self) -> AppResult<(i64, i64)> {
        let (calls, failures): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT), \
             CAST(COALESCE(SUM(failures), 0) AS BIGINT) FROM plugins",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((calls, failures))
    }
}
