//! Running resellers' plugins: loading stored components, calling them off the async
//! threads, and a reseller's provisioning hooks on an event of one of its customers.

use std::sync::Arc;

use acetate_plugins::{Call, Decision, Event, Failure, Host, Kind, KvChanges, Plugin};

use crate::db::plugins::{CallRecord, PluginRow};
use crate::db::Db;
use crate::domain::{Plan, User};
use crate::error::{AppError, AppResult};

/// The compiled plugin of a row: from the host's cache, else loaded from the database.
pub async fn load(db: &Db, host: &Arc<Host>, row: &PluginRow) -> AppResult<Arc<Plugin>> {
    if let Some(plugin) = host.cached(&row.sha256) {
        return Ok(plugin);
    }
    let wasm = db.plugin_wasm(row.id).await?;
    let host = host.clone();
    tokio::task::spawn_blocking(move || host.load(&wasm))
        .await?
        .map_err(|e| AppError::Internal(format!("stored plugin no longer loads: {e}")))
}

/// Runs one plugin call off the async threads.
pub async fn call<T: Send + 'static>(
    f: impl FnOnce() -> Call<T> + Send + 'static,
) -> AppResult<Call<T>> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// What the reseller's hooks made of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Go ahead with this spec instead of the requested one.
    Amend(acetate_plugins::ContainerSpec),
    /// Refuse, with the message for the customer.
    Deny(String),
}

impl Verdict {
    /// The verdict as an error, if it refuses.
    pub fn refused(&self) -> AppResult<()> {
        match self {
            Verdict::Deny(message) => Err(AppError::Denied(message.clone())),
            _ => Ok(()),
        }
    }
}

fn summary<T>(call: &Call<T>, what: impl FnOnce(&T) -> (String, String)) -> (String, String) {
    match &call.result {
        Ok(value) => what(value),
        Err(failure) => ("failure".to_string(), failure.to_string()),
    }
}

fn decision_summary(d: &Decision) -> (String, String) {
    match d {
        Decision::Allow => ("allow".into(), String::new()),
        Decision::Deny(m) => ("deny".into(), m.clone()),
        Decision::Amend(spec) => (
            "amend".into(),
            serde_json::to_string(spec).unwrap_or_default(),
        ),
    }
}

/// What the hooks wrote to their key-value stores, kept until the action they decided on
/// is done: committed if it succeeds ([`PendingKv::commit`]), dropped if it is refused or
/// fails (a refused create does not count towards a hook's per-day counter).
#[derive(Debug, Default)]
#[must_use = "commit the hooks' writes once the action succeeded"]
pub struct PendingKv(Vec<(i64, KvChanges)>);

impl PendingKv {
    pub async fn commit(self, db: &Db) -> AppResult<()> {
        for (plugin_id, changes) in &self.0 {
            db.apply_kv(*plugin_id, changes).await?;
        }
        Ok(())
    }
}

/// Runs a reseller's enabled hooks, in upload order, on an event of one of its customers.
/// A deny stops at once; amendments carry over to the next hook. A hook that fails counts
/// as its on-failure setting says (deny by default). Every call is recorded for the owner.
pub async fn run_hooks(
    db: &Db,
    host: &Arc<Host>,
    reseller_id: i64,
    event: Event,
) -> AppResult<(Verdict, PendingKv)> {
    let mut pending = PendingKv::default();
    let verdict = run_hooks_into(db, host, reseller_id, event, &mut pending).await?;
    if matches!(verdict, Verdict::Deny(_)) {
        pending = PendingKv::default();
    }
    Ok((verdict, pending))
}

async fn run_hooks_into(
    db: &Db,
    host: &Arc<Host>,
    reseller_id: i64,
    mut event: Event,
    pending: &mut PendingKv,
) -> AppResult<Verdict> {
    db.record_event(reseller_id, &event).await?;
    let mut amended = false;
    for row in db.enabled_plugins(reseller_id, Kind::Hook).await? {
        let outcome = match load(db, host, &row).await {
            Ok(plugin) => {
                let kv = Arc::new(db.plugin_kv(row.id).await?);
                let (h, e) = (host.clone(), event.clone());
                call(move || h.hook(&plugin, &e, kv)).await?
            }
            Err(e) => {
                tracing::error!(plugin = %row.name, error = %e, "loading a hook");
                Call {
                    result: Err(Failure::Trapped(e.to_string())),
                    log: Vec::new(),
                    kv_changes: KvChanges::default(),
                    fuel_used: 0,
                    elapsed: std::time::Duration::ZERO,
                }
            }
        };
        let (result, detail) = summary(&outcome, decision_summary);
        db.record_call(
            row.id,
            CallRecord::of(event.kind.as_str(), &result, &detail, &outcome),
        )
        .await?;
        match outcome.result {
            Ok(decision) => {
                if !outcome.kv_changes.is_empty() {
                    pending.0.push((row.id, outcome.kv_changes));
                }
                match decision {
                    Decision::Allow => {}
                    Decision::Deny(message) => {
                        let message = if message.trim().is_empty() {
                            "refused by your reseller's policy".to_string()
                        } else {
                            message
                        };
                        return Ok(Verdict::Deny(message));
                    }
                    Decision::Amend(spec) => {
                        if event.requested.is_none() {
                            // Nothing to amend in this event: the hook answered garbage.
                            if row.on_failure == "deny" {
                                return Ok(Verdict::Deny(hook_failed(&row.name)));
                            }
                            continue;
                        }
                        event.requested = Some(spec);
                        amended = true;
                    }
                }
            }
            Err(failure) => {
                tracing::warn!(plugin = %row.name, %failure, "provisioning hook failed");
                if row.on_failure == "deny" {
                    return Ok(Verdict::Deny(hook_failed(&row.name)));
                }
            }
        }
    }
    Ok(match (amended, event.requested) {
        (true, Some(spec)) => Verdict::Amend(spec),
        _ => Verdict::Allow,
    })
}

fn hook_failed(name: &str) -> String {
    format!(
        "your reseller's provisioning hook {name:?} failed, so the request was refused; \
         try again later or contact your reseller"
    )
}

/// A plan as plugins see it.
pub fn plan_for_plugins(p: &Plan) -> acetate_plugins::Plan {
    let clamp32 = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
    acetate_plugins::Plan {
        name: p.name.clone(),
        per_container: acetate_plugins::Limits {
            memory_bytes: p.ct_memory.max(0) as u64,
            cpu_millis: clamp32(p.ct_cpus_milli),
            processes: clamp32(p.ct_procs),
            disk_bytes: p.ct_disk.max(0) as u64,
            inodes: p.ct_disk.max(0) as u64 / 16384,
            io_weight: 100,
        },
        max_containers: clamp32(p.max_containers),
        monthly_price: acetate_plugins::Money {
            amount: p.price_minor,
            currency: p.currency.clone(),
        },
    }
}

/// A customer as plugins see it: its reseller, plan and container count.
pub async fn tenant_of(db: &Db, customer: &User) -> AppResult<acetate_plugins::Tenant> {
    let reseller = match customer.reseller_id {
        Some(id) => db.user_name(id).await?,
        None => String::new(),
    };
    let plan = match customer.plan_id {
        Some(id) => db.plan(id).await?,
        None => None,
    };
    let count = db.container_count(customer.id).await?;
    Ok(acetate_plugins::Tenant {
        reseller,
        customer: customer.name.clone(),
        plan: plan.as_ref().map(plan_for_plugins),
        container_count: count.clamp(0, i64::from(u32::MAX)) as u32,
    })
}
