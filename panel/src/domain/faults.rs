//! Limit hits ("faults"), as CloudLinux's lve-stats counts them: what the kernel's counters
//! say a container ran into since the last sample.

use serde::Serialize;

/// What a container ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Processes killed by the OOM killer (amount: processes).
    OomKill,
    /// The memory limit was reached and the kernel reclaimed or refused memory (amount:
    /// times).
    MemoryLimit,
    /// Forks refused at the process limit (amount: refusals).
    ProcessLimit,
    /// The CPU quota held the container back for at least a tenth of the interval (amount:
    /// milliseconds held back).
    CpuThrottled,
    /// The disk was at least 95 % full (amount: percent used).
    DiskFull,
    /// At least 95 % of the inodes were used (amount: percent used).
    InodesFull,
    /// The network rate limit dropped packets, either way (amount: packets).
    NetworkDropped,
    /// With disk I/O caps set, its tasks waited for I/O for at least a tenth of the
    /// interval (amount: milliseconds waited).
    IoThrottled,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::OomKill,
        FaultKind::MemoryLimit,
        FaultKind::ProcessLimit,
        FaultKind::CpuThrottled,
        FaultKind::DiskFull,
        FaultKind::InodesFull,
        FaultKind::NetworkDropped,
        FaultKind::IoThrottled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::OomKill => "oom_kill",
            FaultKind::MemoryLimit => "memory_limit",
            FaultKind::ProcessLimit => "process_limit",
            FaultKind::CpuThrottled => "cpu_throttled",
            FaultKind::DiskFull => "disk_full",
            FaultKind::InodesFull => "inodes_full",
            FaultKind::NetworkDropped => "network_dropped",
            FaultKind::IoThrottled => "io_throttled",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// For people: "processes killed for lack of memory".
    pub fn describe(self, amount: i64) -> String {
        match self {
            FaultKind::OomKill => format!("{amount} process(es) killed: out of memory"),
            FaultKind::MemoryLimit => format!("memory limit reached {amount} time(s)"),
            FaultKind::ProcessLimit => format!("{amount} new process(es) refused: process limit"),
            FaultKind::CpuThrottled => {
                format!("CPU held back {:.1} s by its limit", amount as f64 / 1000.0)
            }
            FaultKind::DiskFull => format!("disk {amount}% full"),
            FaultKind::InodesFull => format!("{amount}% of the files (inodes) used"),
            FaultKind::NetworkDropped => {
                format!("{amount} network packet(s) dropped: rate limit")
            }
            FaultKind::IoThrottled => format!(
                "waited {:.1} s for disk I/O: I/O limits",
                amount as f64 / 1000.0
            ),
        }
    }
}

/// The cumulative fault counters of one running instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounters {
    pub oom_kills: i64,
    pub memory_limit_hits: i64,
    pub pids_refused: i64,
    pub cpu_throttled_us: i64,
    /// Packets the rate limit dropped (both ways).
    pub net_drops: i64,
    /// Time its tasks waited for I/O (`io.pressure`).
    pub io_stall_us: i64,
}

/// One limit hit of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub amount: i64,
}

/// Share of the interval the CPU must be held back to count as a fault.
pub const CPU_THROTTLE_SHARE: f64 = 0.10;
/// Disk or inode use that counts as full, in percent.
pub const FULL_PERCENT: i64 = 95;

/// The faults between `last` (the same instance's previous counters, if any) and `now`,
/// over `seconds` of running, with the disk's use as (used, total) for blocks and inodes;
/// waiting for I/O counts only when `io_capped` (the container has I/O limits).
pub fn detect(
    now: FaultCounters,
    last: Option<FaultCounters>,
    seconds: i64,
    blocks: Option<(u64, u64)>,
    inodes: Option<(u64, u64)>,
    io_capped: bool,
) -> Vec<Fault> {
    let base = last.unwrap_or_default();
    let delta = |n: i64, b: i64| if n >= b { n - b } else { n };
    let mut out = Vec::new();
    let mut push = |kind, amount: i64| {
        if amount > 0 {
            out.push(Fault { kind, amount });
        }
    };
    push(FaultKind::OomKill, delta(now.oom_kills, base.oom_kills));
    push(
        FaultKind::MemoryLimit,
        delta(now.memory_limit_hits, base.memory_limit_hits),
    );
    push(
        FaultKind::ProcessLimit,
        delta(now.pids_refused, base.pids_refused),
    );
    let throttled_us = delta(now.cpu_throttled_us, base.cpu_throttled_us);
    if seconds > 0 && throttled_us as f64 >= seconds as f64 * 1e6 * CPU_THROTTLE_SHARE {
        push(FaultKind::CpuThrottled, throttled_us / 1000);
    }
    push(
        FaultKind::NetworkDropped,
        delta(now.net_drops, base.net_drops),
    );
    let stall_us = delta(now.io_stall_us, base.io_stall_us);
    if io_capped && seconds > 0 && stall_us as f64 >= seconds as f64 * 1e6 * CPU_THROTTLE_SHARE {
        push(FaultKind::IoThrottled, stall_us / 1000);
    }
    let percent =
        |(used, total): (u64, u64)| (total > 0).then(|| (used.saturating_mul(100) / total) as i64);
    if let Some(p) = blocks.and_then(percent).filter(|p| *p >= FULL_PERCENT) {
        push(FaultKind::DiskFull, p);
    }
    if let Some(p) = inodes.and_then(percent).filter(|p| *p >= FULL_PERCENT) {
        push(FaultKind::InodesFull, p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_the_counters_growth_since_the_last_sample() {
        let last = FaultCounters {
            oom_kills: 1,
            memory_limit_hits: 10,
            pids_refused: 0,
            cpu_throttled_us: 1_000_000,
            ..Default::default()
        };
        let now = FaultCounters {
            oom_kills: 2,
            memory_limit_hits: 10,
            pids_refused: 7,
            cpu_throttled_us: 8_000_000,
            ..Default::default()
        };
        let f = detect(now, Some(last), 60, Some((96, 100)), Some((1, 100)), false);
        assert_eq!(
            f,
            vec![
                Fault {
                    kind: FaultKind::OomKill,
                    amount: 1
                },
                Fault {
                    kind: FaultKind::ProcessLimit,
                    amount: 7
                },
                Fault {
                    kind: FaultKind::CpuThrottled,
                    amount: 7000
                },
                Fault {
                    kind: FaultKind::DiskFull,
                    amount: 96
                },
            ]
        );
        // A little throttling is not a fault; a new instance counts from zero.
        let f = detect(
            FaultCounters {
                cpu_throttled_us: 1_000,
                ..Default::default()
            },
            None,
            60,
            None,
            None,
            false,
        );
        assert!(f.is_empty());
        let before = FaultCounters {
            oom_kills: 3,
            ..Default::default()
        };
        let f = detect(
            FaultCounters {
                oom_kills: 1,
                ..Default::default()
            },
            Some(before),
            60,
            None,
            None,
            false,
        );
        assert_eq!(
            f,
            vec![Fault {
                kind: FaultKind::OomKill,
                amount: 1
            }],
            "reset counters"
        );
        assert_eq!(FaultKind::parse("oom_kill"), Some(FaultKind::OomKill));
    }

    #[test]
    fn drops_and_io_waits_count_as_their_own_faults() {
        let last = FaultCounters {
            net_drops: 10,
            io_stall_us: 1_000_000,
            ..Default::default()
        };
        let now = FaultCounters {
            net_drops: 25,
            io_stall_us: 9_000_000,
            ..Default::default()
        };
        let f = detect(now, Some(last), 60, None, None, true);
        assert_eq!(
            f,
            vec![
                Fault {
                    kind: FaultKind::NetworkDropped,
                    amount: 15
                },
                Fault {
                    kind: FaultKind::IoThrottled,
                    amount: 8000
                },
            ]
        );
        // Waiting for a disk nobody capped is no limit hit; nor is a short wait.
        let f = detect(now, Some(last), 60, None, None, false);
        assert_eq!(f.len(), 1);
        let short = FaultCounters {
            io_stall_us: 2_000_000,
            ..last
        };
        assert!(detect(short, Some(last), 60, None, None, true).is_empty());
        assert_eq!(
            FaultKind::IoThrottled.describe(8000),
            "waited 8.0 s for disk I/O: I/O limits"
        );
    }
}
