//! Example inputs of the contract, valid by construction: what `acetate plugin
//! example-event` prints, what a new plugin project starts with, and what the plugin page
//! offers for a dry run.

use crate::{
    BillingInput, ContainerSpec, ContainerUsage, Event, EventKind, FaultHit, Limits, Money,
    OveruseEvent, Plan, Tenant,
};

/// The example inputs there are.
pub const SAMPLES: [&str; 7] = [
    "create",
    "resize",
    "suspend",
    "unsuspend",
    "destroy",
    "overuse",
    "billing",
];

fn plan() -> Plan {
    Plan {
        name: "basic".into(),
        per_container: Limits::default(),
        max_containers: 3,
        monthly_price: Money {
            amount: 900,
            currency: "EUR".into(),
        },
    }
}

fn tenant() -> Tenant {
    Tenant {
        reseller: "acme".into(),
        customer: "carol".into(),
        plan: Some(plan()),
        container_count: 1,
    }
}

fn spec(name: &str, memory: u64) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        template: "debian-12".into(),
        limits: Limits {
            memory_bytes: memory,
            ..Limits::default()
        },
    }
}

/// An example input, as pretty JSON, for `acetate plugin run --event`, the panel's dry
/// runs and plugin authors' tests.
pub fn sample_input(what: &str) -> Result<String, String> {
    const AT: i64 = 1_795_000_000;
    let web = || spec("web", 512 << 20);
    let event = |kind, current, requested| Event {
        kind,
        at: AT,
        tenant: tenant(),
        current,
        requested,
    };
    let json = match what {
        "create" => serde_json::to_string_pretty(&event(EventKind::Create, None, Some(web()))),
        "resize" => serde_json::to_string_pretty(&event(
            EventKind::Resize,
            Some(web()),
            Some(spec("web", 1 << 30)),
        )),
        "suspend" => serde_json::to_string_pretty(&event(EventKind::Suspend, None, None)),
        "unsuspend" => serde_json::to_string_pretty(&event(EventKind::Unsuspend, None, None)),
        "destroy" => serde_json::to_string_pretty(&event(EventKind::Destroy, Some(web()), None)),
        "overuse" => serde_json::to_string_pretty(&OveruseEvent {
            at: AT,
            tenant: tenant(),
            container: web(),
            faults: vec![
                FaultHit {
                    kind: "oom-kill".into(),
                    amount: 1,
                },
                FaultHit {
                    kind: "cpu-throttled".into(),
                    amount: 12_000,
                },
            ],
            interval_seconds: 60,
        }),
        "billing" => serde_json::to_string_pretty(&BillingInput {
            period: "2026-11".into(),
            period_start: 1_793_491_200,
            period_end: 1_796_083_200,
            tenant: tenant(),
            currency: "EUR".into(),
            containers: vec![ContainerUsage {
                name: "web".into(),
                seconds_existing: 2_592_000,
                seconds_running: 2_000_000,
                cpu_millis: 7_200_000,
                memory_average_bytes: 300 << 20,
                memory_peak_bytes: 480 << 20,
                disk_average_bytes: 1 << 30,
                disk_peak_bytes: 1 << 30,
                inodes_peak: 20_000,
                processes_peak: 40,
                network_rx_bytes: 5 << 30,
                network_tx_bytes: 20 << 30,
                limits: Limits::default(),
            }],
        }),
        other => {
            return Err(format!(
                "no example named {other:?}; there are: {}",
                SAMPLES.join(", ")
            ))
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(json + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_valid_input() {
        for e in SAMPLES {
            let text = sample_input(e).unwrap();
            let ok = match e {
                "overuse" => serde_json::from_str::<OveruseEvent>(&text).is_ok(),
                "billing" => serde_json::from_str::<BillingInput>(&text).is_ok(),
                _ => serde_json::from_str::<Event>(&text).is_ok(),
            };
            assert!(ok, "{e}: {text}");
        }
        assert!(sample_input("reboot").is_err());
    }
}
