//! How a container's own init ends: a SysV init asked for runlevel 0 by a stop, and the
//! halts and reboots begun inside a container (a customer's `halt` or `reboot`), which
//! its init cannot finish itself (no CAP_SYS_BOOT, `reboot(2)` refused by seccomp) and the
//! engine finishes: a halted container is stopped, a rebooted one started again.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::runtime::{self, ExecIo};
use crate::spec::{self, Init};
use crate::store::{ContainerConfig, RunState};
use crate::unpack::Root;
use crate::{require_root, Engine};

/// Where a fitted template's systemd notes, as it goes down, whether it reboots or powers
/// off (`systemd-shutdown`'s verb: `reboot`, `poweroff`, `halt`, `kexec`), relative to the
/// container's root; read from the host once it has stopped.
pub(crate) const HALT_MARK: &str = "var/lib/acetate/halt";

/// How often a SysV init's shutdown is looked in on.
const HALT_POLL: Duration = Duration::from_millis(50);

impl Engine {
    /// Shuts a SysV init down as its `halt` would: runlevel 0 asked for with the
    /// template's own `telinit`, inside the container; its scripts then stop the services
    /// (their `K` links in `/etc/rc0.d`) and kill what is left, and its final `halt`
    /// cannot power a container off, so it is over when the init, in runlevel 0, is alone
    /// (seen twice, 50 ms apart). Returns whether it got there
    /// within `timeout`; the caller kills the init either way.
    pub(crate) fn halt_sysvinit(
        &self,
        cfg: &ContainerConfig,
        st: &RunState,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let Some(pidfd) = runtime::open_init(st) else {
            return true;
        };
        let null = match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            Ok(f) => f,
            Err(_) => return false,
        };
        let io = ExecIo {
            stdin: Some(null.as_raw_fd()),
            stdout: Some(null.as_raw_fd()),
            stderr: Some(null.as_raw_fd()),
            tty: false,
        };
        let cgroup = self.cgroup(&cfg.name);
        let argv = ["telinit".to_string(), "0".to_string()];
        match runtime::spawn_exec(&pidfd, &cgroup, &argv, &[], io, &self.seccomp) {
            Ok(child) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if !runtime::pidfd_wait(&child.pidfd(), left) {
                    tracing::warn!(name = %cfg.name, "telinit 0 did not return");
                    return false;
                }
                match child.wait() {
                    Ok(0) => {}
                    Ok(code) => {
                        tracing::warn!(name = %cfg.name, code, "telinit 0 failed");
                        return false;
                    }
                    Err(e) => {
                        tracing::warn!(name = %cfg.name, error = %e, "telinit 0 failed");
                        return false;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(name = %cfg.name, error = %e, "could not ask for runlevel 0");
                return false;
            }
        }
        let mut alone = 0;
        while Instant::now() < deadline {
            if !runtime::alive(&pidfd) {
                return true;
            }
            // Until the init has read the request it still shows its old runlevel, and
            // may be alone (no service running) without having begun to stop anything.
            let in_runlevel0 = fs::read(format!("/proc/{}/cmdline", st.pid))
                .is_ok_and(|c| runlevel(&c) == Some(b'0'));
            alone = if in_runlevel0 && cgroup.processes() == [st.pid] {
                alone + 1
            } else {
                0
            };
            if alone >= 2 {
                return true;
            }
            std::thread::sleep(HALT_POLL);
        }
        false
    }
}

/// What was begun inside a container: a `halt` (`poweroff`, `shutdown -h`) or a
/// `reboot`, whose last step cannot power a container off or restart it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    PowerOff,
    Reboot,
}

/// The runlevel a SysV init shows in its process title (`init [2]`).
fn runlevel(cmdline: &[u8]) -> Option<u8> {
    let title = cmdline.split(|b| *b == 0).next()?;
    let level = title.strip_prefix(b"init [")?.strip_suffix(b"]")?;
    match level {
        [l] => Some(*l),
        _ => None,
    }
}

impl Engine {
    /// Whether running container `name`'s SysV init was halted or rebooted from inside
    /// and waits, alone, for what it cannot do itself.
    pub(crate) fn sysvinit_halted(&self, name: &str, st: &RunState) -> Option<Halt> {
        if st.init != Init::Sysvinit {
            return None;
        }
        let pidfd = runtime::open_init(st)?;
        let cmdline = fs::read(format!("/proc/{}/cmdline", st.pid)).ok()?;
        if !runtime::alive(&pidfd) {
            return None;
        }
        let halt = match runlevel(&cmdline)? {
            b'0' => Halt::PowerOff,
            b'6' => Halt::Reboot,
            _ => return None,
        };
        (self.cgroup(name).processes() == [st.pid]).then_some(halt)
    }

    /// Before the init is signalled: a SysV init is shut down by asking for runlevel 0
    /// (unless it is halted already), after which it is only to be killed. Returns the
    /// time left for the init's signal.
    pub(crate) fn shut_down_first(
        &self,
        cfg: &ContainerConfig,
        st: &RunState,
        timeout: Duration,
    ) -> Duration {
        if st.init != Init::Sysvinit {
            return timeout;
        }
        let halted =
            self.sysvinit_halted(&cfg.name, st).is_some() || self.halt_sysvinit(cfg, st, timeout);
        if !halted {
            tracing::warn!(name = %cfg.name, "SysV init did not halt in time; killed");
        }
        Duration::ZERO
    }

    /// What the container's systemd left in its halt mark ([`HALT_MARK`], written as it
    /// goes down in fitted templates), read through its root's overlay (never its layer
    /// behind the overlay's back), resolved inside it.
    pub(crate) fn halt_mark(&self, name: &str) -> Option<Halt> {
        use std::io::Read;
        let root = Root::open(&self.layout.rootfs(name)).ok()?;
        let fd = root
            .open_in(
                Path::new(HALT_MARK),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            )
            .ok()?;
        let mut file = fs::File::from(fd);
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return None;
        }
        let mut text = String::new();
        (&mut file).take(64).read_to_string(&mut text).ok()?;
        match text.trim() {
            "reboot" | "kexec" => Some(Halt::Reboot),
            "poweroff" | "halt" => Some(Halt::PowerOff),
            _ => None,
        }
    }

    /// Removes container `name`'s halt mark, if any (before it starts: a mark left by a
    /// stop's halt must not be read as the next run's).
    pub(crate) fn clear_halt_mark(&self, name: &str) {
        if let Ok(root) = Root::open(&self.layout.rootfs(name)) {
            root.remove(Path::new(HALT_MARK));
        }
    }

    /// What container `name` (locked by the caller) began inside and has not been
    /// finished: a SysV init alone at runlevel 0 or 6, or a systemd that exited on its own
    /// (the container should run: a stop from outside clears that) leaving its halt mark.
    fn halted_inside(&self, name: &str) -> Result<Option<Halt>> {
        Ok(match self.run_state(name)? {
            Some(st) => self.sysvinit_halted(name, &st),
            None if self.layout.autostart(name).exists() => self.halt_mark(name),
            None => None,
        })
    }

    /// Finishes the halts and reboots begun inside containers `names` (those a caller
    /// knows run a SysV init, or were left by their systemd): one halted from inside is
    /// stopped (and not started again after a host reboot), a rebooted one starts again.
    /// Returns what it finished, by container, with the restart's outcome; names of
    /// containers that are gone are passed over.
    pub fn settle_halts(&self, names: &[String]) -> Result<Vec<(String, Halt, Result<()>)>> {
        require_root("stop containers")?;
        let mut done = Vec::new();
        // One container's unreadable state or failed restart does not hold the others up.
        let halted = |name: &str| self.halted_inside(name).ok().flatten();
        for name in names {
            if spec::validate_name(name).is_err() || halted(name).is_none() {
                continue;
            }
            let Ok((_lock, cfg)) = self.lock(name) else {
                continue;
            };
            let Some(halt) = halted(name) else {
                continue;
            };
            let outcome = self.stop_locked(&cfg, Duration::ZERO).and_then(|_| {
                self.clear_halt_mark(name);
                match halt {
                    Halt::PowerOff => {
                        self.want_running(&cfg.name, false);
                        Ok(())
                    }
                    Halt::Reboot => self.start_locked(&cfg).map(|_| ()),
                }
            });
            tracing::info!(name = %cfg.name, ?halt, ok = outcome.is_ok(), "finished what began inside");
            done.push((cfg.name.clone(), halt, outcome));
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sysv_inits_runlevel_is_read_from_its_title() {
        assert_eq!(runlevel(b"init [2]\0\0\0"), Some(b'2'));
        assert_eq!(runlevel(b"init [6]"), Some(b'6'));
        assert_eq!(runlevel(b"/sbin/init\0"), None);
        assert_eq!(runlevel(b"init [12]\0"), None);
        assert_eq!(runlevel(b""), None);
    }
}
