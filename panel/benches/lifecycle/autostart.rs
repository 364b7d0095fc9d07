//! Part of the lifecycle bench: autostart after a simulated host reboot. `n` containers
//! run; then every container process is killed and every mount and loop device detached
//! (what a reboot leaves: configs and images on disk, nothing in the kernel); then the
//! engine's recovery and `start_all` with `serve`'s 4 workers bring back every one. The
//! containers boot the `host` template's systemd: the time until every one of them says
//! its boot is over is reported too.

use std::time::{Duration, Instant};

use acetate_engine::spec::Init;
use acetate_engine::{ContainerSpec, Engine};

pub fn autostart(engine: &Engine, n: usize) {
    let names: Vec<String> = (0..n).map(|i| format!("boot-{i}")).collect();
    for name in &names {
        let spec = ContainerSpec::builder(name).disk(64 << 20).build().unwrap();
        engine.create(&spec).unwrap();
        engine.start(name).unwrap();
    }
    // The reboot.
    let pids: Vec<i32> = names
        .iter()
        .filter_map(|n| engine.show(n).unwrap().pid)
        .collect();
    for pid in &pids {
        // SAFETY: kill(2) takes no pointers.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    for name in &names {
        for _ in 0..500 {
            if engine.show(name).unwrap().pid.is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        acetate_engine::storage::unmount_all(engine.layout(), name).unwrap();
    }
    let t = Instant::now();
    let repaired = engine.recover().unwrap();
    let recovered = t.elapsed();
    let results = engine.start_all(4).unwrap();
    let total = t.elapsed();
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    assert_eq!(failed, 0, "{results:?}");
    assert_eq!(results.len(), n, "every container that ran comes back");
    let systemd = results
        .iter()
        .filter(|(_, r)| r.as_ref().is_ok_and(|i| i.init == Init::Systemd))
        .count();
    let booted = (systemd > 0).then(|| {
        for name in &names {
            super::boot::wait_booted(engine, name);
        }
        t.elapsed()
    });
    println!("\nautostart of {n} containers after a simulated reboot (4 workers)");
    println!(
        "  {:.2} s in all ({:.1} ms each): recovery {:.0} ms ({} repaired), starts {:.2} s",
        total.as_secs_f64(),
        total.as_secs_f64() * 1e3 / n as f64,
        recovered.as_secs_f64() * 1e3,
        repaired.len(),
        (total - recovered).as_secs_f64()
    );
    if let Some(booted) = booted {
        println!(
            "  every one's systemd done booting (all units running) {:.2} s after the reboot \
             ({systemd} systemd containers)",
            booted.as_secs_f64()
        );
    }
    for name in &names {
        engine.destroy(name, Duration::from_secs(5)).unwrap();
    }
}
