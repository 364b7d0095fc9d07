//! Port forwards: a public TCP or UDP port of the host leads to a port of a container.
//!
//! Each forward is kept in the container's config (so it survives restarts of the
//! container, of the panel and of the host) and lives in the maps `fwd_tcp` / `fwd_udp` of
//! the `inet acetate` table, which DNAT connections to any of the host's own addresses
//! (from outside, from the host itself, and from containers: the hairpin is masqueraded so
//! the answer comes back the same way). A public port is in the map at most once, so it can
//! never be given twice, whichever engine asks; a container's forwards are put back at its
//! start (the maps are empty after a boot) and removed when it is destroyed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::network::{self, NetInfo};
use crate::{require_root, Engine, LOCK_TIMEOUT};

/// One forward: `public` on the host to `private` in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Forward {
    pub public: u16,
    pub private: u16,
    #[serde(default)]
    pub udp: bool,
}

impl Forward {
    fn proto(&self) -> &'static str {
        if self.udp {
            "udp"
        } else {
            "tcp"
        }
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.public, self.private, self.proto())
    }
}

impl FromStr for Forward {
    type Err = String;

    /// `8022:22/tcp`, `8022:22` (TCP), `5353:53/udp`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let (ports, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let udp = match proto {
            "tcp" => false,
            "udp" => true,
            other => return Err(format!("{other:?} is not tcp or udp")),
        };
        let Some((public, private)) = ports.split_once(':') else {
            return Err(format!(
                "{s:?}: give PUBLIC:PRIVATE[/tcp|udp], as in 8022:22/tcp"
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
        })
    }
}

fn element(f: &Forward, net: &NetInfo) -> String {
    format!(
        "inet acetate fwd_{} {{ {} : {} . {} }}",
        f.proto(),
        f.public,
        net.address,
        f.private
    )
}

/// Puts `forwards` of the container at `net` into the maps (idempotent), in one
/// transaction; fails without change if a public port leads elsewhere.
pub(crate) fn install(forwards: &[Forward], net: &NetInfo) -> Result<()> {
    if forwards.is_empty() {
        return Ok(());
    }
    let script: String = forwards
        .iter()
        .map(|f| format!("add element {}\n", element(f, net)))
        .collect();
    network::run("nft", &["-f", "-"], Some(&script)).map_err(|e| {
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
    for f in forwards {
        let _ = network::run(
            "nft",
            &["-f", "-"],
            Some(&format!("delete element {}\n", element(f, net))),
        );
    }
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
        if let Some(same) = cfg
            .forwards
            .iter()
            .find(|o| o.public == f.public && o.udp == f.udp)
        {
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
            if o.forwards
                .iter()
                .any(|x| x.public == f.public && x.udp == f.udp)
            {
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
    pub fn remove_forward(&self, name: &str, public: u16, udp: bool) -> Result<Vec<Forward>> {
        require_root("forward ports")?;
        let (_lock, mut cfg) = self.lock(name)?;
        let Some(i) = cfg
            .forwards
            .iter()
            .position(|f| f.public == public && f.udp == udp)
        else {
            return Err(Error::InvalidLimit {
                what: "forward",
                msg: format!(
                    "{name} has no forward of public port {public}/{}",
                    if udp { "udp" } else { "tcp" }
                ),
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
        assert!("80:22/sctp".parse::<Forward>().is_err());
    }
}
