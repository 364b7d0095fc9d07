//! Bringing the state dir back after a crash or a host reboot: sweeping the remains of
//! interrupted creates, destroys and imports, and starting every container that should
//! run.

use std::fs;

use crate::error::{Error, IoContext, Result};
use crate::{
    require_root, spec, storage, ContainerInfo, Engine, DEFAULT_STOP_TIMEOUT, LOCK_TIMEOUT,
};

impl Engine {
    /// Records whether container `name` should run (started again after a reboot). Not
    /// synced to disk: a clean shutdown flushes it, and losing it to a power cut only
    /// loses the autostart of a container started in the last seconds before.
    pub(crate) fn want_running(&self, name: &str, on: bool) {
        let mark = self.layout.autostart(name);
        let done = if on {
            fs::write(&mark, b"")
        } else {
            match fs::remove_file(&mark) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        };
        if let Err(e) = done {
            tracing::warn!(container = name, error = %e, "could not record whether it should run");
        }
    }

    /// Removes what a crashed create or destroy left of container `name` (its directory has
    /// no config): mounts, loop device, cgroup, files. Caller holds the global lock.
    pub(crate) fn sweep(&self, name: &str) -> Result<bool> {
        let dir = self.layout.container(name);
        let is_debris = || fs::symlink_metadata(&dir).is_ok() && !self.layout.config(name).exists();
        if !is_debris() {
            return Ok(false);
        }
        // A destroy in progress holds the container's lock until the directory is gone;
        // a crashed one holds nothing. Wait for the lock, then look again.
        let _lock = self.layout.lock_container(name, LOCK_TIMEOUT)?;
        if !is_debris() {
            return Ok(false);
        }
        tracing::warn!(
            name,
            "removing the remains of an interrupted create or destroy"
        );
        self.cgroup(name).delete()?;
        storage::unmount_all(&self.layout, name)?;
        fs::remove_dir_all(&dir).ctx("remove", &dir)?;
        Ok(true)
    }

    /// Brings the state dir back to a consistent state after a crash: removes the remains
    /// of interrupted creates and destroys, and kills processes left in the cgroups of
    /// containers that are not running (a start interrupted before it recorded the init).
    /// Returns the names it repaired. Running containers are not touched.
    #[tracing::instrument(skip(self))]
    pub fn recover(&self) -> Result<Vec<String>> {
        require_root("recover containers")?;
        let _g = self.layout.lock_global(LOCK_TIMEOUT)?;
        let mut repaired = Vec::new();
        let dir = self.layout.containers();
        for entry in fs::read_dir(&dir).ctx("read directory", &dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || spec::validate_name(&name).is_err() {
                continue;
            }
            if self.sweep(&name)? {
                repaired.push(name);
                continue;
            }
            let (_lock, cfg) = match self.lock(&name) {
                Ok(locked) => locked,
                // Destroyed meanwhile by another process: nothing to repair.
                Err(Error::NoSuchContainer(_)) => continue,
                Err(e) => return Err(e),
            };
            if self.is_half_imported(&name) {
                tracing::warn!(name, "removing a container whose import was interrupted");
                self.destroy_locked(&cfg, DEFAULT_STOP_TIMEOUT)?;
                repaired.push(name);
                continue;
            }
            if self.run_state(&name)?.is_none() {
                let cgroup = self.cgroup(&name);
                if cgroup.exists() {
                    cgroup.delete()?;
                    let _ = fs::remove_file(self.layout.run_state(&cfg.name));
                    repaired.push(name);
                }
            }
        }
        Ok(repaired)
    }

    /// Starts, in parallel (`workers` at a time), every container that should run and
    /// does not (after a host reboot, or the engine's state lost with the kernel's), those
    /// rebooted from inside among them (those halted from inside are stopped:
    /// [`Engine::settle_halts`]). Returns each one it tried, with what happened.
    pub fn start_all(&self, workers: usize) -> Result<Vec<(String, Result<ContainerInfo>)>> {
        require_root("start containers")?;
        let names: Vec<String> = self.configs()?.into_iter().map(|c| c.name).collect();
        let rebooted: Vec<(String, Result<ContainerInfo>)> = self
            .settle_halts(&names)?
            .into_iter()
            .filter(|(_, halt, _)| *halt == spec::Halt::Reboot)
            .map(|(name, _, started)| {
                let info = started.and_then(|()| self.show(&name));
                (name, info)
            })
            .collect();
        let wanted: Vec<String> = names
            .into_iter()
            .filter(|n| self.layout.autostart(n).exists())
            .filter(|n| matches!(self.run_state(n), Ok(None)))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::with_capacity(wanted.len()));
        std::thread::scope(|scope| {
            for _ in 0..workers.clamp(1, 16).min(wanted.len().max(1)) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(name) = wanted.get(i) else {
                        break;
                    };
                    let result = self.lock(name).and_then(|(_lock, cfg)| {
                        match self.run_state(name)? {
                            // Started meanwhile by someone else: fine.
                            Some(st) => Ok(self.info(&cfg, Some(st))),
                            None => self.start_locked(&cfg),
                        }
                    });
                    results
                        .lock()
                        .expect("start results")
                        .push((name.clone(), result));
                });
            }
        });
        let mut results = results.into_inner().expect("start results");
        results.extend(rebooted);
        results.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(results)
    }
}
