//! An overuse policy with escalation, and a hook that keeps it from being undone:
//! - a container that runs into a hard limit (processes killed for lack of memory, forks
//!   refused, its CPU quota holding it back) gets a strike; strikes older than an hour are
//!   forgotten;
//! - the first strike within the hour warns the customer;
//! - the second halves the container's CPU for 15 minutes (at least a tenth of a core),
//!   and says so;
//! - the third suspends the customer's account;
//! - a full disk or inode table is not a strike (it hurts only its owner): the customer is
//!   told once a day;
//! - while a container is throttled, a resize of it is refused (the hook half).
//!
//! Reaching the memory limit alone is not a strike: the kernel reaches it whenever the page
//! cache fills the container's memory, which is normal.
//!
//! State, in the plugin's key-value store, per container: `strikes/<customer>/<container>`
//! (the times of the strikes within the hour), `throttled/<customer>/<container>` (when the
//! throttle ends) and `disk-told/<customer>/<container>` (when the customer was last told
//! of a full disk). Keys past their time are deleted, so that the store never fills up.

use acetate_plugin_sdk::hook::{Decision, Event, EventKind, Hook};
use acetate_plugin_sdk::overuse::{kind, Adjustment, OveruseAction, OveruseEvent, Policy};
use acetate_plugin_sdk::{kv, log};

/// Strikes are counted over this window.
const WINDOW: i64 = 3600;
/// How long the second strike's throttle lasts.
const THROTTLE_SECONDS: u64 = 900;
/// The least CPU a throttle leaves: a tenth of a core.
const MIN_CPU_MILLIS: u32 = 100;
/// A full disk is told at most once in this time.
const DISK_TOLD_EVERY: i64 = 86_400;

struct OverusePolicy;

fn key(what: &str, customer: &str, container: &str) -> String {
    format!("{what}/{customer}/{container}")
}

fn times(key: &str) -> Vec<i64> {
    kv::get(key)
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
        .collect()
}

fn store_times(key: &str, times: &[i64]) {
    if times.is_empty() {
        kv::delete(key);
        return;
    }
    let bytes: Vec<u8> = times.iter().flat_map(|t| t.to_le_bytes()).collect();
    if let Err(e) = kv::set(key, &bytes) {
        log::error(&format!("cannot keep {key}: {e}"));
    }
}

/// Deletes what has passed its time: strikes out of the window, throttles that ended,
/// disk notices older than a day.
fn forget(now: i64) {
    for k in kv::keys() {
        let t = times(&k);
        let keep = match k.split('/').next() {
            Some("strikes") => t.iter().any(|&at| at > now - WINDOW),
            Some("throttled") => t.first().is_some_and(|&until| until > now),
            Some("disk-told") => t.first().is_some_and(|&at| at > now - DISK_TOLD_EVERY),
            _ => true,
        };
        if !keep {
            kv::delete(&k);
        }
    }
}

fn describe(event: &OveruseEvent) -> String {
    let parts: Vec<String> = event
        .faults
        .iter()
        .map(|f| match f.kind.as_str() {
            kind::OOM_KILL => format!("{} process(es) killed for lack of memory", f.amount),
            kind::PROCESS_LIMIT => format!("{} new process(es) refused", f.amount),
            kind::CPU_THROTTLED => {
                format!("CPU held back {} s by its limit", f.amount / 1000)
            }
            other => format!("{other} ({})", f.amount),
        })
        .collect();
    parts.join(", ")
}

impl Policy for OverusePolicy {
    fn handle(event: OveruseEvent) -> Vec<OveruseAction> {
        let now = event.at;
        forget(now);
        let (customer, name) = (&event.tenant.customer, &event.container.name);
        let mut actions = Vec::new();
        let full = event
            .faults
            .iter()
            .any(|f| f.kind == kind::DISK_FULL || f.kind == kind::INODES_FULL);
        let disk_key = key("disk-told", customer, name);
        if full && times(&disk_key).is_empty() {
            actions.push(OveruseAction::Notify(format!(
                "{name}: its disk is nearly full; delete files or ask for a bigger plan"
            )));
            store_times(&disk_key, &[now]);
        }
        let strike = event.faults.iter().any(|f| {
            [kind::OOM_KILL, kind::PROCESS_LIMIT, kind::CPU_THROTTLED].contains(&f.kind.as_str())
        });
        if !strike {
            return actions;
        }
        let strikes_key = key("strikes", customer, name);
        let mut strikes: Vec<i64> = times(&strikes_key)
            .into_iter()
            .filter(|&at| at > now - WINDOW)
            .collect();
        strikes.push(now);
        store_times(&strikes_key, &strikes);
        let what = describe(&event);
        log::info(&format!(
            "{customer}/{name}: strike {} within the hour: {what}",
            strikes.len()
        ));
        match strikes.len() {
            1 => actions.push(OveruseAction::Notify(format!(
                "{name} ran into its limits ({what}). If it happens twice more within the \
                 hour, it is throttled, then the account is suspended."
            ))),
            2 => {
                let mut limits = event.container.limits;
                limits.cpu_millis = (limits.cpu_millis / 2).max(MIN_CPU_MILLIS);
                actions.push(OveruseAction::Adjust(Adjustment {
                    limits,
                    for_seconds: Some(THROTTLE_SECONDS),
                }));
                store_times(
                    &key("throttled", customer, name),
                    &[now + THROTTLE_SECONDS as i64],
                );
                actions.push(OveruseAction::Notify(format!(
                    "{name} ran into its limits again ({what}): its CPU is halved for 15 \
                     minutes. Once more within the hour and the account is suspended."
                )));
            }
            n => actions.push(OveruseAction::Suspend(format!(
                "{name} ran into its limits {n} times within an hour ({what}); contact \
                 your reseller"
            ))),
        }
        actions
    }
}

impl Hook for OverusePolicy {
    fn handle(event: Event) -> Decision {
        if event.kind != EventKind::Resize {
            return Decision::Allow;
        }
        let Some(current) = &event.current else {
            return Decision::Allow;
        };
        let until = times(&key("throttled", &event.tenant.customer, &current.name));
        match until.first() {
            Some(&until) if until > event.at => Decision::Deny(format!(
                "{} is throttled for overuse for another {} minute(s)",
                current.name,
                (until - event.at + 59) / 60
            )),
            _ => Decision::Allow,
        }
    }
}

acetate_plugin_sdk::export_hook_and_overuse!(OverusePolicy);

/// The policy on the build machine, with the SDK's in-memory store and log (the host
/// runs the same escalation in `plugins/tests/overuse.rs`).
#[cfg(test)]
mod tests {
    use acetate_plugin_sdk::overuse::{ContainerSpec, Fault, Limits, Tenant};
    use acetate_plugin_sdk::testing;

    use super::*;

    fn hit(at: i64, kind: &str) -> OveruseEvent {
        OveruseEvent {
            at,
            tenant: Tenant {
                reseller: "acme".into(),
                customer: "carol".into(),
                plan: None,
                container_count: 1,
            },
            container: ContainerSpec {
                name: "web".into(),
                template: "host".into(),
                limits: Limits {
                    memory_bytes: 512 << 20,
                    cpu_millis: 1000,
                    processes: 512,
                    disk_bytes: 2 << 30,
                    inodes: 131_072,
                    io_weight: 100,
                },
            },
            faults: vec![Fault {
                kind: kind.into(),
                amount: 1,
            }],
            interval_seconds: 60,
        }
    }

    #[test]
    fn warn_throttle_suspend() {
        testing::reset();
        let t = 1_795_000_000;
        assert!(<OverusePolicy as Policy>::handle(hit(t, kind::MEMORY_LIMIT)).is_empty());
        let a = <OverusePolicy as Policy>::handle(hit(t + 60, kind::OOM_KILL));
        assert!(matches!(a.as_slice(), [OveruseAction::Notify(_)]));
        let a = <OverusePolicy as Policy>::handle(hit(t + 120, kind::PROCESS_LIMIT));
        assert!(
            matches!(a.as_slice(), [OveruseAction::Adjust(adj), OveruseAction::Notify(_)]
                if adj.limits.cpu_millis == 500 && adj.for_seconds == Some(900))
        );
        assert!(testing::store().contains_key("throttled/carol/web"));
        let a = <OverusePolicy as Policy>::handle(hit(t + 180, kind::CPU_THROTTLED));
        assert!(matches!(a.as_slice(), [OveruseAction::Suspend(_)]));
        assert!(testing::logs().iter().any(|l| l.contains("strike 3")));
    }
}
