//! Metered usage, as the metering job measures it.

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
    /// Disk bytes read and written in the interval.
    pub io_read: i64,
    pub io_write: i64,
}

/// What the stored readings hold of the instance's counters after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counted {
    pub cpu_ns: i64,
    pub net_rx: i64,
    pub net_tx: i64,
    pub io_read: i64,
    pub io_write: i64,
    /// The instance's fault counters.
    pub faults: super::faults::FaultCounters,
}
