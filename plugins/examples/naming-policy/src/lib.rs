//! A provisioning hook with three house rules:
//! - names are 3 to 20 characters of lower-case letters, digits and dashes, and never
//!   `admin`, `root` or `www`;
//! - containers on a plan whose name starts with `trial` get at most 256 MiB of memory
//!   (the request is amended, not refused);
//! - a trial customer has one container at most, and nobody creates more than 5
//!   containers a day (counted in the plugin's key-value store).

use acetate_plugin_sdk::hook::{ContainerSpec, Decision, Event, EventKind, Hook};
use acetate_plugin_sdk::{kv, log};

const TRIAL_MEMORY: u64 = 256 << 20;
const CREATES_PER_DAY: u64 = 5;
const RESERVED: [&str; 3] = ["admin", "root", "www"];

struct NamingPolicy;

fn name_problem(name: &str) -> Option<String> {
    if !(3..=20).contains(&name.len()) {
        return Some(format!(
            "container names here are 3 to 20 characters long; {name:?} is not"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some(format!(
            "use lower-case letters, digits and dashes only in {name:?}"
        ));
    }
    if RESERVED.contains(&name) {
        return Some(format!("the name {name:?} is reserved"));
    }
    None
}

fn on_trial(event: &Event) -> bool {
    event
        .tenant
        .plan
        .as_ref()
        .is_some_and(|plan| plan.name.starts_with("trial"))
}

fn capped(spec: &ContainerSpec) -> Option<ContainerSpec> {
    (spec.limits.memory_bytes > TRIAL_MEMORY).then(|| {
        let mut spec = spec.clone();
        spec.limits.memory_bytes = TRIAL_MEMORY;
        spec
    })
}

/// Drops the counters of past days, so that the store (256 keys) never fills up.
fn forget_before(today: i64) {
    for key in kv::keys() {
        let day = key.rsplit('/').next().and_then(|d| d.parse::<i64>().ok());
        if key.starts_with("creates/") && day.is_some_and(|d| d < today) {
            kv::delete(&key);
        }
    }
}

impl Hook for NamingPolicy {
    fn handle(event: Event) -> Decision {
        let Some(requested) = &event.requested else {
            return Decision::Allow;
        };
        if event.kind == EventKind::Create {
            if let Some(problem) = name_problem(&requested.name) {
                log::info(&format!(
                    "refused name {:?} of {}",
                    requested.name, event.tenant.customer
                ));
                return Decision::Deny(problem);
            }
            if on_trial(&event) && event.tenant.container_count >= 1 {
                return Decision::Deny(
                    "a trial includes one container; upgrade your plan for more".into(),
                );
            }
            let today = event.at.div_euclid(86_400);
            forget_before(today);
            let key = format!("creates/{}/{today}", event.tenant.customer);
            match kv::add(&key, 1) {
                Ok(n) if n > CREATES_PER_DAY => {
                    return Decision::Deny(format!(
                        "at most {CREATES_PER_DAY} new containers a day; try tomorrow"
                    ));
                }
                Ok(_) => {}
                Err(e) => log::warn(&format!("cannot count creations: {e}")),
            }
        }
        if on_trial(&event) {
            if let Some(spec) = capped(requested) {
                log::info(&format!("trial: memory of {} capped at 256 MiB", spec.name));
                return Decision::Amend(spec);
            }
        }
        Decision::Allow
    }
}

acetate_plugin_sdk::export_hook!(NamingPolicy);

/// The policy on the build machine, with the SDK's in-memory store and log.
#[cfg(test)]
mod tests {
    use acetate_plugin_sdk::hook::{Limits, Tenant};
    use acetate_plugin_sdk::testing;

    use super::*;

    fn create(name: &str, at: i64) -> Event {
        Event {
            kind: EventKind::Create,
            at,
            tenant: Tenant {
                reseller: "acme".into(),
                customer: "carol".into(),
                plan: None,
                container_count: 0,
            },
            current: None,
            requested: Some(ContainerSpec {
                name: name.into(),
                template: "host".into(),
                limits: Limits {
                    memory_bytes: 1 << 30,
                    cpu_millis: 1000,
                    processes: 512,
                    disk_bytes: 2 << 30,
                    inodes: 131_072,
                    io_weight: 100,
                },
            }),
        }
    }

    #[test]
    fn names_and_the_daily_count() {
        testing::reset();
        let day = 1_795_000_000;
        assert!(
            matches!(NamingPolicy::handle(create("Web_1", day)), Decision::Deny(m) if m.contains("lower-case"))
        );
        assert!(testing::logs()[0].contains("refused name"));
        for i in 0..5 {
            assert!(matches!(
                NamingPolicy::handle(create(&format!("web-{i}"), day)),
                Decision::Allow
            ));
        }
        assert!(
            matches!(NamingPolicy::handle(create("web-5", day)), Decision::Deny(m) if m.contains("a day"))
        );
        // The next day the old counter is forgotten.
        assert!(matches!(
            NamingPolicy::handle(create("web-6", day + 86_400)),
            Decision::Allow
        ));
        assert_eq!(testing::store().len(), 1);
    }
}
