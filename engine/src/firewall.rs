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
//! policy (marks in `/run/acetate/net/<netns>/`), in one transaction, through nft's JSON
//! interface ([`crate::nft`]).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::netconf::Network;
use crate::network::NetInfo;
use crate::nft::{self, Batch, Table};

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

fn ports(policy: &NetPolicy, udp: bool) -> Vec<u16> {
    let mut list: Vec<u16> = policy
        .host_ports
        .iter()
        .filter(|p| p.udp == udp)
        .map(|p| p.port)
        .collect();
    list.sort_unstable();
    list.dedup();
    list
}

/// The table of one engine's network (`inet acetate_<bridge>`) with `policy`: sets and
/// chains are (re)made and filled in one transaction; the sets of containers refused
/// egress are kept (each container's start puts its addresses in).
pub(crate) fn batch(policy: &NetPolicy, net: &Network) -> Batch {
    let bridge = net.bridge.as_str();
    let t = Table::new("inet", net.table());
    let mut b = Batch::default();
    b.add(t.table());
    for (set, udp) in [("host_tcp", false), ("host_udp", true)] {
        b.add(t.set(set, &["inet_service"]))
            .flush(t.set(set, &["inet_service"]));
        let elements: Vec<Value> = ports(policy, udp).into_iter().map(|p| json!(p)).collect();
        if !elements.is_empty() {
            b.add(t.elements(set, elements));
        }
    }
    b.add(t.set("no_egress", &["ipv4_addr"]))
        .add(t.set("no_egress6", &["ipv6_addr"]));
    let from = || nft::is(nft::meta("iifname"), json!(bridge));
    let to = || nft::is(nft::meta("oifname"), json!(bridge));
    let answers = || nft::has(nft::ct("state"), json!(["established", "related"]));
    let dnatted = || nft::has(nft::ct("status"), json!("dnat"));
    let (accept, drop) = (|| nft::verdict("accept"), || nft::verdict("drop"));
    let refused = || nft::reject("icmpx", Some("admin-prohibited"));
    let mut chain = |name: &str, kind: &str, prio: i32, rules: Vec<Vec<Value>>| {
        b.add(t.base_chain(name, kind, name, prio))
            .flush(t.chain(name));
        for r in rules {
            b.add(t.rule(name, r));
        }
    };
    let icmp = nft::anonymous(vec![json!("icmp"), json!("ipv6-icmp")]);
    chain(
        "input",
        "filter",
        0,
        vec![
            vec![from(), answers(), accept()],
            vec![from(), nft::is(nft::meta("l4proto"), icmp), accept()],
            vec![
                from(),
                nft::is(nft::payload("tcp", "dport"), nft::named("host_tcp")),
                accept(),
            ],
            vec![
                from(),
                nft::is(nft::payload("udp", "dport"), nft::named("host_udp")),
                accept(),
            ],
            vec![from(), drop()],
        ],
    );
    let mut forward = vec![
        vec![to(), answers(), accept()],
        vec![to(), dnatted(), accept()],
        vec![to(), drop()],
        vec![
            from(),
            nft::is(nft::payload("ip", "saddr"), nft::named("no_egress")),
            refused(),
        ],
        vec![
            from(),
            nft::is(nft::payload("ip6", "saddr"), nft::named("no_egress6")),
            refused(),
        ],
    ];
    if !policy.allow_smtp {
        forward.push(vec![
            from(),
            nft::is(nft::payload("tcp", "dport"), json!(25)),
            nft::reject("tcp reset", None),
        ]);
    }
    chain("forward", "filter", 0, forward);
    // Hairpin: a container reaching a forward of the host is answered through the host.
    let subnet = || {
        nft::is(
            nft::payload("ip", "saddr"),
            nft::prefix(net.subnet.network(), net.subnet.prefix_len()),
        )
    };
    let masquerade = || nft::verdict("masquerade");
    let mut postrouting = vec![
        vec![subnet(), to(), dnatted(), masquerade()],
        vec![
            subnet(),
            nft::is_not(nft::meta("oifname"), json!(bridge)),
            masquerade(),
        ],
    ];
    if let Some(p6) = net.ipv6_prefix {
        postrouting.push(vec![
            nft::is(
                nft::payload("ip6", "saddr"),
                nft::prefix(p6.network(), p6.prefix_len()),
            ),
            to(),
            dnatted(),
            masquerade(),
        ]);
    }
    chain("postrouting", "nat", 100, postrouting);
    b
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
    let t = Table::new("inet", net.table());
    let mut elements = vec![t.elements("no_egress", vec![json!(info.address.to_string())])];
    if let Some(a6) = info.address6 {
        elements.push(t.elements("no_egress6", vec![json!(a6.to_string())]));
    }
    if refused {
        let mut b = Batch::default();
        for e in elements {
            b.add(e);
        }
        b.apply()
            .map_err(|e| Error::Unsupported(format!("refuse egress (nftables): {e}")))
    } else {
        // Deleting what is not there fails: nothing to do then.
        for e in elements {
            let _ = Batch::default().delete(e).apply();
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

/// The mark of a batch: a changed batch installs again.
fn mark_of(prefix: &str, batch: &Batch) -> String {
    format!(
        "{prefix}-{:016x}",
        crate::store::fnv1a(batch.to_json().as_bytes())
    )
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

/// Installs `batch` unless its mark (`<prefix>-<hash>`) says it is in, with what
/// `around` puts before and after it in the same transaction; older marks of the same
/// prefix go.
fn install_once(
    marks: &Path,
    prefix: &str,
    batch: &Batch,
    around: impl FnOnce() -> (Batch, Batch),
    what: &str,
) -> Result<bool> {
    let mark = marks.join(mark_of(prefix, batch));
    if mark.exists() {
        return Ok(false);
    }
    let (first, last) = around();
    let mut all = Batch::default();
    all.extend(first).extend_from(batch).extend(last);
    all.apply()
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
    // The mark of the last policy and network asked for: building the batch to name it
    // costs more than the rest of a start's firewall work.
    type Known = Option<(NetPolicy, Network, String)>;
    static KNOWN: std::sync::Mutex<Known> = std::sync::Mutex::new(None);
    let marks = marks_dir()?;
    let prefix = format!("net_{}", net.bridge);
    let known = KNOWN.lock().ok().and_then(|k| match &*k {
        Some((p, n, mark)) if p == policy && n == net => Some(mark.clone()),
        _ => None,
    });
    if known.is_some_and(|mark| marks.join(mark).exists()) {
        return Ok(());
    }
    let own = batch(policy, net);
    let mark = mark_of(&prefix, &own);
    if let Ok(mut k) = KNOWN.lock() {
        *k = Some((policy.clone(), net.clone(), mark.clone()));
    }
    if marks.join(&mark).exists() {
        return Ok(());
    }
    let _lock =
        crate::store::Lock::acquire(&marks.join(".lock"), std::time::Duration::from_secs(30))?;
    install_once(
        &marks,
        "shared",
        &crate::forward::shared_batch(),
        crate::forward::legacy_forwards,
        "the forwards' table",
    )?;
    let nothing = || (Batch::default(), Batch::default());
    if !install_once(&marks, &prefix, &own, nothing, "the containers' firewall")? {
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
    nft::list_tables("inet")
        .into_iter()
        .filter(|t| t.starts_with("acetate_"))
        .collect()
}

/// Removes what Acetate added to this network namespace for `net`: its table and its
/// bridge; with the last engine network gone, the shared tables too and forwarding if
/// Acetate turned it on. Callers make sure no container uses them.
pub fn teardown(net: &Network) -> Result<Vec<String>> {
    let marks = netns_marks()?;
    let mut done = Vec::new();
    let delete = |done: &mut Vec<String>, table: Table| {
        if Batch::default().delete(table.table()).apply().is_ok() {
            done.push(format!("nftables table {}", table.shown()));
        }
    };
    delete(&mut done, Table::new("inet", net.table()));
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
    for table in [
        crate::forward::shared_table(),
        crate::network::filter_table(),
    ] {
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
        let t = Table::new("inet", "acetate_acetate0");
        let from = || nft::is(nft::meta("iifname"), json!("acetate0"));
        let smtp = t.rule(
            "forward",
            vec![
                from(),
                nft::is(nft::payload("tcp", "dport"), json!(25)),
                nft::reject("tcp reset", None),
            ],
        );
        let strict = batch(&NetPolicy::default(), &net);
        assert!(strict.adds(smtp.clone()));
        assert!(strict.adds(t.elements("host_udp", vec![json!(53)])));
        assert!(strict.adds(t.rule(
            "postrouting",
            vec![
                nft::is(nft::payload("ip", "saddr"), nft::prefix("10.88.0.0", 16)),
                nft::is_not(nft::meta("oifname"), json!("acetate0")),
                nft::verdict("masquerade"),
            ]
        )));
        let open = batch(
            &NetPolicy {
                allow_smtp: true,
                host_ports: vec!["8080/tcp".parse().unwrap(), "22".parse().unwrap()],
            },
            &net,
        );
        assert!(!open.adds(smtp));
        assert!(open.adds(t.elements("host_tcp", vec![json!(22), json!(8080)])));
        assert!(!open
            .commands()
            .iter()
            .any(|c| c["add"]["element"]["name"] == "host_udp"));
        assert_ne!(mark_of("net", &strict), mark_of("net", &open));
        // Another network: its own table, bridge and subnet.
        let own = Network {
            bridge: "hosting1".into(),
            subnet: "10.77.0.0/20".parse().unwrap(),
            ipv6_prefix: Some("2001:db8:ac::/64".parse().unwrap()),
        };
        let theirs = batch(&NetPolicy::default(), &own);
        let t1 = Table::new("inet", "acetate_hosting1");
        assert_eq!(theirs.commands()[0], json!({ "add": t1.table() }));
        assert!(theirs.adds(t1.rule(
            "forward",
            vec![
                nft::is(nft::meta("iifname"), json!("hosting1")),
                nft::is(nft::payload("ip6", "saddr"), nft::named("no_egress6")),
                nft::reject("icmpx", Some("admin-prohibited")),
            ]
        )));
        let text = theirs.to_json();
        assert!(!text.contains("acetate0") && !text.contains("10.88."));
        // The forward maps are shared and kept across installs: made if missing, never
        // flushed; what older versions kept in the shared table goes.
        let shared = crate::forward::shared_batch();
        let s = crate::forward::shared_table();
        assert!(shared.adds(s.map("fwd_tcp_addr", &["inet_service"], "ipv4_addr")));
        assert!(shared.adds(s.map(
            "fwd4_udp_port",
            &["ipv4_addr", "inet_service"],
            "inet_service"
        )));
        assert!(!shared.to_json().contains("\"flush\":{\"map\""));
        assert!(shared
            .commands()
            .contains(&json!({ "delete": s.chain("forward") })));
        // A forward on every address: the local-destination test, then DNAT by both maps.
        assert!(shared.adds(s.rule(
            "prerouting",
            vec![
                nft::to_local(),
                nft::dnat_maps(
                    "ip",
                    nft::payload("tcp", "dport"),
                    "fwd_tcp_addr",
                    "fwd_tcp_port"
                ),
            ]
        )));
    }
}
