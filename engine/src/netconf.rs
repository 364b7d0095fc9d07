//! An engine's network, a setting of the provider's: the bridge its containers are ports
//! of, the IPv4 subnet their addresses come from and an optional IPv6 prefix.
//!
//! Every engine uses `acetate0` and 10.88.0.0/16 unless told otherwise; on that shared
//! network addresses are numbered across engines (from the host's first id range), so
//! engines side by side never give one address twice. An engine told to use its own
//! network (because 10.88.0.0/16 is also Podman's, or another product's) has it alone:
//! its bridge and subnets must not be another live engine's (see [`crate::identity`]),
//! and its containers are numbered from its own first id range.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::network::NetInfo;
use crate::store::{FIRST_ID_BASE, IDS_PER_CONTAINER};

/// The bridge engines share unless told otherwise.
pub const DEFAULT_BRIDGE: &str = "acetate0";
/// The subnet engines share unless told otherwise.
pub const DEFAULT_SUBNET: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 16) {
    Ok(n) => n,
    Err(_) => panic!("a /16 is a prefix"),
};

/// Where an engine's containers are on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub bridge: String,
    pub subnet: Ipv4Net,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_prefix: Option<Ipv6Net>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            bridge: DEFAULT_BRIDGE.to_string(),
            subnet: DEFAULT_SUBNET,
            ipv6_prefix: None,
        }
    }
}

/// Whether `name` may name the bridge: a Linux interface name of letters, digits and `_`
/// (it also names the engine's nftables table), not one of the containers' own (`ac` and
/// hex digits).
pub fn check_bridge(name: &str) -> Result<()> {
    let bad = |msg: &str| {
        Err(Error::InvalidLimit {
            what: "bridge",
            msg: format!("{name:?} {msg}"),
        })
    };
    if name.is_empty() || name.len() > 15 {
        return bad("must be 1 to 15 characters (a Linux interface name)");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return bad("must start with a letter and hold only letters, digits and _");
    }
    if name.len() > 2 && name.starts_with("ac") && name[2..].chars().all(|c| c.is_ascii_hexdigit())
    {
        return bad("is shaped like a container's interface (ac and hex digits)");
    }
    Ok(())
}

impl Network {
    /// The network every engine shares unless told otherwise.
    pub fn is_shared(&self) -> bool {
        self.bridge == DEFAULT_BRIDGE && self.subnet == DEFAULT_SUBNET
    }

    /// The id base numbered first on this network: the host's first for the shared
    /// network, the engine's own (`id_base`) for a network of its own.
    pub fn origin(&self, id_base: u32) -> u32 {
        if self.is_shared() {
            FIRST_ID_BASE
        } else {
            id_base
        }
    }

    /// The gateway: the bridge's own address, the subnet's first.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + 1)
    }

    pub fn gateway6(&self) -> Option<Ipv6Addr> {
        self.ipv6_prefix
            .map(|p| Ipv6Addr::from(u128::from(p.network()) + 1))
    }

    /// How many containers have an address here (less the network, the gateway and the
    /// broadcast address; the IPv6 prefix, if smaller, bounds it too).
    pub fn capacity(&self) -> u32 {
        let v4 = (1u64 << (32 - self.subnet.prefix_len())).saturating_sub(3);
        let v6 = self.ipv6_prefix.map_or(u64::MAX, |p| {
            let bits = 128 - u32::from(p.prefix_len());
            if bits >= 63 {
                u64::MAX
            } else {
                (1u64 << bits).saturating_sub(2)
            }
        });
        v4.min(v6).min(u64::from(u32::MAX)) as u32
    }

    /// The nftables table (family `inet`) holding this network's rules.
    pub fn table(&self) -> String {
        format!("acetate_{}", self.bridge)
    }

    /// Whether the prefix lengths and addresses make a network (clear errors otherwise).
    pub fn check(&self) -> Result<()> {
        check_bridge(&self.bridge)?;
        let bad = |what, msg: String| Err(Error::InvalidLimit { what, msg });
        if self.subnet.prefix_len() > 28 || self.subnet.prefix_len() < 8 {
            return bad(
                "subnet",
                format!("{}: give an IPv4 network between /8 and /28", self.subnet),
            );
        }
        if self.subnet.addr() != self.subnet.network() {
            return bad(
                "subnet",
                format!(
                    "{} is not a network address: did you mean {}?",
                    self.subnet,
                    self.subnet.trunc()
                ),
            );
        }
        if let Some(p) = self.ipv6_prefix {
            if p.prefix_len() > 120 || p.prefix_len() < 16 {
                return bad(
                    "IPv6 prefix",
                    format!("{p}: give a prefix between /16 and /120 (a /64 is usual)"),
                );
            }
            if p.addr() != p.network() {
                return bad(
                    "IPv6 prefix",
                    format!("{p} is not a prefix: did you mean {}?", p.trunc()),
                );
            }
            if p.addr().is_unicast_link_local() || p.addr().is_multicast() {
                return bad("IPv6 prefix", format!("{p} is link-local or multicast"));
            }
        }
        Ok(())
    }

    /// Why this network cannot be used beside `other`'s (another live engine's), if so.
    pub fn conflict(&self, other: &Network) -> Option<String> {
        if self.is_shared() && other.is_shared() {
            // Numbered across engines: nothing collides.
            return None;
        }
        if self.bridge == other.bridge {
            return Some(format!(
                "bridge {} (only the shared {DEFAULT_BRIDGE} on {DEFAULT_SUBNET} can serve \
                 two engines)",
                self.bridge
            ));
        }
        if self.subnet.contains(&other.subnet) || other.subnet.contains(&self.subnet) {
            return Some(format!(
                "subnet {} (overlaps {})",
                self.subnet, other.subnet
            ));
        }
        if let (Some(a), Some(b)) = (self.ipv6_prefix, other.ipv6_prefix) {
            if a.contains(&b) || b.contains(&a) {
                return Some(format!("IPv6 prefix {a} (overlaps {b})"));
            }
        }
        None
    }

    /// The addresses and interface of the container owning `id_base`, numbered from
    /// `origin` (see [`Network::origin`]). Interface names and MACs follow the id range
    /// alone, so they are unique on the host whatever the network.
    pub fn info(&self, origin: u32, id_base: u32) -> NetInfo {
        let global = id_base.saturating_sub(FIRST_ID_BASE) / IDS_PER_CONTAINER;
        let host = 2 + id_base.saturating_sub(origin) / IDS_PER_CONTAINER; // .0 net, .1 gateway
        NetInfo {
            address: Ipv4Addr::from(u32::from(self.subnet.network()).wrapping_add(host)),
            gateway: self.gateway(),
            host_interface: format!("ac{global:x}"),
            mac: format!(
                "02:ac:00:{:02x}:{:02x}:{:02x}",
                (global >> 16) & 0xff,
                (global >> 8) & 0xff,
                global & 0xff
            ),
            address6: self
                .ipv6_prefix
                .map(|p| Ipv6Addr::from(u128::from(p.network()) + u128::from(host))),
            gateway6: self.gateway6(),
            prefix: self.subnet.prefix_len(),
            prefix6: self.ipv6_prefix.map(|p| p.prefix_len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(bridge: &str, subnet: &str, v6: Option<&str>) -> Network {
        Network {
            bridge: bridge.into(),
            subnet: subnet.parse().unwrap(),
            ipv6_prefix: v6.map(|p| p.parse().unwrap()),
        }
    }

    #[test]
    fn bridges_are_checked_as_interface_names_apart_from_the_containers_own() {
        assert!(check_bridge("acetate0").is_ok());
        assert!(check_bridge("br_hosting").is_ok());
        for bad in ["", "0bridge", "a-b", "way_too_long_name", "ac1f", "ac0"] {
            assert!(check_bridge(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn networks_are_checked_with_a_hint() {
        assert!(Network::default().check().is_ok());
        let err = net("b1", "10.77.3.0/16", None)
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 10.77.0.0/16"), "{err}");
        assert!(net("b1", "10.77.0.0/30", None).check().is_err());
        assert!(net("b1", "10.77.0.0/20", Some("fe80::/64"))
            .check()
            .is_err());
        assert!(net("b1", "10.77.0.0/20", Some("2001:db8:1::5/64"))
            .check()
            .is_err());
        assert!(net("b1", "10.77.0.0/20", Some("2001:db8:1::/64"))
            .check()
            .is_ok());
    }

    #[test]
    fn addresses_follow_the_id_ranges_on_the_shared_network_and_on_an_own_one() {
        let shared = Network::default();
        let first = shared.info(shared.origin(FIRST_ID_BASE), FIRST_ID_BASE);
        assert_eq!(first.address, Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(first.gateway, Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(
            (first.host_interface.as_str(), first.mac.as_str()),
            ("ac0", "02:ac:00:00:00:00")
        );
        // A second engine on the shared network numbers on from the first's.
        let base = FIRST_ID_BASE + 2048 * IDS_PER_CONTAINER;
        let later = shared.info(shared.origin(base), base + 300 * IDS_PER_CONTAINER);
        assert_eq!(later.address, Ipv4Addr::new(10, 88, 9, 46));
        assert_eq!(later.host_interface, "ac92c");
        // An own network numbers from the engine's own first range.
        let own = net("hosting1", "192.168.64.0/20", Some("2001:db8:ac::/64"));
        let info = own.info(own.origin(base), base + 3 * IDS_PER_CONTAINER);
        assert_eq!(info.address, Ipv4Addr::new(192, 168, 64, 5));
        assert_eq!(info.gateway, Ipv4Addr::new(192, 168, 64, 1));
        assert_eq!(info.address6, Some("2001:db8:ac::5".parse().unwrap()));
        assert_eq!(info.gateway6, Some("2001:db8:ac::1".parse().unwrap()));
        assert_eq!(info.host_interface, "ac803");
        assert_eq!(own.capacity(), 4093);
        assert_eq!(Network::default().capacity(), 65533);
    }

    #[test]
    fn only_the_shared_network_is_shared() {
        let shared = Network::default();
        assert_eq!(shared.conflict(&Network::default()), None);
        let own = net("hosting1", "10.77.0.0/20", Some("2001:db8:ac::/64"));
        assert!(own.conflict(&shared).is_none());
        assert!(own.conflict(&own).unwrap().contains("bridge hosting1"));
        let overlapping = net("hosting2", "10.77.8.0/21", None);
        assert!(overlapping
            .conflict(&own)
            .unwrap()
            .contains("overlaps 10.77.0.0/20"));
        let v6 = net("hosting3", "10.66.0.0/20", Some("2001:db8:ac::/48"));
        assert!(v6.conflict(&own).unwrap().contains("IPv6 prefix"));
        let inside_shared = net("hosting4", "10.88.128.0/20", None);
        assert!(inside_shared.conflict(&shared).is_some());
    }
}
