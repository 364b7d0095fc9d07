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
use crate::netconf::Network;
use crate::network::NetInfo;

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

/// Where the marks of installed tables live (cleared at boot, like the rules).
const MARKS: &str = "/run/acetate/net";
const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";
const FORWARDING6: &str = "/proc/sys/net/ipv6/conf/all/forwarding";
/// br_netfilter's switches (IPv4, IPv6) and the marks that say Acetate turned them off.
const BRIDGE_NF: [(&str, &str); 2] = [
    (
        "/proc/sys/net/bridge/bridge-nf-call-iptables",
        "bridge-nf-was-on",
    ),
    (
        "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
        "bridge-nf6-was-on",
    ),
];
/// The table every engine's forwards share.
const SHARED: &str = "inet acetate";

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

/// The shared table `inet acetate`: the forward maps (made if missing and kept: they hold
/// every engine's forwards, so a public port is in them at most once) and the chains that
/// DNAT to them. What an earlier version kept here per network is taken out (each network
/// has its own table now).
pub fn shared_script() -> String {
    let t = SHARED;
    let mut out = format!("add table {t}\n");
    for chain in ["input", "forward", "postrouting"] {
        out.push_str(&format!(
            "add chain {t} {chain}\nflush chain {t} {chain}\ndelete chain {t} {chain}\n"
        ));
    }
    for (set, kind) in [
        ("host_tcp", "inet_service"),
        ("host_udp", "inet_service"),
        ("no_egress", "ipv4_addr"),
    ] {
        out.push_str(&format!(
            "add set {t} {set} {{ type {kind}; }}\ndelete set {t} {set}\n"
        ));
    }
    for map in ["fwd_tcp", "fwd_udp"] {
        out.push_str(&format!(
            "add map {t} {map} {{ type inet_service : ipv4_addr . inet_service; }}\n"
        ));
    }
    // The same forwards over IPv6, to containers that have an IPv6 address.
    for map in ["fwd6_tcp", "fwd6_udp"] {
        out.push_str(&format!(
            "add map {t} {map} {{ type inet_service : ipv6_addr . inet_service; }}\n"
        ));
    }
    // Forwards published on one address of the host; they come first.
    for map in ["fwd4_tcp", "fwd4_udp"] {
        out.push_str(&format!(
            "add map {t} {map} {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}\n"
        ));
    }
    for map in ["fwd6a_tcp", "fwd6a_udp"] {
        out.push_str(&format!(
            "add map {t} {map} {{ type ipv6_addr . inet_service : ipv6_addr . inet_service; }}\n"
        ));
    }
    let dnat = [
        "dnat ip to ip daddr . tcp dport map @fwd4_tcp",
        "dnat ip to ip daddr . udp dport map @fwd4_udp",
        "dnat ip6 to ip6 daddr . tcp dport map @fwd6a_tcp",
        "dnat ip6 to ip6 daddr . udp dport map @fwd6a_udp",
        "fib daddr type local dnat ip to tcp dport map @fwd_tcp",
        "fib daddr type local dnat ip to udp dport map @fwd_udp",
        "fib daddr type local dnat ip6 to tcp dport map @fwd6_tcp",
        "fib daddr type local dnat ip6 to udp dport map @fwd6_udp",
    ];
    for (chain, hook) in [
        ("prerouting", "type nat hook prerouting priority dstnat"),
        ("output", "type nat hook output priority -100"),
    ] {
        out.push_str(&format!(
            "add chain {t} {chain} {{ {hook}; policy accept; }}\nflush chain {t} {chain}\n"
        ));
        for r in dnat {
            out.push_str(&format!("add rule {t} {chain} {r}\n"));
        }
    }
    out
}

/// The table of one engine's network (`inet acetate_<bridge>`) with `policy`: sets and
/// chains are (re)made and filled in one transaction; the sets of containers refused
/// egress are kept (each container's start puts its addresses in).
pub fn script(policy: &NetPolicy, net: &Network) -> String {
    let bridge = net.bridge.as_str();
    let subnet = net.subnet;
    let t = format!("inet {}", net.table());
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
    out.push_str(&format!("add set {t} no_egress {{ type ipv4_addr; }}\n"));
    out.push_str(&format!("add set {t} no_egress6 {{ type ipv6_addr; }}\n"));
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
            format!("{from} meta l4proto {{ icmp, ipv6-icmp }} accept"),
            format!("{from} tcp dport @host_tcp accept"),
            format!("{from} udp dport @host_udp accept"),
            format!("{from} drop"),
        ],
    );
    let mut forward = vec![
        format!("{to} ct state established,related accept"),
        format!("{to} ct status dnat accept"),
        format!("{to} drop"),
        format!("{from} ip saddr @no_egress reject with icmpx type admin-prohibited"),
        format!("{from} ip6 saddr @no_egress6 reject with icmpx type admin-prohibited"),
    ];
    if !policy.allow_smtp {
        forward.push(format!("{from} tcp dport 25 reject with tcp reset"));
    }
    chain(
        &mut out,
        "forward",
        "type filter hook forward priority 0",
        &forward,
    );
    // Hairpin: a container reaching a forward of the host is answered through the host.
    let mut postrouting = vec![
        format!("ip saddr {subnet} {to} ct status dnat masquerade"),
        format!("ip saddr {subnet} oifname != \"{bridge}\" masquerade"),
    ];
    if let Some(prefix) = net.ipv6_prefix {
        postrouting.push(format!("ip6 saddr {prefix} {to} ct status dnat masquerade"));
    }
    chain(
        &mut out,
        "postrouting",
        "type nat hook postrouting priority srcnat",
        &postrouting,
    );
    out
}

impl crate::Engine {
    /// Everything a networked container needs beyond its own links before it starts: the
    /// bridge filter for this engine's range, the table with the provider's policy, its
    /// address refused egress if it must be, its forwards (the maps are empty after a boot).
    pub(crate) fn ready_network(&self, cfg: &crate::store::ContainerConfig) -> Result<()> {
        crate::network::ensure_filter(self.identity())?;
        let network = self.identity().network();
        ensure(&self.net_policy, &network)?;
        let net = self.identity().net_info(cfg.id_base);
        // Only a refusal is put in: a container let out again was taken out at once (or
        // at its destruction), so there is nothing to delete on every start.
        if cfg.no_egress {
            set_egress(&network, &net, true)?;
        }
        crate::forward::install(&cfg.forwards, &net)
    }

    /// Takes a destroyed container's entries out of the table.
    pub(crate) fn release_network(&self, cfg: &crate::store::ContainerConfig) {
        let net = self.identity().net_info(cfg.id_base);
        crate::forward::uninstall(&cfg.forwards, &net);
        if cfg.no_egress {
            let _ = set_egress(&self.identity().network(), &net, false);
        }
    }
}

/// Puts the addresses of the container at `info` in its network's sets of containers
/// refused egress (`refused`) or takes them out; idempotent.
pub(crate) fn set_egress(net: &Network, info: &NetInfo, refused: bool) -> Result<()> {
    let t = format!("inet {}", net.table());
    let mut elements = vec![format!("{t} no_egress {{ {} }}", info.address)];
    if let Some(a6) = info.address6 {
        elements.push(format!("{t} no_egress6 {{ {a6} }}"));
    }
    if refused {
        let script: String = elements
            .iter()
            .map(|e| format!("add element {e}\n"))
            .collect();
        crate::network::run("nft", &["-f", "-"], Some(&script))
    } else {
        // Deleting what is not there fails: nothing to do then.
        for e in elements {
            let _ =
                crate::network::run("nft", &["-f", "-"], Some(&format!("delete element {e}\n")));
        }
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

/// The mark of a script: a changed script installs again.
fn mark_of(prefix: &str, script: &str) -> String {
    format!("{prefix}-{:016x}", crate::store::fnv1a(script.as_bytes()))
}

/// Turns a forwarding switch on, remembering (by `mark`) that Acetate did.
fn switch_on(path: &str, marks: &Path, mark: &str) -> Result<()> {
    let now = std::fs::read_to_string(path).unwrap_or_default();
    if now.trim() != "1" {
        std::fs::write(path, "1").map_err(|e| Error::io("write", path, e))?;
        let _ = std::fs::write(marks.join(mark), b"");
    }
    Ok(())
}

/// Installs `script` unless its mark (`<prefix>-<hash>`) says it is in; older marks of the
/// same prefix go.
fn install_once(marks: &Path, prefix: &str, script: &str, what: &str) -> Result<bool> {
    let mark = marks.join(mark_of(prefix, script));
    if mark.exists() {
        return Ok(false);
    }
    crate::network::run("nft", &["-f", "-"], Some(script))
        .map_err(|e| Error::Unsupported(format!("install {what} (nftables): {e}")))?;
    for old in std::fs::read_dir(marks).into_iter().flatten().flatten() {
        if old
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("{prefix}-"))
        {
            let _ = std::fs::remove_file(old.path());
        }
    }
    std::fs::write(&mark, b"").map_err(|e| Error::io("write", &mark, e))?;
    Ok(true)
}

/// Makes sure the shared table and `net`'s table hold `policy` and forwarding is on (once
/// per boot, namespace and policy).
pub fn ensure(policy: &NetPolicy, net: &Network) -> Result<()> {
    let marks = marks_dir()?;
    let own = script(policy, net);
    let prefix = format!("net_{}", net.bridge);
    if marks.join(mark_of(&prefix, &own)).exists() {
        return Ok(());
    }
    let _lock =
        crate::store::Lock::acquire(&marks.join(".lock"), std::time::Duration::from_secs(30))?;
    install_once(&marks, "shared", &shared_script(), "the forwards' table")?;
    if !install_once(&marks, &prefix, &own, "the containers' firewall")? {
        return Ok(());
    }
    switch_on(FORWARDING, &marks, "forwarding-was-off")?;
    if net.ipv6_prefix.is_some() {
        // Containers' IPv6 is routed (a provider's prefix is routed to the host).
        switch_on(FORWARDING6, &marks, "forwarding6-was-off")?;
    }
    // With br_netfilter passing bridged frames to the IP hooks, a container's connection to
    // a forward of another container is DNATed at layer 2 and then dropped by the ports'
    // isolation; routed by the host instead, it reaches its target (and is masqueraded
    // back). The switch is per network namespace and put back by teardown.
    for (switch, mark) in BRIDGE_NF {
        let on = std::fs::read_to_string(switch).unwrap_or_default();
        if on.trim() == "1" {
            std::fs::write(switch, "0").map_err(|e| Error::io("write", switch, e))?;
            let _ = std::fs::write(marks.join(mark), b"");
        }
    }
    Ok(())
}

/// The `inet` tables of engine networks in this network namespace.
fn network_tables() -> Vec<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "tables", "inet"])
        .stderr(std::process::Stdio::null())
        .output();
    let text = out.map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table inet "))
        .filter(|t| t.starts_with("acetate_"))
        .map(str::to_string)
        .collect()
}

/// Removes what Acetate added to this network namespace for `net`: its table and its
/// bridge; with the last engine network gone, the shared tables too and forwarding if
/// Acetate turned it on. Callers make sure no container uses them.
pub fn teardown(net: &Network) -> Result<Vec<String>> {
    let marks = netns_marks()?;
    let mut done = Vec::new();
    let delete = |done: &mut Vec<String>, table: &str| {
        let args: Vec<&str> = ["delete", "table"]
            .into_iter()
            .chain(table.split(' '))
            .collect();
        if crate::network::run("nft", &args, None).is_ok() {
            done.push(format!("nftables table {table}"));
        }
    };
    delete(&mut done, &format!("inet {}", net.table()));
    if crate::network::link_exists(&net.bridge) {
        crate::netlink::delete_link(&net.bridge)?;
        done.push(format!("bridge {}", net.bridge));
    }
    for old in std::fs::read_dir(&marks).into_iter().flatten().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("net_{}-", net.bridge))
            || name.starts_with(&format!("range-{}-", net.bridge))
        {
            let _ = std::fs::remove_file(old.path());
        }
    }
    if !network_tables().is_empty() {
        // Another engine's network is still here: the shared tables stay.
        return Ok(done);
    }
    for table in [SHARED, "bridge acetate"] {
        delete(&mut done, table);
    }
    for (switch, mark) in BRIDGE_NF {
        if marks.join(mark).exists() {
            std::fs::write(switch, "1").map_err(|e| Error::io("write", switch, e))?;
            let name = switch.rsplit('/').next().unwrap_or(switch);
            done.push(format!("br_netfilter's {name} (turned on again)"));
        }
    }
    if marks.join("forwarding-was-off").exists() {
        std::fs::write(FORWARDING, "0").map_err(|e| Error::io("write", FORWARDING, e))?;
        done.push("IPv4 forwarding (turned off again)".into());
    }
    if marks.join("forwarding6-was-off").exists() {
        std::fs::write(FORWARDING6, "0").map_err(|e| Error::io("write", FORWARDING6, e))?;
        done.push("IPv6 forwarding (turned off again)".into());
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
        let net = Network::default();
        let strict = script(&NetPolicy::default(), &net);
        assert!(strict.contains("tcp dport 25 reject"));
        assert!(strict.contains("add element inet acetate_acetate0 host_udp { 53 }"));
        assert!(strict.contains("ip saddr 10.88.0.0/16 oifname != \"acetate0\" masquerade"));
        let open = script(
            &NetPolicy {
                allow_smtp: true,
                host_ports: vec!["8080/tcp".parse().unwrap(), "22".parse().unwrap()],
            },
            &net,
        );
        assert!(!open.contains("dport 25"));
        assert!(open.contains("host_tcp { 22, 8080 }"));
        assert!(!open.contains("add element inet acetate_acetate0 host_udp"));
        assert_ne!(mark_of("net", &strict), mark_of("net", &open));
        // Another network: its own table, bridge and subnet.
        let own = Network {
            bridge: "hosting1".into(),
            subnet: "10.77.0.0/20".parse().unwrap(),
            ipv6_prefix: Some("2001:db8:ac::/64".parse().unwrap()),
        };
        let theirs = script(&NetPolicy::default(), &own);
        assert!(theirs.starts_with("add table inet acetate_hosting1\n"));
        assert!(theirs.contains("iifname \"hosting1\" ip6 saddr @no_egress6 reject"));
        assert!(!theirs.contains("acetate0") && !theirs.contains("10.88."));
        // The forward maps are shared and kept across installs: made if missing, never
        // flushed; what older versions kept in the shared table goes.
        let shared = shared_script();
        assert!(shared.contains("add map inet acetate fwd_tcp"));
        assert!(!shared.contains("flush map"));
        assert!(shared.contains("delete chain inet acetate forward"));
    }
}
