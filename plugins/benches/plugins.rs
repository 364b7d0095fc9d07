//! Plugin host benchmark: hook call latency with a warm cache, billing evaluations per second,
//! cold compile against cached loads.
//!
//! `cargo bench -p acetate-plugins --bench plugins [-- --calls N --seconds S --threads T]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use acetate_plugins::{
    example, BillingInput, Budget, ContainerSpec, ContainerUsage, Event, EventKind, Host, Kv,
    Limits, Money, Plan, Tenant,
};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn tenant() -> Tenant {
    Tenant {
        reseller: "acme".into(),
        customer: "carol".into(),
        plan: Some(Plan {
            name: "basic".into(),
            per_container: Limits::default(),
            max_containers: 3,
            monthly_price: Money {
                amount: 900,
                currency: "EUR".into(),
            },
        }),
        container_count: 1,
    }
}

fn main() {
    let calls = arg("--calls", 20_000) as usize;
    let seconds = arg("--seconds", 3);
    let threads = arg("--threads", 2) as usize;

    // Cold compile, then a new process' load from the disk cache, then the memory cache.
    let cache = tempfile::tempdir().expect("temp dir");
    let bytes = example("naming_policy").expect("example plugins are built");
    let host = Host::new(Some(cache.path()), Budget::default()).expect("host");
    let t = Instant::now();
    host.load(&bytes).expect("load");
    let cold = t.elapsed();
    let fresh = Host::new(Some(cache.path()), Budget::default()).expect("host");
    let t = Instant::now();
    fresh.load(&bytes).expect("load");
    let disk = t.elapsed();
    let t = Instant::now();
    let plugin = fresh.load(&bytes).expect("load");
    let memory = t.elapsed();
    println!("load naming_policy ({} KiB): cold compile {:.1} ms, disk cache {:.2} ms, memory cache {:.1} µs",
        bytes.len() / 1024, cold.as_secs_f64() * 1e3, disk.as_secs_f64() * 1e3, memory.as_secs_f64() * 1e6);

    // Hook calls: a fresh store and instance per call, as the panel runs them.
    let event = Event {
        kind: EventKind::Resize,
        at: 1_795_000_000,
        tenant: tenant(),
        current: Some(ContainerSpec {
            name: "web".into(),
            template: "host".into(),
            limits: Limits::default(),
        }),
        requested: Some(ContainerSpec {
            name: "web".into(),
            template: "host".into(),
            limits: Limits::default(),
        }),
    };
    let kv = Arc::new(Kv::new());
    for _ in 0..1000 {
        fresh.hook(&plugin, &event, kv.clone());
    }
    let mut times = Vec::with_capacity(calls);
    let mut fuel = 0;
    for _ in 0..calls {
        let t = Instant::now();
        let call = fresh.hook(&plugin, &event, kv.clone());
        times.push(t.elapsed());
        fuel = call.fuel_used;
        assert!(call.result.is_ok());
    }
    times.sort();
    println!(
        "hook call (naming_policy, resize, {fuel} fuel): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {calls} calls",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
        times.last().unwrap().as_secs_f64() * 1e6
    );

    // Billing evaluations: one customer with two containers, fresh store per evaluation.
    let rule = fresh
        .load(&example("tiered_billing").expect("example"))
        .expect("load");
    let usage = |name: &str| ContainerUsage {
        name: name.into(),
        seconds_existing: 30 * 86_400,
        seconds_running: 30 * 86_400,
        cpu_millis: 400 * 3_600_000,
        memory_average_bytes: 300 << 20,
        disk_average_bytes: 12 << 30,
        ..ContainerUsage::default()
    };
    let input = BillingInput {
        period: "2026-11".into(),
        period_start: 1_793_491_200,
        period_end: 1_793_491_200 + 30 * 86_400,
        tenant: tenant(),
        currency: "EUR".into(),
        containers: vec![usage("web"), usage("db")],
    };
    let fresh = Arc::new(fresh);
    let deadline = Duration::from_secs(seconds);
    let t = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (host, rule, input, kv) =
                    (fresh.clone(), rule.clone(), input.clone(), kv.clone());
                s.spawn(move || {
                    let started = Instant::now();
                    let mut n = 0u64;
                    while started.elapsed() < deadline {
                        let call = host.billing(&rule, &input, kv.clone());
                        assert_eq!(call.result.expect("lines").len(), 6);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    let elapsed = t.elapsed().as_secs_f64();
    println!(
        "billing evaluations (tiered_billing, 2 containers, {threads} threads): {:.0}/s ({total} in {elapsed:.1} s)",
        total as f64 / elapsed
    );
}
