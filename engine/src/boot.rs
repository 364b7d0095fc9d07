//! What a container boots as its PID 1: its template's own init (systemd, or SysV init
//! with its `/etc/inittab`), or Acetate's minimal init (for templates without one, or when
//! asked for).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec;
use crate::store::{self, ContainerConfig};
use crate::{template, ContainerInfo, Engine};

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
