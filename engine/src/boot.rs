//! What a container boots as its PID 1: its template's own systemd, or Acetate's minimal
//! init (for templates without one, or when asked for).

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
}

impl Init {
    pub fn minimal() -> Init {
        Init::Minimal
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Init::Minimal => "minimal",
            Init::Systemd => "systemd",
        }
    }
}

impl std::str::FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Init> {
        match s {
            "minimal" => Ok(Init::Minimal),
            "systemd" => Ok(Init::Systemd),
            _ => Err(Error::InvalidLimit {
                what: "init",
                msg: format!("{s:?} is neither \"minimal\" (Acetate's own) nor \"systemd\""),
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

    /// Refuses systemd for a template that has none.
    pub(crate) fn check_init(&self, template: &str, init: Option<Init>) -> Result<()> {
        if init == Some(Init::Systemd) && template::init_of(&self.layout, template) != Init::Systemd
        {
            return Err(Error::InvalidLimit {
                what: "init",
                msg: format!(
                    "template {template:?} has no systemd to boot (its /sbin/init is not \
                     systemd); its containers get the minimal init"
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
