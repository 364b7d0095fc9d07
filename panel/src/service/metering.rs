//! The metering job: samples every container's counters into usage rows.
//!
//! Counters are cumulative in the kernel (CPU time since the cgroup was made at start), so
//! each sample stores the difference to the last reading, kept in `meter_state` with the
//! identity of the running instance (init's pid and start time). A restarted container has
//! a new identity: its counter is counted from zero, not subtracted from the old one. A
//! restarted panel finds its last readings in the database: nothing is counted twice and
//! nothing is lost but what a container used between the last sample and a stop the panel
//! did not make (the panel samples before every stop, restart and destroy it makes).
//!
//! Every sample goes into `usage_samples` (kept two days) and is added to its hour in
//! `usage_hourly` in the same transaction; billing and the 30-day graphs read the hours.

use std::collections::HashMap;
use std::time::Duration;

use std::sync::Arc;

use acetate_engine::{ContainerInfo, State};

use serde::Serialize;

use crate::db::metering::{LastReading, Measured, MeteredContainer, Point};
use crate::db::{now, Db};
use crate::domain::faults::{self, Fault, FaultCounters};
use crate::error::AppResult;
use crate::runtime::Runtime;

/// Raw samples older than this are deleted (their hours stay).
pub const KEEP_RAW: i64 = 2 * 86_400;

/// How often the job runs by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub sampled: usize,
    pub running: usize,
}

pub use crate::domain::usage::{Counted, Sample};

/// The identity of a running instance: a restart changes it.
fn instance(info: &ContainerInfo) -> String {
    match (info.state, info.pid, info.started_at) {
        (State::Running, Some(pid), Some(started)) => format!("{pid}:{started}"),
        _ => String::new(),
    }
}

/// What happened since the last reading `last` (if any), ending `now`; `drops_inside`:
/// what the container's own shaper dropped of what it sent (rate-limited containers).
fn measure(
    info: &ContainerInfo,
    last: Option<&LastReading>,
    created_at: i64,
    now: i64,
    drops_inside: u64,
) -> (Sample, String, Counted, Vec<Fault>) {
    let id = instance(info);
    let since = last.map_or(created_at, |l| l.at);
    let seconds = (now - since).max(0);
    let cgroup = info.usage.cgroup.filter(|_| !id.is_empty());
    let same = last.is_some_and(|l| !id.is_empty() && l.instance == id);
    // `counted`: how much of the counter the stored samples hold, in whole microseconds,
    // so that the rest below a microsecond carries over to the next sample.
    let (counted, running_seconds, cpu_us) = match cgroup {
        Some(cg) => {
            let total = cg.cpu_ns.min(i64::MAX as u64) as i64;
            let base = match last {
                Some(l) if same && total >= l.cpu_ns => l.cpu_ns,
                _ => 0,
            };
            let cpu_us = (total - base) / 1000;
            let started = info.started_at.unwrap_or(0) as i64;
            let running = if same {
                seconds
            } else {
                (now - started.max(since)).clamp(0, seconds)
            };
            (base + cpu_us * 1000, running, cpu_us)
        }
        None => (0, 0, 0),
    };
    // Network counters start at zero with each instance's interface, like the CPU's.
    let delta = |now: Option<u64>, last: Option<i64>| -> (i64, i64) {
        let now = now.map_or(0, |v| v.min(i64::MAX as u64) as i64);
        match last {
            Some(l) if same && now >= l => (now - l, now),
            _ => (now, now),
        }
    };
    let net = info.usage.net.filter(|_| !id.is_empty());
    let (net_rx, rx_counted) = delta(net.map(|n| n.rx_bytes), last.map(|l| l.net_rx));
    let (net_tx, tx_counted) = delta(net.map(|n| n.tx_bytes), last.map(|l| l.net_tx));
    let (io_read, read_counted) = delta(cgroup.map(|c| c.io_read_bytes), last.map(|l| l.io_read));
    let (io_write, write_counted) =
        delta(cgroup.map(|c| c.io_write_bytes), last.map(|l| l.io_write));
    let disk_now = info.usage.disk.map(|d| d.bytes_used as i64);
    let disk = disk_now.or(last.map(|l| l.disk)).unwrap_or(0);
    let sample = Sample {
        seconds,
        running_seconds,
        cpu_us,
        memory: cgroup.map_or(0, |c| c.memory_bytes as i64),
        memory_peak: cgroup.map_or(0, |c| c.memory_peak_bytes as i64),
        disk,
        inodes: info.usage.disk.map_or(0, |d| d.inodes_used as i64),
        procs: cgroup.map_or(0, |c| c.procs as i64),
        net_rx,
        net_tx,
        io_read,
        io_write,
    };
    let fault_counters = cgroup.map_or_else(FaultCounters::default, |c| {
        let i = |v: u64| v.min(i64::MAX as u64) as i64;
        FaultCounters {
            oom_kills: i(c.oom_kills),
            memory_limit_hits: i(c.memory_limit_hits),
            pids_refused: i(c.pids_refused),
            cpu_throttled_us: i(c.cpu_throttled_us),
            net_drops: i(net.map_or(0, |n| n.rx_dropped).saturating_add(drops_inside)),
            io_stall_us: i(c.io_stall_us),
        }
    });
    let disk = info.usage.disk;
    let faults = if id.is_empty() {
        Vec::new()
    } else {
        faults::detect(
            fault_counters,
            last.filter(|_| same).map(|l| l.fault_counters()),
            running_seconds,
            disk.map(|d| (d.bytes_used, d.bytes_total)),
            disk.map(|d| (d.inodes_used, d.inodes_total)),
            info.limits.io.any(),
        )
    };
    let counted = Counted {
        cpu_ns: counted,
        net_rx: rx_counted,
        net_tx: tx_counted,
        io_read: read_counted,
        io_write: write_counted,
        faults: fault_counters,
    };
    (sample, id, counted, faults)
}

/// Samples every container (or only `only`, by engine name) and stores the samples.
/// Passes are serialised by a lock in the state directory (the panel's job, its final
/// samples and `acetate meter sample` may run at once): two passes computing their
/// differences from the same last reading would count the same usage twice.
pub async fn sample(db: &Db, runtime: &Arc<dyn Runtime>, only: Option<&str>) -> AppResult<Report> {
    let (_lock, (infos, inside)) = {
        let (rt, only) = (runtime.clone(), only.map(str::to_owned));
        tokio::task::spawn_blocking(move || {
            let lock = rt.exclusive_metering()?;
            let infos = match only {
                Some(name) => rt.show(&name).map(|i| vec![i]),
                None => rt.list(),
            }?;
            // Rate-limited containers' own shapers, read once a pass (a namespace each).
            let inside: HashMap<String, u64> = infos
                .iter()
                .filter(|i| i.limits.net_rate.is_some() && i.state == State::Running)
                .filter_map(|i| Some((i.name.clone(), rt.drops_inside(&i.name).ok()??)))
                .collect();
            Ok::<_, acetate_engine::Error>((lock, (infos, inside)))
        })
        .await??
    };
    // One container (a final sample before a stop) reads only its own rows.
    let rows = db.metered_containers(only).await?;
    let rows: HashMap<&str, &MeteredContainer> =
        rows.iter().map(|r| (r.engine_name.as_str(), r)).collect();
    let lasts = db.last_readings(only).await?;
    let lasts: HashMap<&str, &LastReading> =
        lasts.iter().map(|l| (l.engine_name.as_str(), l)).collect();
    let now = now();
    let mut report = Report::default();
    let mut samples = Vec::new();
    for info in &infos {
        let Some(row) = rows.get(info.name.as_str()) else {
            continue; // not a panel container (made with the CLI)
        };
        let last = lasts.get(info.name.as_str()).copied();
        let dropped = inside.get(&info.name).copied().unwrap_or(0);
        let (s, id, counted, faults) = measure(info, last, row.created_at, now, dropped);
        if s.seconds == 0 && last.is_some() {
            continue;
        }
        report.sampled += 1;
        report.running += usize::from(!id.is_empty());
        samples.push(Measured {
            container: row,
            engine_name: &info.name,
            sample: s,
            instance: id,
            counted,
            faults,
        });
    }
    // Readings of containers that are gone, and raw samples past their time.
    let gone: Option<Vec<&str>> = only.is_none().then(|| {
        let live: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
        lasts
            .keys()
            .filter(|n| !live.contains(n))
            .copied()
            .collect()
    });
    db.store_samples(now, &samples, gone.as_deref(), now - KEEP_RAW)
        .await?;
    Ok(report)
}

/// Runs the job every `interval` until the process ends.
pub fn spawn(db: Db, runtime: Arc<dyn Runtime>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sample(&db, &runtime, None).await {
                tracing::warn!(error = %e, "metering pass failed");
            }
        }
    });
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageSeries {
    pub range: &'static str,
    pub from: i64,
    pub to: i64,
    pub points: Vec<Point>,
}

/// Usage history of a container (by its row id): the last hour's samples, or the last
/// 30 days' hours.
pub async fn series(
    st: &crate::service::AppState,
    container_id: i64,
    month: bool,
) -> AppResult<UsageSeries> {
    let to = now();
    let from = if month { to - 30 * 86_400 } else { to - 3600 };
    Ok(UsageSeries {
        range: if month { "month" } else { "hour" },
        from,
        to,
        points: st.db.usage_points(container_id, from, month).await?,
    })
}

#[cfg(test)]
mod tests {
    use acetate_engine::cgroup::CgroupUsage;
    use acetate_engine::{Limits, Usage};

    use super::*;

    fn info(state: State, pid: i32, started: u64, cpu_ns: u64) -> ContainerInfo {
        let running = state == State::Running;
        ContainerInfo {
            name: "ct".into(),
            hostname: "ct".into(),
            template: "host".into(),
            owner: None,
            state,
            pid: running.then_some(pid),
            init: acetate_engine::spec::Init::Minimal,
            created_at: 1000,
            started_at: running.then_some(started),
            host_uid: 0,
            limits: Limits::default(),
            network: None,
            usage: Usage {
                cgroup: running.then_some(CgroupUsage {
                    cpu_ns,
                    memory_bytes: 64 << 20,
                    memory_peak_bytes: 80 << 20,
                    oom_kills: 2,
                    procs: 3,
                    memory_limit_hits: 0,
                    pids_refused: 5,
                    cpu_throttled_us: 0,
                    ..Default::default()
                }),
                disk: None,
                net: running.then_some(acetate_engine::network::NetCounters {
                    rx_bytes: 5000,
                    tx_bytes: 700,
                    rx_dropped: 0,
                }),
            },
        }
    }

    fn last(instance: &str, cpu_ns: i64, at: i64) -> LastReading {
        LastReading {
            engine_name: "ct".into(),
            instance: instance.into(),
            cpu_ns,
            disk: 5 << 20,
            at,
            net_rx: 4000,
            net_tx: 100,
            oom_kills: 1,
            memory_limit_hits: 0,
            pids_refused: 5,
            cpu_throttled_us: 0,
            io_read: 0,
            io_write: 0,
            io_stall_us: 0,
            net_drops: 0,
        }
    }

    #[test]
    fn the_same_instance_counts_the_difference() {
        let l = last("42:1000", 2_000_000_500, 1060);
        let (s, id, counted, faults) = measure(
            &info(State::Running, 42, 1000, 5_000_001_700),
            Some(&l),
            900,
            1120,
            0,
        );
        assert_eq!(id, "42:1000");
        assert_eq!(s.seconds, 60);
        assert_eq!(s.running_seconds, 60);
        assert_eq!(s.cpu_us, 3_000_001);
        // The 200 ns below a microsecond are left for the next sample.
        assert_eq!(counted.cpu_ns, 5_000_001_500);
        assert_eq!((s.net_rx, s.net_tx), (1000, 600));
        assert_eq!((counted.net_rx, counted.net_tx), (5000, 700));
        assert_eq!(
            faults,
            vec![Fault {
                kind: faults::FaultKind::OomKill,
                amount: 1
            }],
            "one more OOM kill; the refused forks were counted before"
        );
        assert_eq!(
            s.disk,
            5 << 20,
            "the last disk reading stands in while unmounted"
        );
    }

    #[test]
    fn a_restarted_container_counts_from_zero() {
        let l = last("42:1000", 9_000_000_000, 1060);
        let (s, id, counted, faults) = measure(
            &info(State::Running, 77, 1100, 1_000_000_000),
            Some(&l),
            900,
            1120,
            0,
        );
        assert_eq!(id, "77:1100");
        assert_eq!(
            s.cpu_us, 1_000_000,
            "all of the new instance's counter, nothing subtracted"
        );
        assert_eq!(
            s.running_seconds, 20,
            "running since its start, not since the last sample"
        );
        assert_eq!(counted.cpu_ns, 1_000_000_000);
        assert_eq!(
            (s.net_rx, s.net_tx),
            (5000, 700),
            "a new interface counts from zero"
        );
        assert_eq!(
            faults.len(),
            2,
            "a new instance's counters count whole: {faults:?}"
        );
    }

    #[test]
    fn a_stopped_container_exists_but_uses_nothing() {
        let l = last("42:1000", 9_000_000_000, 1060);
        let (s, id, counted, faults) =
            measure(&info(State::Stopped, 0, 0, 0), Some(&l), 900, 1120, 0);
        assert!(faults.is_empty());
        assert!(id.is_empty());
        assert_eq!(
            (s.seconds, s.running_seconds, s.cpu_us, s.memory),
            (60, 0, 0, 0)
        );
        assert_eq!(counted, Counted::default());
        assert_eq!((s.net_rx, s.net_tx), (0, 0));
        // A first sample counts from the container's creation.
        let (s, _, _, _) = measure(&info(State::Stopped, 0, 0, 0), None, 900, 1120, 0);
        assert_eq!(s.seconds, 220);
    }
}
