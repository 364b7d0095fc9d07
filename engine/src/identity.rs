//! What makes one engine's containers distinct from another engine's on the same host:
//! its range of host uids/gids, its cgroup parent and its network. Every state dir owns
//! one identity, chosen when it is first opened and kept in `<state>/engine.json`: by
//! default a *slot* (a range of 2048 containers' ids, the cgroup `acetate-<slot>`) and the
//! shared network; the provider may set the id base, the cgroup parent, the bridge, the
//! subnet and an IPv6 prefix instead ([`Wanted`]). A host-wide registry under
//! `/run/acetate/engines` records the live state dirs, so a second engine can never take
//! ids, a cgroup parent or a network that a live one holds. A claim whose state dir is
//! gone is stale and ignored.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::netconf::Network;
use crate::store::{self, Lock, FIRST_ID_BASE, IDS_PER_CONTAINER};

/// Containers one engine holds (each with its own 65536 ids).
pub const CONTAINERS_PER_SLOT: u32 = 2048;
/// Ids one engine holds.
const RANGE: u64 = CONTAINERS_PER_SLOT as u64 * IDS_PER_CONTAINER as u64;
/// Slots that fit in the 32-bit id space above [`FIRST_ID_BASE`].
pub const SLOTS: u32 = ((u32::MAX - FIRST_ID_BASE) / IDS_PER_CONTAINER) / CONTAINERS_PER_SLOT;
/// The state dir that gets slot 0 (the historical ranges and the `acetate` cgroup).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/acetate";
/// Host-wide registry of live engines (cleared at boot, re-claimed at each open).
pub const REGISTRY: &str = "/run/acetate/engines";

/// What the provider asks of an engine (config file, flags, `ACETATE_*`); anything not
/// given keeps what the state dir holds, or the default of its slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub id_base: Option<u32>,
    pub cgroup_parent: Option<String>,
    pub bridge: Option<String>,
    pub subnet: Option<ipnet::Ipv4Net>,
    pub ipv6_prefix: Option<ipnet::Ipv6Net>,
}

/// An engine's own ranges, as stored in `<state>/engine.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Where the defaults come from.
    pub slot: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_base: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cgroup_parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<Network>,
}

/// Whether `parent` can be a cgroup path under each controller's root.
fn check_cgroup_parent(parent: &str) -> Result<()> {
    let ok = !parent.is_empty()
        && parent.len() <= 200
        && parent.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidLimit {
            what: "cgroup parent",
            msg: format!(
                "{parent:?}: give a relative path of letters, digits, _, - and . (as \
                 acetate or hosting/acetate)"
            ),
        })
    }
}

impl Identity {
    fn of_slot(slot: u32) -> Identity {
        Identity {
            slot,
            id_base: None,
            cgroup_parent: None,
            network: None,
        }
    }

    /// First host id of the engine.
    pub fn id_base(&self) -> u32 {
        self.id_base
            .unwrap_or(FIRST_ID_BASE + self.slot * CONTAINERS_PER_SLOT * IDS_PER_CONTAINER)
    }
    /// The id base of the `index`th container of this engine.
    pub fn container_base(&self, index: u32) -> u32 {
        self.id_base() + index * IDS_PER_CONTAINER
    }
    fn range(&self) -> std::ops::Range<u64> {
        let base = u64::from(self.id_base());
        base..base + RANGE
    }
    /// Whether a container's id base lies in this engine's range.
    pub fn owns(&self, id_base: u32) -> bool {
        self.range().contains(&u64::from(id_base))
    }
    /// How many containers the engine can hold (its id range, its subnet).
    pub fn capacity(&self) -> u32 {
        let net = self.network();
        let numbered = (u64::from(self.id_base()) - u64::from(net.origin(self.id_base())))
            / u64::from(IDS_PER_CONTAINER);
        let room = u64::from(net.capacity()).saturating_sub(numbered);
        room.min(u64::from(CONTAINERS_PER_SLOT)) as u32
    }
    /// The identity stored in `state_dir` (slot 0 if none was ever claimed), for readers
    /// that do not claim.
    pub fn stored(state_dir: &Path) -> Identity {
        store::read_json(&state_dir.join("engine.json"))
            .ok()
            .flatten()
            .unwrap_or(Identity::of_slot(0))
    }
    /// The parent cgroup of this engine's containers.
    pub fn cgroup_parent(&self) -> String {
        match (&self.cgroup_parent, self.slot) {
            (Some(p), _) => p.clone(),
            (None, 0) => crate::cgroup::PARENT.to_string(),
            (None, slot) => format!("{}-{slot}", crate::cgroup::PARENT),
        }
    }
    /// The engine's network.
    pub fn network(&self) -> Network {
        self.network.clone().unwrap_or_default()
    }
    /// The addresses and interface of the container owning `id_base`.
    pub fn net_info(&self, id_base: u32) -> crate::network::NetInfo {
        let net = self.network();
        net.info(net.origin(self.id_base()), id_base)
    }

    /// This identity with what the provider asks, checked.
    fn with(&self, wanted: &Wanted) -> Result<Identity> {
        let mut id = self.clone();
        if let Some(base) = wanted.id_base {
            if base < FIRST_ID_BASE
                || base % IDS_PER_CONTAINER != 0
                || u64::from(base) + RANGE > u64::from(u32::MAX) + 1
            {
                return Err(Error::InvalidLimit {
                    what: "id base",
                    msg: format!(
                        "{base}: give a multiple of {IDS_PER_CONTAINER} from {FIRST_ID_BASE} \
                         up to {} (an engine holds {RANGE} ids)",
                        u64::from(u32::MAX) + 1 - RANGE
                    ),
                });
            }
            id.id_base = Some(base);
        }
        if let Some(parent) = &wanted.cgroup_parent {
            let parent = parent.trim_matches('/');
            check_cgroup_parent(parent)?;
            id.cgroup_parent = Some(parent.to_string());
        }
        if wanted.bridge.is_some() || wanted.subnet.is_some() || wanted.ipv6_prefix.is_some() {
            let mut net = self.network();
            if let Some(b) = &wanted.bridge {
                net.bridge = b.clone();
            }
            if let Some(s) = wanted.subnet {
                net.subnet = s;
            }
            if wanted.ipv6_prefix.is_some() {
                net.ipv6_prefix = wanted.ipv6_prefix;
            }
            net.check()?;
            id.network = Some(net);
        }
        Ok(id)
    }

    /// Why this identity cannot live beside `other`'s (another live engine's), if so.
    fn conflict(&self, other: &Identity) -> Option<String> {
        let (a, b) = (self.range(), other.range());
        if a.start < b.end && b.start < a.end {
            return Some(format!("host ids {}..{}", a.start, a.end));
        }
        let (pa, pb) = (self.cgroup_parent(), other.cgroup_parent());
        let nested = |x: &str, y: &str| x == y || x.starts_with(&format!("{y}/"));
        if nested(&pa, &pb) || nested(&pb, &pa) {
            return Some(format!("cgroup {pa:?}"));
        }
        self.network().conflict(&other.network())
    }

    /// What differs between two identities, for the provider.
    fn differences(&self, other: &Identity) -> Vec<String> {
        let mut out = Vec::new();
        if self.id_base() != other.id_base() {
            out.push(format!("id base {} -> {}", self.id_base(), other.id_base()));
        }
        if self.cgroup_parent() != other.cgroup_parent() {
            out.push(format!(
                "cgroup parent {} -> {}",
                self.cgroup_parent(),
                other.cgroup_parent()
            ));
        }
        let (na, nb) = (self.network(), other.network());
        if na.bridge != nb.bridge {
            out.push(format!("bridge {} -> {}", na.bridge, nb.bridge));
        }
        if na.subnet != nb.subnet {
            out.push(format!("subnet {} -> {}", na.subnet, nb.subnet));
        }
        if na.ipv6_prefix != nb.ipv6_prefix {
            let show = |p: Option<ipnet::Ipv6Net>| p.map_or("none".into(), |p| p.to_string());
            out.push(format!(
                "IPv6 prefix {} -> {}",
                show(na.ipv6_prefix),
                show(nb.ipv6_prefix)
            ));
        }
        out
    }
}

/// The claim file of a state dir (named by its path, so one state dir has one).
fn claim_path(registry: &Path, me: &Path) -> PathBuf {
    let h = store::fnv1a(me.as_os_str().as_encoded_bytes());
    registry.join(format!("engine-{h:016x}"))
}

/// The live engines other than `me`: every claim whose state dir still has its identity
/// (claims of state dirs that are gone are removed).
fn live_others(registry: &Path, me: &Path) -> Vec<(PathBuf, Identity)> {
    let mut out: Vec<(PathBuf, Identity)> = Vec::new();
    for entry in fs::read_dir(registry).into_iter().flatten().flatten() {
        let Ok(text) = fs::read_to_string(entry.path()) else {
            continue;
        };
        let holder = PathBuf::from(text.trim());
        if holder == me || out.iter().any(|(h, _)| *h == holder) {
            continue;
        }
        match store::read_json::<Identity>(&holder.join("engine.json")) {
            Ok(Some(id)) => out.push((holder, id)),
            // Its state dir is gone: the claim is stale, and goes (the registry would
            // otherwise grow with every state dir ever opened until a reboot).
            Ok(None) => {
                let _ = fs::remove_file(entry.path());
            }
            Err(_) => {}
        }
    }
    out
}

/// The first live engine `id` cannot live beside, with why.
fn first_conflict(id: &Identity, others: &[(PathBuf, Identity)]) -> Option<(PathBuf, String)> {
    others
        .iter()
        .find_map(|(h, o)| id.conflict(o).map(|why| (h.clone(), why)))
}

/// Opens (claiming on first use) the identity of the engine at `state_dir`, which must
/// exist, with what the provider asks. Fails with a clear error, changing nothing, if
/// another live engine holds any of it, or if the state dir has containers made under a
/// different identity.
pub fn claim(state_dir: &Path, wanted: &Wanted) -> Result<Identity> {
    claim_in(Path::new(REGISTRY), state_dir, wanted)
}

pub(crate) fn claim_in(registry: &Path, state_dir: &Path, wanted: &Wanted) -> Result<Identity> {
    let me = fs::canonicalize(state_dir).ctx("resolve", state_dir)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(registry)
        .ctx("create directory", registry)?;
    let _lock = Lock::acquire(&registry.join(".lock"), Duration::from_secs(30))?;
    let file = me.join("engine.json");
    let stored: Option<Identity> = store::read_json(&file)?;
    let others = live_others(registry, &me);
    let has_containers = fs::read_dir(me.join("containers"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    let id = match &stored {
        Some(current) => {
            let id = current.with(wanted)?;
            let changed = current.differences(&id);
            if !changed.is_empty() && has_containers {
                return Err(Error::Unsupported(format!(
                    "the engine at {} has containers made with its present settings; \
                     it cannot change {} (destroy or move them first, or leave the setting \
                     as it is)",
                    me.display(),
                    changed.join(", ")
                )));
            }
            id
        }
        None => {
            // The default state dir, and state dirs made before identities existed (their
            // containers live in the first range and the `acetate` cgroup), take slot 0.
            let first = if me == Path::new(DEFAULT_STATE_DIR) || has_containers {
                0
            } else {
                1
            };
            let candidates = (first..SLOTS)
                .map(|slot| Identity::of_slot(slot).with(wanted))
                .collect::<Result<Vec<_>>>()?;
            let ids_free = |id: &&Identity| {
                others.iter().all(|(_, o)| {
                    let (a, b) = (id.range(), o.range());
                    a.end <= b.start || b.end <= a.start
                })
            };
            // The first that fits; if none does, the error below names what collides:
            // for the first with ids of its own, the provider's other settings.
            let fits = candidates
                .iter()
                .find(|id| first_conflict(id, &others).is_none());
            fits.or_else(|| candidates.iter().find(ids_free))
                .unwrap_or(&candidates[0])
                .clone()
        }
    };
    if let Some((other, why)) = first_conflict(&id, &others) {
        return Err(Error::Unsupported(format!(
            "the engine at {} cannot use {why}: the engine at {} already uses it \
             (give this one other settings, or remove {} if that engine is gone)",
            me.display(),
            other.display(),
            other.join("engine.json").display(),
        )));
    }
    if stored.as_ref() != Some(&id) {
        store::write_json(&file, &id)?;
    }
    let claim = claim_path(registry, &me);
    let tmp = claim.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, me.as_os_str().as_encoded_bytes()).ctx("write", &tmp)?;
    fs::rename(&tmp, &claim).ctx("write", &claim)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_overlap_and_fit_the_id_space() {
        let a = Identity::of_slot(1);
        let b = Identity::of_slot(2);
        assert!(!a.owns(b.id_base()));
        assert!(a.owns(a.container_base(CONTAINERS_PER_SLOT - 1)));
        let last = Identity::of_slot(SLOTS - 1);
        let end =
            u64::from(last.container_base(CONTAINERS_PER_SLOT - 1)) + u64::from(IDS_PER_CONTAINER);
        assert!(end <= u64::from(u32::MAX) + 1);
        assert_eq!(Identity::of_slot(0).id_base(), FIRST_ID_BASE);
        assert_eq!(Identity::of_slot(0).cgroup_parent(), "acetate");
        assert_eq!(Identity::of_slot(3).cgroup_parent(), "acetate-3");
        assert_eq!(Identity::of_slot(3).capacity(), CONTAINERS_PER_SLOT);
        // A small subnet of its own bounds the engine: a /28 has 13 container addresses.
        let small = Identity::of_slot(3)
            .with(&Wanted {
                bridge: Some("small0".into()),
                subnet: Some("10.99.0.0/28".parse().unwrap()),
                ..Wanted::default()
            })
            .unwrap();
        assert_eq!(small.capacity(), 13);
        let last = small.net_info(small.container_base(12)).address;
        assert_eq!(last.to_string(), "10.99.0.14");
    }

    #[test]
    fn two_state_dirs_get_different_slots_and_a_taken_slot_is_refused() {
        let reg = tempfile::tempdir().unwrap();
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let none = Wanted::default();
        let ia = claim_in(reg.path(), a.path(), &none).unwrap();
        let ib = claim_in(reg.path(), b.path(), &none).unwrap();
        assert_ne!(ia.slot, ib.slot);
        // Opening again keeps the slot.
        assert_eq!(claim_in(reg.path(), a.path(), &none).unwrap(), ia);
        // A state dir copied from another (same engine.json) is refused while the other
        // holds the slot.
        let c = tempfile::tempdir().unwrap();
        fs::copy(a.path().join("engine.json"), c.path().join("engine.json")).unwrap();
        let err = claim_in(reg.path(), c.path(), &none)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already uses it"), "{err}");
        assert!(err.contains("host ids"), "{err}");
        // Once a's state dir is gone, its slot is free again, and its claim goes.
        let a_path = a.path().to_path_buf();
        let a_claim = claim_path(reg.path(), &fs::canonicalize(&a_path).unwrap());
        assert!(a_claim.exists());
        drop(a);
        assert!(!a_path.exists());
        assert_eq!(claim_in(reg.path(), c.path(), &none).unwrap(), ia);
        assert!(!a_claim.exists(), "a stale claim stays");
    }

    #[test]
    fn the_providers_settings_are_kept_checked_and_never_shared() {
        let reg = tempfile::tempdir().unwrap();
        let a = tempfile::tempdir().unwrap();
        let own = Wanted {
            id_base: Some(FIRST_ID_BASE * 64),
            cgroup_parent: Some("/hosting/a/".into()),
            bridge: Some("hosting_a".into()),
            subnet: Some("10.77.0.0/20".parse().unwrap()),
            ipv6_prefix: Some("2001:db8:a::/64".parse().unwrap()),
        };
        let ia = claim_in(reg.path(), a.path(), &own).unwrap();
        assert_eq!(ia.id_base(), FIRST_ID_BASE * 64);
        assert_eq!(ia.cgroup_parent(), "hosting/a");
        assert_eq!(ia.network().bridge, "hosting_a");
        let first = ia.net_info(ia.container_base(0));
        assert_eq!(first.address.to_string(), "10.77.0.2");
        assert_eq!(first.address6.unwrap().to_string(), "2001:db8:a::2");
        // Kept: opening without settings changes nothing.
        assert_eq!(
            claim_in(reg.path(), a.path(), &Wanted::default()).unwrap(),
            ia
        );
        // Another engine asking for any part of it is refused and gets nothing.
        let b = tempfile::tempdir().unwrap();
        for (clash, what) in [
            (
                Wanted {
                    id_base: Some(FIRST_ID_BASE * 64 + 65536 * 100),
                    ..Wanted::default()
                },
                "host ids",
            ),
            (
                Wanted {
                    cgroup_parent: Some("hosting".into()),
                    ..Wanted::default()
                },
                "cgroup",
            ),
            (
                Wanted {
                    bridge: Some("hosting_a".into()),
                    subnet: Some("10.78.0.0/20".parse().unwrap()),
                    ..Wanted::default()
                },
                "bridge hosting_a",
            ),
            (
                Wanted {
                    bridge: Some("hosting_b".into()),
                    subnet: Some("10.77.4.0/24".parse().unwrap()),
                    ..Wanted::default()
                },
                "subnet",
            ),
        ] {
            let err = claim_in(reg.path(), b.path(), &clash)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(what) && err.contains("already uses it"),
                "{what}: {err}"
            );
            assert!(!b.path().join("engine.json").exists(), "{what}");
        }
        // Bad values get clear errors.
        for (bad, what) in [
            (
                Wanted {
                    id_base: Some(12345),
                    ..Wanted::default()
                },
                "id base",
            ),
            (
                Wanted {
                    cgroup_parent: Some("../escape".into()),
                    ..Wanted::default()
                },
                "cgroup parent",
            ),
            (
                Wanted {
                    bridge: Some("eth-0".into()),
                    ..Wanted::default()
                },
                "bridge",
            ),
            (
                Wanted {
                    subnet: Some("10.9.9.9/16".parse().unwrap()),
                    ..Wanted::default()
                },
                "10.9.0.0/16",
            ),
        ] {
            let err = claim_in(reg.path(), b.path(), &bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{what}: {err}");
        }
        // Settings change freely while the state dir has no container, not after.
        let ib = claim_in(
            reg.path(),
            b.path(),
            &Wanted {
                bridge: Some("hosting_b".into()),
                subnet: Some("10.78.0.0/20".parse().unwrap()),
                ..Wanted::default()
            },
        )
        .unwrap();
        assert_eq!(ib.network().subnet.to_string(), "10.78.0.0/20");
        fs::create_dir_all(b.path().join("containers/web")).unwrap();
        let err = claim_in(
            reg.path(),
            b.path(),
            &Wanted {
                subnet: Some("10.79.0.0/20".parse().unwrap()),
                ..Wanted::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("subnet 10.78.0.0/20 -> 10.79.0.0/20"), "{err}");
        assert_eq!(Identity::stored(b.path()), ib);
    }
}
