//! The state dir's filesystem, shared by every container's sparse disk image: how much of
//! it the disk quotas may promise (the provider's over-commit ratio), a reserve that keeps
//! the panel and its database writable when tenants fill it anyway, and the repair of a
//! container filesystem that went read-only because its image could not grow.
//!
//! The reserve is a preallocated file, `<state>/reserve.img`. When free space falls below
//! it, [`relieve`] deletes it, handing its blocks back to whoever needs them most (the
//! panel, its database, a destroy); once space is back (twice the reserve free) it is
//! made again.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::size::format_bytes;

/// The provider's rules for the state dir's disk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskPolicy {
    /// Disk quotas may add up to this many times the filesystem's size less the reserve.
    pub overcommit: f64,
    /// Bytes kept back for the panel and its database; `None`: 2 % of the filesystem, at
    /// most 512 MiB.
    pub reserve: Option<u64>,
}

impl Default for DiskPolicy {
    fn default() -> Self {
        DiskPolicy {
            overcommit: 1.0,
            reserve: None,
        }
    }
}

impl DiskPolicy {
    pub fn validate(&self) -> Result<()> {
        if !(self.overcommit.is_finite() && self.overcommit > 0.0 && self.overcommit <= 100.0) {
            return Err(Error::InvalidLimit {
                what: "disk over-commit ratio",
                msg: format!("{} is not a ratio between 0 and 100", self.overcommit),
            });
        }
        Ok(())
    }

    /// The reserve on a filesystem of `total` bytes.
    pub fn reserve_for(&self, total: u64) -> u64 {
        self.reserve.unwrap_or((total / 50).min(512 << 20))
    }
}

/// The state of the state dir's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskCapacity {
    /// Size of the filesystem.
    pub total: u64,
    /// Free now.
    pub free: u64,
    /// Sum of the containers' disk quotas.
    pub promised: u64,
    /// What the quotas may add up to (over-commit ratio × (size − reserve)).
    pub allowed: u64,
    /// The reserve's size, and whether it is held right now.
    pub reserve: u64,
    pub reserve_held: bool,
}

fn reserve_path(state: &Path) -> std::path::PathBuf {
    state.join("reserve.img")
}

/// Size and free bytes of the filesystem holding `path`.
pub fn filesystem(path: &Path) -> Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| Error::sys("statvfs", e))?;
    let unit = st.fragment_size();
    Ok((st.blocks() * unit, st.blocks_available() * unit))
}

/// The capacity figures, given the sum of the quotas already promised.
pub fn capacity(state: &Path, policy: &DiskPolicy, promised: u64) -> Result<DiskCapacity> {
    let (total, free) = filesystem(state)?;
    let reserve = policy.reserve_for(total);
    let allowed = (total.saturating_sub(reserve) as f64 * policy.overcommit) as u64;
    Ok(DiskCapacity {
        total,
        free,
        promised,
        allowed,
        reserve,
        reserve_held: reserve_path(state).exists(),
    })
}

/// Refuses `more` bytes of quota beyond what the policy allows.
pub fn admit(cap: &DiskCapacity, more: u64, policy: &DiskPolicy) -> Result<()> {
    if cap.promised.saturating_add(more) <= cap.allowed {
        return Ok(());
    }
    Err(Error::InvalidLimit {
        what: "disk",
        msg: format!(
            "{} more does not fit: the host's disk quotas already add up to {} of the {} \
             allowed (over-commit ratio {}, {} kept in reserve)",
            format_bytes(more),
            format_bytes(cap.promised),
            format_bytes(cap.allowed),
            policy.overcommit,
            format_bytes(cap.reserve)
        ),
    })
}

/// Makes the reserve file of `bytes` if it is missing and there is room for it and as
/// much again; returns whether it is held.
pub fn hold_reserve(state: &Path, bytes: u64) -> Result<bool> {
    let path = reserve_path(state);
    if path.exists() {
        return Ok(true);
    }
    let (_, free) = filesystem(state)?;
    if bytes == 0 || free < bytes.saturating_mul(2) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .ctx("create", &tmp)?;
    if let Err(e) = nix::fcntl::posix_fallocate(file.as_raw_fd(), 0, bytes as i64) {
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(Error::sys("preallocate the disk reserve", e));
    }
    fs::rename(&tmp, &path).ctx("install", &path)?;
    Ok(true)
}

/// Gives the reserve up when free space is below it (a full disk: the panel, its database
/// and destroys get its blocks), or takes it back once there is room again. Returns
/// whether it gave it up now.
pub fn relieve(state: &Path, policy: &DiskPolicy) -> Result<bool> {
    let (total, free) = filesystem(state)?;
    let reserve = policy.reserve_for(total);
    let path = reserve_path(state);
    if free < reserve && path.exists() {
        fs::remove_file(&path).ctx("release the disk reserve", &path)?;
        tracing::error!(
            free = %format_bytes(free),
            reserve = %format_bytes(reserve),
            "the state dir's disk is full: the reserve was released; free space or \
             lower the over-commit ratio"
        );
        return Ok(true);
    }
    hold_reserve(state, reserve)?;
    Ok(false)
}

/// `EXT2_ERROR_FS` in `s_state`: the kernel found errors in the filesystem.
const EXT_ERROR_FS: u16 = 0x0002;

/// Whether the ext4 image at `image` records errors (it was remounted read-only, say,
/// when its sparse image could not grow on a full host disk).
pub fn has_errors(image: &Path) -> Result<bool> {
    let mut f = File::open(image).ctx("open", image)?;
    let mut sb = [0u8; 64];
    f.seek(SeekFrom::Start(1024)).ctx("read", image)?;
    f.read_exact(&mut sb).ctx("read", image)?;
    let state = u16::from_le_bytes([sb[58], sb[59]]);
    Ok(state & EXT_ERROR_FS != 0)
}

/// Whether the filesystem mounted at `path` is read-only now.
pub fn is_read_only(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .map(|st| st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

/// Repairs an unmounted image with `e2fsck -fy`. Exit codes 0–2 mean clean or fixed.
pub fn repair(image: &Path) -> Result<()> {
    let out = Command::new("e2fsck")
        .args(["-f", "-y"])
        .arg(image)
        .output()
        .map_err(|e| Error::sys("run e2fsck", e))?;
    if matches!(out.status.code(), Some(0..=2)) {
        tracing::warn!(image = %image.display(), "repaired a container filesystem");
        return Ok(());
    }
    Err(Error::Command {
        cmd: format!("e2fsck -f -y {}", image.display()),
        output: String::from_utf8_lossy(&out.stdout).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_holds_to_the_ratio_and_names_the_figures() {
        let policy = DiskPolicy {
            overcommit: 2.0,
            reserve: Some(100),
        };
        let cap = DiskCapacity {
            total: 1100,
            free: 1000,
            promised: 1500,
            allowed: 2000,
            reserve: 100,
            reserve_held: true,
        };
        assert!(admit(&cap, 500, &policy).is_ok());
        let err = admit(&cap, 501, &policy).unwrap_err().to_string();
        assert!(err.contains("over-commit ratio 2"), "{err}");
        assert!(DiskPolicy {
            overcommit: 0.0,
            reserve: None
        }
        .validate()
        .is_err());
        assert_eq!(
            DiskPolicy::default().reserve_for(10 << 30),
            (10u64 << 30) / 50
        );
        assert_eq!(DiskPolicy::default().reserve_for(1 << 40), 512 << 20);
    }
}
