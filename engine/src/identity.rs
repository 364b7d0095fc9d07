//! What makes one engine's containers distinct from another engine's on the same host:
//! its range of host uids/gids and its cgroup parent. Every state dir owns one *slot*,
//! chosen when it is first opened and kept in `<state>/engine.json`; a host-wide registry
//! under `/run/acetate/engines` records which state dir holds which slot, so a second
//! engine can never take a range (and so the interface names and addresses derived from
//! it) or a cgroup parent that a live one holds. A claim whose state dir is gone, or no
//! longer names that slot, is stale and may be taken over.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::store::{self, Lock, FIRST_ID_BASE, IDS_PER_CONTAINER};

/// Containers one slot holds (each with its own 65536 ids).
pub const CONTAINERS_PER_SLOT: u32 = 2048;
/// Slots that fit in the 32-bit id space above [`FIRST_ID_BASE`].
pub const SLOTS: u32 = ((u32::MAX - FIRST_ID_BASE) / IDS_PER_CONTAINER) / CONTAINERS_PER_SLOT;
/// The state dir that gets slot 0 (the historical ranges and the `acetate` cgroup).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/acetate";
/// Host-wide registry of claimed slots (cleared at boot, re-claimed at each open).
pub const REGISTRY: &str = "/run/acetate/engines";

/// An engine's own ranges, as stored in `<state>/engine.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub slot: u32,
}

impl Identity {
    /// First host id of the slot.
    pub fn id_base(&self) -> u32 {
        FIRST_ID_BASE + self.slot * CONTAINERS_PER_SLOT * IDS_PER_CONTAINER
    }
    /// The id base of the `index`th container of this engine.
    pub fn container_base(&self, index: u32) -> u32 {
        self.id_base() + index * IDS_PER_CONTAINER
    }
    /// Whether a container's id base lies in this engine's range.
    pub fn owns(&self, id_base: u32) -> bool {
        let end = u64::from(self.id_base())
            + u64::from(CONTAINERS_PER_SLOT) * u64::from(IDS_PER_CONTAINER);
        id_base >= self.id_base() && u64::from(id_base) < end
    }
    /// The identity stored in `state_dir` (slot 0 if none was ever claimed), for readers
    /// that do not claim.
    pub fn stored(state_dir: &Path) -> Identity {
        store::read_json(&state_dir.join("engine.json"))
            .ok()
            .flatten()
            .unwrap_or(Identity { slot: 0 })
    }
    /// The parent cgroup of this engine's containers.
    pub fn cgroup_parent(&self) -> String {
        if self.slot == 0 {
            crate::cgroup::PARENT.to_string()
        } else {
            format!("{}-{}", crate::cgroup::PARENT, self.slot)
        }
    }
}

fn claim_path(registry: &Path, slot: u32) -> PathBuf {
    registry.join(format!("slot-{slot}"))
}

/// The state dir a claim names, if the claim is live (that state dir still says it holds
/// the slot).
fn live_holder(registry: &Path, slot: u32) -> Option<PathBuf> {
    let holder = PathBuf::from(fs::read_to_string(claim_path(registry, slot)).ok()?.trim());
    let id: Identity = store::read_json(&holder.join("engine.json")).ok()??;
    (id.slot == slot).then_some(holder)
}

/// Opens (claiming on first use) the identity of the engine at `state_dir`, which must
/// exist. Fails with a clear error if the slot it holds is claimed by another live engine.
pub fn claim(state_dir: &Path) -> Result<Identity> {
    claim_in(Path::new(REGISTRY), state_dir)
}

pub(crate) fn claim_in(registry: &Path, state_dir: &Path) -> Result<Identity> {
    let me = fs::canonicalize(state_dir).ctx("resolve", state_dir)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(registry)
        .ctx("create directory", registry)?;
    let _lock = Lock::acquire(&registry.join(".lock"), Duration::from_secs(30))?;
    let file = me.join("engine.json");
    let stored: Option<Identity> = store::read_json(&file)?;
    let id = match stored {
        Some(id) => match live_holder(registry, id.slot) {
            Some(holder) if holder == me => return Ok(id),
            Some(other) => {
                return Err(Error::Unsupported(format!(
                    "the id range of slot {} (host uids {}..{}) and cgroup {:?} of the \
                         engine at {} are already used by the engine at {}: two state dirs \
                         cannot share them (move one of them, or remove {}/slot-{} if that \
                         engine is gone)",
                    id.slot,
                    id.id_base(),
                    u64::from(id.id_base())
                        + u64::from(CONTAINERS_PER_SLOT) * u64::from(IDS_PER_CONTAINER),
                    id.cgroup_parent(),
                    me.display(),
                    other.display(),
                    registry.display(),
                    id.slot,
                )))
            }
            None => id,
        },
        None => {
            // The default state dir, and state dirs made before slots existed (their
            // containers live in the first range and the `acetate` cgroup), take slot 0.
            let legacy = fs::read_dir(me.join("containers"))
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            let first = if me == Path::new(DEFAULT_STATE_DIR) || legacy {
                0
            } else {
                1
            };
            let slot = (first..SLOTS)
                .find(|s| live_holder(registry, *s).is_none_or(|h| h == me))
                .ok_or_else(|| {
                    Error::Unsupported(format!(
                        "every one of the {SLOTS} id ranges of this host is used by another \
                         acetate state dir (see {})",
                        registry.display()
                    ))
                })?;
            let id = Identity { slot };
            store::write_json(&file, &id)?;
            id
        }
    };
    let claim = claim_path(registry, id.slot);
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
        let a = Identity { slot: 1 };
        let b = Identity { slot: 2 };
        assert!(!a.owns(b.id_base()));
        assert!(a.owns(a.container_base(CONTAINERS_PER_SLOT - 1)));
        let last = Identity { slot: SLOTS - 1 };
        let end =
            u64::from(last.container_base(CONTAINERS_PER_SLOT - 1)) + u64::from(IDS_PER_CONTAINER);
        assert!(end <= u64::from(u32::MAX) + 1);
        assert_eq!(Identity { slot: 0 }.id_base(), FIRST_ID_BASE);
        assert_eq!(Identity { slot: 0 }.cgroup_parent(), "acetate");
        assert_eq!(Identity { slot: 3 }.cgroup_parent(), "acetate-3");
    }

    #[test]
    fn two_state_dirs_get_different_slots_and_a_taken_slot_is_refused() {
        let reg = tempfile::tempdir().unwrap();
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ia = claim_in(reg.path(), a.path()).unwrap();
        let ib = claim_in(reg.path(), b.path()).unwrap();
        assert_ne!(ia.slot, ib.slot);
        // Opening again keeps the slot.
        assert_eq!(claim_in(reg.path(), a.path()).unwrap(), ia);
        // A state dir copied from another (same engine.json) is refused while the other
        // holds the slot.
        let c = tempfile::tempdir().unwrap();
        fs::copy(a.path().join("engine.json"), c.path().join("engine.json")).unwrap();
        let err = claim_in(reg.path(), c.path()).unwrap_err().to_string();
        assert!(err.contains("already used by the engine at"), "{err}");
        // Once a's state dir is gone, its slot is free again.
        let a_path = a.path().to_path_buf();
        drop(a);
        assert!(!a_path.exists());
        assert_eq!(claim_in(reg.path(), c.path()).unwrap(), ia);
    }
}
