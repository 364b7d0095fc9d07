//! Where the host mounts its cgroup hierarchies (pure v2, v1, or hybrid), found once per
//! process.

use std::path::PathBuf;
use std::sync::OnceLock;

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::devices::DevicesController;
use cgroups_rs::fs::freezer::FreezerController;
use cgroups_rs::fs::hierarchies;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, Controllers, Hierarchy, Subsystem};

/// The host's cgroup mounts, read once per process. cgroups-rs' own v1 hierarchy reads
/// the whole mount table each time a cgroup handle is made, and that table grows with
/// every container's mounts: metering N containers cost O(N²).
#[derive(Debug, Clone)]
pub(super) struct HostHierarchy {
    pub(super) v2: bool,
    /// v1: (controller, mount point, mount root).
    pub(super) points: Vec<(Controllers, PathBuf, PathBuf)>,
    /// Hybrid hosts: where cgroup2 is mounted beside the v1 hierarchies (containers get a
    /// directory there too, for the BPF device filter).
    pub(super) unified: Option<PathBuf>,
}

/// Where hybrid hosts (systemd's layout) mount cgroup2 beside the v1 hierarchies.
const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";

pub(super) fn host_hierarchy() -> &'static HostHierarchy {
    static HOST: OnceLock<HostHierarchy> = OnceLock::new();
    HOST.get_or_init(|| {
        if hierarchies::is_cgroup2_unified_mode() {
            return HostHierarchy {
                v2: true,
                points: Vec::new(),
                unified: None,
            };
        }
        let v1 = hierarchies::V1::new();
        let points = [
            Controllers::Mem,
            Controllers::Cpu,
            Controllers::CpuAcct,
            // Not to pin anything (a child copies its parent's CPUs and memory nodes): lxcfs
            // reads a container's CPU quota at its cpuset path, as LXC lays cgroups out.
            Controllers::CpuSet,
            Controllers::Pids,
            Controllers::BlkIo,
            Controllers::Freezer,
            Controllers::Devices,
        ]
        .into_iter()
        .filter_map(|c| {
            let (point, root) = v1.get_mount_point(c.clone())?;
            Some((c, point, root))
        })
        .collect();
        let unified = nix::sys::statfs::statfs(HYBRID_UNIFIED)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .then(|| PathBuf::from(HYBRID_UNIFIED));
        HostHierarchy {
            v2: false,
            points,
            unified,
        }
    })
}

impl Hierarchy for HostHierarchy {
    fn subsystems(&self) -> Vec<Subsystem> {
        if self.v2 {
            return hierarchies::V2::new().subsystems();
        }
        self.points
            .iter()
            .map(|(c, point, root)| {
                let (p, r) = (point.clone(), root.clone());
                match c {
                    Controllers::Mem => Subsystem::Mem(MemController::new(p, r, false)),
                    Controllers::Cpu => Subsystem::Cpu(CpuController::new(p, r, false)),
                    Controllers::CpuAcct => Subsystem::CpuAcct(CpuAcctController::new(p, r)),
                    Controllers::CpuSet => Subsystem::CpuSet(CpuSetController::new(p, r, false)),
                    Controllers::Pids => Subsystem::Pid(PidController::new(p, r, false)),
                    Controllers::BlkIo => Subsystem::BlkIo(BlkIoController::new(p, r, false)),
                    Controllers::Freezer => Subsystem::Freezer(FreezerController::new(p, r, false)),
                    _ => Subsystem::Devices(DevicesController::new(p, r)),
                }
            })
            .collect()
    }

    fn root(&self) -> PathBuf {
        if self.v2 {
            return PathBuf::from(hierarchies::UNIFIED_MOUNTPOINT);
        }
        self.points
            .first()
            .and_then(|(_, p, _)| p.parent())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
    }

    fn root_control_group(&self) -> Cgroup {
        Cgroup::load(Box::new(self.clone()), "")
    }

    fn parent_control_group(&self, path: &str) -> Cgroup {
        let parent = std::path::Path::new(path)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Cgroup::load(Box::new(self.clone()), parent)
    }

    fn v2(&self) -> bool {
        self.v2
    }
}
