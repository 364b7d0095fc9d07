//! What a container boots as its PID 1: its template's own init (systemd, or SysV init
//! with its `/etc/inittab`), or Acetate's minimal init (for templates without one, or when
//! asked for).

use std::fs;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::runtime::{self, ExecIo};
use crate::spec;
use crate::store::{self, ContainerConfig, RunState};
use crate::{require_root, template, ContainerInfo, Engine};

/// What runs as a container's PID 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// Acetate's own init: reaps orphans and passes a stop on; services are the
    /// customer's to start.
    Minimal,
    /// The template's systemd, booted unprivileged with a cgroup tree of its own.
    Systemd,
    /// The template's SysV init (`sysvinit-core`: `/sbin/init` reading `/etc/inittab`, its
    /// runlevels' scripts; OpenRC on Debian runs under it too). A stop asks it for runlevel
    /// 0 (`telinit 0`), as its own `halt` would.
    Sysvinit,
}

impl Init {
    pub fn minimal() -> Init {
        Init::Minimal
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Init::Minimal => "minimal",
            Init::Systemd => "systemd",
            Init::Sysvinit => "sysvinit",
        }
    }

    /// In words, for pages and messages: "its own systemd".
    pub fn describe(self) -> &'static str {
        match self {
            Init::Minimal => "Acetate's minimal init",
            Init::Systemd => "its own systemd",
            Init::Sysvinit => "its own SysV init",
        }
    }

    /// Whether this is the template's own init, started as `/sbin/init`.
    pub fn is_templates(self) -> bool {
        self != Init::Minimal
    }
}

impl std::str::FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Init> {
        match s {
            "minimal" => Ok(Init::Minimal),
            "systemd" => Ok(Init::Systemd),
            "sysvinit" => Ok(Init::Sysvinit),
            _ => Err(Error::InvalidLimit {
                what: "init",
                msg: format!(
                    "{s:?} is none of \"minimal\" (Acetate's own), \"systemd\" and \"sysvinit\""
                ),
            }),
        }
    }
}

impl Engine {
    /// What container `cfg` boots: the init it asked for, or its template's — but the
    /// minimal init on a host without a cgroup2 hierarchy, where systemd would have no
    /// tree to manage (asked for by name, systemd then fails to start, saying why).
    pub(crate) fn boots(&self, cfg: &ContainerConfig) -> Init {
        match cfg.init {
            Some(init) => init,
            None => match template::init_of(&self.layout, &cfg.template) {
                Init::Systemd if self.cgroup(&cfg.name).v2_dir().is_none() => Init::Minimal,
                init => init,
            },
        }
    }

    /// Refuses a template's own init (systemd, SysV init) for a template that has another
    /// or none.
    pub(crate) fn check_init(&self, template: &str, init: Option<Init>) -> Result<()> {
        let Some(want) = init.filter(|i| i.is_templates()) else {
            return Ok(());
        };
        let has = template::init_of(&self.layout, template);
        if has != want {
            let what = match has {
                Init::Minimal => "no init the engine boots".to_string(),
                other => format!("{} as its init", other.as_str()),
            };
            return Err(Error::InvalidLimit {
                what: "init",
                msg: format!(
                    "template {template:?} has no {} to boot (it has {what}); ask for \"auto\" \
                     (the template's own) or \"minimal\"",
                    want.as_str()
                ),
            });
        }
        Ok(())
    }

    /// What container `name` boots at its next start.
    pub fn next_init(&self, name: &str) -> Result<Init> {
        Ok(self.boots(&self.config(name)?))
    }

    /// Chooses what container `name` boots from its next start: `init`, or its template's
    /// own (`None`). A running container keeps its PID 1 until restarted.
    pub fn set_init(&self, name: &str, init: Option<Init>) -> Result<ContainerInfo> {
        crate::require_root("change containers")?;
        spec::validate_name(name)?;
        let (_lock, mut cfg) = self.lock(name)?;
        self.check_init(&cfg.template, init)?;
        cfg.init = init;
        store::write_json(&self.layout.config(name), &cfg)?;
        let st = self.run_state(name)?;
        Ok(self.info(&cfg, st))
    }
}

/// How often a SysV init's shutdown is looked in on.
const HALT_POLL: Duration = Duration::from_millis(50);

impl Engine {
    /// Shuts a SysV init down as its `halt` would: runlevel 0 asked for with the
    /// template's own `telinit`, inside the container; its scripts then stop the services
    /// (their `K` links in `/etc/rc0.d`) and kill what is left, and its final `halt`
    /// cannot power a container off, so it is over when the init is alone (seen twice, so
    /// that a request not yet read is not taken for the end). Returns whether it got there
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
            alone = if cgroup.processes() == [st.pid] {
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

/// What a SysV init began inside its container when it is left alone at runlevel 0 or 6:
/// a `halt` (`poweroff`, `shutdown -h`) or a `reboot`, whose last step cannot power a
/// container off or restart it.
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

    /// Finishes the halts and reboots that SysV inits began inside their containers: one
    /// halted from inside is stopped (and not started again after a host reboot), a
    /// rebooted one starts again. Returns what it finished, by container, with the
    /// restart's outcome. Reads only the run state of containers without a SysV init.
    pub fn settle_sysvinit(&self) -> Result<Vec<(String, Halt, Result<()>)>> {
        let names: Vec<String> = self.configs()?.into_iter().map(|c| c.name).collect();
        self.settle_sysvinit_of(&names)
    }

    /// [`Engine::settle_sysvinit`] for containers `names` only (those a caller knows run
    /// a SysV init); names of containers that are gone are passed over.
    pub fn settle_sysvinit_of(&self, names: &[String]) -> Result<Vec<(String, Halt, Result<()>)>> {
        require_root("stop containers")?;
        let mut done = Vec::new();
        for name in names {
            if spec::validate_name(name).is_err() {
                continue;
            }
            let Some(st) = self.run_state(name)? else {
                continue;
            };
            if self.sysvinit_halted(name, &st).is_none() {
                continue;
            }
            let Ok((_lock, cfg)) = self.lock(name) else {
                continue;
            };
            let Some(st) = self.run_state(&cfg.name)? else {
                continue;
            };
            let Some(halt) = self.sysvinit_halted(&cfg.name, &st) else {
                continue;
            };
            self.stop_locked(&cfg, Duration::ZERO)?;
            let outcome = match halt {
                Halt::PowerOff => {
                    self.want_running(&cfg.name, false);
                    Ok(())
                }
                Halt::Reboot => self.start_locked(&cfg).map(|_| ()),
            };
            tracing::info!(name = %cfg.name, ?halt, ok = outcome.is_ok(), "SysV init finished inside");
            done.push((cfg.name.clone(), halt, outcome));
        }
        Ok(done)
    }
}

/// Host limits that every container's systemd draws on, all charged to the host's root
/// (who created the containers' user namespaces): with the kernel's default of 128 inotify
/// instances, the 18th booted container finds none left and its `.path` units fail. Raised
/// once per process to what LXD advises for production hosts, never lowered.
pub(crate) fn size_host_for_systemd() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        for (file, want) in [
            ("/proc/sys/fs/inotify/max_user_instances", 1_048_576u64),
            ("/proc/sys/fs/inotify/max_user_watches", 1_048_576),
        ] {
            let have = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if have.is_some_and(|h| h < want) {
                match std::fs::write(file, want.to_string()) {
                    Ok(()) => tracing::info!(file, from = have, to = want, "raised for systemd containers"),
                    Err(e) => tracing::warn!(file, error = %e, "could not raise; systemd containers may run short"),
                }
            }
        }
    });
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
