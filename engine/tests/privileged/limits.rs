//! Every quota is enforced by the kernel, inside real containers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use acetate_engine::LimitsUpdate;

use crate::helpers::{engine, Ct, ENGINE};

fn cgroup_file(name: &str, v1: &str, v2: &str) -> String {
    let cg = ENGINE.get().expect("engine opened").cgroup(name);
    let (ctrl, file) = if cg.is_v2() {
        ("", v2)
    } else {
        (v1.split('.').next().unwrap(), v1)
    };
    let dir: PathBuf = cg
        .paths()
        .into_iter()
        .find(|p| cg.is_v2() || p.to_string_lossy().contains(&format!("/{ctrl}/")))
        .unwrap();
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_memory_hog_is_oom_killed_inside_and_the_container_lives_on() {
    let Some(engine) = engine("a_memory_hog_is_oom_killed_inside_and_the_container_lives_on")
    else {
        return;
    };
    let ct = Ct::started(engine, "lim-mem", |b| b.memory(64 << 20));
    // dd allocates its whole 256 MiB block and fills it: four times the limit.
    let (code, _, err) = ct.sh("dd if=/dev/zero of=/dev/null bs=256M count=1");
    assert_eq!(
        code,
        128 + 9,
        "the hog is SIGKILLed by the OOM killer: {err}"
    );
    let usage = engine.show(&ct.name).unwrap().usage.cgroup.unwrap();
    assert!(usage.oom_kills >= 1, "{usage:?}");
    assert!(usage.memory_peak_bytes <= 64 << 20, "{usage:?}");
    // The container, its init and the host are fine.
    assert_eq!(ct.sh("echo alive").1, "alive\n");
}

#[test]
fn a_fork_bomb_stops_at_the_process_limit() {
    let Some(engine) = engine("a_fork_bomb_stops_at_the_process_limit") else {
        return;
    };
    let ct = Ct::started(engine, "lim-procs", |b| b.procs(32));
    let (code, out, err) = ct
        .sh("i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done 2>/dev/null; echo spawned");
    let procs = engine.show(&ct.name).unwrap().usage.cgroup.unwrap().procs;
    assert!(procs <= 32, "{procs} processes with a limit of 32");
    assert!(
        code != 0 || !out.contains("spawned") || err.contains("fork"),
        "forks past the limit must fail: code {code}, {out} {err}"
    );
    // Live resize: more processes are allowed at once.
    engine
        .set(
            &ct.name,
            &LimitsUpdate {
                procs: Some(256),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(cgroup_file(&ct.name, "pids.max", "pids.max"), "256");
    let (code, out, _) = ct.sh("for i in $(seq 60); do sleep 5 & done; echo ok");
    assert_eq!((code, out.as_str()), (0, "ok\n"));
}

#[test]
fn the_disk_quota_holds_for_blocks_and_inodes_and_grows_online() {
    let Some(engine) = engine("the_disk_quota_holds_for_blocks_and_inodes_and_grows_online") else {
        return;
    };
    let ct = Ct::started(engine, "lim-disk", |b| b.disk(64 << 20).inodes(2048));
    // df inside shows the quota, not the host disk.
    let (_, out, _) = ct.sh("df -B1 --output=size / | tail -1");
    let size: u64 = out.trim().parse().unwrap();
    assert!((48 << 20..=64 << 20).contains(&size), "df / shows {size}");

    let (code, _, err) = ct.sh("dd if=/dev/zero of=/big bs=1M count=200");
    assert_ne!(code, 0);
    assert!(err.contains("No space left on device"), "{err}");
    let disk = engine.show(&ct.name).unwrap().usage.disk.unwrap();
    assert!(disk.bytes_used <= 64 << 20);
    assert!(disk.image_allocated <= 72 << 20, "{disk:?}");
    assert_eq!(ct.sh("rm /big").0, 0);

    let (code, _, err) = ct.sh("mkdir /many && cd /many && seq 1 5000 | xargs touch");
    assert_ne!(code, 0);
    assert!(err.contains("No space left on device"), "{err}");
    let (_, out, _) = ct.sh("ls /many | wc -l");
    let files: u64 = out.trim().parse().unwrap();
    let disk = engine.show(&ct.name).unwrap().usage.disk.unwrap();
    assert!(
        files < 2048 && disk.inodes_total <= 2048 + 64,
        "{files} files, {disk:?}"
    );
    assert_eq!(disk.inodes_used, disk.inodes_total, "{disk:?}");

    // Grow: online while running where the host grants CAP_SYS_RESOURCE; otherwise a
    // running container gets a clear refusal that changes nothing, and grows when stopped.
    // 256 MiB spans two ext4 block groups, so the inode tables double too.
    let grow = LimitsUpdate {
        disk: Some(256 << 20),
        ..Default::default()
    };
    if acetate_engine::storage::can_grow_online() {
        engine.set(&ct.name, &grow).unwrap();
    } else {
        let err = engine.set(&ct.name, &grow).unwrap_err();
        assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
        let info = engine.show(&ct.name).unwrap();
        assert_eq!(info.limits.disk, 64 << 20, "a refused grow changes nothing");
        assert_eq!(info.usage.disk.unwrap().bytes_total, disk.bytes_total);
        engine.stop(&ct.name, Duration::from_secs(5)).unwrap();
        engine.set(&ct.name, &grow).unwrap();
        engine.start(&ct.name).unwrap();
    }
    let (_, out, _) = ct.sh("df -B1 --output=size / | tail -1");
    let grown: u64 = out.trim().parse().unwrap();
    assert!(grown > size + (160 << 20), "grown to {grown} from {size}");
    let (code, _, err) = ct.sh("dd if=/dev/zero of=/more bs=1M count=100 && touch /many/new-one");
    assert_eq!(code, 0, "{err}");
    let info = engine.show(&ct.name).unwrap();
    assert_eq!(info.limits.disk, 256 << 20);
    assert!(
        info.limits.inodes >= 4000,
        "inodes follow the new block group: {info:?}"
    );
    let (_, out, _) = ct.sh("ls /many | wc -l");
    assert_eq!(
        out.trim().parse::<u64>().unwrap(),
        files + 1,
        "files survive the grow"
    );
}

#[test]
fn cpu_use_stays_near_the_quota() {
    let Some(engine) = engine("cpu_use_stays_near_the_quota") else {
        return;
    };
    let ct = Ct::started(engine, "lim-cpu", |b| b.cpus_milli(500).cpu_weight(300));
    // The CPU weight reaches the kernel (v1 scales it to cpu.shares' 1024).
    let weight = cgroup_file(&ct.name, "cpu.shares", "cpu.weight");
    let cg = engine.cgroup(&ct.name);
    assert_eq!(weight, if cg.is_v2() { "300" } else { "3072" });
    // So does the cap, from the start on.
    assert_eq!(
        cgroup_file(&ct.name, "cpu.cfs_quota_us", "cpu.max")
            .split(' ')
            .next(),
        Some("50000")
    );
    let before = engine.show(&ct.name).unwrap().usage.cgroup.unwrap().cpu_ns;
    let t = Instant::now();
    // Two busy loops (this host has two cores) for three seconds.
    let (code, _, err) = ct
        .sh("timeout 3 sh -c 'while :; do :; done' & timeout 3 sh -c 'while :; do :; done' & wait");
    let wall = t.elapsed();
    assert!(code == 0 || code == 124, "{err}");
    let used = engine.show(&ct.name).unwrap().usage.cgroup.unwrap().cpu_ns - before;
    let cpus = used as f64 / wall.as_nanos() as f64;
    assert!(
        cpus <= 0.5 * 1.15,
        "used {cpus:.2} CPUs with a quota of 0.5"
    );
    assert!(
        cpus >= 0.2,
        "used only {cpus:.2} CPUs: the loops did not run"
    );

    // Live resize of CPU and memory.
    engine
        .set(
            &ct.name,
            &LimitsUpdate {
                cpus_milli: Some(1500),
                memory: Some(300 << 20),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        cgroup_file(&ct.name, "cpu.cfs_quota_us", "cpu.max")
            .split(' ')
            .next(),
        Some("150000")
    );
    assert_eq!(
        cgroup_file(&ct.name, "memory.limit_in_bytes", "memory.max"),
        (300u64 << 20).to_string()
    );
    let _ = Duration::ZERO;

    // The I/O weight reaches the kernel where the host has a proportional scheduler's
    // weight file (BFQ); it takes effect on devices scheduled by BFQ.
    let cg = engine.cgroup(&ct.name);
    let weight_file = ["blkio.bfq.weight", "blkio.weight", "io.bfq.weight"]
        .into_iter()
        .find(|f| cg.paths().iter().any(|p| p.join(f).exists()));
    if let Some(file) = weight_file {
        engine
            .set(
                &ct.name,
                &LimitsUpdate {
                    io_weight: Some(300),
                    ..Default::default()
                },
            )
            .unwrap();
        let dir = cg
            .paths()
            .into_iter()
            .find(|p| p.join(file).exists())
            .unwrap();
        let value = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            value.split_whitespace().any(|v| v == "300"),
            "{file}: {value}"
        );
    }
}

/// Runs `dd` inside and returns the bytes per second it achieved, measured from the
/// host around the command.
fn dd_rate(ct: &Ct, args: &str, bytes: u64) -> f64 {
    let started = Instant::now();
    let (code, _, err) = ct.sh(&format!("dd {args} 2>&1"));
    let took = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "dd {args}: {err}");
    bytes as f64 / took
}

#[test]
fn disk_io_caps_hold_for_direct_reads_and_writes_and_change_live() {
    let Some(engine) = engine("disk_io_caps_hold_for_direct_reads_and_writes_and_change_live")
    else {
        return;
    };
    let cap = 4u64 << 20; // 4 MiB/s
    let ct = Ct::started(engine, "io-cap", |b| {
        b.disk(256 << 20).io(acetate_engine::IoLimits {
            write_bps: Some(cap),
            ..Default::default()
        })
    });
    // 12 MiB written past the page cache: 3 s at the cap (a burst may shave a little).
    let size = 12u64 << 20;
    let rate = dd_rate(
        &ct,
        "if=/dev/zero of=/data bs=1M count=12 oflag=direct",
        size,
    );
    assert!(
        rate < cap as f64 * 1.25,
        "wrote at {rate:.0} B/s, cap {cap}"
    );
    // Reads are capped once asked, live.
    engine
        .set(
            &ct.name,
            &LimitsUpdate {
                io: acetate_engine::IoLimits {
                    read_bps: Some(cap),
                    write_bps: Some(0),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
    let info = engine.show(&ct.name).unwrap();
    assert_eq!(info.limits.io.read_bps, Some(cap));
    assert_eq!(info.limits.io.write_bps, None, "0 lifts a cap");
    let rate = dd_rate(&ct, "if=/data of=/dev/null bs=1M iflag=direct", size);
    assert!(rate < cap as f64 * 1.25, "read at {rate:.0} B/s, cap {cap}");
    // Operations per second are capped too: 100 writes of 4 KiB at 40/s take 2.5 s.
    engine
        .set(
            &ct.name,
            &LimitsUpdate {
                io: acetate_engine::IoLimits {
                    read_bps: Some(0),
                    write_iops: Some(40),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
    let started = Instant::now();
    let (code, _, err) = ct.sh("dd if=/dev/zero of=/ops bs=4k count=100 oflag=direct,dsync 2>&1");
    assert_eq!(code, 0, "{err}");
    let ops = 100.0 / started.elapsed().as_secs_f64();
    assert!(ops < 40.0 * 1.25, "{ops:.1} writes/s, cap 40");
    // Too small a cap is refused with a clear message and changes nothing.
    let err = engine
        .set(
            &ct.name,
            &LimitsUpdate {
                io: acetate_engine::IoLimits {
                    read_bps: Some(1000),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("I/O read rate"), "{err}");
    assert_eq!(
        engine.show(&ct.name).unwrap().limits.io.write_iops,
        Some(40)
    );
}

fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn proc_shows_the_containers_own_limits_through_lxcfs() {
    let Some(engine) = engine("proc_shows_the_containers_own_limits_through_lxcfs") else {
        return;
    };
    if !acetate_engine::lxcfs::installed() {
        assert!(
            !acetate_engine::testing::in_ci(),
            "lxcfs is missing: scripts/setup installs it"
        );
        eprintln!("SKIPPED: lxcfs is not installed");
        return;
    }
    let ct = Ct::started(engine, "lim-lxcfs", |b| b.memory(256 << 20).cpus_milli(500));
    let views = |ct: &Ct| {
        let (code, out, err) = ct.sh(
            "cat /proc/meminfo; echo online $(getconf _NPROCESSORS_ONLN); \
             echo nproc $(nproc); \
             echo cpuinfo $(grep -c ^processor /proc/cpuinfo); cat /proc/uptime",
        );
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = views(&ct);
    assert_eq!(field(&out, "MemTotal:"), 256 * 1024, "{out}");
    assert_eq!(
        field(&out, "online"),
        1,
        "half a CPU rounds up to one: {out}"
    );
    assert_eq!(field(&out, "cpuinfo"), 1, "{out}");
    // sched_getaffinity too: the container is pinned to as many CPUs as its quota.
    assert_eq!(field(&out, "nproc"), 1, "{out}");
    let uptime: f64 = out
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        uptime < 120.0,
        "the container's uptime, not the host's: {out}"
    );
    let (_, free, _) = ct.sh("free -m");
    assert!(free.contains("256"), "{free}");
    // A live resize moves the pinning with the quota.
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    for (milli, want) in [(2000, host_cpus.min(2)), (500, 1)] {
        let update = acetate_engine::LimitsUpdate {
            cpus_milli: Some(milli),
            ..Default::default()
        };
        engine.set(&ct.name, &update).unwrap();
        let (_, out, _) = ct.sh("echo nproc $(nproc)");
        assert_eq!(field(&out, "nproc"), want, "{milli} mCPU: {out}");
    }

    // lxcfs dies: the container runs on, and gets its views back once it is supervised.
    let status = std::process::Command::new("pkill")
        .args(["-KILL", "-x", "lxcfs"])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while acetate_engine::lxcfs::is_up() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!acetate_engine::lxcfs::is_up());
    assert_eq!(ct.sh("echo alive").1, "alive\n");
    engine.supervise_lxcfs().unwrap();
    assert!(acetate_engine::lxcfs::is_up(), "lxcfs runs again");
    let out = views(&ct);
    assert_eq!(field(&out, "MemTotal:"), 256 * 1024, "live again: {out}");
}
