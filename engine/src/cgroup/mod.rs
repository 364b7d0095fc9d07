//! A container's control group, through cgroups-rs, on v1, v2 and hybrid hosts.
//!
//! cgroups-rs picks the hierarchy: on a pure v2 host every controller lives in the unified
//! tree; on v1 and hybrid hosts each controller is found at its own v1 mount (a hybrid
//! host's cgroup2 mount then only carries controllers we do not use, such as hugetlb).

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, Hierarchy, MaxValue};
use serde::{Deserialize, Serialize};

mod delegate;
mod host;

use host::host_hierarchy;

use crate::cpuset;
use crate::devices;
use crate::error::{Error, Result};
use crate::spec::{Limits, CFS_PERIOD_US};

const V2_CONTROLLERS: &[&str] = &["memory", "cpu", "pids", "io"];

/// Name of the default engine's parent group of all containers (other engines on the
/// same host get their own, see [`crate::identity`]).
pub const PARENT: &str = "acetate";

const V1_CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices",
];

/// The device nodes a container may open: its own /dev (see
/// [`crate::runtime::CONTAINER_DEVICES`]), the ptmx of its devpts and its pseudo-terminals.
pub fn allowed_devices() -> Vec<devices::Allowed> {
    crate::runtime::CONTAINER_DEVICES
        .iter()
        .map(|d| devices::Allowed {
            char: true,
            major: d.major,
            minor: Some(d.minor),
        })
        .chain([
            devices::Allowed {
                char: true,
                major: 5,
                minor: Some(2),
            },
            devices::Allowed {
                char: true,
                major: 136,
                minor: None,
            },
        ])
        .collect()
}

/// Resource counters of a container's cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupUsage {
    /// CPU time used since the cgroup was created, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory charged now, in bytes.
    pub memory_bytes: u64,
    /// Highest memory charged since start, in bytes.
    pub memory_peak_bytes: u64,
    /// Processes killed by the OOM killer inside the container.
    pub oom_kills: u64,
    /// Processes and threads now.
    pub procs: u64,
    /// Times the memory limit was hit (v1 `memory.failcnt`, v2 `memory.events` max): the
    /// kernel reclaimed or refused memory at the limit.
    #[serde(default)]
    pub memory_limit_hits: u64,
    /// Forks refused because the process limit was reached (`pids.events` max).
    #[serde(default)]
    pub pids_refused: u64,
    /// Time the CPU quota held the container back, in microseconds (`cpu.stat`).
    #[serde(default)]
    pub cpu_throttled_us: u64,
    /// Disk bytes read and written through the cgroup (see [`crate::iostat`]).
    #[serde(default)]
    pub io_read_bytes: u64,
    #[serde(default)]
    pub io_write_bytes: u64,
    /// Time some of its tasks waited for I/O, in microseconds (`io.pressure`).
    #[serde(default)]
    pub io_stall_us: u64,
}

/// Handle on one container's cgroup (which may not exist yet).
pub struct ContainerCgroup {
    cg: Cgroup,
    rel: String,
    /// Hybrid hosts: the container's directory in the cgroup2 hierarchy.
    unified: Option<PathBuf>,
}

impl std::fmt::Debug for ContainerCgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerCgroup")
            .field("path", &self.rel)
            .field("v2", &self.cg.v2())
            .finish()
    }
}

fn cg_err(op: impl Into<String>) -> impl FnOnce(cgroups_rs::fs::error::Error) -> Error {
    let op = op.into();
    move |source| Error::Cgroup { op, source }
}

impl ContainerCgroup {
    /// The cgroup of container `name` under the engine's `parent` group (nothing is
    /// created yet).
    pub fn new(parent: &str, name: &str) -> Self {
        let host = host_hierarchy();
        let hier: Box<dyn Hierarchy> = Box::new(host.clone());
        let rel = format!("{parent}/{name}");
        let controllers: &[&str] = if hier.v2() {
            V2_CONTROLLERS
        } else {
            V1_CONTROLLERS
        };
        let controllers = controllers.iter().map(|s| s.to_string()).collect();
        let cg = Cgroup::load_with_specified_controllers(hier, &rel, controllers);
        let unified = host.unified.as_ref().map(|u| u.join(&rel));
        ContainerCgroup { cg, rel, unified }
    }

    pub fn is_v2(&self) -> bool {
        self.cg.v2()
    }

    /// Directories of this cgroup, one per hierarchy it lives in.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self
            .cg
            .subsystems()
            .iter()
            .map(|s| s.to_controller().path().to_path_buf())
            .chain(self.unified.clone())
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    pub fn exists(&self) -> bool {
        self.paths().iter().any(|p| p.exists())
    }

    /// Creates the cgroup and applies `limits`.
    pub fn create(&self, limits: &Limits) -> Result<()> {
        self.cg
            .create()
            .map_err(cg_err(format!("create {}", self.rel)))?;
        if let Err(e) = self.apply(limits).and_then(|()| self.restrict_devices()) {
            let _ = self.delete();
            return Err(e);
        }
        Ok(())
    }

    /// Allows the container's own device nodes and nothing else: through the devices
    /// controller on v1, a BPF device program on v2, both on hybrid hosts (the program on
    /// the container's directory in the cgroup2 hierarchy).
    fn restrict_devices(&self) -> Result<()> {
        let allowed = allowed_devices();
        if self.is_v2() {
            let dir = self.paths().into_iter().next().ok_or_else(|| {
                Error::Unsupported("the container's cgroup has no directory".into())
            })?;
            return devices::restrict(&dir, &allowed);
        }
        if let Some(dev) = self.cg.controller_of::<DevicesController>() {
            let all = DevicePermissions::all();
            dev.deny_device(DeviceType::All, -1, -1, &all)
                .map_err(cg_err("deny devices"))?;
            for a in &allowed {
                let kind = if a.char {
                    DeviceType::Char
                } else {
                    DeviceType::Block
                };
                let minor = a.minor.map_or(-1, i64::from);
                dev.allow_device(kind, i64::from(a.major), minor, &all)
                    .map_err(cg_err(format!("allow device {}:{minor}", a.major)))?;
            }
        }
        if let Some(dir) = &self.unified {
            fs::create_dir_all(dir).map_err(|e| Error::io("create cgroup", dir, e))?;
            devices::restrict(dir, &allowed)?;
        }
        Ok(())
    }

    /// Applies (or changes, live) the memory, CPU, process and I/O limits.
    pub fn apply(&self, limits: &Limits) -> Result<()> {
        let mem: &MemController = self
            .cg
            .controller_of()
            .ok_or_else(|| Error::Unsupported("the memory cgroup controller is missing".into()))?;
        let memory = limits.memory as i64;
        if self.is_v2() {
            mem.set_limit(memory).map_err(cg_err("set memory.max"))?;
            // memory.swap.max is absent when the kernel has no swap accounting.
            let _ = mem.set_memswap_limit(limits.swap as i64);
        } else {
            // memsw must stay >= limit at every step: lift it, set the limit, then lower it.
            let has_memsw = self.file_exists("memory", "memory.memsw.limit_in_bytes");
            if has_memsw {
                mem.set_memswap_limit(-1)
                    .map_err(cg_err("lift memory.memsw.limit_in_bytes"))?;
            }
            mem.set_limit(memory)
                .map_err(cg_err("set memory.limit_in_bytes"))?;
            if has_memsw {
                mem.set_memswap_limit(memory + limits.swap as i64)
                    .map_err(cg_err("set memory.memsw.limit_in_bytes"))?;
            }
        }

        let cpu: &CpuController = self
            .cg
            .controller_of()
            .ok_or_else(|| Error::Unsupported("the cpu cgroup controller is missing".into()))?;
        cpu.set_cfs_quota_and_period(Some(limits.cfs_quota_us()), Some(CFS_PERIOD_US))
            .map_err(cg_err("set the CPU quota"))?;
        let weight = u64::from(limits.cpu_weight);
        let shares = if self.is_v2() {
            weight
        } else {
            (weight * 1024 / 100).max(2)
        };
        cpu.set_shares(shares)
            .map_err(cg_err("set the CPU weight"))?;
        self.pin_cpus(limits.cpus_milli)?;

        let pids: &PidController = self
            .cg
            .controller_of()
            .ok_or_else(|| Error::Unsupported("the pids cgroup controller is missing".into()))?;
        pids.set_pid_max(MaxValue::Value(limits.procs as i64))
            .map_err(cg_err("set pids.max"))?;

        self.apply_io_weight(limits.io_weight);
        Ok(())
    }

    /// Caps the I/O the container does on block device `dev` (its loop device): blkio
    /// throttling on v1, `io.max` on v2. A cap that is `None` is lifted.
    pub fn apply_io_limits(&self, dev: (u32, u32), io: &crate::spec::IoLimits) -> Result<()> {
        let Some(dir) = self.dir_of("blkio") else {
            return match io.any() {
                true => Err(Error::Unsupported(
                    "this host has no block I/O cgroup controller to cap I/O with".into(),
                )),
                false => Ok(()),
            };
        };
        let (major, minor) = dev;
        let write = |file: &str, value: String| {
            let path = dir.join(file);
            fs::write(&path, value).map_err(|e| Error::io("set I/O limit", path, e))
        };
        if self.is_v2() {
            let v = |x: Option<u64>| x.map_or("max".to_string(), |x| x.to_string());
            return write(
                "io.max",
                format!(
                    "{major}:{minor} rbps={} wbps={} riops={} wiops={}",
                    v(io.read_bps),
                    v(io.write_bps),
                    v(io.read_iops),
                    v(io.write_iops)
                ),
            );
        }
        // v1: a rule of 0 removes the device's rule.
        for (file, value) in [
            ("blkio.throttle.read_bps_device", io.read_bps),
            ("blkio.throttle.write_bps_device", io.write_bps),
            ("blkio.throttle.read_iops_device", io.read_iops),
            ("blkio.throttle.write_iops_device", io.write_iops),
        ] {
            write(file, format!("{major}:{minor} {}", value.unwrap_or(0)))?;
        }
        Ok(())
    }

    /// Sets the proportional I/O weight where the host's I/O scheduler honours one (BFQ, or
    /// CFQ on old kernels); hosts without one have no weight file and keep the default.
    /// Returns whether a weight file took it.
    pub fn apply_io_weight(&self, weight: u32) -> bool {
        let files: &[(&str, String)] = if self.is_v2() {
            &[
                ("io.weight", format!("default {weight}")),
                ("io.bfq.weight", weight.to_string()),
            ]
        } else {
            &[
                ("blkio.weight", weight.to_string()),
                ("blkio.bfq.weight", weight.to_string()),
            ]
        };
        let Some(dir) = self.dir_of("blkio") else {
            return false;
        };
        files
            .iter()
            .filter(|(file, _)| dir.join(file).exists())
            .fold(false, |ok, (file, value)| {
                fs::write(dir.join(file), value).is_ok() || ok
            })
    }

    /// Pins the container to as many CPUs as its quota rounds up to, so that `nproc` and
    /// `sched_getaffinity` inside tell the truth (as `cores` does in Proxmox and
    /// `limits.cpu` in Incus): chosen among its parent's CPUs from an offset of its own
    /// name, which spreads containers over the CPUs; all of them when the quota covers
    /// them. Nothing on a v2 host whose cpuset controller is not enabled for containers.
    fn pin_cpus(&self, cpus_milli: u32) -> Result<()> {
        let Some(dir) = self
            .dir_of("cpuset")
            .filter(|d| d.join("cpuset.cpus").exists())
        else {
            return Ok(());
        };
        let effective = if self.is_v2() {
            "cpuset.cpus.effective"
        } else {
            "cpuset.effective_cpus"
        };
        let Some(parent) = dir.parent() else {
            return Ok(());
        };
        let available = fs::read_to_string(parent.join(effective))
            .or_else(|_| fs::read_to_string(parent.join("cpuset.cpus")))
            .map(|s| cpuset::parse_cpu_list(&s))
            .unwrap_or_default();
        if available.is_empty() {
            return Ok(());
        }
        let chosen = cpuset::for_quota(&available, cpus_milli, &self.rel);
        let file = dir.join("cpuset.cpus");
        fs::write(&file, cpuset::format_cpu_list(&chosen))
            .map_err(|e| Error::io("pin the CPUs", &file, e))
    }

    fn dir_of(&self, controller: &str) -> Option<PathBuf> {
        if self.is_v2() {
            // All controllers share one directory in v2.
            return self.paths().into_iter().next();
        }
        self.cg
            .subsystems()
            .iter()
            .find(|s| s.controller_name() == controller)
            .map(|s| s.to_controller().path().to_path_buf())
    }

    fn file_exists(&self, controller: &str, file: &str) -> bool {
        self.dir_of(controller)
            .map(|d| d.join(file).exists())
            .unwrap_or(false)
    }

    /// Moves process `pid` (and, in v1, each of its threads' group) into the cgroup.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        for dir in self.paths() {
            let procs = dir.join("cgroup.procs");
            fs::write(&procs, pid.to_string()).map_err(|e| Error::io("join cgroup", &procs, e))?;
        }
        Ok(())
    }

    /// Host pids of every process in the cgroup, also in the groups a delegated init made
    /// below its top (on a v1 host the v1 hierarchies, never delegated, hold them all).
    pub fn processes(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.cg.procs().into_iter().map(|p| p.pid as i32).collect();
        if let Some(dir) = self.v2_dir() {
            delegate::processes_below(&dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Sends SIGKILL to every process left in the cgroup.
    pub fn kill_all(&self) {
        if self.is_v2() && self.cg.kill().is_ok() {
            return;
        }
        for pid in self.processes() {
            // SAFETY: kill(2) takes no memory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Removes the cgroup, killing what is left in it and waiting (up to 5 s) for the
    /// processes to leave. Missing is fine.
    pub fn delete(&self) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.kill_all();
            let mut busy = None;
            for dir in self.paths() {
                delegate::remove_below(&dir);
                match fs::remove_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => busy = Some((dir, e)),
                }
            }
            match busy {
                None => return Ok(()),
                Some((dir, e)) if Instant::now() >= deadline => {
                    return Err(Error::io("remove cgroup", dir, e))
                }
                Some(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    /// Current counters.
    pub fn usage(&self) -> CgroupUsage {
        let mut u = CgroupUsage::default();
        if let Some(mem) = self.cg.controller_of::<MemController>() {
            let m = mem.memory_stat();
            u.memory_bytes = m.usage_in_bytes;
            u.memory_peak_bytes = m.max_usage_in_bytes;
            u.oom_kills = m.oom_control.oom_kill;
            u.memory_limit_hits = m.fail_cnt;
            if self.is_v2() {
                u.oom_kills = self.v2_key("memory.events", "oom_kill").unwrap_or(0);
                u.memory_limit_hits = self.v2_key("memory.events", "max").unwrap_or(0);
            }
        }
        if self.is_v2() {
            u.cpu_ns = self.v2_key("cpu.stat", "usage_usec").unwrap_or(0) * 1000;
        } else if let Some(acct) = self.cg.controller_of::<CpuAcctController>() {
            u.cpu_ns = acct.cpuacct().usage;
        }
        if let Some(pids) = self.cg.controller_of::<PidController>() {
            u.procs = pids.get_pid_current().unwrap_or(0);
            u.pids_refused = pids.get_pid_events().unwrap_or(0);
        }
        if let Some(cpu) = self.cg.controller_of::<CpuController>() {
            let stat = cpu.cpu().stat;
            let key = |k: &str| {
                stat.lines().find_map(|l| {
                    let (name, v) = l.split_once(' ')?;
                    (name == k).then(|| v.trim().parse::<u64>().ok()).flatten()
                })
            };
            u.cpu_throttled_us = key("throttled_usec")
                .or_else(|| key("throttled_time").map(|ns| ns / 1000))
                .unwrap_or(0);
        }
        let blkio = self.cg.controller_of::<BlkIoController>();
        let stats = match self.is_v2() {
            true => self.paths().into_iter().next(),
            false => blkio.map(|b| cgroups_rs::fs::Controller::path(b).to_path_buf()),
        };
        let psi = self
            .unified
            .clone()
            .or_else(|| stats.clone().filter(|_| self.is_v2()));
        let io = crate::iostat::read(stats.as_deref(), self.is_v2(), psi.as_deref());
        (u.io_read_bytes, u.io_write_bytes, u.io_stall_us) =
            (io.read_bytes, io.write_bytes, io.stall_us);
        u
    }

    fn v2_key(&self, file: &str, key: &str) -> Option<u64> {
        let dir = self.paths().into_iter().next()?;
        let text = fs::read_to_string(dir.join(file)).ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// The relative path of this cgroup in every hierarchy (`acetate/<name>`).
    pub fn relative_path(&self) -> &str {
        &self.rel
    }
}
