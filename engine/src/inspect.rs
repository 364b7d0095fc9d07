//! Reading containers: state, limits and live usage, one or all.

use crate::store::{ContainerConfig, RunState};
use crate::{network, storage, ContainerInfo, Engine, Result, State, Usage};

impl Engine {
    pub(crate) fn info(&self, cfg: &ContainerConfig, st: Option<RunState>) -> ContainerInfo {
        let cgroup = st.map(|_| self.cgroup(&cfg.name).usage());
        ContainerInfo {
            name: cfg.name.clone(),
            hostname: cfg.hostname().to_string(),
            template: cfg.template.clone(),
            owner: cfg.owner.clone(),
            state: if st.is_some() {
                State::Running
            } else {
                State::Stopped
            },
            pid: st.map(|s| s.pid),
            created_at: cfg.created_at,
            started_at: st.map(|s| s.started_at),
            host_uid: cfg.id_base,
            limits: cfg.limits.clone(),
            network: cfg.network.then(|| self.identity().net_info(cfg.id_base)),
            usage: Usage {
                cgroup,
                disk: storage::disk_usage(&self.layout, &cfg.name),
                net: match (cfg.network, st) {
                    (true, Some(_)) => network::counters(&self.identity().net_info(cfg.id_base)),
                    _ => None,
                },
            },
        }
    }

    /// One container: state, limits and live usage.
    pub fn show(&self, name: &str) -> Result<ContainerInfo> {
        let cfg = self.config(name)?;
        let st = self.run_state(name)?;
        Ok(self.info(&cfg, st))
    }

    /// Every container on the host.
    pub fn list(&self) -> Result<Vec<ContainerInfo>> {
        self.configs()?
            .iter()
            .map(|cfg| Ok(self.info(cfg, self.run_state(&cfg.name)?)))
            .collect()
    }
}
