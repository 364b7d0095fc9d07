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

use acetate_engine::{ContainerInfo, Engine, State};
use sqlx::FromRow;

use crate::db::{now, Db};
use crate::error::AppResult;

/// Raw samples older than this are deleted (their hours stay).
pub const KEEP_RAW: i64 = 2 * 86_400;

/// How often the job runs by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, FromRow)]
struct Last {
    engine_name: String,
    instance: String,
    cpu_ns: i64,
    disk: i64,
    at: i64,
    net_rx: i64,
    net_tx: i64,
}

#[derive(Debug, FromRow)]
struct Row {
    id: i64,
    owner_id: i64,
    name: String,
    engine_name: String,
    created_at: i64,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub sampled: usize,
    pub running: usize,
}

/// One sample of one container, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    pub seconds: i64,
    pub running_seconds: i64,
    pub cpu_us: i64,
    pub memory: i64,
    pub memory_peak: i64,
    pub disk: i64,
    pub inodes: i64,
    pub procs: i64,
    pub net_rx: i64,
    pub net_tx: i64,
}

/// What the stored readings hold of the instance's counters after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    pub cpu_ns: i64,
    pub net_rx: i64,
    pub net_tx: i64,
}

/// The identity of a running instance: a restart changes it.
fn instance(info: &ContainerInfo) -> String {
    match (info.state, info.pid, info.started_at) {
        (State::Running, Some(pid), Some(started)) => format!("{pid}:{started}"),
        _ => String::new(),
    }
}

/// What happened since the last reading `last` (if any), ending `now`.
fn measure(
    info: &ContainerInfo,
    last: Option<&Last>,
    created_at: i64,
    now: i64,
) -> (Sample, String, Counted) {
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
    };
    let counted = Counted {
        cpu_ns: counted,
        net_rx: rx_counted,
        net_tx: tx_counted,
    };
    (sample, id, counted)
}

/// Samples every container (or only `only`, by engine name) and stores the samples.
/// Passes are serialised by a lock in the state directory (the panel's job, its final
/// samples and `acetate meter sample` may run at once): two passes computing their
/// differences from the same last reading would count the same usage twice.
pub async fn sample(
    db: &Db,
    engine: &std::sync::Arc<Engine>,
    only: Option<&str>,
) -> AppResult<Report> {
    let (_lock, infos) = {
        let (engine, only) = (engine.clone(), only.map(str::to_owned));
        tokio::task::spawn_blocking(move || {
            let dir = engine.state_dir().join("meter");
            std::fs::create_dir_all(&dir).map_err(|e| acetate_engine::Error::Io {
                op: "create the meter lock directory",
                path: dir.clone(),
                source: e,
            })?;
            let lock = acetate_engine::store::Lock::acquire_in(&dir, Duration::from_secs(30))?;
            let infos = match only {
                Some(name) => engine.show(&name).map(|i| vec![i]),
                None => engine.list(),
            }?;
            Ok::<_, acetate_engine::Error>((lock, infos))
        })
        .await??
    };
    // One container (a final sample before a stop) reads only its own rows.
    let filter = if only.is_some() {
        " AND engine_name = $1"
    } else {
        ""
    };
    let sql = format!(
        "SELECT id, owner_id, name, engine_name, created_at FROM containers \
         WHERE state = 'ready'{filter}"
    );
    let mut query = sqlx::query_as(&sql);
    if let Some(name) = only {
        query = query.bind(name);
    }
    let rows: Vec<Row> = query.fetch_all(&db.pool).await?;
    let rows: HashMap<&str, &Row> = rows.iter().map(|r| (r.engine_name.as_str(), r)).collect();
    let filter = if only.is_some() {
        " WHERE engine_name = $1"
    } else {
        ""
    };
    let sql = format!(
        "SELECT engine_name, instance, cpu_ns, disk, at, net_rx, net_tx FROM meter_state{filter}"
    );
    let mut query = sqlx::query_as(&sql);
    if let Some(name) = only {
        query = query.bind(name);
    }
    let lasts: Vec<Last> = query.fetch_all(&db.pool).await?;
    let lasts: HashMap<&str, &Last> = lasts.iter().map(|l| (l.engine_name.as_str(), l)).collect();
    let now = now();
    let hour = now - now.rem_euclid(3600);
    let mut report = Report::default();
    let mut tx = db.pool.begin().await?;
    for info in &infos {
        let Some(row) = rows.get(info.name.as_str()) else {
            continue; // not a panel container (made with the CLI)
        };
        let last = lasts.get(info.name.as_str()).copied();
        let (s, id, counted) = measure(info, last, row.created_at, now);
        if s.seconds == 0 && last.is_some() {
            continue;
        }
        report.sampled += 1;
        report.running += usize::from(!id.is_empty());
        sqlx::query(
            "INSERT INTO usage_samples (container_id, at, seconds, running, cpu_us, memory, \
             memory_peak, disk, inodes, procs, net_rx, net_tx) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(row.id)
        .bind(now)
        .bind(s.seconds)
        .bind(s.running_seconds)
        .bind(s.cpu_us)
        .bind(s.memory)
        .bind(s.memory_peak)
        .bind(s.disk)
        .bind(s.inodes)
        .bind(s.procs)
        .bind(s.net_rx)
        .bind(s.net_tx)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO usage_hourly (container_id, hour, customer_id, container, seconds, \
             seconds_running, cpu_us, memory_byte_seconds, memory_peak, disk_byte_seconds, \
             disk_peak, inodes_peak, procs_peak, net_rx, net_tx) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (container_id, hour) DO UPDATE SET \
             seconds = usage_hourly.seconds + excluded.seconds, \
             seconds_running = usage_hourly.seconds_running + excluded.seconds_running, \
             cpu_us = usage_hourly.cpu_us + excluded.cpu_us, \
             memory_byte_seconds = usage_hourly.memory_byte_seconds + excluded.memory_byte_seconds, \
             memory_peak = CASE WHEN excluded.memory_peak > usage_hourly.memory_peak \
                 THEN excluded.memory_peak ELSE usage_hourly.memory_peak END, \
             disk_byte_seconds = usage_hourly.disk_byte_seconds + excluded.disk_byte_seconds, \
             disk_peak = CASE WHEN excluded.disk_peak > usage_hourly.disk_peak \
                 THEN excluded.disk_peak ELSE usage_hourly.disk_peak END, \
             inodes_peak = CASE WHEN excluded.inodes_peak > usage_hourly.inodes_peak \
                 THEN excluded.inodes_peak ELSE usage_hourly.inodes_peak END, \
             procs_peak = CASE WHEN excluded.procs_peak > usage_hourly.procs_peak \
                 THEN excluded.procs_peak ELSE usage_hourly.procs_peak END, \
             net_rx = usage_hourly.net_rx + excluded.net_rx, \
             net_tx = usage_hourly.net_tx + excluded.net_tx",
        )
        .bind(row.id)
        .bind(hour)
        .bind(row.owner_id)
        .bind(&row.name)
        .bind(s.seconds)
        .bind(s.running_seconds)
        .bind(s.cpu_us)
        .bind(s.memory.saturating_mul(s.running_seconds))
        .bind(s.memory_peak)
        .bind(s.disk.saturating_mul(s.seconds))
        .bind(s.disk)
        .bind(s.inodes)
        .bind(s.procs)
        .bind(s.net_rx)
        .bind(s.net_tx)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO meter_state (engine_name, instance, cpu_ns, disk, at, net_rx, net_tx) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (engine_name) DO UPDATE SET instance = excluded.instance, \
             cpu_ns = excluded.cpu_ns, disk = excluded.disk, at = excluded.at, \
             net_rx = excluded.net_rx, net_tx = excluded.net_tx",
        )
        .bind(&info.name)
        .bind(&id)
        .bind(counted.cpu_ns)
        .bind(s.disk)
        .bind(now)
        .bind(counted.net_rx)
        .bind(counted.net_tx)
        .execute(&mut *tx)
        .await?;
    }
    if only.is_none() {
        // Readings of containers that are gone, and raw samples past their time.
        let live: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
        for last in lasts.keys().filter(|n| !live.contains(n)) {
            sqlx::query("DELETE FROM meter_state WHERE engine_name = $1")
                .bind(*last)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM usage_samples WHERE at < $1")
            .bind(now - KEEP_RAW)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Runs the job every `interval` until the process ends.
pub fn spawn(db: Db, engine: std::sync::Arc<Engine>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sample(&db, &engine, None).await {
                tracing::warn!(error = %e, "metering pass failed");
            }
        }
    });
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
            template: "host".into(),
            owner: None,
            state,
            pid: running.then_some(pid),
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
                    oom_kills: 0,
                    procs: 3,
                }),
                disk: None,
                net: running.then_some(acetate_engine::network::NetCounters {
                    rx_bytes: 5000,
                    tx_bytes: 700,
                }),
            },
        }
    }

    fn last(instance: &str, cpu_ns: i64, at: i64) -> Last {
        Last {
            engine_name: "ct".into(),
            instance: instance.into(),
            cpu_ns,
            disk: 5 << 20,
            at,
            net_rx: 4000,
            net_tx: 100,
        }
    }

    #[test]
    fn the_same_instance_counts_the_difference() {
        let l = last("42:1000", 2_000_000_500, 1060);
        let (s, id, counted) = measure(
            &info(State::Running, 42, 1000, 5_000_001_700),
            Some(&l),
            900,
            1120,
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
            s.disk,
            5 << 20,
            "the last disk reading stands in while unmounted"
        );
    }

    #[test]
    fn a_restarted_container_counts_from_zero() {
        let l = last("42:1000", 9_000_000_000, 1060);
        let (s, id, counted) = measure(
            &info(State::Running, 77, 1100, 1_000_000_000),
            Some(&l),
            900,
            1120,
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
    }

    #[test]
    fn a_stopped_container_exists_but_uses_nothing() {
        let l = last("42:1000", 9_000_000_000, 1060);
        let (s, id, counted) = measure(&info(State::Stopped, 0, 0, 0), Some(&l), 900, 1120);
        assert!(id.is_empty());
        assert_eq!(
            (s.seconds, s.running_seconds, s.cpu_us, s.memory),
            (60, 0, 0, 0)
        );
        assert_eq!(counted, Counted::default());
        assert_eq!((s.net_rx, s.net_tx), (0, 0));
        // A first sample counts from the container's creation.
        let (s, _, _) = measure(&info(State::Stopped, 0, 0, 0), None, 900, 1120);
        assert_eq!(s.seconds, 220);
    }
}
