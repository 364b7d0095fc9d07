//! A reseller's WebAssembly plugins: uploading (checked before it is stored), switching
//! on and off, dry runs on recorded or given events, and their record of calls.

use std::sync::Arc;

use acetate_plugins::{Decision, InvoiceLine, Kind};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{billing, hooks, AppState};
use crate::db::plugins::{CallRecord, CallRow, EventRow, PluginRow};
use crate::domain::{Role, User};
use crate::error::{AppError, AppResult};

/// Plugins are the reseller's own business.
pub fn reseller(user: &User) -> AppResult<&User> {
    if user.role() == Role::Reseller {
        Ok(user)
    } else {
        Err(AppError::Forbidden("plugins belong to resellers".into()))
    }
}

/// Validates and stores a component for a reseller (disabled until switched on).
pub async fn store(st: &AppState, me: &User, name: &str, wasm: Bytes) -> AppResult<PluginRow> {
    crate::db::plugins::validate_plugin_name(name)?;
    if st.db.plugin_by_name(me.id, name).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "you already have a plugin named {name:?}: upload a new version of it from its page \
             (or PUT /api/v1/plugins/{name}) to replace it"
        )));
    }
    let host = st.plugins.clone();
    let bytes = wasm.clone();
    let plugin = tokio::task::spawn_blocking(move || host.load(&bytes))
        .await?
        .map_err(|e| AppError::Unprocessable(e.to_string()))?;
    st.db.insert_plugin(me.id, name, &plugin, &wasm).await?;
    st.db
        .audit(
            Some(me),
            "plugin.upload",
            name,
            &format!("ok: {} {}", plugin.kind(), plugin.sha256()),
        )
        .await?;
    st.db
        .plugin_by_name(me.id, name)
        .await?
        .ok_or(AppError::NotFound)
}

/// Replaces a plugin in place with a new version of the same kind: its name, switches,
/// key-value store and record of calls stay; the version it had is kept for
/// [`roll_back`].
pub async fn replace(st: &AppState, me: &User, name: &str, wasm: Bytes) -> AppResult<PluginRow> {
    let row = find(st, me, name).await?;
    let host = st.plugins.clone();
    let bytes = wasm.clone();
    let plugin = tokio::task::spawn_blocking(move || host.load(&bytes))
        .await?
        .map_err(|e| AppError::Unprocessable(e.to_string()))?;
    if plugin.kind().as_str() != row.kind {
        return Err(AppError::Unprocessable(format!(
            "{name} is a {} plugin and this component is a {} plugin: upload it under \
             another name",
            row.kind,
            plugin.kind()
        )));
    }
    st.db.replace_plugin(&row, &plugin, &wasm).await?;
    st.db
        .audit(
            Some(me),
            "plugin.replace",
            name,
            &format!("ok: {} -> {}", row.sha256, plugin.sha256()),
        )
        .await?;
    find(st, me, name).await
}

/// Brings back the version a plugin had before its last replacement (and keeps the
/// replaced one, so that a second rollback undoes the first).
pub async fn roll_back(st: &AppState, me: &User, name: &str) -> AppResult<PluginRow> {
    let row = find(st, me, name).await?;
    if !st.db.roll_back_plugin(&row).await? {
        return Err(AppError::Conflict(format!(
            "{name} has no previous version: it was never replaced"
        )));
    }
    let now = find(st, me, name).await?;
    st.db
        .audit(
            Some(me),
            "plugin.rollback",
            name,
            &format!("ok: {} -> {}", row.sha256, now.sha256),
        )
        .await?;
    Ok(now)
}

pub async fn find(st: &AppState, me: &User, name: &str) -> AppResult<PluginRow> {
    st.db
        .plugin_by_name(me.id, name)
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginChange {
    pub enabled: Option<bool>,
    /// What a failing hook means: `deny` (the default) or `allow`.
    pub on_failure: Option<String>,
}

pub async fn update(
    st: &AppState,
    me: &User,
    name: &str,
    req: &PluginChange,
) -> AppResult<PluginRow> {
    let row = find(st, me, name).await?;
    if let Some(policy) = &req.on_failure {
        if policy != "deny" && policy != "allow" {
            return Err(AppError::Unprocessable(
                "on_failure is \"deny\" or \"allow\"".into(),
            ));
        }
    }
    if req.enabled.is_none() && req.on_failure.is_none() {
        return Err(AppError::Unprocessable(
            "give enabled and/or on_failure".into(),
        ));
    }
    st.db
        .set_plugin(&row, req.enabled, req.on_failure.as_deref())
        .await?;
    let what = format!("enabled={:?} on_failure={:?}", req.enabled, req.on_failure);
    st.db.audit(Some(me), "plugin.update", name, &what).await?;
    find(st, me, name).await
}

pub async fn delete(st: &AppState, me: &User, name: &str) -> AppResult<()> {
    let row = find(st, me, name).await?;
    st.db.delete_plugin(row.id).await?;
    st.db.audit(Some(me), "plugin.delete", name, "ok").await?;
    Ok(())
}

/// What to dry-run a plugin on: a recorded event (hooks), an event given in full (hooks),
/// a limit hit (`overuse`, for hooks that export the overuse policy of WIT 1.2.0), or a
/// customer's real usage for a period (billing rules).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    pub event_id: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub event: Option<acetate_plugins::Event>,
    #[schema(value_type = Option<Object>)]
    pub overuse: Option<acetate_plugins::OveruseEvent>,
    pub customer: Option<String>,
    pub period: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRunResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub lines: Option<Vec<InvoiceLine>>,
    /// An overuse policy's actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub actions: Option<Vec<acetate_plugins::OveruseAction>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub fuel_used: u64,
    pub micros: u128,
    #[schema(value_type = Vec<Object>)]
    pub log: Vec<acetate_plugins::LogLine>,
}

/// Runs a plugin without effect: its key-value writes are dropped; the call is recorded
/// (marked as a dry run) with its log.
pub async fn try_plugin(
    st: &AppState,
    me: &User,
    name: &str,
    req: DryRunRequest,
) -> AppResult<DryRunResult> {
    let row = find(st, me, name).await?;
    let plugin = hooks::load(&st.db, &st.plugins, &row).await?;
    let kv = Arc::new(st.db.plugin_kv(row.id).await?);
    let host = st.plugins.clone();
    let (label, result) = match (plugin.kind(), req.overuse) {
        (Kind::Hook, Some(event)) => {
            let call = hooks::call(move || host.overuse(&plugin, &event, kv)).await?;
            let (actions, failure) = match call.result {
                Ok(a) => (Some(a), None),
                Err(f) => (None, Some(f.to_string())),
            };
            (
                "overuse",
                DryRunResult {
                    decision: None,
                    lines: None,
                    actions,
                    failure,
                    fuel_used: call.fuel_used,
                    micros: call.elapsed.as_micros(),
                    log: call.log,
                },
            )
        }
        (Kind::Hook, None) => {
            let event =
                match (req.event_id, req.event) {
                    (Some(id), None) => st
                        .db
                        .hook_event(me.id, id)
                        .await?
                        .ok_or(AppError::NotFound)?,
                    (None, Some(event)) => event,
                    _ => return Err(AppError::Unprocessable(
                        "a hook is dry-run on event_id (a recorded event) or event (given in full)"
                            .into(),
                    )),
                };
            let kind = event.kind.as_str();
            let call = hooks::call(move || host.hook(&plugin, &event, kv)).await?;
            let (decision, failure) = match call.result {
                Ok(d) => (Some(d), None),
                Err(f) => (None, Some(f.to_string())),
            };
            (
                kind,
                DryRunResult {
                    decision,
                    lines: None,
                    actions: None,
                    failure,
                    fuel_used: call.fuel_used,
                    micros: call.elapsed.as_micros(),
                    log: call.log,
                },
            )
        }
        (Kind::Billing, _) => {
            let (Some(customer), Some(period)) = (req.customer, req.period) else {
                return Err(AppError::Unprocessable(
                    "a billing rule is dry-run on a customer and a period (YYYY-MM)".into(),
                ));
            };
            let period: crate::domain::Period = period.parse()?;
            let customer = st
                .db
                .user_by_name(&customer)
                .await?
                .filter(|u| u.role() == Role::Customer && u.reseller_id == Some(me.id))
                .ok_or(AppError::NotFound)?;
            let input = billing::input_for(&st.db, &customer, &period).await?;
            let call = hooks::call(move || host.billing(&plugin, &input, kv)).await?;
            let (lines, failure) = match call.result {
                Ok(l) => (Some(l), None),
                Err(f) => (None, Some(f.to_string())),
            };
            (
                "billing",
                DryRunResult {
                    decision: None,
                    lines,
                    actions: None,
                    failure,
                    fuel_used: call.fuel_used,
                    micros: call.elapsed.as_micros(),
                    log: call.log,
                },
            )
        }
    };
    let (outcome, detail) = match (&result.failure, &result.decision, &result.lines) {
        (Some(f), _, _) => ("failure".to_string(), f.clone()),
        (None, Some(Decision::Allow), _) => ("allow".into(), String::new()),
        (None, Some(Decision::Deny(m)), _) => ("deny".into(), m.clone()),
        (None, Some(Decision::Amend(s)), _) => {
            ("amend".into(), serde_json::to_string(s).unwrap_or_default())
        }
        (None, None, Some(lines)) => ("ok".into(), format!("{} lines", lines.len())),
        (None, None, None) if result.actions.is_some() => (
            "actions".into(),
            serde_json::to_string(&result.actions).unwrap_or_default(),
        ),
        _ => ("ok".into(), String::new()),
    };
    st.db
        .record_call(
            row.id,
            CallRecord {
                event: label,
                outcome: &outcome,
                detail: &detail,
                fuel: result.fuel_used,
                micros: result.micros,
                log: &result.log,
                dry_run: true,
            },
        )
        .await?;
    Ok(result)
}

/// The newest calls of one of the reseller's plugins.
pub async fn calls(st: &AppState, me: &User, name: &str) -> AppResult<Vec<CallRow>> {
    let row = find(st, me, name).await?;
    st.db.plugin_calls(row.id, 100).await
}

/// The hook events recorded for the reseller's dry runs.
pub async fn events(st: &AppState, me: &User) -> AppResult<Vec<EventRow>> {
    st.db.hook_events(me.id).await
}

/// The reseller's plugins.
pub async fn list(st: &AppState, me: &User) -> AppResult<Vec<PluginRow>> {
    st.db.plugins_of(me.id).await
}
