//! Changes to running containers: commands inside them and live limits.

use crate::error::{Error, Result};
use crate::spec::LimitsUpdate;
use crate::store::{self, ContainerConfig};
use crate::{
    capacity, network, require_root, runtime, size, storage, ContainerInfo, Engine, ExecChild,
    ExecIo, LOCK_TIMEOUT,
};

impl Engine {
    /// Caps the container's I/O on its own disk (the loop device its layer is mounted
    /// from), or lifts the caps.
    pub(crate) fn apply_io_limits(
        &self,
        cgroup: &crate::cgroup::ContainerCgroup,
        name: &str,
        limits: &crate::Limits,
    ) -> Result<()> {
        let Some(dev) = storage::disk_device(&self.layout, name) else {
            if limits.io.any() {
                return Err(Error::Unsupported(format!(
                    "the disk of {name:?} is not mounted: its I/O cannot be capped"
                )));
            }
            return Ok(());
        };
        cgroup.apply_io_limits(dev, &limits.io)
    }

    /// Runs `argv` inside a running container as its root and returns the exit code.
    #[tracing::instrument(skip(self, env, io))]
    pub fn exec(
        &self,
        name: &str,
        argv: &[String],
        env: &[(String, String)],
        io: ExecIo,
    ) -> Result<i32> {
        self.spawn_exec(name, argv, env, io)?.wait()
    }

    /// Starts `argv` inside a running container as its root; the caller waits for it (or
    /// kills it) through the returned handle. The command holds no descriptor of this
    /// process but `io`, and dies when this process dies.
    pub fn spawn_exec(
        &self,
        name: &str,
        argv: &[String],
        env: &[(String, String)],
        io: ExecIo,
    ) -> Result<ExecChild> {
        require_root("run commands in containers")?;
        let cfg = self.config(name)?;
        let st = self
            .run_state(name)?
            .ok_or_else(|| Error::NotRunning(name.to_string()))?;
        let pidfd = runtime::open_init(&st).ok_or_else(|| Error::NotRunning(name.to_string()))?;
        let cgroup = self.cgroup(&cfg.name);
        runtime::spawn_exec(&pidfd, &cgroup, argv, env, io, &self.seccomp).map_err(|e| match e {
            Error::Setup { step, source, .. } => Error::Setup {
                name: name.to_string(),
                step,
                source,
            },
            e => e,
        })
    }

    /// Changes limits; applied live to a running container, the disk grown online.
    #[tracing::instrument(skip(self))]
    pub fn set(&self, name: &str, update: &LimitsUpdate) -> Result<ContainerInfo> {
        require_root("change containers")?;
        // A bigger disk is admitted against every container's quota, as a create is: the
        // global lock first (its order against container locks).
        let _global = match update.disk {
            Some(_) => Some(self.layout.lock_global(LOCK_TIMEOUT)?),
            None => None,
        };
        let (_lock, mut cfg) = self.lock(name)?;
        let old = cfg.limits.clone();
        let new = update.applied_to(&old);
        new.validate()?;
        if new.disk > old.disk {
            let cap = self.disk_capacity()?;
            capacity::admit(&cap, new.disk - old.disk, &self.disk)?;
        }
        if new.disk < old.disk {
            return Err(Error::InvalidLimit {
                what: "disk",
                msg: format!(
                    "{} is smaller than the current {}: disks can only grow",
                    size::format_bytes(new.disk),
                    size::format_bytes(old.disk)
                ),
            });
        }
        if new.net_rate != old.net_rate && !cfg.network {
            return Err(Error::InvalidLimit {
                what: "net rate",
                msg: format!("{name} has no network interface (create it with --net)"),
            });
        }
        let st = self.run_state(name)?;
        let cgroup = self.cgroup(name);
        if st.is_some() {
            cgroup.apply(&new)?;
            if new.io != old.io {
                if let Err(e) = self.apply_io_limits(&cgroup, name, &new) {
                    let _ = cgroup.apply(&old);
                    return Err(e);
                }
            }
        }
        if let (Some(st), true) = (&st, new.net_rate != old.net_rate) {
            if let Err(e) =
                network::set_rate(st.pid, &self.identity().net_info(cfg.id_base), new.net_rate)
            {
                let _ = cgroup.apply(&old);
                return Err(e);
            }
        }
        if new.disk > old.disk {
            let grown = if st.is_some() {
                storage::grow_online(&self.layout, name, old.disk, new.disk)
            } else {
                self.grow_stopped(&cfg, new.disk)
            };
            if let Err(e) = grown {
                if st.is_some() {
                    let _ = cgroup.apply(&old);
                }
                return Err(e);
            }
        }
        let mut new = new;
        if let Some(disk) = storage::disk_usage(&self.layout, name) {
            new.inodes = new.inodes.max(disk.inodes_total);
        }
        cfg.limits = new;
        store::write_json(&self.layout.config(name), &cfg)?;
        Ok(self.info(&cfg, st))
    }

    /// Grows the disk of a stopped container: online if the host allows, else with its
    /// storage unmounted; mounted again afterwards either way.
    fn grow_stopped(&self, cfg: &ContainerConfig, new_size: u64) -> Result<()> {
        let name = &cfg.name;
        if storage::can_grow_online() && storage::is_mounted(&self.layout, name) {
            return storage::grow_online(&self.layout, name, cfg.limits.disk, new_size);
        }
        storage::unmount_all(&self.layout, name)?;
        let grown = storage::grow_offline(&self.layout, name, cfg.limits.disk, new_size);
        let mounted = storage::mount_existing(&self.layout, name, &cfg.template, cfg.id_base);
        grown.and(mounted)
    }
}
