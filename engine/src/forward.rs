//! Port forwards: a public TCP or UDP port of the host leads to a port of a container.
//!
//! Each forward is kept in the container's config (so it survives restarts of the
//! container, of the panel and of the host) and lives in the maps of the `inet acetate`
//! table: `fwd_tcp_addr` / `fwd_tcp_port` (and `_udp`) for forwards on every address,
//! `fwd6_*` for containers with an IPv6 address, `fwd4_*` / `fwd6a_*` for those published
//! on one address of the host; one map of each pair gives the target's address, the other
//! its port (see [`crate::nft`]). They DNAT connections to the host's own addresses
//! (from outside, from the host itself, and from containers: the hairpin is masqueraded so
//! the answer comes back the same way). A public port is in the maps at most once, so it
//! can never be given twice, whichever engine asks; a container's forwards are put back at
//! its start (the maps are empty after a boot) and removed when it is destroyed.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::network::NetInfo;
use crate::nft::{self, Batch, Table};
use crate::{require_root, Engine, LOCK_TIMEOUT};

/// One forward: `public` on the host (on `address`, or every address of the host) to
/// `private` in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Forward {
    pub public: u16,
    pub private: u16,
    #[serde(default)]
    pub udp: bool,
    /// The host address it is published on (IPv4, or IPv6 for a container that has an
    /// IPv6 address); `None`: every address of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

impl Forward {
    /// Whether `other` takes the same public port (address, port, protocol).
    pub fn same_public(&self, other: &Forward) -> bool {
        self.public == other.public && self.udp == other.udp && self.address == other.address
    }

    fn proto(&self) -> &'static str {
        if self.udp {
            "udp"
        } else {
            "tcp"
        }
    }
}

/// `203.0.113.5:` or `[2001:db8::5]:` before a port.
fn address_prefix(f: &mut fmt::Formatter<'_>, a: Option<IpAddr>) -> fmt::Result {
    match a {
        Some(IpAddr::V4(a)) => write!(f, "{a}:"),
        Some(IpAddr::V6(a)) => write!(f, "[{a}]:"),
        None => Ok(()),
    }
}

/// Splits `[ADDRESS]:REST` or `ADDRESS:REST` (IPv4) off the front of `s` when `has_address`
/// (the caller counted the colons) or `s` starts with `[`.
fn split_address(
    s: &str,
    has_address: bool,
) -> std::result::Result<(Option<IpAddr>, &str), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (a, rest) = rest
            .split_once("]:")
            .ok_or_else(|| format!("{s:?}: write an IPv6 address as [2001:db8::5]:PORT"))?;
        let a: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv6 address of the host"))?;
        return Ok((Some(IpAddr::V6(a)), rest));
    }
    if !has_address {
        return Ok((None, s));
    }
    let (a, rest) = s.split_once(':').unwrap_or_default();
    let a: std::net::Ipv4Addr = a
        .parse()
        .map_err(|_| format!("{a:?} is not an IPv4 address of the host"))?;
    Ok((Some(IpAddr::V4(a)), rest))
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        address_prefix(f, self.address)?;
        write!(f, "{}:{}/{}", self.public, self.private, self.proto())
    }
}

impl FromStr for Forward {
    type Err = String;

    /// `8022:22/tcp`, `8022:22` (TCP), `5353:53/udp`, `203.0.113.5:8022:22/tcp`,
    /// `[2001:db8::5]:8022:22/tcp`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let (ports, proto) = s.rsplit_once('/').unwrap_or((s, "tcp"));
        let udp = match proto {
            "tcp" => false,
            "udp" => true,
            other => return Err(format!("{other:?} is not tcp or udp")),
        };
        let (address, ports) = split_address(ports, ports.matches(':').count() == 2)?;
        let Some((public, private)) = ports.split_once(':') else {
            return Err(format!(
                "{s:?}: give [ADDRESS:]PUBLIC:PRIVATE[/tcp|udp], as in 8022:22/tcp"
            ));
        };
        let port = |p: &str, what: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{what} port {p:?} is not a port (1-65535)")),
        };
        Ok(Forward {
            public: port(public, "public")?,
            private: port(private, "private")?,
            udp,
            address,
        })
    }
}

/// A public port of the host: `[ADDRESS:]PORT[/tcp|udp]` (no address: the forward on every
/// address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicPort {
    pub address: Option<IpAddr>,
    pub port: u16,
    pub udp: bool,
}

impl fmt::Display for PublicPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        address_prefix(f, self.address)?;
        write!(f, "{}/{}", self.port, if self.udp { "udp" } else { "tcp" })
    }
}

impl FromStr for PublicPort {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let (address, rest) = split_address(s, s.contains(':'))?;
        let p: crate::firewall::HostPort = rest.parse()?;
        Ok(PublicPort {
            address,
            port: p.port,
            udp: p.udp,
        })
    }
}

/// The map of forward `f` and its key, with the target's address: on every address of
/// the host, over IPv4 and (when the container has an IPv6 address) IPv6; or on one
/// address of the host (an IPv6 one only for a container with an IPv6 address: see
/// [`check_family`]).
fn entries(f: &Forward, net: &NetInfo) -> Vec<(String, Value, String)> {
    let proto = f.proto();
    let on = |a: IpAddr| nft::concat(vec![json!(a.to_string()), json!(f.public)]);
    match f.address {
        Some(a @ IpAddr::V4(_)) => vec![(format!("fwd4_{proto}"), on(a), net.address.to_string())],
        Some(a @ IpAddr::V6(_)) => net
            .address6
            .map(|c| (format!("fwd6a_{proto}"), on(a), c.to_string()))
            .into_iter()
            .collect(),
        None => std::iter::once((
            format!("fwd_{proto}"),
            json!(f.public),
            net.address.to_string(),
        ))
        .chain(
            net.address6
                .map(|a6| (format!("fwd6_{proto}"), json!(f.public), a6.to_string())),
        )
        .collect(),
    }
}

/// The elements of forward `f` in the maps of the shared table: its target's address in
/// one map, its port in the other, under the same key.
fn elements(f: &Forward, net: &NetInfo) -> Vec<Value> {
    let t = shared_table();
    entries(f, net)
        .into_iter()
        .flat_map(|(map, key, addr)| {
            [
                t.elements(&format!("{map}_addr"), vec![json!([key, addr])]),
                t.elements(&format!("{map}_port"), vec![json!([key, f.private])]),
            ]
        })
        .collect()
}

/// Refuses a forward on an IPv6 address of the host to a container without one.
fn check_family(f: &Forward, net: &NetInfo) -> Result<()> {
    if matches!(f.address, Some(IpAddr::V6(_))) && net.address6.is_none() {
        return Err(Error::InvalidLimit {
            what: "forward",
            msg: format!(
                "{f}: the container has no IPv6 address (its engine's network has no IPv6 \
                 prefix); publish it on an IPv4 address or on every address"
            ),
        });
    }
    Ok(())
}

/// Puts `forwards` of the container at `net` into the maps (idempotent), in one
/// transaction; fails without change if a public port leads elsewhere.
pub(crate) fn install(forwards: &[Forward], net: &NetInfo) -> Result<()> {
    if forwards.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::default();
    for e in forwards.iter().flat_map(|f| elements(f, net)) {
        batch.add(e);
    }
    batch.apply().map_err(|e| {
        let taken: Vec<String> = forwards.iter().map(|f| f.public.to_string()).collect();
        if e.to_string().contains("File exists") {
            Error::InvalidLimit {
                what: "forward",
                msg: format!(
                    "public port {} is already forwarded to another container",
                    taken.join(", ")
                ),
            }
        } else {
            Error::Unsupported(format!("install port forwards (nftables): {e}"))
        }
    })
}

/// Takes `forwards` out of the maps (those not there are skipped).
pub(crate) fn uninstall(forwards: &[Forward], net: &NetInfo) {
    // One forward at a time: deleting what is not there fails the whole transaction.
    for f in forwards {
        let mut batch = Batch::default();
        for e in elements(f, net) {
            batch.delete(e);
        }
        let _ = batch.apply();
    }
}

/// A forward map of the shared table `inet acetate`: its name, its key's types, and the type of the
/// address it leads to (see [`crate::forward`]).
pub(crate) struct ForwardMap {
    pub name: &'static str,
    key: &'static [&'static str],
    addr: &'static str,
}

/// The forward maps, in the order their DNAT rules are tried: forwards published on one
/// address of the host first (IPv4, then IPv6), then those on every address.
pub(crate) const FORWARD_MAPS: [ForwardMap; 8] = {
    const A4: &[&str] = &["ipv4_addr", "inet_service"];
    const A6: &[&str] = &["ipv6_addr", "inet_service"];
    const ANY: &[&str] = &["inet_service"];
    const fn m(name: &'static str, key: &'static [&'static str], addr: &'static str) -> ForwardMap {
        ForwardMap { name, key, addr }
    }
    [
        m("fwd4_tcp", A4, "ipv4_addr"),
        m("fwd4_udp", A4, "ipv4_addr"),
        m("fwd6a_tcp", A6, "ipv6_addr"),
        m("fwd6a_udp", A6, "ipv6_addr"),
        m("fwd_tcp", ANY, "ipv4_addr"),
        m("fwd_udp", ANY, "ipv4_addr"),
        m("fwd6_tcp", ANY, "ipv6_addr"),
        m("fwd6_udp", ANY, "ipv6_addr"),
    ]
};

impl ForwardMap {
    /// The map of the target's address.
    pub fn addr_map(&self) -> String {
        format!("{}_addr", self.name)
    }

    /// The map of the target's port.
    pub fn port_map(&self) -> String {
        format!("{}_port", self.name)
    }

    /// The DNAT rule over this map's pair.
    fn rule(&self) -> Vec<Value> {
        let proto = if self.name.ends_with("_tcp") {
            "tcp"
        } else {
            "udp"
        };
        let (family, addr) = if self.addr == "ipv4_addr" {
            ("ip", "ip")
        } else {
            ("ip6", "ip6")
        };
        let dport = nft::payload(proto, "dport");
        let dnat = |key| nft::dnat_maps(family, key, &self.addr_map(), &self.port_map());
        if self.key.len() == 2 {
            vec![dnat(nft::concat(vec![nft::payload(addr, "daddr"), dport]))]
        } else {
            vec![nft::to_local(), dnat(dport)]
        }
    }
}

pub(crate) fn shared_table() -> Table {
    Table::new("inet", "acetate")
}

/// The shared table `inet acetate`: the forward maps (made if missing and kept: they hold
/// every engine's forwards, so a public port is in them at most once) and the chains that
/// DNAT to them. What an earlier version kept here per network is taken out (each network
/// has its own table now).
pub(crate) fn shared_batch() -> Batch {
    let t = shared_table();
    let mut b = Batch::default();
    b.add(t.table());
    for chain in ["input", "forward", "postrouting"] {
        b.add(t.chain(chain))
            .flush(t.chain(chain))
            .delete(t.chain(chain));
    }
    for (set, kind) in [
        ("host_tcp", "inet_service"),
        ("host_udp", "inet_service"),
        ("no_egress", "ipv4_addr"),
    ] {
        b.add(t.set(set, &[kind])).delete(t.set(set, &[kind]));
    }
    for m in &FORWARD_MAPS {
        b.add(t.map(&m.addr_map(), m.key, m.addr))
            .add(t.map(&m.port_map(), m.key, "inet_service"));
    }
    for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        b.add(t.base_chain(chain, "nat", hook, -100))
            .flush(t.chain(chain));
        for m in &FORWARD_MAPS {
            b.add(t.rule(chain, m.rule()));
        }
    }
    b
}

/// What moves the forwards of an earlier version's maps (address and port concatenated in
/// one map, which nft's JSON interface cannot take) into the pairs of maps: their DNAT
/// chains flushed and the maps deleted first, their elements added to the new maps last.
/// Empty when there are none.
pub(crate) fn legacy_forwards() -> (Batch, Batch) {
    let t = shared_table();
    let (mut first, mut last) = (Batch::default(), Batch::default());
    let objects = nft::list_table(&t).unwrap_or_default();
    let legacy: Vec<&Value> = objects
        .iter()
        .filter_map(|o| o.get("map"))
        .filter(|m| m["map"].as_str().is_some_and(|d| d.contains(" . ")))
        .collect();
    if legacy.is_empty() {
        return (first, last);
    }
    let chains = objects.iter().filter_map(|o| o["chain"]["name"].as_str());
    for chain in chains {
        first.flush(t.chain(chain));
    }
    for map in legacy {
        let name = map["name"].as_str().unwrap_or_default();
        let Some(m) = FORWARD_MAPS.iter().find(|m| m.name == name) else {
            continue;
        };
        first.delete(json!({ "map": { "family": t.family, "table": t.name, "name": name } }));
        let (mut addrs, mut ports) = (Vec::new(), Vec::new());
        for elem in map["elem"].as_array().into_iter().flatten() {
            let (key, target) = (&elem[0], &elem[1]["concat"]);
            if let [addr, port] = target.as_array().map(Vec::as_slice).unwrap_or_default() {
                addrs.push(json!([key, addr]));
                ports.push(json!([key, port]));
            }
        }
        if !addrs.is_empty() {
            last.add(t.elements(&m.addr_map(), addrs))
                .add(t.elements(&m.port_map(), ports));
        }
    }
    (first, last)
}

impl Engine {
    /// A container's forwards.
    pub fn forwards(&self, name: &str) -> Result<Vec<Forward>> {
        Ok(self.config(name)?.forwards)
    }

    /// Forwards public port `f.public` of the host to port `f.private` of container
    /// `name`, now and after every restart. Refused if the port is given already (here or
    /// by another engine of the host) or the container has no network.
    pub fn add_forward(&self, name: &str, f: Forward) -> Result<Vec<Forward>> {
        require_root("forward ports")?;
        // The global lock: two containers must not take one port at once.
        let _global = self.layout.lock_global(LOCK_TIMEOUT)?;
        let (_lock, mut cfg) = self.lock(name)?;
        if !cfg.network {
            return Err(Error::InvalidLimit {
                what: "forward",
                msg: format!("{name} has no network interface (create it with --net)"),
            });
        }
        if let Some(same) = cfg.forwards.iter().find(|o| o.same_public(&f)) {
            if *same == f {
                return Ok(cfg.forwards);
            }
            return Err(Error::InvalidLimit {
                what: "forward",
                msg: format!("public port {} already leads to {same}", f.public),
            });
        }
        for o in self.configs()? {
            if o.name == name {
                continue;
            }
            if o.forwards.iter().any(|x| x.same_public(&f)) {
                return Err(Error::InvalidLimit {
                    what: "forward",
                    msg: format!(
                        "public port {}/{} is already forwarded to another container",
                        f.public,
                        f.proto()
                    ),
                });
            }
        }
        let net = self.identity().net_info(cfg.id_base);
        check_family(&f, &net)?;
        crate::firewall::ensure(&self.net_policy, &self.identity().network())?;
        install(&[f], &net)?;
        cfg.forwards.push(f);
        cfg.forwards.sort();
        if let Err(e) = crate::store::write_json(&self.layout.config(name), &cfg) {
            uninstall(&[f], &net);
            return Err(e);
        }
        Ok(cfg.forwards)
    }

    /// Lets container `name` reach the outside, or refuses its traffic beyond the host
    /// (the host's open ports, forwards to it and answers to the host still work); live,
    /// and kept for its next starts.
    pub fn set_egress(&self, name: &str, allowed: bool) -> Result<()> {
        require_root("change containers")?;
        let (_lock, mut cfg) = self.lock(name)?;
        cfg.no_egress = !allowed;
        crate::store::write_json(&self.layout.config(name), &cfg)?;
        if cfg.network && self.run_state(name)?.is_some() {
            let network = self.identity().network();
            crate::firewall::ensure(&self.net_policy, &network)?;
            crate::firewall::set_egress(
                &network,
                &self.identity().net_info(cfg.id_base),
                !allowed,
            )?;
        }
        Ok(())
    }

    /// Removes the forward of public port `public` (`udp` or TCP) from container `name`.
    pub fn remove_forward(&self, name: &str, public: PublicPort) -> Result<Vec<Forward>> {
        require_root("forward ports")?;
        let (_lock, mut cfg) = self.lock(name)?;
        let Some(i) = cfg.forwards.iter().position(|f| {
            f.public == public.port && f.udp == public.udp && f.address == public.address
        }) else {
            return Err(Error::InvalidLimit {
                what: "forward",
                msg: format!("{name} has no forward of public port {public}"),
            });
        };
        let f = cfg.forwards.remove(i);
        crate::store::write_json(&self.layout.config(name), &cfg)?;
        uninstall(&[f], &self.identity().net_info(cfg.id_base));
        Ok(cfg.forwards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_read_like_docker_ports() {
        let f: Forward = "8022:22/tcp".parse().unwrap();
        assert_eq!((f.public, f.private, f.udp), (8022, 22, false));
        assert_eq!(
            "5353:53/udp".parse::<Forward>().unwrap().to_string(),
            "5353:53/udp"
        );
        assert_eq!(
            "80:8080".parse::<Forward>().unwrap().to_string(),
            "80:8080/tcp"
        );
        assert!("8022"
            .parse::<Forward>()
            .unwrap_err()
            .contains("PUBLIC:PRIVATE"));
        assert!("0:22".parse::<Forward>().is_err());
        let on = "203.0.113.5:8022:22/tcp".parse::<Forward>().unwrap();
        assert_eq!(on.address, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(on.to_string(), "203.0.113.5:8022:22/tcp");
        assert!(!on.same_public(&f));
        let v4_only = crate::netconf::Network::default().info(1 << 20, 1 << 20);
        let t = shared_table();
        let pair = |map: &str, key: Value, addr: &str, port: u16| {
            vec![
                t.elements(&format!("{map}_addr"), vec![json!([key, addr])]),
                t.elements(&format!("{map}_port"), vec![json!([key, port])]),
            ]
        };
        let on_addr = |a: &str, p: u16| nft::concat(vec![json!(a), json!(p)]);
        assert_eq!(
            elements(&on, &v4_only),
            pair("fwd4_tcp", on_addr("203.0.113.5", 8022), "10.88.0.2", 22)
        );
        // On every address: over IPv6 too where the container has an IPv6 address.
        let dual = crate::netconf::Network {
            ipv6_prefix: Some("2001:db8:61::/64".parse().unwrap()),
            ..Default::default()
        }
        .info(1 << 20, 1 << 20);
        assert_eq!(
            elements(&f, &dual),
            [
                pair("fwd_tcp", json!(8022), "10.88.0.2", 22),
                pair("fwd6_tcp", json!(8022), "2001:db8:61::2", 22)
            ]
            .concat()
        );
        assert_eq!(elements(&f, &v4_only).len(), 2);
        assert!("host:8022:22".parse::<Forward>().is_err());
        let p: PublicPort = "203.0.113.5:8022/udp".parse().unwrap();
        assert_eq!((p.address.is_some(), p.port, p.udp), (true, 8022, true));
        assert_eq!(p.to_string(), "203.0.113.5:8022/udp");
        assert_eq!(
            "8022".parse::<PublicPort>().unwrap().to_string(),
            "8022/tcp"
        );
        assert!("80:22/sctp".parse::<Forward>().is_err());
        // On one IPv6 address of the host, written in brackets.
        let on6: Forward = "[2001:db8:ff::1]:8022:22/udp".parse().unwrap();
        assert_eq!(on6.address, Some("2001:db8:ff::1".parse().unwrap()));
        assert!(on6.udp);
        assert_eq!(on6.to_string(), "[2001:db8:ff::1]:8022:22/udp");
        assert_eq!(
            elements(&on6, &dual),
            pair(
                "fwd6a_udp",
                on_addr("2001:db8:ff::1", 8022),
                "2001:db8:61::2",
                22
            )
        );
        assert!(check_family(&on6, &v4_only)
            .unwrap_err()
            .to_string()
            .contains("no IPv6 address"));
        assert!(check_family(&on6, &dual).is_ok());
        assert!("[2001:db8::zz]:80:22".parse::<Forward>().is_err());
        assert!("[2001:db8::1]80:22".parse::<Forward>().is_err());
        let p: PublicPort = "[2001:db8:ff::1]:8022".parse().unwrap();
        assert_eq!(p.to_string(), "[2001:db8:ff::1]:8022/tcp");
        assert_eq!(p.address, on6.address);
    }
}
