//! Container lifecycle benchmark: p50/p95 of create, start, exec `true`, stop and destroy,
//! through the engine in-process and through the `acetate` binary; host memory per idle
//! running container; and the same lifecycle with runc, side by side.
//!
//! `sudo cargo bench -p acetate --bench lifecycle -- [--count 50] [--idle 200] [--runc] [--net] [--settle MS] [--autostart N] [--boot N [--sysv-template NAME]]`
//!
//! The lifecycle and idle figures are of Acetate's minimal init (runc's container runs a
//! bare `sleep`); `--boot N` boots N containers' systemd against N minimal inits: time to
//! a finished boot, idle host memory each; with `--sysv-template`, also N containers of
//! that template (one with SysV init, in the benchmark's state dir) booting it.
//!
//! `--autostart N` measures bringing N running containers back after a simulated reboot
//! (every container process killed, every mount and loop device detached).
//!
//! `--net` adds the same engine lifecycle with a network interface (bridge port, addresses
//! and routes over netlink, the firewall's entries), so that the cost of networking on a
//! start is the difference of two columns of one run. The benchmark runs in a network
//! namespace of its own, and removes what it added there. `--settle MS` pauses (untimed)
//! between lifecycles: back to back, a start waits for the kernel to finish tearing down
//! the previous container's network namespace (its veth pair), which holds the RTNL lock.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acetate_engine::spec::Init;
use acetate_engine::{ContainerSpec, Engine, ExecIo};

#[path = "lifecycle/autostart.rs"]
mod autostart;
#[path = "lifecycle/boot.rs"]
mod boot;

struct Opts {
    /// Also the lifecycle of containers with a network interface.
    net: bool,
    /// An untimed pause between lifecycles.
    settle: Duration,
    count: usize,
    idle: usize,
    /// Containers brought back after a simulated reboot (0: not measured).
    autostart: usize,
    /// Containers booted with systemd and with the minimal init (0: not measured).
    boot: usize,
    /// A template with SysV init to boot as many containers of (`--boot`).
    sysv: Option<String>,
    runc: bool,
    state: PathBuf,
}

fn opts() -> Opts {
    let mut o = Opts {
        net: false,
        settle: Duration::ZERO,
        count: 50,
        idle: 200,
        autostart: 0,
        boot: 0,
        sysv: None,
        runc: false,
        state: PathBuf::from("/var/tmp/acetate-bench"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--count" => o.count = args.next().and_then(|v| v.parse().ok()).expect("--count N"),
            "--idle" => o.idle = args.next().and_then(|v| v.parse().ok()).expect("--idle N"),
            "--autostart" => {
                o.autostart = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--autostart N")
            }
            "--boot" => o.boot = args.next().and_then(|v| v.parse().ok()).expect("--boot N"),
            "--sysv-template" => o.sysv = Some(args.next().expect("--sysv-template NAME")),
            "--runc" => o.runc = true,
            "--net" => o.net = true,
            "--settle" => {
                let ms = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--settle MS");
                o.settle = Duration::from_millis(ms);
            }
            "--state-dir" => o.state = PathBuf::from(args.next().expect("--state-dir DIR")),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

#[derive(Default)]
struct Samples {
    name: &'static str,
    ops: Vec<(&'static str, Vec<Duration>)>,
}

impl Samples {
    fn new(name: &'static str) -> Self {
        Samples {
            name,
            ops: Vec::new(),
        }
    }
    fn time<T>(&mut self, op: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let v = f();
        let d = t.elapsed();
        match self.ops.iter_mut().find(|(n, _)| *n == op) {
            Some((_, v)) => v.push(d),
            None => self.ops.push((op, vec![d])),
        }
        v
    }
    fn pct(&self, op: &str, p: f64) -> Option<Duration> {
        let (_, v) = self.ops.iter().find(|(n, _)| *n == op)?;
        let mut v = v.clone();
        v.sort();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).copied()
    }
    fn total_p50(&self) -> Duration {
        self.ops.iter().filter_map(|(n, _)| self.pct(n, 0.5)).sum()
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2}", d.as_secs_f64() * 1e3))
        .unwrap_or_else(|| "-".into())
}

fn report(all: &[&Samples]) {
    println!("\nlatency in ms, p50 / p95");
    print!("{:<10}", "op");
    for s in all {
        print!("{:>24}", s.name);
    }
    println!();
    for op in ["create", "start", "exec", "stop", "destroy"] {
        print!("{op:<10}");
        for s in all {
            print!(
                "{:>24}",
                format!("{} / {}", ms(s.pct(op, 0.5)), ms(s.pct(op, 0.95)))
            );
        }
        println!();
    }
    print!("{:<10}", "lifecycle");
    for s in all {
        print!(
            "{:>24}",
            format!("{} (sum of p50)", ms(Some(s.total_p50())))
        );
    }
    println!();
}

fn devnull() -> File {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap()
}

fn engine_lifecycle(engine: &Engine, count: usize, net: bool, settle: Duration) -> Samples {
    let mut s = Samples::new(if net {
        "engine, with network"
    } else {
        "engine (in-process)"
    });
    let null = devnull();
    let io = ExecIo {
        stdin: Some(null.as_raw_fd()),
        stdout: Some(null.as_raw_fd()),
        stderr: Some(null.as_raw_fd()),
        tty: false,
    };
    for i in 0..count {
        let name = format!("bench-{i}");
        let spec = ContainerSpec::builder(&name)
            .disk(256 << 20)
            .init(Init::Minimal)
            .network(net)
            .build()
            .unwrap();
        s.time("create", || engine.create(&spec).unwrap());
        s.time("start", || engine.start(&name).unwrap());
        let code = s.time("exec", || {
            engine.exec(&name, &["true".into()], &[], io).unwrap()
        });
        assert_eq!(code, 0);
        s.time("stop", || {
            engine.stop(&name, Duration::from_secs(5)).unwrap()
        });
        s.time("destroy", || {
            engine.destroy(&name, Duration::from_secs(5)).unwrap()
        });
        std::thread::sleep(settle);
    }
    s
}

fn run(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cli_lifecycle(state: &Path, count: usize) -> Samples {
    let mut s = Samples::new("acetate CLI");
    let bin = env!("CARGO_BIN_EXE_acetate");
    let cli = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.arg("--state-dir").arg(state).args(args);
        c
    };
    for i in 0..count {
        let name = format!("bench-cli-{i}");
        s.time("create", || {
            run(&mut cli(&[
                "ct", "create", &name, "--disk", "256M", "--init", "minimal",
            ]))
        });
        s.time("start", || run(&mut cli(&["ct", "start", &name])));
        s.time("exec", || {
            run(&mut cli(&["ct", "exec", &name, "--", "true"]))
        });
        s.time("stop", || run(&mut cli(&["ct", "stop", &name])));
        s.time("destroy", || run(&mut cli(&["ct", "destroy", &name])));
    }
    s
}

fn runc_lifecycle(template_rootfs: &Path, count: usize) -> Option<Samples> {
    if Command::new("runc").arg("--version").output().is_err() {
        eprintln!("runc is not installed: installing it from Debian");
        let ok = Command::new("apt-get")
            .args(["install", "-y", "-qq", "runc"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("could not install runc; no side-by-side figures");
            return None;
        }
    }
    let bundle = tempfile::tempdir().unwrap();
    run(Command::new("runc").arg("spec").current_dir(bundle.path()));
    let cfg_path = bundle.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["root"]["path"] = template_rootfs.to_string_lossy().into();
    cfg["root"]["readonly"] = true.into();
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = serde_json::json!(["sleep", "infinity"]);
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let mut s = Samples::new("runc");
    for i in 0..count {
        let id = format!("acetate-bench-runc-{i}");
        s.time("create", || {
            run(Command::new("runc")
                .args(["create", "--bundle"])
                .arg(bundle.path())
                .arg(&id)
                .stdout(Stdio::null())
                .stderr(Stdio::null()))
        });
        s.time("start", || run(Command::new("runc").args(["start", &id])));
        s.time("exec", || {
            run(Command::new("runc").args(["exec", &id, "true"]))
        });
        s.time("stop", || {
            run(Command::new("runc").args(["kill", &id, "KILL"]));
            loop {
                let out = Command::new("runc").args(["state", &id]).output().unwrap();
                if String::from_utf8_lossy(&out.stdout).contains("\"stopped\"") {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        s.time(
            "destroy",
            || run(Command::new("runc").args(["delete", &id])),
        );
    }
    Some(s)
}

fn meminfo(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap()
        * 1024
}

/// Memory in use by the host, page cache excluded.
fn used() -> u64 {
    meminfo("MemTotal:")
        - meminfo("MemFree:")
        - meminfo("Buffers:")
        - meminfo("Cached:")
        - meminfo("SReclaimable:")
}

fn settle() -> u64 {
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    std::thread::sleep(Duration::from_secs(2));
    used()
}

fn idle_memory(engine: &Engine, n: usize) {
    let names: Vec<String> = (0..n).map(|i| format!("idle-{i}")).collect();
    let base = settle();
    for name in &names {
        let spec = ContainerSpec::builder(name)
            .disk(64 << 20)
            .init(Init::Minimal)
            .build()
            .unwrap();
        engine.create(&spec).unwrap();
    }
    let created = settle();
    let t = Instant::now();
    for name in &names {
        engine.start(name).unwrap();
    }
    let start_all = t.elapsed();
    let running = settle();
    let cgroup_sum: u64 = names
        .iter()
        .map(|n| engine.show(n).unwrap().usage.cgroup.unwrap().memory_bytes)
        .sum();
    let per = |bytes: u64| bytes as f64 / n as f64 / 1024.0;
    println!("\n{n} idle containers");
    println!(
        "  running (init, namespaces, cgroups, /proc /dev /run mounts): {:.0} KiB host memory each",
        per(running.saturating_sub(created))
    );
    println!(
        "  of which charged to the containers' own cgroups:            {:.0} KiB each",
        per(cgroup_sum)
    );
    println!(
        "  storage (loop device, ext4 mount, overlay), paid at create:  {:.0} KiB each",
        per(created.saturating_sub(base))
    );
    println!(
        "  started all {n} in {:.0} ms ({:.2} ms each)",
        start_all.as_secs_f64() * 1e3,
        start_all.as_secs_f64() * 1e3 / n as f64
    );
    metering_cost(engine.state_dir(), &names);
    for name in &names {
        engine.destroy(name, Duration::from_secs(5)).unwrap();
    }
}

/// CPU time of this process (all threads), user + system.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// What the metering job costs with `names` running: CPU per pass over every container
/// (engine reads of cgroups and disk, the SQLite transaction), and its share of one core
/// at the default interval.
fn metering_cost(state: &Path, names: &[String]) {
    let engine: std::sync::Arc<dyn acetate::runtime::Runtime> = std::sync::Arc::new(
        acetate::runtime::EngineRuntime(std::sync::Arc::new(Engine::open(state).unwrap())),
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let passes = 10;
    let (per_pass_cpu, per_pass_wall) = rt.block_on(async {
        let db = acetate::db::Db::connect(&url).await.unwrap();
        let owner = db
            .create_user("bench", acetate::domain::Role::Customer, None, "-")
            .await
            .unwrap();
        let holds = acetate::domain::Totals {
            containers: 1,
            memory: 0,
            cpus_milli: 0,
            disk: 0,
        };
        for name in names {
            let id = db
                .reserve_container(owner, -1, name, name, &holds, |_, _, _| Ok(()))
                .await
                .unwrap();
            db.set_container_state(id, "ready").await.unwrap();
        }
        // The first pass creates every container's reading; the next ones are the steady state.
        acetate::service::metering::sample(&db, &engine, None)
            .await
            .unwrap();
        let (cpu, wall) = (cpu_time(), Instant::now());
        for _ in 0..passes {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let report = acetate::service::metering::sample(&db, &engine, None)
                .await
                .unwrap();
            assert_eq!(report.running, names.len());
        }
        let sleeping = Duration::from_millis(1100) * passes;
        let cost = (
            (cpu_time() - cpu) / passes,
            (wall.elapsed() - sleeping) / passes,
        );
        scrape_cost(db, engine.clone(), names.len()).await;
        cost
    });
    let interval = acetate::service::metering::DEFAULT_INTERVAL.as_secs_f64();
    println!(
        "  metering all {}: {:.1} ms CPU per pass ({:.1} ms wall), {:.3}% of one core at one pass every {interval:.0} s",
        names.len(),
        per_pass_cpu.as_secs_f64() * 1e3,
        per_pass_wall.as_secs_f64() * 1e3,
        per_pass_cpu.as_secs_f64() / interval * 100.0
    );
}

/// What a `/metrics` scrape costs with every container running: rendered afresh (after a
/// snapshot refresh, as every two seconds in `serve`) and from the cache.
async fn scrape_cost(
    db: acetate::db::Db,
    engine: std::sync::Arc<dyn acetate::runtime::Runtime>,
    count: usize,
) {
    let plugins = std::sync::Arc::new(
        acetate_plugins::Host::new(None, acetate_plugins::Budget::default()).unwrap(),
    );
    let st = acetate::service::AppState::new(db, engine, plugins);
    let mut fresh = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..20 {
        let (snap, rt) = (st.snapshot.clone(), st.runtime.clone());
        tokio::task::spawn_blocking(move || snap.refresh_all(rt.as_ref()))
            .await
            .unwrap()
            .unwrap();
        let t = Instant::now();
        let text = acetate::service::metrics::render(&st).await.unwrap();
        fresh.push(t.elapsed());
        let t = Instant::now();
        acetate::service::metrics::render(&st).await.unwrap();
        cached.push(t.elapsed());
        assert!(text.len() > count * 100);
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3
    };
    println!(
        "  /metrics with {count} containers: rendered p50 {:.1} ms, p99 {:.1} ms; cached p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut fresh, 0.5),
        pct(&mut fresh, 0.99),
        pct(&mut cached, 0.5),
        pct(&mut cached, 0.99)
    );
}

fn main() {
    let o = opts();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc_geteuid() } != 0 {
        eprintln!("the lifecycle benchmark starts real containers: run it as root");
        std::process::exit(1);
    }
    // A network namespace of its own: nothing of the benchmark's touches the host's.
    // SAFETY: unshare on this (so far single-threaded) process.
    if unsafe { libc_unshare(0x4000_0000) } != 0 {
        eprintln!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    let engine = Engine::open(&o.state).unwrap();
    engine.ensure_host_template().unwrap();
    for c in engine.list().unwrap() {
        engine.destroy(&c.name, Duration::from_secs(1)).unwrap();
    }
    println!(
        "{} lifecycles each (create, start, exec true, stop, destroy)",
        o.count
    );
    let ours = engine_lifecycle(&engine, o.count, false, o.settle);
    let networked = o
        .net
        .then(|| engine_lifecycle(&engine, o.count, true, o.settle));
    let cli = cli_lifecycle(&o.state, o.count);
    let runc = if o.runc {
        runc_lifecycle(&engine.layout().template_rootfs("host"), o.count)
    } else {
        None
    };
    let mut all = vec![&ours];
    if let Some(n) = &networked {
        all.push(n);
    }
    all.push(&cli);
    if let Some(r) = &runc {
        all.push(r);
    }
    report(&all);
    if runc.is_some() {
        println!(
            "(runc: no user namespace, no disk image or overlay: the template mounted read-only)"
        );
    }
    if let Some(n) = &networked {
        if let (Some(plain), Some(net)) = (ours.pct("start", 0.5), n.pct("start", 0.5)) {
            println!(
                "start with networking: p50 {} ms vs {} ms without: {:+.2} ms",
                ms(Some(net)),
                ms(Some(plain)),
                (net.as_secs_f64() - plain.as_secs_f64()) * 1e3
            );
        }
    }
    if o.idle > 0 {
        idle_memory(&engine, o.idle);
    }
    if o.autostart > 0 {
        autostart::autostart(&engine, o.autostart);
    }
    if o.boot > 0 {
        boot::boot(&engine, o.boot, o.sysv.as_deref());
    }
    if o.net {
        let _ = acetate_engine::firewall::teardown(&engine.identity().network());
    }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
    #[link_name = "unshare"]
    fn libc_unshare(flags: i32) -> i32;
}
