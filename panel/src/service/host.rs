//! The host as the provider sees it: CPUs, load, memory, the shared disk and what the
//! containers on it hold.

use acetate_engine::size::format_bytes;
use acetate_engine::State;

use super::AppState;

/// The provider page's figures, formatted.
#[derive(Debug, Clone)]
pub struct HostOverview {
    pub cpus: usize,
    pub load: String,
    pub memory_total: String,
    pub memory_available: String,
    pub disk_total: String,
    pub disk_free: String,
    /// Disk quotas promised against what the over-commit ratio allows.
    pub disk_quotas: String,
    pub containers: usize,
    pub running: usize,
    pub committed_memory: String,
    /// The engine's network and ranges (its settings), "-" without an engine.
    pub network: String,
}

/// The engine's network and ranges, as the API and `acetate net show` give them.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HostNetwork {
    /// The bridge its containers are ports of.
    pub bridge: String,
    /// The containers' IPv4 subnet and its gateway (the bridge's address).
    pub subnet: String,
    pub gateway: String,
    /// The IPv6 prefix routed to the host for containers, if any, and its gateway.
    pub ipv6_prefix: Option<String>,
    pub gateway6: Option<String>,
    /// Whether this is the network engines share unless told otherwise.
    pub shared: bool,
    /// The first host uid/gid of the engine's containers.
    pub id_base: u32,
    /// How many containers its id range and subnet leave room for.
    pub capacity: u32,
    /// The cgroup its containers live under.
    pub cgroup_parent: String,
}

impl HostNetwork {
    pub fn of(id: &acetate_engine::identity::Identity) -> HostNetwork {
        let net = id.network();
        HostNetwork {
            bridge: net.bridge.clone(),
            subnet: net.subnet.to_string(),
            gateway: net.gateway().to_string(),
            ipv6_prefix: net.ipv6_prefix.map(|p| p.to_string()),
            gateway6: net.gateway6().map(|g| g.to_string()),
            shared: net.is_shared(),
            id_base: id.id_base(),
            capacity: id.capacity(),
            cgroup_parent: id.cgroup_parent(),
        }
    }
}

/// The engine's network and ranges (provider only; 404 without an engine).
pub fn network(
    st: &AppState,
    caller: &crate::domain::User,
) -> crate::error::AppResult<HostNetwork> {
    super::require(caller, crate::domain::Role::Provider)?;
    st.runtime
        .identity()
        .map(|id| HostNetwork::of(&id))
        .ok_or(crate::error::AppError::NotFound)
}

/// The engine's settings as the provider reads them.
fn network_of(id: &acetate_engine::identity::Identity) -> String {
    let net = id.network();
    let v6 = match (net.ipv6_prefix, net.gateway6()) {
        (Some(p), Some(g)) => format!("IPv6 {p} (gateway {g})"),
        _ => "no IPv6".into(),
    };
    format!(
        "bridge {}{}, {} (gateway {}), {v6}; host ids from {} ({} containers); cgroup {}",
        net.bridge,
        if net.is_shared() { " (shared)" } else { "" },
        net.subnet,
        net.gateway(),
        id.id_base(),
        id.capacity(),
        id.cgroup_parent()
    )
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kib| kib * 1024)
}

/// What the host has to share out: memory, CPUs and the disk quotas its policy allows
/// (0 where unknown).
pub async fn capacity(st: &AppState) -> crate::domain::Totals {
    let disk = st.engine(|e| e.disk_capacity()).await.ok();
    crate::domain::Totals {
        containers: 0,
        memory: meminfo("MemTotal:").map_or(0, |m| m.min(i64::MAX as u64) as i64),
        cpus_milli: std::thread::available_parallelism().map_or(0, |n| n.get() as i64 * 1000),
        disk: disk.map_or(0, |d| d.allowed.min(i64::MAX as u64) as i64),
    }
}

pub async fn overview(st: &AppState) -> HostOverview {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "-".into());
    let disk = st.engine(|e| e.disk_capacity()).await.ok();
    let overcommit = st.runtime.disk_overcommit();
    let all = st.snapshot.all();
    let disk_quotas = match &disk {
        Some(c) => format!(
            "{} promised of {} allowed (over-commit ratio {}; {} reserve {})",
            format_bytes(c.promised),
            format_bytes(c.allowed),
            overcommit,
            format_bytes(c.reserve),
            if c.reserve_held {
                "held"
            } else {
                "released: the disk is full"
            }
        ),
        None => "-".into(),
    };
    let fmt = |v: Option<u64>| v.map_or("-".to_string(), format_bytes);
    HostOverview {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load,
        memory_total: fmt(meminfo("MemTotal:")),
        memory_available: fmt(meminfo("MemAvailable:")),
        disk_total: fmt(disk.as_ref().map(|d| d.total)),
        disk_free: fmt(disk.as_ref().map(|d| d.free)),
        disk_quotas,
        containers: all.len(),
        running: all.iter().filter(|c| c.state == State::Running).count(),
        committed_memory: committed(
            all.iter().map(|c| c.limits.memory).sum(),
            meminfo("MemTotal:"),
        ),
        network: st
            .runtime
            .identity()
            .map_or_else(|| "-".into(), |id| network_of(&id)),
    }
}

/// The memory containers may use in all, against the host's: the over-commit ratio, said.
fn committed(limits: u64, total: Option<u64>) -> String {
    let Some(total) = total.filter(|t| *t > 0) else {
        return format_bytes(limits);
    };
    let ratio = limits as f64 / total as f64;
    let note = if ratio > 1.0 {
        ": over-committed, they cannot all reach their limits at once"
    } else {
        ""
    };
    format!(
        "{} ({ratio:.2}× the host's memory{note})",
        format_bytes(limits)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_memory_says_its_ratio_to_the_hosts() {
        assert_eq!(
            super::committed(3 << 30, Some(2 << 30)),
            "3G (1.50× the host's memory: over-committed, they cannot all reach their \
             limits at once)"
        );
        assert_eq!(
            super::committed(1 << 30, Some(4 << 30)),
            "1G (0.25× the host's memory)"
        );
        assert_eq!(super::committed(1 << 30, None), "1G");
    }

    #[test]
    fn the_engines_network_reads_in_one_line() {
        let id = acetate_engine::identity::Identity::stored(std::path::Path::new("/nonexistent"));
        assert_eq!(
            super::network_of(&id),
            "bridge acetate0 (shared), 10.88.0.0/16 (gateway 10.88.0.1), no IPv6; \
             host ids from 1048576 (2048 containers); cgroup acetate"
        );
    }
}
