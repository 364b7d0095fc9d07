//! Limit hits handed to the resellers' overuse policies (WIT 1.2.0), and what the
//! policies ask for carried out: a notice to the customer, new limits within the plan
//! (for good or for a while), or the account's suspension.
//!
//! The metering pass (the panel's job, `acetate meter sample`, the samples before a stop)
//! stores limit hits; this job, in the panel, hands every stored hit to the policies once
//! (`faults.dispatched_at`), grouped per container and sample, oldest first. Nothing is
//! lost when the panel is down: the hits wait in the database. Temporary adjustments are
//! undone by the same job when their time is up (`limit_reverts`).

use std::sync::Arc;
use std::time::Duration;

use acetate_engine::{Limits, LimitsUpdate};
use acetate_plugins::{FaultHit, Kind, OveruseAction, OveruseEvent};

use super::containers::{customer_plan, plugin_spec, reserve_limits, target};
use super::hooks;
use super::AppState;
use crate::db::overuse::{PendingFault, Revert};
use crate::db::plugins::{CallRecord, PluginRow};
use crate::db::ContainerRow;
use crate::domain::{Totals, User};
use crate::error::{AppError, AppResult};

/// How often the job looks for new limit hits and due reverts.
pub const EVERY: Duration = Duration::from_secs(5);
/// Limit hits read per pass.
const BATCH: i64 = 500;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Samples (container and time) handed to the policies.
    pub events: usize,
    /// Policy calls made.
    pub calls: usize,
    /// Temporary adjustments undone.
    pub reverted: usize,
}

/// The contract's name of a fault kind: "oom-kill" for `oom_kill`.
pub fn wit_kind(kind: &str) -> String {
    kind.replace('_', "-")
}

/// One pass: due reverts first, then the limit hits not yet handed over.
pub async fn pass(st: &AppState) -> AppResult<PassReport> {
    let now = crate::domain::now();
    let mut report = PassReport::default();
    for revert in st.db.due_reverts(now).await? {
        match undo(st, &revert).await {
            Ok(()) => report.reverted += 1,
            Err(e) => {
                tracing::warn!(container = revert.container_id, error = %e, "restoring limits")
            }
        }
    }
    let pending = st.db.undispatched_faults(BATCH).await?;
    let mut start = 0;
    while start < pending.len() {
        let key = (pending[start].container_id, pending[start].at);
        let end = pending[start..]
            .iter()
            .position(|f| (f.container_id, f.at) != key)
            .map_or(pending.len(), |n| start + n);
        let group = &pending[start..end];
        match dispatch(st, group).await {
            Ok(calls) => {
                report.events += usize::from(calls > 0);
                report.calls += calls;
            }
            Err(e) => tracing::warn!(container = key.0, error = %e, "overuse policies"),
        }
        // Handed over once, whatever came of it: a failing policy is recorded in its calls.
        let ids: Vec<i64> = group.iter().map(|f| f.id).collect();
        st.db.mark_dispatched(&ids, now).await?;
        start = end;
    }
    Ok(report)
}

/// Runs the job every [`EVERY`] until the process ends.
pub fn spawn(st: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = pass(&st).await {
                tracing::warn!(error = %e, "overuse pass failed");
            }
        }
    });
}

/// Hands one sample's limit hits of one container to the owner's reseller's policies, in
/// upload order; returns the calls made. A suspension ends the round.
async fn dispatch(st: &AppState, faults: &[PendingFault]) -> AppResult<usize> {
    let first = &faults[0];
    let (Some(row), Some(customer)) = (
        st.db.container_by_id(first.container_id).await?,
        st.db.user_by_id(first.customer_id).await?,
    ) else {
        return Ok(0); // gone since
    };
    let Some(reseller_id) = customer.reseller_id.filter(|_| !customer.is_suspended()) else {
        return Ok(0);
    };
    let rows = st.db.enabled_plugins(reseller_id, Kind::Hook).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let engine_name = row.engine_name.clone();
    let info = match st.engine(move |e| e.show(&engine_name)).await {
        Ok(info) => info,
        Err(AppError::NotFound) => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut event = OveruseEvent {
        at: first.at,
        tenant: hooks::tenant_of(&st.db, &customer).await?,
        container: plugin_spec(&row.name, &info.template, &info.limits),
        faults: faults
            .iter()
            .map(|f| FaultHit {
                kind: wit_kind(&f.kind),
                amount: f.amount.max(0) as u64,
            })
            .collect(),
        interval_seconds: first.seconds.max(0) as u64,
    };
    let mut calls = 0;
    for plugin_row in rows {
        let plugin = match hooks::load(&st.db, &st.plugins, &plugin_row).await {
            Ok(p) if p.handles_overuse() => p,
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(plugin = %plugin_row.name, error = %e, "loading a policy");
                continue;
            }
        };
        let kv = Arc::new(st.db.plugin_kv(plugin_row.id).await?);
        let (host, e) = (st.plugins.clone(), event.clone());
        let call = hooks::call(move || host.overuse(&plugin, &e, kv)).await?;
        calls += 1;
        let (outcome, detail, suspended) = match &call.result {
            Ok(actions) => {
                st.db.apply_kv(plugin_row.id, &call.kv_changes).await?;
                let mut done = Vec::new();
                let mut suspended = false;
                for action in actions {
                    let result = act(st, &plugin_row, &row, &customer, action).await;
                    suspended |= matches!(action, OveruseAction::Suspend(_)) && result.is_ok();
                    done.push(serde_json::json!({
                        "action": action,
                        "result": match result {
                            Ok(()) => "ok".to_string(),
                            Err(e) => format!("failed: {e}"),
                        },
                    }));
                }
                let word = if actions.is_empty() {
                    "none"
                } else {
                    "actions"
                };
                (
                    word.to_string(),
                    serde_json::Value::from(done).to_string(),
                    suspended,
                )
            }
            Err(failure) => {
                tracing::warn!(plugin = %plugin_row.name, %failure, "overuse policy failed");
                ("failure".to_string(), failure.to_string(), false)
            }
        };
        st.db
            .record_call(
                plugin_row.id,
                CallRecord::of("overuse", &outcome, &detail, &call),
            )
            .await?;
        if suspended {
            break;
        }
        // The next policy sees the container as it is now.
        let engine_name = row.engine_name.clone();
        if let Ok(info) = st.engine(move |e| e.show(&engine_name)).await {
            event.container = plugin_spec(&row.name, &info.template, &info.limits);
        }
    }
    Ok(calls)
}

/// Carries out one action of a policy owned by the customer's reseller.
async fn act(
    st: &AppState,
    plugin: &PluginRow,
    row: &ContainerRow,
    customer: &User,
    action: &OveruseAction,
) -> AppResult<()> {
    let source = format!("plugin:{}", plugin.name);
    match action {
        OveruseAction::Notify(message) => {
            st.db
                .add_notice(customer.id, Some((row.id, &row.name)), &source, message)
                .await
        }
        OveruseAction::Adjust {
            limits,
            for_seconds,
        } => {
            let update = LimitsUpdate {
                memory: Some(limits.memory_bytes),
                cpus_milli: Some(limits.cpu_millis),
                procs: Some(u64::from(limits.processes)),
                ..Default::default()
            };
            let before = set_limits(st, row, customer, update, &source).await?;
            match for_seconds {
                Some(seconds) => {
                    let restore = LimitsUpdate {
                        memory: Some(before.memory),
                        cpus_milli: Some(before.cpus_milli),
                        procs: Some(before.procs),
                        ..Default::default()
                    };
                    let due = crate::domain::now() + *seconds as i64;
                    st.db
                        .set_revert(row.id, due, &json(&restore), &source)
                        .await
                }
                // New limits for good: nothing to restore any more.
                None => st.db.delete_revert(row.id).await,
            }
        }
        OveruseAction::Suspend(reason) => {
            let reseller = st
                .db
                .user_by_id(customer.reseller_id.unwrap_or(-1))
                .await?
                .ok_or(AppError::NotFound)?;
            st.db
                .add_notice(customer.id, Some((row.id, &row.name)), &source, reason)
                .await?;
            super::accounts::set_suspension(st, &reseller, &customer.name, true).await?;
            Ok(())
        }
    }
}

/// Sets a container's memory, CPU and processes as its reseller's policy asks, within the
/// customer's plan and the reseller's pool (live if it runs); returns the limits before.
async fn set_limits(
    st: &AppState,
    row: &ContainerRow,
    customer: &User,
    update: LimitsUpdate,
    source: &str,
) -> AppResult<Limits> {
    let plan = customer_plan(st, customer).await?;
    let engine_name = row.engine_name.clone();
    let current = st.engine(move |e| e.show(&engine_name)).await?.limits;
    let next = update.applied_to(&current);
    next.validate()
        .map_err(|e| AppError::Unprocessable(format!("impossible limits: {e}")))?;
    reserve_limits(st, row, customer, &plan, &next).await?;
    let engine_name = row.engine_name.clone();
    let result = st
        .change(&row.engine_name, move |e| e.set(&engine_name, &update))
        .await;
    let now_holds = match &result {
        Ok(info) => Totals::of(&info.limits),
        Err(_) => Totals::of(&current),
    };
    st.db.set_container_holds(row.id, &now_holds).await?;
    let outcome = match &result {
        Ok(_) => format!("ok: {source}"),
        Err(e) => format!("failed: {source}: {e}"),
    };
    st.db
        .audit(None, "container.overuse_limits", &target(row), &outcome)
        .await?;
    result?;
    Ok(current)
}

/// Restores the limits a temporary adjustment replaced.
async fn undo(st: &AppState, revert: &Revert) -> AppResult<()> {
    st.db.delete_revert(revert.container_id).await?;
    let Some(row) = st.db.container_by_id(revert.container_id).await? else {
        return Ok(());
    };
    let customer = st
        .db
        .user_by_id(row.owner_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let update: LimitsUpdate = serde_json::from_str(&revert.limits)
        .map_err(|e| AppError::Internal(format!("stored limits to restore: {e}")))?;
    if let Err(e) = set_limits(st, &row, &customer, update, &revert.source).await {
        let message = format!(
            "the limits of {} could not be restored after a temporary change ({e}); ask \
             your reseller",
            row.name
        );
        st.db
            .add_notice(customer.id, Some((row.id, &row.name)), "panel", &message)
            .await?;
        return Err(e);
    }
    Ok(())
}

fn json(update: &LimitsUpdate) -> String {
    serde_json::to_string(update).unwrap_or_default()
}
