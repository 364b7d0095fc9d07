//! Container networking: a veth pair per running container, its host end a port of the
//! `acetate0` bridge (10.88.0.1/16), its container end `eth0` with an address derived from
//! the container's id range. Bridge ports are isolated from each other, so tenants reach
//! their gateway but not each other's containers at layer 2 (what they may do beyond the
//! bridge is [`crate::firewall`]'s table). An optional rate
//! limit is a token bucket on both ends: the host end shapes what the container receives,
//! the container end (which the tenant cannot change: containers have no CAP_NET_ADMIN)
//! shapes what it sends.
//!
//! Every port is held to its own addresses: an nftables table `bridge acetate` drops
//! frames entering from a port whose source MAC, source IPv4 or ARP sender is not that
//! port's (so a tenant with raw sockets can neither forge its source address nor poison
//! the host's ARP table or the bridge's forwarding table), and every other protocol
//! (IPv6, and so router advertisements, among them); the bridge accepts no router
//! advertisement either. Interface name, MAC and address all follow from the id range, so
//! an engine installs its whole range's entries once (per boot), not one per start.
//!
//! The links are made with `ip` and `tc` (iproute2) while the container's init waits to be
//! released, so `eth0` is up before anything inside runs. They go away with the network
//! namespace when the container stops (the kernel frees them shortly after; a start that
//! finds its host end still there deletes it first).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{FIRST_ID_BASE, IDS_PER_CONTAINER};

/// The host bridge every container's host end is a port of.
pub const BRIDGE: &str = "acetate0";
/// The bridge's (the containers' gateway's) address.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// The bridge's own MAC. A bridge without one set takes the lowest MAC of its ports and
/// changes it as containers come and go, leaving their ARP caches pointing nowhere.
pub const BRIDGE_MAC: &str = "02:ac:ff:00:00:01";
/// Prefix length of the containers' network.
pub const PREFIX: u8 = 16;

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
}

/// Bytes through a container's interface, as the container sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// The address and host interface of the container owning `id_base` (one per id range, so
/// they never collide and need no allocation table).
pub fn info_for(id_base: u32) -> NetInfo {
    let index = id_base.saturating_sub(FIRST_ID_BASE) / IDS_PER_CONTAINER;
    let host = 2 + index; // .0.0 is the network, .0.1 the gateway
    NetInfo {
        address: Ipv4Addr::new(10, 88, (host >> 8) as u8, (host & 0xff) as u8),
        gateway: GATEWAY,
        host_interface: format!("ac{index:x}"),
        mac: format!(
            "02:ac:00:{:02x}:{:02x}:{:02x}",
            (index >> 16) & 0xff,
            (index >> 8) & 0xff,
            index & 0xff
        ),
    }
}

/// The rules of the `bridge acetate` table (idempotent: chains are flushed and filled in
/// the same transaction; the sets, shared by every engine of the host, are kept).
const FILTER_RULES: &str = "\
add table bridge acetate
add set bridge acetate ports_mac { type ifname . ether_addr; }
add set bridge acetate ports4 { type ifname . ether_addr . ipv4_addr; }
add chain bridge acetate port
flush chain bridge acetate port
add rule bridge acetate port iifname . ether saddr != @ports_mac drop
add rule bridge acetate port iifname . ether saddr . ip saddr @ports4 accept
add rule bridge acetate port iifname . arp saddr ether . arp saddr ip @ports4 accept
add rule bridge acetate port drop
add chain bridge acetate prerouting { type filter hook prerouting priority -300; policy accept; }
flush chain bridge acetate prerouting
add rule bridge acetate prerouting iifname \"ac*\" jump port
";

/// The nftables script that allows the `count` containers from `first_base` on their own
/// addresses.
fn filter_script(first_base: u32, count: u32) -> String {
    let mut script = String::from(FILTER_RULES);
    let infos: Vec<NetInfo> = (0..count)
        .map(|i| info_for(first_base + i * IDS_PER_CONTAINER))
        .collect();
    for chunk in infos.chunks(512) {
        let macs: Vec<String> = chunk
            .iter()
            .map(|n| format!("\"{}\" . {}", n.host_interface, n.mac))
            .collect();
        let v4: Vec<String> = chunk
            .iter()
            .map(|n| format!("\"{}\" . {} . {}", n.host_interface, n.mac, n.address))
            .collect();
        script.push_str(&format!(
            "add element bridge acetate ports_mac {{ {} }}\n",
            macs.join(", ")
        ));
        script.push_str(&format!(
            "add element bridge acetate ports4 {{ {} }}\n",
            v4.join(", ")
        ));
    }
    script
}

/// Makes sure the bridge filter holds the `count` containers of the id range starting at
/// `first_base` to their own addresses: once per boot and range (a mark in
/// `/run/acetate/net`), in one nftables transaction.
pub fn ensure_filter(first_base: u32, count: u32) -> Result<()> {
    let marks = crate::firewall::marks_dir()?;
    let mark = marks.join(format!("range-{first_base}-{count}"));
    if mark.exists() {
        return Ok(());
    }
    let _lock =
        crate::store::Lock::acquire(&marks.join(".lock"), std::time::Duration::from_secs(30))?;
    if mark.exists() {
        return Ok(());
    }
    ensure_bridge()?;
    // A bridge made before the fixed MAC existed gets it (only then: setting an address
    // flushes the host's neighbour entries on the bridge).
    let current = std::fs::read_to_string(Path::new("/sys/class/net").join(BRIDGE).join("address"))
        .unwrap_or_default();
    if current.trim() != BRIDGE_MAC {
        run("ip", &["link", "set", BRIDGE, "address", BRIDGE_MAC], None)?;
    }
    // No router advertisement is taken from the bridge (the port filter drops IPv6 from
    // containers too).
    let accept_ra = format!("/proc/sys/net/ipv6/conf/{BRIDGE}/accept_ra");
    if Path::new(&accept_ra).exists() {
        std::fs::write(&accept_ra, "0").map_err(|e| Error::io("write", &accept_ra, e))?;
        // Routes a tenant's advertisement already planted (before this filter) go too.
        run(
            "ip",
            &["-6", "route", "flush", "dev", BRIDGE, "proto", "ra"],
            None,
        )?;
    }
    run("nft", &["-f", "-"], Some(&filter_script(first_base, count)))
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

/// Creates the bridge if it is missing (idempotent; safe against a concurrent creator).
/// Whether interface `name` exists in this process's network namespace (asked of the
/// kernel, not of sysfs, which shows the namespace that mounted it).
pub fn link_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

pub fn ensure_bridge() -> Result<()> {
    let exists = || link_exists(BRIDGE);
    if exists() {
        return Ok(());
    }
    let gateway = format!("{GATEWAY}/{PREFIX}");
    let made = run(
        "ip",
        &[
            "link", "add", BRIDGE, "address", BRIDGE_MAC, "type", "bridge",
        ],
        None,
    )
    .and_then(|()| run("ip", &["addr", "add", &gateway, "dev", BRIDGE], None));
    if made.is_err() && !exists() {
        return made;
    }
    run("ip", &["link", "set", BRIDGE, "up"], None)
}

fn tbf(rate: u64) -> Vec<String> {
    // Burst: 20 ms at the rate, at least 32 KiB (several full-size packets).
    let burst = (rate / 8 / 50).max(32 << 10);
    ["root", "tbf", "rate"]
        .iter()
        .map(|s| s.to_string())
        .chain([
            format!("{rate}bit"),
            "burst".into(),
            burst.to_string(),
            "latency".into(),
            "50ms".into(),
        ])
        .collect()
}

/// Connects the network namespace of `pid` (a container's init, not yet released) to the
/// bridge, with `rate` bits per second each way if given. On error nothing is left: the
/// host end is deleted (the container end goes with its namespace).
pub fn attach(pid: i32, net: &NetInfo, rate: Option<u64>) -> Result<()> {
    ensure_bridge()?;
    let host_if = net.host_interface.as_str();
    // A host end left by a crash would block the name.
    if link_exists(host_if) {
        let _ = run("ip", &["link", "del", host_if], None);
    }
    // One `ip` for the host side, one inside the namespace: each process costs milliseconds.
    let mac = &net.mac;
    let host = format!(
        "link add {host_if} type veth peer name eth0 address {mac} netns {pid}\n\
         link set {host_if} master {BRIDGE}\n\
         link set dev {host_if} type bridge_slave isolated on\n\
         link set {host_if} up\n"
    );
    let made = run("ip", &["-batch", "-"], Some(&host));
    let configured = made.and_then(|()| {
        let netns = format!("--net=/proc/{pid}/ns/net");
        let inside = format!(
            "addr add {}/{PREFIX} dev eth0\nlink set eth0 up\nroute add default via {}\n",
            net.address, net.gateway
        );
        run("nsenter", &[&netns, "ip", "-batch", "-"], Some(&inside))?;
        if let Some(rate) = rate {
            let shape = tbf(rate);
            let shape: Vec<&str> = shape.iter().map(String::as_str).collect();
            let mut host = vec!["qdisc", "replace", "dev", host_if];
            host.extend(&shape);
            run("tc", &host, None)?;
            let mut inner = vec![netns.as_str(), "tc", "qdisc", "replace", "dev", "eth0"];
            inner.extend(&shape);
            run("nsenter", &inner, None)?;
        }
        Ok(())
    });
    if configured.is_err() {
        let _ = run("ip", &["link", "del", host_if], None);
    }
    configured
}

/// Changes the rate limit of a running container (`None` lifts it), both ends.
pub fn set_rate(pid: i32, net: &NetInfo, rate: Option<u64>) -> Result<()> {
    let netns = format!("--net=/proc/{pid}/ns/net");
    match rate {
        Some(rate) => {
            let shape = tbf(rate);
            let shape: Vec<&str> = shape.iter().map(String::as_str).collect();
            let mut host = vec!["qdisc", "replace", "dev", net.host_interface.as_str()];
            host.extend(&shape);
            run("tc", &host, None)?;
            let mut inner = vec![netns.as_str(), "tc", "qdisc", "replace", "dev", "eth0"];
            inner.extend(&shape);
            run("nsenter", &inner, None)
        }
        None => {
            // Deleting a qdisc that is not there fails harmlessly.
            let _ = run(
                "tc",
                &["qdisc", "del", "dev", &net.host_interface, "root"],
                None,
            );
            let _ = run(
                "nsenter",
                &[&netns, "tc", "qdisc", "del", "dev", "eth0", "root"],
                None,
            );
            Ok(())
        }
    }
}

/// What went through the container's interface since it started (`None` while stopped).
pub fn counters(net: &NetInfo) -> Option<NetCounters> {
    let stats = Path::new("/sys/class/net")
        .join(&net.host_interface)
        .join("statistics");
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(stats.join(f))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    // The host end receives what the container sends, and the other way round.
    Some(NetCounters {
        rx_bytes: read("tx_bytes")?,
        tx_bytes: read("rx_bytes")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_id_ranges() {
        let first = info_for(FIRST_ID_BASE);
        assert_eq!(first.address, Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(first.host_interface, "ac0");
        let later = info_for(FIRST_ID_BASE + 300 * IDS_PER_CONTAINER);
        assert_eq!(later.address, Ipv4Addr::new(10, 88, 1, 46));
        assert_eq!(later.host_interface, "ac12c");
        assert!(later.host_interface.len() <= 15);
        assert_eq!(first.mac, "02:ac:00:00:00:00");
        assert_eq!(later.mac, "02:ac:00:00:01:2c");
    }

    #[test]
    fn the_filter_lists_every_container_of_a_range_with_its_own_addresses() {
        let base = FIRST_ID_BASE + 2048 * IDS_PER_CONTAINER;
        let script = filter_script(base, 1000);
        let last = info_for(base + 999 * IDS_PER_CONTAINER);
        assert!(script.contains(&format!(
            "\"{}\" . {} . {}",
            last.host_interface, last.mac, last.address
        )));
        // Two element statements per 512 containers, after the rules.
        assert_eq!(script.matches("add element").count(), 4);
        assert!(script.starts_with("add table bridge acetate"));
    }

    #[test]
    fn the_token_bucket_has_room_for_full_packets() {
        let args = tbf(8_000);
        assert_eq!(args[3], "8000bit");
        assert_eq!(args[5], (32 << 10).to_string());
        let fast = tbf(1_000_000_000);
        assert_eq!(fast[5], (1_000_000_000u64 / 8 / 50).to_string());
    }
}
