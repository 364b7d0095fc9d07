//! What containers' traffic may do beyond the bridge: one nftables table, `inet acetate`,
//! owned by Acetate, in the network namespace the engine runs in.
//!
//! - **Egress** leaves through the host's uplink masqueraded (the containers' private
//!   addresses never show outside); IPv4 forwarding is turned on for it (and turned back
//!   off by `acetate net teardown` if Acetate turned it on).
//! - **Outbound SMTP** (TCP 25) is refused with a reset unless the provider allows it, the
//!   usual anti-spam default of hosting providers.
//! - **The host** answers containers only on what the provider opens (`--host-port`; DNS
//!   on 53 by default) and ping: a service listening on 0.0.0.0 is not reachable from
//!   tenants.
//! - **Nothing outside** reaches a container's private address: only answers to its own
//!   connections (and, later, published forwards) pass into the bridge.
//!
//! Source addresses are already held to each port's own by the `bridge acetate` table
//! (see [`crate::network`]). The table is installed once per boot, network namespace and
//! policy (marks in `/run/acetate/net/<netns>/`), in one transaction.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A port of the host opened to containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostPort {
    pub port: u16,
    pub udp: bool,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, if self.udp { "udp" } else { "tcp" })
    }
}

impl std::str::FromStr for HostPort {
    type Err = String;

    /// `53/udp`, `8080/tcp`, `8080` (TCP).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (port, proto) = s.trim().split_once('/').unwrap_or((s.trim(), "tcp"));
        let udp = match proto {
            "tcp" => false,
            "udp" => true,
            other => return Err(format!("{other:?} is not tcp or udp (as in 53/udp)")),
        };
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(HostPort { port: p, udp }),
            _ => Err(format!("{port:?} is not a port (1-65535)")),
        }
    }
}

/// The provider's rules for containers' traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetPolicy {
    /// Let containers connect to port 25 anywhere.
    pub allow_smtp: bool,
    /// Ports of the host containers may reach (on any of the host's addresses).
    pub host_ports: Vec<HostPort>,
}

impl Default for NetPolicy {
    fn default() -> Self {
        NetPolicy {
            allow_smtp: false,
            host_ports: vec![
                HostPort {
                    port: 53,
                    udp: true,
                },
                HostPort {
                    port: 53,
                    udp: false,
                },
            ],
        }
    }
}

/// The containers' network (every engine's addresses lie in it).
pub const SUBNET: &str = "10.88.0.0/16";
/// Where the marks of installed tables live (cleared at boot, like the rules).
const MARKS: &str = "/run/acetate/net";
const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";
const BRIDGE_NF: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

fn ports(policy: &NetPolicy, udp: bool) -> String {
    let mut list: Vec<u16> = policy
        .host_ports
        .iter()
        .filter(|p| p.udp == udp)
        .map(|p| p.port)
        .collect();
    list.sort_unstable();
    list.dedup();
    let list: Vec<String> = list.iter().map(u16::to_string).collect();
    list.join(", ")
}

/// The `inet acetate` table for `policy`: sets and chains are (re)made and filled in one
/// transaction; the forward maps are made if missing and kept (they hold every engine's
/// forwards).
pub fn script(policy: &NetPolicy) -> String {
    let bridge = crate::network::BRIDGE;
    let t = "inet acetate";
    let mut out = format!("add table {t}\n");
    for (set, udp) in [("host_tcp", false), ("host_udp", true)] {
        out.push_str(&format!(
            "add set {t} {set} {{ type inet_service; }}\nflush set {t} {set}\n"
        ));
        let elements = ports(policy, udp);
        if !elements.is_empty() {
            out.push_str(&format!("add element {t} {set} {{ {elements} }}\n"));
        }
    }
    // Containers whose traffic to the outside is refused (kept across installs, like
    // the maps: each container's start puts its address in or takes it out).
    out.push_str(&format!("add set {t} no_egress {{ type ipv4_addr; }}\n"));
    for map in ["fwd_tcp", "fwd_udp"] {
        out.push_str(&format!(
            "add map {t} {map} {{ type inet_service : ipv4_addr . inet_service; }}\n"
        ));
    }
    let chain = |out: &mut String, name: &str, hook: &str, rules: &[String]| {
        out.push_str(&format!(
            "add chain {t} {name} {{ {hook}; policy accept; }}\nflush chain {t} {name}\n"
        ));
        for r in rules {
            out.push_str(&format!("add rule {t} {name} {r}\n"));
        }
    };
    let from = format!("iifname \"{bridge}\"");
    let to = format!("oifname \"{bridge}\"");
    chain(
        &mut out,
        "input",
        "type filter hook input priority 0",
        &[
            format!("{from} ct state established,related accept"),
            format!("{from} meta l4proto icmp accept"),
            format!("{from} tcp dport @host_tcp accept"),
            format!("{from} udp dport @host_udp accept"),
            format!("{from} drop"),
        ],
    );
    let mut forward = vec![
        format!("{to} ct state established,related accept"),
        format!("{to} ct status dnat accept"),
        format!("{to} drop"),
    ];
    forward.push(format!(
        "{from} ip saddr @no_egress reject with icmpx type admin-prohibited"
    ));
    if !policy.allow_smtp {
        forward.push(format!("{from} tcp dport 25 reject with tcp reset"));
    }
    chain(
        &mut out,
        "forward",
        "type filter hook forward priority 0",
        &forward,
    );
    let dnat = [
        "fib daddr type local dnat ip to tcp dport map @fwd_tcp".to_string(),
        "fib daddr type local dnat ip to udp dport map @fwd_udp".to_string(),
    ];
    chain(
        &mut out,
        "prerouting",
        "type nat hook prerouting priority dstnat",
        &dnat,
    );
    chain(
        &mut out,
        "output",
        "type nat hook output priority -100",
        &dnat,
    );
    chain(
        &mut out,
        "postrouting",
        "type nat hook postrouting priority srcnat",
        &[
            format!("ip saddr {SUBNET} {to} ct status dnat masquerade"),
            format!("ip saddr {SUBNET} oifname != \"{bridge}\" masquerade"),
        ],
    );
    out
}

impl crate::Engine {
    /// Everything a networked container needs beyond its own links before it starts: the
    /// bridge filter for this engine's range, the table with the provider's policy, its
    /// address refused egress if it must be, its forwards (the maps are empty after a boot).
    pub(crate) fn ready_network(&self, cfg: &crate::store::ContainerConfig) -> Result<()> {
        crate::network::ensure_filter(
            self.identity().id_base(),
            crate::identity::CONTAINERS_PER_SLOT,
        )?;
        ensure(&self.net_policy)?;
        let net = crate::network::info_for(cfg.id_base);
        // Only a refusal is put in: a container let out again was taken out at once (or
        // at its destruction), so there is nothing to delete on every start.
        if cfg.no_egress {
            set_egress(net.address, true)?;
        }
        crate::forward::install(&cfg.forwards, &net)
    }

    /// Takes a destroyed container's entries out of the table.
    pub(crate) fn release_network(&self, cfg: &crate::store::ContainerConfig) {
        let net = crate::network::info_for(cfg.id_base);
        crate::forward::uninstall(&cfg.forwards, &net);
        if cfg.no_egress {
            let _ = set_egress(net.address, false);
        }
    }
}

/// Puts `address` in the `no_egress` set (`refused`) or takes it out; idempotent.
pub(crate) fn set_egress(address: std::net::Ipv4Addr, refused: bool) -> Result<()> {
    if refused {
        crate::network::run(
            "nft",
            &[
                "add",
                "element",
                "inet",
                "acetate",
                "no_egress",
                &format!("{{ {address} }}"),
            ],
            None,
        )
    } else {
        // Deleting what is not there fails: nothing to do then.
        let _ = crate::network::run(
            "nft",
            &[
                "delete",
                "element",
                "inet",
                "acetate",
                "no_egress",
                &format!("{{ {address} }}"),
            ],
            None,
        );
        Ok(())
    }
}

/// This process's network namespace, by its cookie (`SO_NETNS_COOKIE`: unique for the
/// namespace's lifetime, where an inode number is reused by the next namespace): the rules
/// and the bridge are per namespace, so are the marks that say they are installed.
fn netns_marks() -> Result<PathBuf> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    // SAFETY: a fresh socket we own, closed below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::sys("open a socket", std::io::Error::last_os_error()));
    }
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            &mut cookie as *mut u64 as *mut libc::c_void,
            &mut len,
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return Err(Error::sys("identify the network namespace", err));
    }
    Ok(Path::new(MARKS).join(format!("netns-{cookie}")))
}

/// The directory of this namespace's marks, made if missing.
pub(crate) fn marks_dir() -> Result<PathBuf> {
    let dir = netns_marks()?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
    Ok(dir)
}

fn policy_mark(policy: &NetPolicy) -> String {
    // FNV-1a of the script: a changed policy installs again.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in script(policy).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("inet-{h:016x}")
}

/// Makes sure the table holds `policy` and forwarding is on (once per boot, namespace and
/// policy).
pub fn ensure(policy: &NetPolicy) -> Result<()> {
    let marks = marks_dir()?;
    let mark = marks.join(policy_mark(policy));
    if mark.exists() {
        return Ok(());
    }
    let _lock =
        crate::store::Lock::acquire(&marks.join(".lock"), std::time::Duration::from_secs(30))?;
    if mark.exists() {
        return Ok(());
    }
    crate::network::run("nft", &["-f", "-"], Some(&script(policy))).map_err(|e| {
        Error::Unsupported(format!("install the containers' firewall (nftables): {e}"))
    })?;
    let forwarding = std::fs::read_to_string(FORWARDING).unwrap_or_default();
    if forwarding.trim() != "1" {
        std::fs::write(FORWARDING, "1").map_err(|e| Error::io("write", FORWARDING, e))?;
        // Remembered, so that teardown gives the host back as it was.
        let _ = std::fs::write(marks.join("forwarding-was-off"), b"");
    }
    // With br_netfilter passing bridged frames to the IP hooks, a container's connection to
    // a forward of another container is DNATed at layer 2 and then dropped by the ports'
    // isolation; routed by the host instead, it reaches its target (and is masqueraded
    // back). The switch is per network namespace and put back by teardown.
    let bridge_nf = std::fs::read_to_string(BRIDGE_NF).unwrap_or_default();
    if bridge_nf.trim() == "1" {
        std::fs::write(BRIDGE_NF, "0").map_err(|e| Error::io("write", BRIDGE_NF, e))?;
        let _ = std::fs::write(marks.join("bridge-nf-was-on"), b"");
    }
    for old in std::fs::read_dir(&marks).into_iter().flatten().flatten() {
        let name = old.file_name();
        if name.to_string_lossy().starts_with("inet-") {
            let _ = std::fs::remove_file(old.path());
        }
    }
    std::fs::write(&mark, b"").map_err(|e| Error::io("write", &mark, e))
}

/// Removes everything Acetate added to this network namespace: both tables, the bridge,
/// and forwarding if Acetate turned it on. Callers make sure no container uses them.
pub fn teardown() -> Result<Vec<String>> {
    let marks = netns_marks()?;
    let mut done = Vec::new();
    for table in ["inet acetate", "bridge acetate"] {
        let args: Vec<&str> = ["delete", "table"]
            .into_iter()
            .chain(table.split(' '))
            .collect();
        if crate::network::run("nft", &args, None).is_ok() {
            done.push(format!("nftables table {table}"));
        }
    }
    if crate::network::link_exists(crate::network::BRIDGE) {
        crate::network::run("ip", &["link", "del", crate::network::BRIDGE], None)?;
        done.push(format!("bridge {}", crate::network::BRIDGE));
    }
    if marks.join("bridge-nf-was-on").exists() {
        std::fs::write(BRIDGE_NF, "1").map_err(|e| Error::io("write", BRIDGE_NF, e))?;
        done.push("br_netfilter's bridge-nf-call-iptables (turned on again)".into());
    }
    if marks.join("forwarding-was-off").exists() {
        std::fs::write(FORWARDING, "0").map_err(|e| Error::io("write", FORWARDING, e))?;
        done.push("IPv4 forwarding (turned off again)".into());
    }
    if marks.exists() {
        std::fs::remove_dir_all(&marks).map_err(|e| Error::io("remove", &marks, e))?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_parse_with_tcp_by_default() {
        assert_eq!(
            "53/udp".parse::<HostPort>(),
            Ok(HostPort {
                port: 53,
                udp: true
            })
        );
        assert_eq!("8080".parse::<HostPort>().unwrap().to_string(), "8080/tcp");
        assert!("0".parse::<HostPort>().is_err());
        assert!("80/sctp".parse::<HostPort>().unwrap_err().contains("sctp"));
    }

    #[test]
    fn the_table_blocks_smtp_unless_allowed_and_opens_only_listed_host_ports() {
        let strict = script(&NetPolicy::default());
        assert!(strict.contains("tcp dport 25 reject"));
        assert!(strict.contains("add element inet acetate host_udp { 53 }"));
        assert!(strict.contains("masquerade"));
        let open = script(&NetPolicy {
            allow_smtp: true,
            host_ports: vec!["8080/tcp".parse().unwrap(), "22".parse().unwrap()],
        });
        assert!(!open.contains("dport 25"));
        assert!(open.contains("host_tcp { 22, 8080 }"));
        assert!(!open.contains("add element inet acetate host_udp"));
        // The forward maps are kept across installs: made if missing, never flushed.
        assert!(open.contains("add map inet acetate fwd_tcp"));
        assert!(!open.contains("flush map"));
        assert_ne!(
            policy_mark(&NetPolicy::default()),
            policy_mark(&NetPolicy {
                allow_smtp: true,
                ..NetPolicy::default()
            })
        );
    }
}
