//! What a container is: its name, template and resource limits, validated before anything
//! touches the host.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::size::{format_bytes, format_cpus};

/// What runs as a container's PID 1 (see `boot`).
pub use crate::boot::Init;
pub use crate::halts::Halt;

/// Longest container or template name (it becomes a hostname, a cgroup and a directory).
pub const MAX_NAME_LEN: usize = 63;

/// Checks a container or template name: 1 to 63 characters of lower-case letters, digits
/// and `-`, starting with a letter or digit (a valid hostname label).
pub fn validate_name(name: &str) -> Result<()> {
    let invalid = |why: &'static str| Err(Error::InvalidName(name.to_string(), why));
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("it is longer than 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid("use only lower-case letters, digits and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return invalid("it must start and end with a letter or digit");
    }
    Ok(())
}

/// Resource limits of one container. Every one is enforced by the kernel: memory, CPU,
/// processes and I/O weight by cgroups, disk blocks and inodes by the container's own
/// ext4 image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (RAM; page cache included).
    pub memory: u64,
    /// Swap the container may use on top of `memory`, in bytes.
    #[serde(default)]
    pub swap: u64,
    /// CPU quota in thousandths of a CPU (`1500` = 1.5 CPUs).
    pub cpus_milli: u32,
    /// Relative CPU weight under contention, 1 to 10000 (100 is the default share).
    #[serde(default = "default_cpu_weight")]
    pub cpu_weight: u32,
    /// Size of the writable layer in bytes.
    pub disk: u64,
    /// Number of inodes (files, directories, links) in the writable layer.
    pub inodes: u64,
    /// Maximum number of processes and threads.
    pub procs: u64,
    /// Relative block I/O weight, 10 to 1000.
    pub io_weight: u32,
    /// Network rate limit in bits per second, if any.
    #[serde(default)]
    pub net_rate: Option<u64>,
    /// Block I/O caps on the container's own disk.
    #[serde(default)]
    pub io: IoLimits,
}

/// Caps on the block I/O a container does on its own disk (its writable layer); `None`
/// is no cap. Enforced by blkio throttling (cgroup v1) or `io.max` (v2) on the
/// container's loop device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoLimits {
    /// Bytes per second read.
    #[serde(default)]
    pub read_bps: Option<u64>,
    /// Bytes per second written.
    #[serde(default)]
    pub write_bps: Option<u64>,
    /// Read operations per second.
    #[serde(default)]
    pub read_iops: Option<u64>,
    /// Write operations per second.
    #[serde(default)]
    pub write_iops: Option<u64>,
}

impl IoLimits {
    /// Whether any cap is set.
    pub fn any(&self) -> bool {
        *self != IoLimits::default()
    }

    /// The caps with `update` applied (`Some(0)` lifts a cap).
    pub fn updated(&self, update: &IoLimits) -> IoLimits {
        let pick = |new: Option<u64>, old: Option<u64>| match new {
            Some(0) => None,
            Some(v) => Some(v),
            None => old,
        };
        IoLimits {
            read_bps: pick(update.read_bps, self.read_bps),
            write_bps: pick(update.write_bps, self.write_bps),
            read_iops: pick(update.read_iops, self.read_iops),
            write_iops: pick(update.write_iops, self.write_iops),
        }
    }
}

/// Smallest I/O caps accepted: below these a system cannot even boot its services.
pub const MIN_IO_BPS: u64 = 64 << 10;
pub const MIN_IO_IOPS: u64 = 10;

fn default_cpu_weight() -> u32 {
    100
}

/// Smallest accepted values: below these a Linux userland cannot even start.
pub const MIN_MEMORY: u64 = 16 << 20;
/// Smallest disk image that holds an ext4 journal and some files.
pub const MIN_DISK: u64 = 16 << 20;
/// Largest disk image (ext4 with 4 KiB blocks handles far more; this guards typos).
pub const MAX_DISK: u64 = 16 << 40;
/// Fewest inodes accepted.
pub const MIN_INODES: u64 = 1024;
/// Fewest processes accepted (init plus a shell and a command).
pub const MIN_PROCS: u64 = 4;
/// Bytes of disk per inode at the least (ext4 needs room for the inode tables).
pub const BYTES_PER_INODE_MIN: u64 = 1024;

impl Default for Limits {
    fn default() -> Self {
        let disk = 2 << 30;
        Limits {
            memory: 512 << 20,
            swap: 0,
            cpus_milli: 1000,
            cpu_weight: 100,
            disk,
            inodes: disk / 16384,
            procs: 512,
            io_weight: 100,
            net_rate: None,
            io: IoLimits::default(),
        }
    }
}

impl Limits {
    /// Checks every limit against its range, with a message saying which one is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, msg: String| Err(Error::InvalidLimit { what, msg });
        if self.memory < MIN_MEMORY {
            return bad(
                "memory",
                format!(
                    "{} is below the minimum of {}",
                    format_bytes(self.memory),
                    format_bytes(MIN_MEMORY)
                ),
            );
        }
        if self.memory > (1 << 50) {
            return bad(
                "memory",
                format!("{} is too large", format_bytes(self.memory)),
            );
        }
        if self.swap > (1 << 50) {
            return bad("swap", format!("{} is too large", format_bytes(self.swap)));
        }
        if self.cpus_milli < 10 {
            return bad(
                "cpus",
                format!(
                    "{} is below the minimum of 0.01",
                    format_cpus(self.cpus_milli)
                ),
            );
        }
        if self.cpus_milli > 1024 * 1000 {
            return bad(
                "cpus",
                format!("{} is too many", format_cpus(self.cpus_milli)),
            );
        }
        if !(1..=10000).contains(&self.cpu_weight) {
            return bad(
                "cpu weight",
                format!("{} is outside 1..=10000", self.cpu_weight),
            );
        }
        if self.disk < MIN_DISK {
            return bad(
                "disk",
                format!(
                    "{} is below the minimum of {}",
                    format_bytes(self.disk),
                    format_bytes(MIN_DISK)
                ),
            );
        }
        if self.disk > MAX_DISK {
            return bad(
                "disk",
                format!(
                    "{} is above the maximum of {}",
                    format_bytes(self.disk),
                    format_bytes(MAX_DISK)
                ),
            );
        }
        if self.inodes < MIN_INODES {
            return bad(
                "inodes",
                format!("{} is below the minimum of {MIN_INODES}", self.inodes),
            );
        }
        if self.inodes > self.disk / BYTES_PER_INODE_MIN || self.inodes > u32::MAX as u64 {
            return bad(
                "inodes",
                format!(
                    "{} do not fit a {} disk (at most one inode per {} bytes)",
                    self.inodes,
                    format_bytes(self.disk),
                    BYTES_PER_INODE_MIN
                ),
            );
        }
        if self.procs < MIN_PROCS || self.procs > 4_194_304 {
            return bad(
                "procs",
                format!("{} is outside {MIN_PROCS}..=4194304", self.procs),
            );
        }
        if !(10..=1000).contains(&self.io_weight) {
            return bad(
                "io weight",
                format!("{} is outside 10..=1000", self.io_weight),
            );
        }
        if let Some(rate) = self.net_rate {
            if rate < 8_000 {
                return bad("net rate", format!("{rate} bit/s is below 8kbit"));
            }
        }
        for (what, value) in [
            ("I/O read rate", self.io.read_bps),
            ("I/O write rate", self.io.write_bps),
        ] {
            if let Some(v) = value.filter(|v| *v < MIN_IO_BPS) {
                return bad(
                    what,
                    format!(
                        "{}/s is below the minimum of {}/s",
                        format_bytes(v),
                        format_bytes(MIN_IO_BPS)
                    ),
                );
            }
        }
        for (what, value) in [
            ("I/O read operations", self.io.read_iops),
            ("I/O write operations", self.io.write_iops),
        ] {
            if let Some(v) = value.filter(|v| *v < MIN_IO_IOPS) {
                return bad(
                    what,
                    format!("{v}/s is below the minimum of {MIN_IO_IOPS}/s"),
                );
            }
        }
        Ok(())
    }

    /// CFS quota in microseconds for a 100 ms period.
    pub fn cfs_quota_us(&self) -> i64 {
        i64::from(self.cpus_milli) * CFS_PERIOD_US as i64 / 1000
    }
}

/// CFS period used for every container, in microseconds.
pub const CFS_PERIOD_US: u64 = 100_000;

/// A change of limits on an existing container; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsUpdate {
    pub memory: Option<u64>,
    pub swap: Option<u64>,
    pub cpus_milli: Option<u32>,
    pub cpu_weight: Option<u32>,
    pub disk: Option<u64>,
    pub procs: Option<u64>,
    pub io_weight: Option<u32>,
    /// A new network rate limit in bit/s; `Some(0)` removes the limit.
    #[serde(default)]
    pub net_rate: Option<u64>,
    /// New I/O caps; each `Some(0)` removes that cap.
    #[serde(default)]
    pub io: IoLimits,
}

impl LimitsUpdate {
    /// The limits after this update.
    pub fn applied_to(&self, current: &Limits) -> Limits {
        Limits {
            memory: self.memory.unwrap_or(current.memory),
            swap: self.swap.unwrap_or(current.swap),
            cpus_milli: self.cpus_milli.unwrap_or(current.cpus_milli),
            cpu_weight: self.cpu_weight.unwrap_or(current.cpu_weight),
            disk: self.disk.unwrap_or(current.disk),
            procs: self.procs.unwrap_or(current.procs),
            io_weight: self.io_weight.unwrap_or(current.io_weight),
            // ext4 adds inodes only with whole block groups when it grows: the engine reads
            // the real count back after growing the disk.
            inodes: current.inodes,
            net_rate: match self.net_rate {
                Some(0) => None,
                Some(rate) => Some(rate),
                None => current.net_rate,
            },
            io: current.io.updated(&self.io),
        }
    }

    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == LimitsUpdate::default()
    }
}

/// Everything needed to create a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub template: String,
    pub limits: Limits,
    /// Free-form label of who owns it (the panel stores a tenant reference here).
    #[serde(default)]
    pub owner: Option<String>,
    /// A network interface on the host bridge (otherwise only loopback).
    #[serde(default)]
    pub network: bool,
    /// The name the container knows itself by (`hostname`, `/etc/hosts`); its engine name
    /// by default.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Refuse its traffic to the outside (the host's open ports and forwards still work).
    #[serde(default)]
    pub no_egress: bool,
    /// What runs as its PID 1; the template's own init when absent (see [`Init`]).
    #[serde(default)]
    pub init: Option<Init>,
}

impl ContainerSpec {
    /// Starts a spec with the default template (`host`) and default limits.
    pub fn builder(name: impl Into<String>) -> ContainerSpecBuilder {
        ContainerSpecBuilder {
            spec: ContainerSpec {
                name: name.into(),
                template: "host".to_string(),
                limits: Limits::default(),
                owner: None,
                network: false,
                hostname: None,
                no_egress: false,
                init: None,
            },
            inodes_set: false,
        }
    }

    /// Checks the name, the hostname and every limit.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if let Some(h) = &self.hostname {
            validate_hostname(h)?;
        }
        validate_name(&self.template).map_err(|_| Error::NoSuchTemplate(self.template.clone()))?;
        self.limits.validate()
    }
}

/// Checks a hostname: one to 63 lower-case letters, digits and dashes, not starting or
/// ending with a dash (one DNS label, RFC 1123).
pub fn validate_hostname(h: &str) -> Result<()> {
    let ok = (1..=63).contains(&h.len())
        && h.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !h.starts_with('-')
        && !h.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(
            h.to_string(),
            "a hostname is 1 to 63 lower-case letters, digits and dashes, not at either end",
        ))
    }
}

/// Builder of a [`ContainerSpec`]; `build` validates.
#[derive(Debug, Clone)]
pub struct ContainerSpecBuilder {
    spec: ContainerSpec,
    inodes_set: bool,
}

impl ContainerSpecBuilder {
    pub fn template(mut self, template: impl Into<String>) -> Self {
        self.spec.template = template.into();
        self
    }
    pub fn memory(mut self, bytes: u64) -> Self {
        self.spec.limits.memory = bytes;
        self
    }
    pub fn swap(mut self, bytes: u64) -> Self {
        self.spec.limits.swap = bytes;
        self
    }
    pub fn cpus_milli(mut self, milli: u32) -> Self {
        self.spec.limits.cpus_milli = milli;
        self
    }
    pub fn cpu_weight(mut self, weight: u32) -> Self {
        self.spec.limits.cpu_weight = weight;
        self
    }
    /// Sets the disk size; unless inodes are set explicitly, they follow at one per 16 KiB.
    pub fn disk(mut self, bytes: u64) -> Self {
        self.spec.limits.disk = bytes;
        if !self.inodes_set {
            self.spec.limits.inodes = (bytes / 16384).max(MIN_INODES);
        }
        self
    }
    pub fn inodes(mut self, inodes: u64) -> Self {
        self.spec.limits.inodes = inodes;
        self.inodes_set = true;
        self
    }
    pub fn procs(mut self, procs: u64) -> Self {
        self.spec.limits.procs = procs;
        self
    }
    pub fn io_weight(mut self, weight: u32) -> Self {
        self.spec.limits.io_weight = weight;
        self
    }
    /// Caps on the container's disk I/O.
    pub fn hostname(mut self, hostname: Option<String>) -> Self {
        self.spec.hostname = hostname;
        self
    }
    pub fn io(mut self, io: IoLimits) -> Self {
        self.spec.limits.io = io;
        self
    }
    /// A rate limit each way; implies a network interface.
    pub fn net_rate(mut self, bits_per_second: Option<u64>) -> Self {
        self.spec.limits.net_rate = bits_per_second;
        self.spec.network |= bits_per_second.is_some();
        self
    }
    /// A network interface on the host bridge.
    pub fn network(mut self, on: bool) -> Self {
        self.spec.network = on;
        self
    }
    /// Keep it from reaching the outside.
    /// Boots `init` instead of the template's own.
    pub fn init(mut self, init: Init) -> Self {
        self.spec.init = Some(init);
        self
    }
    pub fn no_egress(mut self, off: bool) -> Self {
        self.spec.no_egress = off;
        self
    }
    pub fn owner(mut self, owner: Option<String>) -> Self {
        self.spec.owner = owner;
        self
    }
    pub fn build(self) -> Result<ContainerSpec> {
        self.spec.validate()?;
        Ok(self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["web", "web-1", "a", "0db", &"x".repeat(63)] {
            validate_name(good).unwrap();
        }
        for bad in [
            "",
            "Web",
            "web_1",
            "-web",
            "web-",
            "a/b",
            "..",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn builder_validates_and_derives_inodes() {
        let spec = ContainerSpec::builder("web")
            .memory(256 << 20)
            .disk(1 << 30)
            .build()
            .unwrap();
        assert_eq!(spec.limits.inodes, (1 << 30) / 16384);
        assert_eq!(spec.template, "host");

        let spec = ContainerSpec::builder("web")
            .inodes(50_000)
            .disk(1 << 30)
            .build()
            .unwrap();
        assert_eq!(spec.limits.inodes, 50_000);
    }

    #[test]
    fn out_of_range_limits_are_named() {
        let err = ContainerSpec::builder("web")
            .memory(1 << 20)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
        let err = ContainerSpec::builder("web")
            .cpus_milli(0)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("cpus"), "{err}");
        let err = ContainerSpec::builder("web")
            .disk(1 << 20)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("disk"), "{err}");
        let err = ContainerSpec::builder("web")
            .disk(16 << 20)
            .inodes(1_000_000)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("inodes"), "{err}");
        let err = ContainerSpec::builder("web").procs(1).build().unwrap_err();
        assert!(err.to_string().contains("procs"), "{err}");
        let err = ContainerSpec::builder("web")
            .io_weight(5000)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("io weight"), "{err}");
        let err = ContainerSpec::builder("Bad Name").build().unwrap_err();
        assert!(matches!(err, Error::InvalidName(..)), "{err}");
    }

    #[test]
    fn update_keeps_what_it_does_not_name() {
        let current = ContainerSpec::builder("web")
            .disk(1 << 30)
            .inodes(50_000)
            .build()
            .unwrap()
            .limits;
        let next = LimitsUpdate {
            disk: Some(2 << 30),
            memory: Some(1 << 30),
            ..Default::default()
        }
        .applied_to(&current);
        assert_eq!(next.inodes, 50_000);
        assert_eq!(next.disk, 2 << 30);
        assert_eq!(next.memory, 1 << 30);
        assert_eq!(next.procs, current.procs);
        assert!(LimitsUpdate::default().is_empty());
    }

    #[test]
    fn cfs_quota() {
        let l = Limits {
            cpus_milli: 500,
            ..Default::default()
        };
        assert_eq!(l.cfs_quota_us(), 50_000);
    }
}
