//! Reading containers: state, limits and live usage, one or all.

use crate::store::{ContainerConfig, RunState};
use crate::{network, storage, ContainerInfo, Engine, Result, State, Usage};

/// Interface counters asked of the kernel (netlink, not sysfs: sysfs shows the network
/// namespace that mounted it, not this process's).
type Counted = std::collections::HashMap<String, crate::netlink::LinkCounters>;

impl Engine {
    pub(crate) fn info(&self, cfg: &ContainerConfig, st: Option<RunState>) -> ContainerInfo {
        let counted = match (cfg.network, st) {
            (true, Some(_)) => {
                let net = self.identity().net_info(cfg.id_base);
                crate::netlink::counters(Some(&net.host_interface)).unwrap_or_default()
            }
            _ => Counted::new(),
        };
        self.info_counted(cfg, st, &counted)
    }

    /// What a container just started shows: its interface, a new one, has moved nothing
    /// yet worth asking the kernel for.
    pub(crate) fn info_started(&self, cfg: &ContainerConfig, st: RunState) -> ContainerInfo {
        let mut counted = Counted::new();
        if cfg.network {
            let net = self.identity().net_info(cfg.id_base);
            counted.insert(net.host_interface, Default::default());
        }
        self.info_counted(cfg, Some(st), &counted)
    }

    fn info_counted(
        &self,
        cfg: &ContainerConfig,
        st: Option<RunState>,
        counted: &Counted,
    ) -> ContainerInfo {
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
            init: st.map_or_else(|| self.boots(cfg), |s| s.init),
            created_at: cfg.created_at,
            started_at: st.map(|s| s.started_at),
            host_uid: cfg.id_base,
            limits: cfg.limits.clone(),
            network: cfg.network.then(|| self.identity().net_info(cfg.id_base)),
            usage: Usage {
                cgroup,
                disk: storage::disk_usage(&self.layout, &cfg.name),
                net: match (cfg.network, st) {
                    (true, Some(_)) => {
                        network::counters(&self.identity().net_info(cfg.id_base), counted)
                    }
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

    /// Every container on the host (the interfaces' counters read in one request).
    pub fn list(&self) -> Result<Vec<ContainerInfo>> {
        let all: Vec<(ContainerConfig, Option<RunState>)> = self
            .configs()?
            .into_iter()
            .map(|cfg| {
                let st = self.run_state(&cfg.name)?;
                Ok((cfg, st))
            })
            .collect::<Result<_>>()?;
        let counted = if all.iter().any(|(c, st)| c.network && st.is_some()) {
            crate::netlink::counters(None).unwrap_or_default()
        } else {
            Counted::new()
        };
        Ok(all
            .iter()
            .map(|(cfg, st)| self.info_counted(cfg, *st, &counted))
            .collect())
    }

    /// Packets the rate limit of running container `name` dropped of what it sends (its
    /// own interface's shaper, read inside its network namespace); `None` without a rate
    /// limit or while stopped. Separate from [`Engine::list`], which runs every few seconds:
    /// this joins a namespace per container, so metering asks once a pass.
    pub fn drops_inside(&self, name: &str) -> Result<Option<u64>> {
        let cfg = self.config(name)?;
        match (cfg.network, cfg.limits.net_rate, self.run_state(name)?) {
            (true, Some(_), Some(st)) => Ok(Some(crate::netlink::drops_inside(st.pid)?)),
            _ => Ok(None),
        }
    }
}
