//! Metered usage: the last reading of each running instance, raw samples and hourly sums.

use serde::Serialize;
use sqlx::FromRow;

use super::Db;
use crate::domain::faults::{Fault, FaultCounters};
use crate::domain::usage::{Counted, Sample};

/// How long limit hits are kept, in seconds.
pub const FAULTS_KEPT: i64 = 90 * 86_400;
use crate::error::AppResult;

#[derive(Debug, FromRow)]
pub struct LastReading {
    pub engine_name: String,
    pub instance: String,
    pub cpu_ns: i64,
    pub disk: i64,
    pub at: i64,
    pub net_rx: i64,
    pub net_tx: i64,
    pub oom_kills: i64,
    pub memory_limit_hits: i64,
    pub pids_refused: i64,
    pub cpu_throttled_us: i64,
    pub io_read: i64,
    pub io_write: i64,
    pub io_stall_us: i64,
    pub net_drops: i64,
}

impl LastReading {
    pub fn fault_counters(&self) -> FaultCounters {
        FaultCounters {
            oom_kills: self.oom_kills,
            memory_limit_hits: self.memory_limit_hits,
            pids_refused: self.pids_refused,
            cpu_throttled_us: self.cpu_throttled_us,
            net_drops: self.net_drops,
            io_stall_us: self.io_stall_us,
        }
    }
}

#[derive(Debug, FromRow)]
pub struct MeteredContainer {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub engine_name: String,
    pub created_at: i64,
}

/// One container's sample of a pass, ready to store.
#[derive(Debug)]
pub struct Measured<'a> {
    pub container: &'a MeteredContainer,
    pub engine_name: &'a str,
    pub sample: Sample,
    /// The running instance's identity (empty if stopped).
    pub instance: String,
    pub counted: Counted,
    /// Limits it ran into since the last sample.
    pub faults: Vec<Fault>,
}

impl Db {
    /// The panel's containers that exist in the engine (or only `only`, by engine name):
    /// ready ones, and those being destroyed — the sample taken just before a destroy must
    /// count, or the usage since the previous sample (all of it, for a container younger
    /// than a metering interval) would never be billed.
    pub async fn metered_containers(&self, only: Option<&str>) -> AppResult<Vec<MeteredContainer>> {
        let filter = if only.is_some() {
            " AND engine_name = $1"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, owner_id, name, engine_name, created_at FROM containers \
             WHERE state IN ('ready', 'destroying'){filter}"
        );
        let mut query = sqlx::query_as(&sql);
        if let Some(name) = only {
            query = query.bind(name);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// The last reading of every container (or only `only`).
    pub async fn last_readings(&self, only: Option<&str>) -> AppResult<Vec<LastReading>> {
        let filter = if only.is_some() {
            " WHERE engine_name = $1"
        } else {
            ""
        };
        let sql = format!(
            "SELECT engine_name, instance, cpu_ns, disk, at, net_rx, net_tx, oom_kills, \
             memory_limit_hits, pids_refused, cpu_throttled_us, io_read, io_write, io_stall_us, \
             net_drops FROM meter_state{filter}"
        );
        let mut query = sqlx::query_as(&sql);
        if let Some(name) = only {
            query = query.bind(name);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Stores a pass's samples, adds them to their hour and keeps the new readings, in
    /// one transaction; forgets the readings of `gone` containers and raw samples older
    /// than `keep_after`.
    pub async fn store_samples(
        &self,
        now: i64,
        samples: &[Measured<'_>],
        gone: Option<&[&str]>,
        keep_after: i64,
    ) -> AppResult<()> {
        let hour = now - now.rem_euclid(3600);
        let mut tx = self.pool.begin().await?;
        for m in samples {
            sqlx::query(
                "INSERT INTO usage_samples (container_id, at, seconds, running, cpu_us, memory, \
                 memory_peak, disk, inodes, procs, net_rx, net_tx, io_read, io_write) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(m.container.id)
            .bind(now)
            .bind(m.sample.seconds)
            .bind(m.sample.running_seconds)
            .bind(m.sample.cpu_us)
            .bind(m.sample.memory)
            .bind(m.sample.memory_peak)
            .bind(m.sample.disk)
            .bind(m.sample.inodes)
            .bind(m.sample.procs)
            .bind(m.sample.net_rx)
            .bind(m.sample.net_tx)
            .bind(m.sample.io_read)
            .bind(m.sample.io_write)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO usage_hourly (container_id, hour, customer_id, container, seconds, \
                 seconds_running, cpu_us, memory_byte_seconds, memory_peak, disk_byte_seconds, \
                 disk_peak, inodes_peak, procs_peak, net_rx, net_tx, io_read, io_write) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17) \
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
                 net_tx = usage_hourly.net_tx + excluded.net_tx, \
                 io_read = usage_hourly.io_read + excluded.io_read, \
                 io_write = usage_hourly.io_write + excluded.io_write",
            )
            .bind(m.container.id)
            .bind(hour)
            .bind(m.container.owner_id)
            .bind(&m.container.name)
            .bind(m.sample.seconds)
            .bind(m.sample.running_seconds)
            .bind(m.sample.cpu_us)
            .bind(m.sample.memory.saturating_mul(m.sample.running_seconds))
            .bind(m.sample.memory_peak)
            .bind(m.sample.disk.saturating_mul(m.sample.seconds))
            .bind(m.sample.disk)
            .bind(m.sample.inodes)
            .bind(m.sample.procs)
            .bind(m.sample.net_rx)
            .bind(m.sample.net_tx)
            .bind(m.sample.io_read)
            .bind(m.sample.io_write)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO meter_state (engine_name, instance, cpu_ns, disk, at, net_rx, net_tx, \
                 oom_kills, memory_limit_hits, pids_refused, cpu_throttled_us, io_read, io_write, \
                 io_stall_us, net_drops) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (engine_name) DO UPDATE SET instance = excluded.instance, \
                 cpu_ns = excluded.cpu_ns, disk = excluded.disk, at = excluded.at, \
                 net_rx = excluded.net_rx, net_tx = excluded.net_tx, \
                 oom_kills = excluded.oom_kills, memory_limit_hits = excluded.memory_limit_hits, \
                 pids_refused = excluded.pids_refused, cpu_throttled_us = excluded.cpu_throttled_us, \
                 io_read = excluded.io_read, io_write = excluded.io_write, \
                 io_stall_us = excluded.io_stall_us, net_drops = excluded.net_drops",
            )
            .bind(m.engine_name)
            .bind(&m.instance)
            .bind(m.counted.cpu_ns)
            .bind(m.sample.disk)
            .bind(now)
            .bind(m.counted.net_rx)
            .bind(m.counted.net_tx)
            .bind(m.counted.faults.oom_kills)
            .bind(m.counted.faults.memory_limit_hits)
            .bind(m.counted.faults.pids_refused)
            .bind(m.counted.faults.cpu_throttled_us)
            .bind(m.counted.io_read)
            .bind(m.counted.io_write)
            .bind(m.counted.faults.io_stall_us)
            .bind(m.counted.faults.net_drops)
            .execute(&mut *tx)
            .await?;
            for f in &m.faults {
                sqlx::query(
                    "INSERT INTO faults (container_id, customer_id, container, at, kind, amount, \
                     seconds) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(m.container.id)
                .bind(m.container.owner_id)
                .bind(&m.container.name)
                .bind(now)
                .bind(f.kind.as_str())
                .bind(f.amount)
                .bind(m.sample.seconds)
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(gone) = gone {
            for name in gone {
                sqlx::query("DELETE FROM meter_state WHERE engine_name = $1")
                    .bind(*name)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM usage_samples WHERE at < $1")
                .bind(keep_after)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM faults WHERE at < $1")
                .bind(now - FAULTS_KEPT)
                .execute(&mut *tx)
                .await?;
            // What overuse policies told customers is kept as long as the hits.
            sqlx::query("DELETE FROM notices WHERE at < $1")
                .bind(now - FAULTS_KEPT)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// One point of a usage graph.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Point {
    /// End of the interval (Unix seconds).
    pub at: i64,
    pub seconds: i64,
    pub cpu_us: i64,
    /// Average memory over the interval (bytes).
    pub memory: i64,
    pub disk: i64,
    /// Bytes the container received and sent in the interval.
    pub net_rx: i64,
    pub net_tx: i64,
    /// Disk bytes read and written in the interval.
    pub io_read: i64,
    pub io_write: i64,
}

impl Db {
    /// Points of a container's usage graph since `from`: raw samples, or hours.
    pub async fn usage_points(
        &self,
        container_id: i64,
        from: i64,
        hours: bool,
    ) -> AppResult<Vec<Point>> {
        let sql = if hours {
            "SELECT hour + 3600 AS at, seconds, cpu_us, \
             CASE WHEN seconds_running > 0 THEN memory_byte_seconds / seconds_running ELSE 0 END AS memory, \
             CASE WHEN seconds > 0 THEN disk_byte_seconds / seconds ELSE 0 END AS disk, \
             net_rx, net_tx, io_read, io_write FROM usage_hourly WHERE container_id = $1 AND hour >= $2 ORDER BY hour"
        } else {
            "SELECT at, seconds, cpu_us, memory, disk, net_rx, net_tx, io_read, io_write \
             FROM usage_samples \
             WHERE container_id = $1 AND at >= $2 ORDER BY at"
        };
        Ok(sqlx::query_as(sql)
            .bind(container_id)
            .bind(from)
            .fetch_all(&self.pool)
            .await?)
    }
}
