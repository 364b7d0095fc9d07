//! Container networking: a veth pair per running container, its host end a port of the
//! engine's bridge (by default `acetate0`, 10.88.0.1/16; see [`crate::netconf`]), its
//! container end `eth0` with addresses derived from the container's id range (IPv4, and
//! IPv6 when the engine's network has a prefix). Bridge ports are isolated from each
//! other, so tenants reach their gateway but not each other's containers at layer 2 (what
//! they may do beyond the bridge is [`crate::firewall`]'s table). An optional rate
//! limit is a token bucket on both ends: the host end shapes what the container receives,
//! the container end (which the tenant cannot change: containers have no CAP_NET_ADMIN)
//! shapes what it sends.
//!
//! Every port is held to its own addresses: an nftables table `bridge acetate` drops
//! frames entering from a port whose source MAC, source IPv4 or IPv6 (its global address
//! and its link-local one) or ARP sender is not that port's (so a tenant with raw sockets
//! can neither forge its source address nor poison the host's neighbour tables or the
//! bridge's forwarding table), router advertisements and redirects, and every other
//! protocol; the bridge accepts no router advertisement either. Interface name, MAC and
//! addresses all follow from the id range, so an engine installs its whole range's
//! entries once (per boot), not one per start.
//!
//! The links, addresses and routes are made over netlink ([`crate::netlink`]; `tc` only
//! for a rate limit) while the container's init waits to be released, so `eth0` is up before anything inside runs. They go away with the network
//! namespace when the container stops (the kernel frees them shortly after; a start that
//! finds its host end still there deletes it first).

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::netconf::Network;
use crate::nft::{self, Batch, Table};

/// The MAC of bridge `name`. A bridge without one set takes the lowest MAC of its ports and
/// changes it as containers come and go, leaving their ARP caches pointing nowhere. The
/// shared bridge keeps the address it always had; others get one from their name.
pub fn bridge_mac(name: &str) -> String {
    if name == crate::netconf::DEFAULT_BRIDGE {
        return "02:ac:ff:00:00:01".into();
    }
    let mut h: u32 = 0x811c9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    format!(
        "02:ac:fe:{:02x}:{:02x}:{:02x}",
        (h >> 16) & 0xff,
        (h >> 8) & 0xff,
        h & 0xff
    )
}

fn default_prefix() -> u8 {
    16
}

/// Where a container is on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetInfo {
    pub address: Ipv4Addr,
    pub gateway: Ipv4Addr,
    /// The host end of its veth pair.
    pub host_interface: String,
    /// The MAC address of its `eth0` (locally administered, from the id range).
    #[serde(default)]
    pub mac: String,
    /// Prefix length of its IPv4 network.
    #[serde(default = "default_prefix")]
    pub prefix: u8,
    /// Its IPv6 address, when the engine's network has a prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<Ipv6Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix6: Option<u8>,
}

impl NetInfo {
    /// The link-local address the kernel gives its `eth0` (EUI-64 of the MAC).
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        let m: Vec<u8> = self
            .mac
            .split(':')
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        let [a, b, c, d, e, f] = m[..] else {
            return None;
        };
        Some(Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            u16::from_be_bytes([a ^ 0x02, b]),
            u16::from_be_bytes([c, 0xff]),
            u16::from_be_bytes([0xfe, d]),
            u16::from_be_bytes([e, f]),
        ))
    }
}

/// Bytes through a container's interface, as the container sees them, and packets its
/// rate limit dropped on their way to it (the host end's shaper; what it sends is shaped
/// inside its namespace: [`crate::Engine::drops_inside`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    #[serde(default)]
    pub rx_dropped: u64,
}

/// The bridge filter's table, `bridge acetate`, which every engine of the host shares.
pub(crate) fn filter_table() -> Table {
    Table::new("bridge", "acetate")
}

/// The bridge filter (idempotent: chains are flushed and filled in the same transaction;
/// the sets, shared by every engine of the host, are kept) allowing the containers
/// `infos` on their own addresses.
fn filter_batch(infos: &[NetInfo]) -> Batch {
    let t = filter_table();
    let mut b = Batch::default();
    b.add(t.table())
        .add(t.set("ports_mac", &["ifname", "ether_addr"]))
        .add(t.set("ports4", &["ifname", "ether_addr", "ipv4_addr"]))
        .add(t.set("ports6", &["ifname", "ether_addr", "ipv6_addr"]))
        .add(t.chain("port"))
        .flush(t.chain("port"));
    let port = |parts: Vec<Value>| nft::concat([vec![nft::meta("iifname")], parts].concat());
    let ether = || nft::payload("ether", "saddr");
    let icmpv6 = || nft::payload("icmpv6", "type");
    let (accept, drop) = (|| nft::verdict("accept"), || nft::verdict("drop"));
    let rules = [
        vec![
            nft::is_not(port(vec![ether()]), nft::named("ports_mac")),
            drop(),
        ],
        vec![
            nft::is(
                port(vec![ether(), nft::payload("ip", "saddr")]),
                nft::named("ports4"),
            ),
            accept(),
        ],
        vec![
            nft::is(
                port(vec![
                    nft::payload("arp", "saddr ether"),
                    nft::payload("arp", "saddr ip"),
                ]),
                nft::named("ports4"),
            ),
            accept(),
        ],
        vec![
            nft::is(
                icmpv6(),
                nft::anonymous(vec![json!("nd-router-advert"), json!("nd-redirect")]),
            ),
            drop(),
        ],
        vec![
            nft::is(
                port(vec![ether(), nft::payload("ip6", "saddr")]),
                nft::named("ports6"),
            ),
            accept(),
        ],
        vec![
            nft::is(nft::payload("ip6", "saddr"), json!("::")),
            nft::is(icmpv6(), json!("nd-neighbor-solicit")),
            accept(),
        ],
        vec![drop()],
    ];
    for r in rules {
        b.add(t.rule("port", r));
    }
    b.add(t.base_chain("prerouting", "filter", "prerouting", -300))
        .flush(t.chain("prerouting"))
        .add(t.rule(
            "prerouting",
            vec![
                nft::is(nft::meta("iifname"), json!("ac*")),
                nft::jump("port"),
            ],
        ));
    for chunk in infos.chunks(512) {
        let (iface, mac) = (
            |n: &NetInfo| json!(n.host_interface),
            |n: &NetInfo| json!(n.mac),
        );
        let macs = chunk
            .iter()
            .map(|n| nft::concat(vec![iface(n), mac(n)]))
            .collect();
        let v4 = chunk
            .iter()
            .map(|n| nft::concat(vec![iface(n), mac(n), json!(n.address.to_string())]))
            .collect();
        b.add(t.elements("ports_mac", macs))
            .add(t.elements("ports4", v4));
        let v6: Vec<Value> = chunk
            .iter()
            .filter_map(|n| Some((n, n.address6?, n.link_local()?)))
            .flat_map(|(n, global, local)| {
                [global, local].map(|a| nft::concat(vec![iface(n), mac(n), json!(a.to_string())]))
            })
            .collect();
        if !v6.is_empty() {
            b.add(t.elements("ports6", v6));
        }
    }
    b
}

/// Makes sure the engine's bridge is there with its addresses and the bridge filter holds
/// every container of the engine's range to its own addresses: once per boot and
/// identity (a mark in `/run/acetate/net`), in one nftables transaction.
pub fn ensure_filter(identity: &crate::identity::Identity) -> Result<()> {
    let net = identity.network();
    let marks = crate::firewall::marks_dir()?;
    let h = crate::store::fnv1a(&serde_json::to_vec(identity).unwrap_or_default());
    let mark = marks.join(format!("range-{}-{h:016x}", net.bridge));
    if mark.exists() {
        return Ok(());
    }
    let _lock =
        crate::store::Lock::acquire(&marks.join(".lock"), std::time::Duration::from_secs(30))?;
    if mark.exists() {
        return Ok(());
    }
    ensure_bridge(&net)?;
    let bridge = net.bridge.as_str();
    // A bridge made before the fixed MAC existed gets it (only then: setting an address
    // flushes the host's neighbour entries on the bridge), and its addresses are put back
    // as the settings say.
    let mac = bridge_mac(bridge);
    if crate::netlink::mac_of(bridge)?.as_deref() != Some(mac.as_str()) {
        crate::netlink::set_mac(bridge, &mac)?;
    }
    let gateway = std::net::IpAddr::V4(net.gateway());
    crate::netlink::set_address(bridge, gateway, net.subnet.prefix_len())?;
    if let (Some(gw6), Some(p)) = (net.gateway6(), net.ipv6_prefix) {
        crate::netlink::set_address(bridge, std::net::IpAddr::V6(gw6), p.prefix_len())?;
    }
    // No router advertisement is taken from the bridge (the port filter drops those from
    // containers too).
    let accept_ra = format!("/proc/sys/net/ipv6/conf/{bridge}/accept_ra");
    if Path::new(&accept_ra).exists() {
        std::fs::write(&accept_ra, "0").map_err(|e| Error::io("write", &accept_ra, e))?;
        // Routes a tenant's advertisement already planted (before this filter) go too.
        crate::netlink::flush_ra_routes(bridge)?;
    }
    let infos: Vec<NetInfo> = (0..identity.capacity())
        .map(|i| identity.net_info(identity.container_base(i)))
        .collect();
    filter_batch(&infos)
        .apply()
        .map_err(|e| Error::Unsupported(format!("install the bridge filter (nftables): {e}")))?;
    std::fs::write(&mark, b"").map_err(|e| Error::io("write", &mark, e))
}

pub(crate) fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<()> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::sys(format!("run {program}"), e))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| Error::sys(format!("feed {program}"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::sys(format!("run {program}"), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Unsupported(format!(
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Whether interface `name` exists in this process's network namespace (asked of the
/// kernel, not of sysfs, which shows the namespace that mounted it).
pub fn link_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// Creates the bridge of `net` if it is missing (idempotent; safe against a concurrent
/// creator).
pub fn ensure_bridge(net: &Network) -> Result<()> {
    if link_exists(&net.bridge) {
        return Ok(());
    }
    crate::netlink::add_bridge(
        &net.bridge,
        &bridge_mac(&net.bridge),
        net.gateway(),
        net.subnet.prefix_len(),
    )
}

/// [`attach`] on a thread of its own (none without a network), joined whatever happens:
/// dropped too, so that nothing of it outlives a failed start (its clean-up deletes an
/// interface by name, which the container's next start reuses).
pub(crate) struct Attaching(Option<std::thread::JoinHandle<Result<()>>>);

impl Attaching {
    pub(crate) fn start(
        pid: i32,
        network: Option<(&NetInfo, &Network, Option<u64>)>,
    ) -> std::io::Result<Attaching> {
        let Some((net, bridge, rate)) = network else {
            return Ok(Attaching(None));
        };
        let (net, bridge) = (net.clone(), bridge.clone());
        let thread = std::thread::Builder::new()
            .name("acetate-net".into())
            .spawn(move || attach(pid, &net, &bridge, rate))?;
        Ok(Attaching(Some(thread)))
    }

    /// What [`attach`] came to.
    pub(crate) fn join(mut self) -> Result<()> {
        match self.0.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(Error::Unsupported("the network thread panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for Attaching {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// The token bucket of a rate limit of `rate` bit/s: the rate, a burst of 20 ms at the rate
/// (at least 32 KiB: several full-size packets), and 50 ms of queue beyond the burst, in
/// bytes (what `tc ... tbf rate R burst B latency 50ms` asks for).
fn tbf(rate: u64) -> (u64, u32, u32) {
    let burst = (rate / 8 / 50).max(32 << 10);
    let limit = rate / 8 / 20 + burst;
    let clamp = |v: u64| v.min(u64::from(u32::MAX)) as u32;
    (rate, clamp(burst), clamp(limit))
}

/// Connects the network namespace of `pid` (a container's init, not yet released) to the
/// bridge, with `rate` bits per second each way if given. On error nothing is left: the
/// host end is deleted (the container end goes with its namespace).
pub fn attach(pid: i32, net: &NetInfo, bridge: &Network, rate: Option<u64>) -> Result<()> {
    ensure_bridge(bridge)?;
    let host_if = net.host_interface.as_str();
    // A host end left by a crash would block the name.
    crate::netlink::delete_link(host_if)?;
    let inside = crate::netlink::Inside {
        mac: &net.mac,
        v4: (net.address, net.prefix, net.gateway),
        v6: match (net.address6, net.prefix6, net.gateway6) {
            (Some(a), Some(p), Some(gw)) => Some((a, p, gw)),
            _ => None,
        },
    };
    crate::netlink::veth_into(pid, host_if, &bridge.bridge, inside)?;
    if let Some(rate) = rate {
        if let Err(e) = set_rate(pid, net, Some(rate)) {
            let _ = crate::netlink::delete_link(host_if);
            return Err(e);
        }
    }
    Ok(())
}

/// Changes the rate limit of a running container (`None` lifts it), both ends: what the
/// host sends it, and what it sends (shaped inside its namespace), through netlink.
pub fn set_rate(pid: i32, net: &NetInfo, rate: Option<u64>) -> Result<()> {
    let bucket = rate.map(tbf);
    crate::netlink::shape(&net.host_interface, bucket)?;
    crate::netlink::shape_inside(pid, "eth0", bucket)
}

/// What went through the container's interface since it started (`None` while stopped),
/// from `counted` (interface name to the host end's counters, from
/// [`crate::netlink::counters`]). The host end receives what the container sends, and
/// the other way round.
pub(crate) fn counters(
    net: &NetInfo,
    counted: &std::collections::HashMap<String, crate::netlink::LinkCounters>,
) -> Option<NetCounters> {
    counted.get(&net.host_interface).map(|c| NetCounters {
        rx_bytes: c.tx,
        tx_bytes: c.rx,
        rx_dropped: c.qdisc_drops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FIRST_ID_BASE, IDS_PER_CONTAINER};

    #[test]
    fn the_filter_lists_every_container_with_its_own_addresses() {
        let net = Network {
            bridge: "hosting1".into(),
            subnet: "10.77.0.0/20".parse().unwrap(),
            ipv6_prefix: Some("2001:db8:ac::/64".parse().unwrap()),
        };
        let base = FIRST_ID_BASE + 2048 * IDS_PER_CONTAINER;
        let infos: Vec<NetInfo> = (0..1000)
            .map(|i| net.info(base, base + i * IDS_PER_CONTAINER))
            .collect();
        let batch = filter_batch(&infos);
        let script = batch.to_json();
        let last = &infos[999];
        assert!(script.contains(
            &json!({ "concat": [last.host_interface, last.mac, last.address.to_string()] })
                .to_string()
        ));
        // Its global IPv6 address and the link-local one the kernel derives from its MAC.
        assert_eq!(last.address6.unwrap().to_string(), "2001:db8:ac::3e9");
        assert_eq!(last.mac, "02:ac:00:00:0b:e7");
        assert_eq!(
            last.link_local().unwrap().to_string(),
            "fe80::ac:ff:fe00:be7"
        );
        assert!(script.contains(
            &json!({ "concat": [last.host_interface, last.mac, "fe80::ac:ff:fe00:be7"] })
                .to_string()
        ));
        // Three element commands per 512 containers, after the rules.
        let elements = |b: &Batch| {
            b.commands()
                .iter()
                .filter(|c| c["add"].get("element").is_some())
                .count()
        };
        assert_eq!(elements(&batch), 6);
        assert_eq!(
            batch.commands()[0],
            json!({ "add": filter_table().table() })
        );
        assert_eq!(bridge_mac("acetate0"), "02:ac:ff:00:00:01");
        assert_ne!(bridge_mac("hosting1"), bridge_mac("hosting2"));
    }

    #[test]
    fn the_token_bucket_has_room_for_full_packets() {
        let (rate, burst, limit) = tbf(8_000);
        assert_eq!((rate, burst), (8_000, 32 << 10));
        assert_eq!(limit, 8_000 / 8 / 20 + (32 << 10));
        let (_, fast, _) = tbf(1_000_000_000);
        assert_eq!(u64::from(fast), 1_000_000_000u64 / 8 / 50);
    }
}
