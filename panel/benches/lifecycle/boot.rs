//! Part of the lifecycle bench: booting the template's own systemd against Acetate's
//! minimal init. For each init, `n` containers start one after another; a container's
//! boot is timed from the start call until its systemd reports the boot finished
//! (`systemctl is-system-running --wait`: multi-user reached and every unit settled), or
//! for the minimal init until a first command ran inside. Then, all `n` idle, the host
//! memory they take and what their own cgroups are charged.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use acetate_engine::spec::Init;
use acetate_engine::{ContainerSpec, Engine, ExecIo};

/// Waits for systemd's boot to end; fails (saying which units failed) unless it is
/// `running`.
const SYSTEMD_BOOTED: &str = "until test -S /run/systemd/private; do sleep 0.01; done; \
    state=$(timeout 120 systemctl is-system-running --wait); test $state = running || \
    { echo $state; systemctl --failed --no-pager; exit 1; }";

/// Waits for SysV init to reach runlevel 2 with its `rc` script done.
const SYSV_BOOTED: &str = "until case \"$(tr '\\0' ' ' < /proc/1/cmdline)\" in \
    'init [2]'*) ! pgrep -f '^/bin/sh /etc/init.d/rc' >/dev/null;; *) false;; esac; \
    do sleep 0.01; done";

struct Booted {
    init: Init,
    boots: Vec<Duration>,
    own_kib: f64,
    cgroup_kib: f64,
    processes: f64,
}

fn boot_all(engine: &Engine, init: Init, template: &str, n: usize) -> Booted {
    let names: Vec<String> = (0..n)
        .map(|i| format!("boot-{}-{i}", init.as_str()))
        .collect();
    for name in &names {
        let spec = ContainerSpec::builder(name)
            .template(template)
            .disk(64 << 20)
            .init(init)
            .build()
            .unwrap();
        engine.create(&spec).unwrap();
    }
    let null = File::open("/dev/null").unwrap();
    let log = tempfile::tempfile().unwrap();
    let io = ExecIo {
        stdin: Some(null.as_raw_fd()),
        stdout: Some(log.as_raw_fd()),
        stderr: Some(log.as_raw_fd()),
        tty: false,
    };
    let wait = match init {
        Init::Systemd => SYSTEMD_BOOTED.to_string(),
        Init::Sysvinit => SYSV_BOOTED.to_string(),
        Init::Minimal => "true".to_string(),
    };
    let mut boots = Vec::new();
    for name in &names {
        let t = Instant::now();
        let info = engine.start(name).unwrap();
        assert_eq!(info.init, init);
        let code = engine
            .exec(name, &["sh".into(), "-c".into(), wait.clone()], &[], io)
            .unwrap();
        boots.push(t.elapsed());
        if code != 0 {
            use std::io::{Read, Seek};
            let mut text = String::new();
            let mut f = &log;
            f.rewind().unwrap();
            f.read_to_string(&mut text).unwrap();
            panic!("{name} did not boot with every unit running: {text}");
        }
    }
    super::settle();
    let own: u64 = names.iter().map(|n| own_memory(engine, n)).sum();
    let infos: Vec<_> = names.iter().map(|n| engine.show(n).unwrap()).collect();
    let cgroup: u64 = infos
        .iter()
        .map(|i| i.usage.cgroup.unwrap().memory_bytes)
        .sum();
    let processes: u64 = infos.iter().map(|i| i.usage.cgroup.unwrap().procs).sum();
    for name in &names {
        engine.destroy(name, Duration::from_secs(10)).unwrap();
    }
    boots.sort();
    Booted {
        init,
        boots,
        own_kib: own as f64 / n as f64 / 1024.0,
        cgroup_kib: cgroup as f64 / n as f64 / 1024.0,
        processes: processes as f64 / n as f64,
    }
}

/// Bytes only container `name` uses: anonymous, shared-memory (its tmpfs, the journal)
/// and kernel pages of its memory cgroup.
fn own_memory(engine: &Engine, name: &str) -> u64 {
    let cg = engine.cgroup(name);
    let Some(dir) = cg
        .paths()
        .into_iter()
        .find(|d| d.join("memory.stat").exists())
    else {
        return 0;
    };
    let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    let field = |k: &str| {
        stat.lines()
            .find_map(|l| {
                l.strip_prefix(k)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    if cg.is_v2() {
        field("anon") + field("shmem") + field("kernel")
    } else {
        let kmem = std::fs::read_to_string(dir.join("memory.kmem.usage_in_bytes"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        field("total_rss") + field("total_shmem") + kmem
    }
}

/// Waits until container `name`'s systemd has booted with every unit running.
pub fn wait_booted(engine: &Engine, name: &str) {
    let null = File::open("/dev/null").unwrap();
    let io = ExecIo {
        stdin: Some(null.as_raw_fd()),
        stdout: Some(null.as_raw_fd()),
        stderr: Some(null.as_raw_fd()),
        tty: false,
    };
    let code = engine
        .exec(
            name,
            &["sh".into(), "-c".into(), SYSTEMD_BOOTED.into()],
            &[],
            io,
        )
        .unwrap();
    assert_eq!(code, 0, "{name} booted with every unit running");
}

/// Boots `n` containers of the `host` template with the minimal init, then with its
/// systemd, and `n` of `sysv` (a template with SysV init) if given.
pub fn boot(engine: &Engine, n: usize, sysv: Option<&str>) {
    let minimal = boot_all(engine, Init::Minimal, "host", n);
    let systemd = boot_all(engine, Init::Systemd, "host", n);
    let sysvinit = sysv.map(|t| boot_all(engine, Init::Sysvinit, t, n));
    println!("\nboot of {n} containers, one after another, then all {n} idle");
    println!(
        "  {:<8} {:>9} {:>9} {:>9} {:>14} {:>16} {:>10}",
        "init", "p50 ms", "p95 ms", "max ms", "own KiB each", "cgroup KiB each", "processes"
    );
    for b in [Some(&minimal), Some(&systemd), sysvinit.as_ref()]
        .into_iter()
        .flatten()
    {
        let p = |q: f64| b.boots[((b.boots.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {:<8} {:>9.1} {:>9.1} {:>9.1} {:>14.0} {:>16.0} {:>10.1}",
            b.init.as_str(),
            p(0.5).as_secs_f64() * 1e3,
            p(0.95).as_secs_f64() * 1e3,
            p(1.0).as_secs_f64() * 1e3,
            b.own_kib,
            b.cgroup_kib,
            b.processes
        );
    }
    let p50 = |b: &Booted| b.boots[(b.boots.len() - 1) / 2].as_secs_f64();
    println!(
        "  systemd / minimal: boot p50 x{:.1}, own memory x{:.1}",
        p50(&systemd) / p50(&minimal),
        systemd.own_kib / minimal.own_kib.max(1.0)
    );
    println!(
        "  (own: anonymous, shared-memory and kernel pages of its cgroup, which no other \
         container shares; cgroup: what its memory limit counts, also the page cache it \
         touched first)"
    );
}
