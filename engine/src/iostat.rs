//! A container's disk I/O as the kernel counts it: bytes read and written through its
//! cgroup (v1 `blkio.throttle.io_service_bytes`, v2 `io.stat`) and the time its tasks
//! waited for I/O (pressure stall information, `io.pressure`, in the cgroup2 hierarchy on
//! v2 and hybrid hosts alike).
//!
//! What v1 counts: reads and direct writes; buffered writes reach the disk later from the
//! kernel's flusher threads and are charged to no container there. v2 charges writeback to
//! the cgroup that dirtied the pages, so it counts buffered writes too.

use std::path::Path;

/// Bytes read and written, and microseconds of I/O stall ("some" tasks waiting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub stall_us: u64,
}

/// Sums v1's `blkio.throttle.io_service_bytes` ("MAJ:MIN Read N" lines; "Total" ones and
/// the per-device "Sync"/"Async"/"Total" breakdowns are left out).
pub fn parse_v1_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_dev), Some(op), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let n: u64 = n.parse().unwrap_or(0);
        match op {
            "Read" => read = read.saturating_add(n),
            "Write" => write = write.saturating_add(n),
            _ => {}
        }
    }
    (read, write)
}

/// Sums v2's `io.stat` ("MAJ:MIN rbytes=N wbytes=N rios=N ...").
pub fn parse_v2_bytes(text: &str) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for field in text.split_whitespace() {
        if let Some(n) = field.strip_prefix("rbytes=") {
            read = read.saturating_add(n.parse().unwrap_or(0));
        } else if let Some(n) = field.strip_prefix("wbytes=") {
            write = write.saturating_add(n.parse().unwrap_or(0));
        }
    }
    (read, write)
}

/// The "some" total of a pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=N").
pub fn parse_pressure_total(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total=")?.parse().ok())
}

/// Reads the counters: `stats` is the blkio (v1) or the cgroup's (v2) directory, `psi` the
/// cgroup2 directory with `io.pressure`, if any. Missing files count as zero.
pub fn read(stats: Option<&Path>, v2: bool, psi: Option<&Path>) -> IoCounters {
    let text = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let (read_bytes, write_bytes) = match stats {
        Some(dir) if v2 => text(dir, "io.stat").map_or((0, 0), |t| parse_v2_bytes(&t)),
        Some(dir) => {
            text(dir, "blkio.throttle.io_service_bytes").map_or((0, 0), |t| parse_v1_bytes(&t))
        }
        None => (0, 0),
    };
    let stall_us = psi
        .and_then(|dir| text(dir, "io.pressure"))
        .and_then(|t| parse_pressure_total(&t))
        .unwrap_or(0);
    IoCounters {
        read_bytes,
        write_bytes,
        stall_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_parsed_from_the_kernels_files() {
        let v1 = "7:3 Read 4096\n7:3 Write 8192\n7:3 Sync 8192\n7:3 Async 4096\n\
                  7:3 Discard 0\n7:3 Total 12288\n8:0 Read 100\n8:0 Write 0\nTotal 12388\n";
        assert_eq!(parse_v1_bytes(v1), (4196, 8192));
        let v2 = "259:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n\
                  7:3 rbytes=5 wbytes=7 rios=1 wios=1 dbytes=0 dios=0\n";
        assert_eq!(parse_v2_bytes(v2), (1005, 2007));
        let psi = "some avg10=1.50 avg60=0.20 avg300=0.00 total=123456\n\
                   full avg10=1.00 avg60=0.10 avg300=0.00 total=99999\n";
        assert_eq!(parse_pressure_total(psi), Some(123456));
        assert_eq!(parse_pressure_total(""), None);
    }
}
