//! How `acetate ct` shows containers: one (`show`), the list, and limit hits.

use acetate_engine::size::{format_bytes, format_cpus};
use acetate_engine::{ContainerInfo, State};

use super::output::table;

fn secs(ns: u64) -> String {
    format!("{:.2}s", ns as f64 / 1e9)
}

/// A container's limit hits since its start, as `ct faults` prints them.
#[derive(Debug, serde::Serialize)]
pub(super) struct Faults {
    name: String,
    running: bool,
    oom_kills: u64,
    memory_limit_hits: u64,
    forks_refused: u64,
    cpu_throttled_seconds: f64,
    /// Packets its rate limit dropped, both ways (`None`: not read, no rate limit).
    network_dropped: Option<u64>,
    io_read_bytes: u64,
    io_written_bytes: u64,
    io_wait_seconds: f64,
    disk_used_percent: Option<u64>,
    inodes_used_percent: Option<u64>,
}

/// `inside`: what the container's own shaper dropped (read for rate-limited containers).
pub(super) fn faults_of(c: &ContainerInfo, inside: Option<u64>) -> Faults {
    let cg = c.usage.cgroup.unwrap_or_default();
    let percent = |used: u64, total: u64| (total > 0).then(|| used * 100 / total);
    Faults {
        name: c.name.clone(),
        running: c.state == acetate_engine::State::Running,
        oom_kills: cg.oom_kills,
        memory_limit_hits: cg.memory_limit_hits,
        forks_refused: cg.pids_refused,
        cpu_throttled_seconds: cg.cpu_throttled_us as f64 / 1e6,
        network_dropped: inside
            .map(|d| d + c.usage.net.map_or(0, |n| n.rx_dropped))
            .or(c.usage.net.map(|n| n.rx_dropped)),
        io_read_bytes: cg.io_read_bytes,
        io_written_bytes: cg.io_write_bytes,
        io_wait_seconds: cg.io_stall_us as f64 / 1e6,
        disk_used_percent: c
            .usage
            .disk
            .and_then(|d| percent(d.bytes_used, d.bytes_total)),
        inodes_used_percent: c
            .usage
            .disk
            .and_then(|d| percent(d.inodes_used, d.inodes_total)),
    }
}

pub(super) fn print_faults(f: &Faults) {
    if !f.running {
        println!(
            "{} is not running: its counters start again at its next start",
            f.name
        );
    }
    println!("OOM kills:            {}", f.oom_kills);
    println!("memory limit reached: {}", f.memory_limit_hits);
    println!("forks refused:        {}", f.forks_refused);
    println!("CPU throttled:        {:.1} s", f.cpu_throttled_seconds);
    match f.network_dropped {
        Some(n) => println!("packets dropped:      {n} (rate limit)"),
        None => println!("packets dropped:      - (no network)"),
    }
    println!(
        "disk I/O:             {} read, {} written, waited {:.1} s",
        acetate_engine::size::format_bytes(f.io_read_bytes),
        acetate_engine::size::format_bytes(f.io_written_bytes),
        f.io_wait_seconds
    );
    let pct = |p: Option<u64>| p.map_or("-".to_string(), |p| format!("{p}%"));
    println!("disk used:            {}", pct(f.disk_used_percent));
    println!("inodes used:          {}", pct(f.inodes_used_percent));
}

pub(super) fn print_info(c: &ContainerInfo) {
    let l = &c.limits;
    println!("name:       {}", c.name);
    println!("state:      {}", c.state);
    if let Some(pid) = c.pid {
        println!("init pid:   {pid}");
    }
    println!("template:   {}", c.template);
    println!("init:       {}", c.init.as_str());
    if let Some(owner) = &c.owner {
        println!("owner:      {owner}");
    }
    println!("host uid:   {} (container root)", c.host_uid);
    println!(
        "limits:     memory {} (+{} swap), cpus {} (weight {}), procs {}, io weight {}",
        format_bytes(l.memory),
        format_bytes(l.swap),
        format_cpus(l.cpus_milli),
        l.cpu_weight,
        l.procs,
        l.io_weight
    );
    println!(
        "disk:       {} with {} inodes",
        format_bytes(l.disk),
        l.inodes
    );
    if l.io.any() {
        let bps = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{}/s", format_bytes(v)));
        let iops = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v}/s"));
        println!(
            "disk I/O:   read {} ({} ops), write {} ({} ops)",
            bps(l.io.read_bps),
            iops(l.io.read_iops),
            bps(l.io.write_bps),
            iops(l.io.write_iops)
        );
    }
    if let Some(n) = &c.network {
        let rate = l.net_rate.map_or("no rate limit".to_string(), |r| {
            format!("{} kbit/s each way", r / 1000)
        });
        println!(
            "network:    {} via {} ({}, {rate})",
            n.address, n.gateway, n.host_interface
        );
    }
    if let Some(n) = &c.usage.net {
        println!(
            "traffic:    {} received, {} sent",
            format_bytes(n.rx_bytes),
            format_bytes(n.tx_bytes)
        );
    }
    if let Some(u) = &c.usage.cgroup {
        println!("cpu time:   {}", secs(u.cpu_ns));
        println!(
            "memory:     {} now, {} peak, {} OOM kills",
            format_bytes(u.memory_bytes),
            format_bytes(u.memory_peak_bytes),
            u.oom_kills
        );
        println!("processes:  {}", u.procs);
    }
    if let Some(d) = &c.usage.disk {
        println!(
            "disk used:  {} of {}, {} of {} inodes ({} on the host)",
            format_bytes(d.bytes_used),
            format_bytes(d.bytes_total),
            d.inodes_used,
            d.inodes_total,
            format_bytes(d.image_allocated)
        );
    }
}

pub(super) fn print_list(list: &[ContainerInfo]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let u = c.usage.cgroup.unwrap_or_default();
            let running = c.state == State::Running;
            let disk = c
                .usage
                .disk
                .map(|d| {
                    format!(
                        "{}/{}",
                        format_bytes(d.bytes_used),
                        format_bytes(d.bytes_total)
                    )
                })
                .unwrap_or_else(|| format_bytes(c.limits.disk));
            // Panel containers: their owner and the owner's name for them.
            let owned = match c.owner.as_deref().and_then(|o| o.strip_prefix("panel:")) {
                Some(owner) => format!("{owner}/{}", c.hostname),
                None => "-".into(),
            };
            vec![
                c.name.clone(),
                owned,
                c.state.to_string(),
                c.template.clone(),
                format_cpus(c.limits.cpus_milli),
                if running {
                    format!(
                        "{}/{}",
                        format_bytes(u.memory_bytes),
                        format_bytes(c.limits.memory)
                    )
                } else {
                    format_bytes(c.limits.memory)
                },
                disk,
                if running {
                    format!("{}/{}", u.procs, c.limits.procs)
                } else {
                    c.limits.procs.to_string()
                },
                if running { secs(u.cpu_ns) } else { "-".into() },
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "OWNER/NAME",
            "STATE",
            "TEMPLATE",
            "CPUS",
            "MEMORY",
            "DISK",
            "PROCS",
            "CPU TIME",
        ],
        &rows,
    );
}
