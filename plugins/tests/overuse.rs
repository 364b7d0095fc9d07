//! Overuse policies (WIT 1.2.0) against the real example plugin: the escalation it is
//! written for, its store carried from call to call, its hook half, and the checks on
//! what a policy answers.

use std::sync::Arc;

use acetate_plugins::{
    apply_kv_changes, example, Budget, ContainerSpec, Decision, Event, EventKind, Failure,
    FaultHit, Host, Kind, Kv, Limits, OveruseAction, OveruseEvent, Tenant,
};

const T0: i64 = 1_795_000_000;

fn tenant() -> Tenant {
    Tenant {
        reseller: "acme".into(),
        customer: "carol".into(),
        plan: None,
        container_count: 1,
    }
}

fn spec(name: &str, cpu_millis: u32) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        template: "host".into(),
        limits: Limits {
            cpu_millis,
            ..Limits::default()
        },
    }
}

fn event(at: i64, name: &str, faults: &[(&str, u64)]) -> OveruseEvent {
    OveruseEvent {
        at,
        tenant: tenant(),
        container: spec(name, 1000),
        faults: faults
            .iter()
            .map(|(kind, amount)| FaultHit {
                kind: kind.to_string(),
                amount: *amount,
            })
            .collect(),
        interval_seconds: 60,
    }
}

/// Runs the policy on `e` with the store `kv` and keeps what it wrote.
fn run(
    host: &Host,
    plugin: &acetate_plugins::Plugin,
    kv: &mut Kv,
    e: &OveruseEvent,
) -> Vec<OveruseAction> {
    let call = host.overuse(plugin, e, Arc::new(kv.clone()));
    apply_kv_changes(kv, &call.kv_changes);
    call.result.unwrap_or_else(|f| panic!("policy failed: {f}"))
}

#[test]
fn the_example_policy_warns_then_throttles_then_suspends() {
    let host = Host::new(None, Budget::default()).unwrap();
    let policy = host.load(&example("overuse_policy").unwrap()).unwrap();
    assert_eq!(policy.kind(), Kind::Hook);
    assert!(policy.handles_events() && policy.handles_overuse());
    assert_eq!(policy.handles(), "provisioning events and limit hits");
    let mut kv = Kv::new();

    // Reaching the memory limit alone is no strike.
    assert!(run(
        &host,
        &policy,
        &mut kv,
        &event(T0, "web", &[("memory-limit", 40)])
    )
    .is_empty());
    // First strike: a warning naming what happened.
    let a = run(
        &host,
        &policy,
        &mut kv,
        &event(T0 + 60, "web", &[("process-limit", 7)]),
    );
    let [OveruseAction::Notify(m)] = a.as_slice() else {
        panic!("{a:?}")
    };
    assert!(m.contains("7 new process(es) refused"), "{m}");
    // Another container of the same customer has its own count.
    let a = run(
        &host,
        &policy,
        &mut kv,
        &event(T0 + 90, "db", &[("oom-kill", 1)]),
    );
    assert!(matches!(a.as_slice(), [OveruseAction::Notify(_)]), "{a:?}");
    // Second strike within the hour: half the CPU for 15 minutes, and a message.
    let a = run(
        &host,
        &policy,
        &mut kv,
        &event(T0 + 120, "web", &[("cpu-throttled", 9000)]),
    );
    match a.as_slice() {
        [OveruseAction::Adjust {
            limits,
            for_seconds,
        }, OveruseAction::Notify(m)] => {
            assert_eq!(limits.cpu_millis, 500);
            assert_eq!(limits.memory_bytes, Limits::default().memory_bytes);
            assert_eq!(*for_seconds, Some(900));
            assert!(m.contains("halved"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // While throttled, the hook half refuses a resize of that container, not of others.
    let resize = |name: &str, at: i64| Event {
        kind: EventKind::Resize,
        at,
        tenant: tenant(),
        current: Some(spec(name, 500)),
        requested: Some(spec(name, 2000)),
    };
    let call = host.hook(&policy, &resize("web", T0 + 180), Arc::new(kv.clone()));
    assert!(
        matches!(&call.result, Ok(Decision::Deny(m)) if m.contains("throttled for overuse for another 14 minute(s)")),
        "{:?}",
        call.result
    );
    let call = host.hook(&policy, &resize("db", T0 + 180), Arc::new(kv.clone()));
    assert_eq!(call.result, Ok(Decision::Allow));
    let call = host.hook(
        &policy,
        &resize("web", T0 + 120 + 901),
        Arc::new(kv.clone()),
    );
    assert_eq!(call.result, Ok(Decision::Allow), "the throttle is over");
    // Third strike within the hour: the account is suspended.
    let a = run(
        &host,
        &policy,
        &mut kv,
        &event(T0 + 300, "web", &[("oom-kill", 2)]),
    );
    let [OveruseAction::Suspend(reason)] = a.as_slice() else {
        panic!("{a:?}")
    };
    assert!(reason.contains("3 times within an hour"), "{reason}");
    // An hour later the strikes are forgotten (and their keys deleted): a warning again.
    let later = T0 + 300 + 3601;
    let a = run(
        &host,
        &policy,
        &mut kv,
        &event(later, "web", &[("process-limit", 1)]),
    );
    assert!(matches!(a.as_slice(), [OveruseAction::Notify(_)]), "{a:?}");
    assert_eq!(
        kv.keys().cloned().collect::<Vec<_>>(),
        vec!["strikes/carol/web".to_string()],
        "only the new strike is kept"
    );
    // A full disk is told once a day, and is no strike.
    let a = run(
        &host,
        &policy,
        &mut kv,
        &event(later + 60, "web", &[("disk-full", 97)]),
    );
    let [OveruseAction::Notify(m)] = a.as_slice() else {
        panic!("{a:?}")
    };
    assert!(m.contains("disk is nearly full"), "{m}");
    assert!(run(
        &host,
        &policy,
        &mut kv,
        &event(later + 120, "web", &[("disk-full", 98)])
    )
    .is_empty());
}

#[test]
fn policies_and_hooks_are_called_only_for_what_they_export() {
    let host = Host::new(None, Budget::default()).unwrap();
    let hook = host.load(&example("naming_policy").unwrap()).unwrap();
    assert!(hook.handles_events() && !hook.handles_overuse());
    let call = host.overuse(
        &hook,
        &event(T0, "web", &[("oom-kill", 1)]),
        Arc::new(Kv::new()),
    );
    assert_eq!(call.result, Err(Failure::NotExported("overuse".into())));
    let legacy = host.load(&example("legacy_hook").unwrap()).unwrap();
    let call = host.overuse(
        &legacy,
        &event(T0, "web", &[("oom-kill", 1)]),
        Arc::new(Kv::new()),
    );
    assert_eq!(call.result, Err(Failure::NotExported("overuse".into())));
    let rule = host.load(&example("pay_as_you_go").unwrap()).unwrap();
    let call = host.overuse(
        &rule,
        &event(T0, "web", &[("oom-kill", 1)]),
        Arc::new(Kv::new()),
    );
    assert_eq!(call.result, Err(Failure::WrongKind(Kind::Billing)));
}
