//! The plugin host against the real example plugins (built for wasm32-wasip2 by the build).

use std::sync::Arc;

use acetate_plugins::{
    apply_kv_changes, example, BillingInput, Budget, ContainerSpec, ContainerUsage, Decision,
    Event, EventKind, Failure, Host, Kind, Kv, Limits, LoadError, LogLevel, Money, Plan, Source,
    Tenant,
};

fn host() -> Host {
    Host::new(None, Budget::default()).expect("host")
}

fn plan(name: &str, price: i64) -> Plan {
    Plan {
        name: name.into(),
        per_container: Limits::default(),
        max_containers: 3,
        monthly_price: Money {
            amount: price,
            currency: "EUR".into(),
        },
    }
}

fn create(name: &str, memory: u64, plan_name: &str, count: u32) -> Event {
    Event {
        kind: EventKind::Create,
        at: 1_795_000_000,
        tenant: Tenant {
            reseller: "acme".into(),
            customer: "carol".into(),
            plan: Some(plan(plan_name, 500)),
            container_count: count,
        },
        current: None,
        requested: Some(ContainerSpec {
            name: name.into(),
            template: "host".into(),
            limits: Limits {
                memory_bytes: memory,
                ..Limits::default()
            },
        }),
    }
}

fn empty() -> Arc<Kv> {
    Arc::new(Kv::new())
}

#[test]
fn naming_policy_allows_denies_and_amends() {
    let host = host();
    let plugin = host.load(&example("naming_policy").unwrap()).unwrap();
    assert_eq!(plugin.kind(), Kind::Hook);

    let call = host.hook(&plugin, &create("web-1", 1 << 30, "basic", 0), empty());
    assert_eq!(call.result, Ok(Decision::Allow));
    assert!(call.fuel_used > 0);

    let call = host.hook(&plugin, &create("Web_1", 1 << 30, "basic", 0), empty());
    let Ok(Decision::Deny(message)) = call.result else {
        panic!("{:?}", call.result)
    };
    assert!(message.contains("lower-case"), "{message}");
    assert!(
        call.log
            .iter()
            .any(|l| l.level == LogLevel::Info && l.message.contains("Web_1")),
        "{:?}",
        call.log
    );

    let call = host.hook(
        &plugin,
        &create("trial-box", 1 << 30, "trial-2026", 0),
        empty(),
    );
    let Ok(Decision::Amend(spec)) = call.result else {
        panic!("{:?}", call.result)
    };
    assert_eq!(spec.limits.memory_bytes, 256 << 20);
    assert_eq!(spec.name, "trial-box");

    let call = host.hook(
        &plugin,
        &create("second", 128 << 20, "trial-2026", 1),
        empty(),
    );
    assert!(
        matches!(call.result, Ok(Decision::Deny(ref m)) if m.contains("trial")),
        "{:?}",
        call.result
    );
}

#[test]
fn key_value_store_persists_only_what_successful_calls_wrote() {
    let host = host();
    let plugin = host.load(&example("naming_policy").unwrap()).unwrap();
    let mut kv = Kv::new();
    for i in 0..5 {
        let call = host.hook(
            &plugin,
            &create(&format!("box-{i}"), 1 << 30, "basic", i),
            Arc::new(kv.clone()),
        );
        assert_eq!(call.result, Ok(Decision::Allow), "creation {i}");
        assert_eq!(call.kv_changes.0.len(), 1);
        apply_kv_changes(&mut kv, &call.kv_changes);
    }
    let call = host.hook(
        &plugin,
        &create("box-5", 1 << 30, "basic", 5),
        Arc::new(kv.clone()),
    );
    assert!(
        matches!(call.result, Ok(Decision::Deny(ref m)) if m.contains("a day")),
        "{:?}",
        call.result
    );
    // Without the stored counter the same event passes: the store is the plugin's memory.
    let call = host.hook(&plugin, &create("box-5", 1 << 30, "basic", 5), empty());
    assert_eq!(call.result, Ok(Decision::Allow));

    // A failing call's writes are dropped.
    let hostile = host.load(&example("hostile_trap").unwrap()).unwrap();
    let call = host.hook(&hostile, &create("x", 1, "basic", 0), Arc::new(kv));
    assert!(call.result.is_err());
    assert!(call.kv_changes.is_empty());
}

fn usage(name: &str, cpu_millis: u64, seconds: u64) -> ContainerUsage {
    ContainerUsage {
        name: name.into(),
        seconds_existing: seconds,
        seconds_running: seconds,
        cpu_millis,
        memory_average_bytes: 1 << 30,
        ..ContainerUsage::default()
    }
}

fn billing_input(containers: Vec<ContainerUsage>) -> BillingInput {
    BillingInput {
        period: "2026-11".into(),
        period_start: 1_793_491_200,
        period_end: 1_793_491_200 + 30 * 86_400,
        tenant: Tenant {
            reseller: "acme".into(),
            customer: "carol".into(),
            plan: Some(plan("basic", 1000)),
            container_count: containers.len() as u32,
        },
        currency: "EUR".into(),
        containers,
    }
}

#[test]
fn tiered_billing_prorates_and_charges_overage_and_minimum() {
    let host = host();
    let plugin = host.load(&example("tiered_billing").unwrap()).unwrap();
    assert_eq!(plugin.kind(), Kind::Billing);
    let month = 30 * 86_400;
    // Half a month; 100 core-hours used, 25 included for half a month: 75 over at 2.00.
    let input = billing_input(vec![usage("web", 100 * 3_600_000, month / 2)]);
    let lines = host.billing(&plugin, &input, empty()).result.unwrap();
    let amounts: Vec<i64> = lines.iter().map(|l| l.amount.amount).collect();
    assert_eq!(amounts, vec![500, 75 * 200], "{lines:?}");
    assert_eq!(lines[1].quantity_millis, 75_000);
    assert!(lines.iter().all(|l| l.amount.currency == "EUR"));

    // A tiny bill is raised to the minimum of 5.00.
    let input = billing_input(vec![usage("web", 0, 86_400)]);
    let lines = host.billing(&plugin, &input, empty()).result.unwrap();
    assert_eq!(
        lines.iter().map(|l| l.amount.amount).sum::<i64>(),
        500,
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap().description, "Minimum charge");

    // No containers: no lines, no minimum.
    let lines = host
        .billing(&plugin, &billing_input(Vec::new()), empty())
        .result
        .unwrap();
    assert!(lines.is_empty());
}

#[test]
fn the_bundled_default_rule_prorates_plan_prices() {
    let host = host();
    let plugin = host.load(acetate_plugins::DEFAULT_BILLING_RULE).unwrap();
    let month = 30 * 86_400;
    let input = billing_input(vec![usage("a", 0, month), usage("b", 0, month / 3)]);
    let lines = host.billing(&plugin, &input, empty()).result.unwrap();
    assert_eq!(
        lines.iter().map(|l| l.amount.amount).collect::<Vec<_>>(),
        vec![1000, 333]
    );
    assert_eq!(lines[1].quantity_millis, 333);
}

#[test]
fn hostile_plugins_are_stopped_within_their_budget() {
    let budget = Budget {
        fuel: 20_000_000,
        memory_bytes: 16 << 20,
        ..Budget::default()
    };
    let host = Host::new(None, budget.clone()).unwrap();
    let event = create("web", 1 << 30, "basic", 0);

    let looping = host.load(&example("hostile_loop").unwrap()).unwrap();
    let call = host.hook(&looping, &event, empty());
    assert_eq!(call.result, Err(Failure::OutOfFuel));
    assert_eq!(call.fuel_used, budget.fuel);

    let hog = host.load(&example("hostile_memory").unwrap()).unwrap();
    let call = host.hook(&hog, &event, empty());
    assert_eq!(call.result, Err(Failure::OutOfMemory));

    let trap = host.load(&example("hostile_trap").unwrap()).unwrap();
    let call = host.hook(&trap, &event, empty());
    assert!(
        matches!(call.result, Err(Failure::Trapped(_))),
        "{:?}",
        call.result
    );
    assert!(
        call.log
            .iter()
            .any(|l| l.message.contains("deliberate crash")),
        "panic message in the log: {:?}",
        call.log
    );

    // The flood needs more fuel than the others to get to its answer: the default budget.
    let roomy = Host::new(None, Budget::default()).unwrap();
    let flood = roomy.load(&example("hostile_output").unwrap()).unwrap();
    let call = roomy.billing(&flood, &billing_input(vec![usage("web", 0, 1)]), empty());
    let Err(Failure::BadOutput(message)) = &call.result else {
        panic!("{:?}", call.result)
    };
    assert!(message.contains("100000 invoice lines"), "{message}");
    let kept: usize = call.log.iter().map(|l| l.message.len()).sum();
    assert!(
        kept <= roomy.budget().max_log_bytes + 200,
        "log capped: {kept} bytes"
    );
    assert!(call.log.last().unwrap().message.contains("dropped"));

    let stingy = Host::new(
        None,
        Budget {
            max_host_calls: 1000,
            ..budget.clone()
        },
    )
    .unwrap();
    let flood = stingy.load(&example("hostile_output").unwrap()).unwrap();
    let call = stingy.billing(&flood, &billing_input(vec![usage("web", 0, 1)]), empty());
    assert_eq!(call.result, Err(Failure::TooManyHostCalls));

    // Host calls that make the host copy 4 MiB strings are stopped by their byte budget
    // long before the call budget, whatever fuel the guest has left.
    let copier = roomy.load(&example("hostile_hostcalls").unwrap()).unwrap();
    let started = std::time::Instant::now();
    let call = roomy.hook(&copier, &event, empty());
    assert_eq!(call.result, Err(Failure::TooManyHostCalls));
    assert!(
        started.elapsed() < roomy.budget().wall_time,
        "{:?}",
        started.elapsed()
    );

    // Whatever a call spends its time on, the wall clock stops it: a loop with fuel to
    // spare, and the copier with no byte budget to speak of.
    let timed = Host::new(
        None,
        Budget {
            fuel: u64::MAX / 2,
            max_host_bytes: usize::MAX,
            max_host_calls: u32::MAX,
            wall_time: std::time::Duration::from_millis(300),
            ..Budget::default()
        },
    )
    .unwrap();
    for plugin in ["hostile_loop", "hostile_hostcalls"] {
        let p = timed.load(&example(plugin).unwrap()).unwrap();
        let started = std::time::Instant::now();
        let call = timed.hook(&p, &event, empty());
        assert_eq!(call.result, Err(Failure::OutOfTime), "{plugin}");
        // The bound is checked at every epoch tick and in host calls' returns; a 4 MiB
        // copy is the most that can run past it.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{plugin} stopped after {:?}",
            started.elapsed()
        );
    }

    // After all that the host serves a good plugin as before.
    let good = host.load(&example("naming_policy").unwrap()).unwrap();
    assert_eq!(
        host.hook(&good, &event, empty()).result,
        Ok(Decision::Allow)
    );
}

#[test]
fn a_plugin_finds_no_files_environment_clock_or_randomness() {
    let host = host();
    let snoop = host.load(&example("hostile_snoop").unwrap()).unwrap();
    let event = create("web", 1 << 30, "basic", 0);
    let first = host.hook(&snoop, &event, empty());
    let Ok(Decision::Deny(found)) = &first.result else {
        panic!("{:?}", first.result)
    };
    assert!(
        found.starts_with("nothing (hash seed "),
        "the plugin found: {found}"
    );
    // No randomness: the same event gets the same answer, hash seeds included.
    assert_eq!(host.hook(&snoop, &event, empty()).result, first.result);
}

#[test]
fn wrong_kind_and_oversized_input_are_refused_before_running() {
    let host = Host::new(
        None,
        Budget {
            max_input_bytes: 4096,
            ..Budget::default()
        },
    )
    .unwrap();
    let hook = host.load(&example("naming_policy").unwrap()).unwrap();
    let call = host.billing(&hook, &billing_input(Vec::new()), empty());
    assert_eq!(call.result, Err(Failure::WrongKind(Kind::Hook)));
    let rule = host.load(&example("pay_as_you_go").unwrap()).unwrap();
    let many: Vec<_> = (0..200).map(|i| usage(&format!("c{i}"), 1, 1)).collect();
    let call = host.billing(&rule, &billing_input(many), empty());
    assert!(
        matches!(call.result, Err(Failure::BadInput(_))),
        "{:?}",
        call.result
    );
}

#[test]
fn garbage_uploads_get_clear_errors() {
    let host = host();
    assert!(matches!(
        host.load(b"hello world, not wasm"),
        Err(LoadError::NotWasm)
    ));
    assert!(matches!(
        host.load(b"\0asm\x01\0\0\0"),
        Err(LoadError::CoreModule)
    ));
    let good = example("naming_policy").unwrap();
    let err = host.load(&good[..good.len() / 2]).unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)), "{err}");
    assert!(
        err.to_string().starts_with("invalid WebAssembly component"),
        "{err}"
    );
    let err = host
        .load(&vec![0u8; acetate_plugins::MAX_COMPONENT_BYTES + 1])
        .unwrap_err();
    assert!(matches!(err, LoadError::TooLarge(_)));
}

#[test]
fn compiled_code_is_cached_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = example("tiered_billing").unwrap();
    let first = Host::new(Some(dir.path()), Budget::default()).unwrap();
    assert_eq!(first.load_traced(&bytes).unwrap().1, Source::Compiled);
    assert_eq!(first.load_traced(&bytes).unwrap().1, Source::Memory);
    let second = Host::new(Some(dir.path()), Budget::default()).unwrap();
    let (plugin, source) = second.load_traced(&bytes).unwrap();
    assert_eq!(source, Source::Disk);
    let lines = second.billing(
        &plugin,
        &billing_input(vec![usage("web", 0, 86_400)]),
        empty(),
    );
    assert!(lines.result.is_ok());

    // A damaged cache file is recompiled, not trusted.
    // (Replaced, not rewritten in place: the host maps cache files, as the panel writes them.)
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"garbage").unwrap();
    }
    let third = Host::new(Some(dir.path()), Budget::default()).unwrap();
    assert_eq!(third.load_traced(&bytes).unwrap().1, Source::Compiled);
}

#[test]
fn a_plugin_built_against_wit_1_0_0_runs_on_this_host() {
    assert_eq!(acetate_plugins::WIT_VERSION, "1.2.0");
    let host = host();
    let legacy = host.load(&example("legacy_hook").unwrap()).unwrap();
    assert_eq!(legacy.kind(), Kind::Hook);
    assert!(legacy.handles_events() && !legacy.handles_overuse());
    let call = host.hook(&legacy, &create("legacy-no", 1 << 30, "basic", 0), empty());
    assert_eq!(call.result, Ok(Decision::Deny("not with that name".into())));
    assert!(call.log[0].message.contains("1.0.0"));
    assert_eq!(call.kv_changes.0.get("calls"), Some(&Some(vec![1])));
    let call = host.hook(&legacy, &create("fine", 1 << 30, "basic", 0), empty());
    assert_eq!(call.result, Ok(Decision::Allow));
}

#[test]
fn the_naming_policy_forgets_past_days() {
    let host = host();
    let plugin = host.load(&example("naming_policy").unwrap()).unwrap();
    let event = create("web", 1 << 30, "basic", 0);
    let today = event.at.div_euclid(86_400);
    let mut kv = Kv::new();
    kv.insert(
        format!("creates/carol/{}", today - 3),
        5u64.to_le_bytes().to_vec(),
    );
    kv.insert(
        format!("creates/dave/{}", today - 1),
        2u64.to_le_bytes().to_vec(),
    );
    kv.insert("unrelated".into(), vec![1]);
    let call = host.hook(&plugin, &event, Arc::new(kv.clone()));
    assert_eq!(call.result, Ok(Decision::Allow));
    apply_kv_changes(&mut kv, &call.kv_changes);
    let keys: Vec<&String> = kv.keys().collect();
    assert_eq!(
        keys,
        vec![&format!("creates/carol/{today}"), &"unrelated".to_string()]
    );
}
