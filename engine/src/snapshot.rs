//! Snapshots of a container's writable layer: a copy of its disk image, taken while the
//! filesystem in it is frozen (FIFREEZE: the kernel writes everything out, checkpoints the
//! journal and holds new writes until the thaw), so a snapshot of a running container is a
//! consistent filesystem. The copy is a reflink (FICLONE) where the state dir's filesystem
//! shares blocks (XFS, btrfs), otherwise a sparse-aware copy of the allocated extents only:
//! the time follows what the container wrote, never the size of its disk.
//!
//! Layout: `containers/<name>/snapshots/<snap>/{disk.img,config.json,meta.json}`. A
//! snapshot is written under `.new-<snap>` and renamed into place once complete, so an
//! interrupted one leaves no half-written snapshot (the debris is swept by the next
//! snapshot operation); a freeze left behind by a killed process is undone by the next
//! operation on the container (see [`thaw_left_freeze`]).

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::store::{self, ContainerConfig, Layout};
use crate::{mounts, spec, storage, Engine};

/// What `ct snapshot list` shows of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub name: String,
    /// Unix time it was taken.
    pub created_at: u64,
    /// Host disk space its image takes (its allocated blocks).
    pub bytes: u64,
    /// Size of the disk it holds.
    pub disk_size: u64,
    /// Whether the container was running (and its filesystem frozen) when it was taken.
    pub live: bool,
    /// How the image was copied: "reflink" or "sparse-copy".
    pub copy: String,
}

const FIFREEZE: libc::c_ulong = 0xC004_5877;
const FITHAW: libc::c_ulong = 0xC004_5878;
const FICLONE: libc::c_ulong = 0x4004_9409;

fn snapshots_dir(layout: &Layout, name: &str) -> PathBuf {
    layout.container(name).join("snapshots")
}

fn snapshot_dir(layout: &Layout, name: &str, snap: &str) -> PathBuf {
    snapshots_dir(layout, name).join(snap)
}

/// Marks that container `name`'s filesystem is (about to be) frozen; removed after the thaw.
fn freeze_mark(layout: &Layout, name: &str) -> PathBuf {
    layout.container(name).join("frozen")
}

/// A frozen filesystem; thawed (and the mark removed) when dropped.
#[derive(Debug)]
pub(crate) struct Frozen {
    dir: File,
    mark: PathBuf,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: FITHAW on a directory descriptor of the frozen filesystem; no argument.
        let rc = unsafe { libc::ioctl(self.dir.as_raw_fd(), FITHAW as _, 0) };
        if rc != 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "thaw");
        }
        let _ = fs::remove_file(&self.mark);
    }
}

/// Freezes the mounted disk of container `name` (writes out everything and holds new
/// writes). The mark written first lets a later operation thaw it if this process dies.
pub(crate) fn freeze(layout: &Layout, name: &str) -> Result<Frozen> {
    let disk = layout.disk(name);
    let dir = File::open(&disk).ctx("open", &disk)?;
    let mark = freeze_mark(layout, name);
    fs::write(&mark, std::process::id().to_string()).ctx("write", &mark)?;
    // SAFETY: FIFREEZE on a directory descriptor of the filesystem; no argument.
    let rc = unsafe { libc::ioctl(dir.as_raw_fd(), FIFREEZE as _, 0) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let _ = fs::remove_file(&mark);
        return Err(Error::io("freeze the filesystem of", disk, e));
    }
    Ok(Frozen { dir, mark })
}

/// Thaws container `name`'s filesystem if the process that froze it died before thawing
/// it (one failed `open` when nothing was left). Called on every locked operation and on
/// every read of a container's state (the panel reads them every few seconds), so a
/// killed snapshot holds the tenant's writes only until then.
pub(crate) fn thaw_left_freeze(layout: &Layout, name: &str) {
    let mark = freeze_mark(layout, name);
    let Ok(holder) = fs::read_to_string(&mark) else {
        return;
    };
    // A freeze whose process lives is a snapshot being taken: leave it.
    if let Ok(pid) = holder.trim().parse::<u32>() {
        if Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
    }
    if let Ok(dir) = File::open(layout.disk(name)) {
        // SAFETY: as in `Frozen::drop`; EINVAL when it was not frozen, which is fine.
        unsafe { libc::ioctl(dir.as_raw_fd(), FITHAW as _, 0) };
    }
    tracing::warn!(
        container = name,
        "thawed a filesystem a killed process left frozen"
    );
    let _ = fs::remove_file(mark);
}

/// Copies `src` to the new file `dst` (mode 0600): a reflink where the filesystem can,
/// otherwise only the allocated extents (holes stay holes). Returns how it copied.
pub fn copy_image(src: &Path, dst: &Path) -> Result<&'static str> {
    let from = File::open(src).ctx("open", src)?;
    let to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .ctx("create", dst)?;
    // SAFETY: FICLONE takes the source descriptor as its argument.
    let rc = unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) };
    if rc == 0 {
        return Ok("reflink");
    }
    let len = from.metadata().ctx("stat", src)?.len();
    to.set_len(len).ctx("size", dst)?;
    let mut pos: i64 = 0;
    while (pos as u64) < len {
        // SAFETY: lseek on a descriptor we own.
        let data = unsafe { libc::lseek(from.as_raw_fd(), pos, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole is left
            }
            return Err(Error::io("seek data in", src, e));
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(from.as_raw_fd(), data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(Error::last_os(format!("seek hole in {}", src.display())));
        }
        let (mut off_in, mut off_out) = (data, data);
        while off_in < hole {
            // SAFETY: copy_file_range between two descriptors we own, offsets by pointer.
            let n = unsafe {
                libc::copy_file_range(
                    from.as_raw_fd(),
                    &mut off_in,
                    to.as_raw_fd(),
                    &mut off_out,
                    (hole - off_in) as usize,
                    0,
                )
            };
            if n < 0 {
                return Err(Error::last_os(format!("copy {}", src.display())));
            }
            if n == 0 {
                break;
            }
        }
        pos = hole;
    }
    to.sync_all().ctx("sync", dst)?;
    Ok("sparse-copy")
}

/// Removes what interrupted snapshots left (`.new-*` directories).
fn sweep(layout: &Layout, name: &str) {
    let Ok(entries) = fs::read_dir(snapshots_dir(layout, name)) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn read_info(dir: &Path) -> Result<Option<SnapshotInfo>> {
    store::read_json(&dir.join("meta.json"))
}

/// Snapshots of container `name`, oldest first.
pub(crate) fn list(layout: &Layout, name: &str) -> Result<Vec<SnapshotInfo>> {
    let dir = snapshots_dir(layout, name);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if let Some(info) = read_info(&e.path())? {
            out.push(info);
        }
    }
    out.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    Ok(out)
}

/// A default snapshot name from the time: `snap-20261126-114502`.
fn default_name(now: u64) -> String {
    let days = (now / 86_400) as i64;
    let secs = now % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "snap-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Takes a snapshot of the (locked) container into `dest` (a new directory), freezing
/// its filesystem while the image is copied if it is mounted.
pub(crate) fn take(
    layout: &Layout,
    cfg: &ContainerConfig,
    snap: &str,
    dest: &Path,
    running: bool,
) -> Result<SnapshotInfo> {
    let name = &cfg.name;
    fs::create_dir_all(dest.parent().expect("snapshot dirs have a parent"))
        .ctx("create directory", dest)?;
    fs::create_dir(dest).ctx("create directory", dest)?;
    let copied = {
        let _frozen = if mounts::fs_magic(&layout.disk(name)) == Some(mounts::EXT4_SUPER_MAGIC) {
            Some(freeze(layout, name)?)
        } else {
            None
        };
        let copied = copy_image(&layout.image(name), &dest.join("disk.img"))?;
        crate::testing::crash_point("snapshot-frozen");
        copied
    };
    store::write_json(&dest.join("config.json"), cfg)?;
    let meta = fs::metadata(dest.join("disk.img")).ctx("stat", dest)?;
    let info = SnapshotInfo {
        name: snap.to_string(),
        created_at: store::unix_now(),
        bytes: meta.blocks() * 512,
        disk_size: meta.len(),
        live: running,
        copy: copied.to_string(),
    };
    store::write_json(&dest.join("meta.json"), &info)?;
    Ok(info)
}

impl Engine {
    /// Takes a snapshot of container `name` (running or not) called `snap` (a name from
    /// the time if `None`). `max` caps how many it may have.
    #[tracing::instrument(skip(self))]
    pub fn snapshot(
        &self,
        name: &str,
        snap: Option<&str>,
        max: Option<usize>,
    ) -> Result<SnapshotInfo> {
        crate::require_root("take snapshots")?;
        if let Some(s) = snap {
            spec::validate_name(s)?;
        }
        let (_lock, cfg) = self.lock(name)?;
        sweep(&self.layout, name);
        let existing = list(&self.layout, name)?;
        // From the time; a second one within the same second gets a counter.
        let snap = snap.map(str::to_string).unwrap_or_else(|| {
            let base = default_name(store::unix_now());
            (1..)
                .map(|n| match n {
                    1 => base.clone(),
                    n => format!("{base}-{n}"),
                })
                .find(|c| existing.iter().all(|s| &s.name != c))
                .expect("some counter is free")
        });
        if existing.iter().any(|s| s.name == snap) {
            return Err(Error::Unsupported(format!(
                "container {name:?} already has a snapshot called {snap:?}"
            )));
        }
        if let Some(max) = max {
            if existing.len() >= max {
                return Err(Error::Unsupported(format!(
                    "container {name:?} has {} snapshot(s), as many as its plan allows ({max}): \
                     delete one first",
                    existing.len()
                )));
            }
        }
        let fin = snapshot_dir(&self.layout, name, &snap);
        let tmp = snapshots_dir(&self.layout, name).join(format!(".new-{snap}"));
        let running = self.run_state(name)?.is_some();
        let info = take(&self.layout, &cfg, &snap, &tmp, running).inspect_err(|_| {
            let _ = fs::remove_dir_all(&tmp);
        })?;
        fs::rename(&tmp, &fin).ctx("rename into place", &fin)?;
        Ok(info)
    }

    /// The snapshots of container `name`, oldest first.
    pub fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        self.config(name)?;
        list(&self.layout, name)
    }

    /// Deletes snapshot `snap` of container `name`.
    #[tracing::instrument(skip(self))]
    pub fn delete_snapshot(&self, name: &str, snap: &str) -> Result<()> {
        crate::require_root("delete snapshots")?;
        let (_lock, _cfg) = self.lock(name)?;
        let dir = self.existing_snapshot(name, snap)?;
        // Renamed away first: a crash half-way through leaves only debris that is swept.
        let doomed = snapshots_dir(&self.layout, name).join(format!(".del-{snap}"));
        fs::rename(&dir, &doomed).ctx("rename", &dir)?;
        fs::remove_dir_all(&doomed).ctx("remove", &doomed)
    }

    fn existing_snapshot(&self, name: &str, snap: &str) -> Result<PathBuf> {
        let dir = snapshot_dir(&self.layout, name, snap);
        if spec::validate_name(snap).is_err() || read_info(&dir)?.is_none() {
            return Err(Error::NoSuchSnapshot(name.to_string(), snap.to_string()));
        }
        Ok(dir)
    }

    /// Rolls container `name` back to snapshot `snap`: its writable layer becomes the
    /// snapshot's; its limits stay the current ones (a snapshot taken before the disk was
    /// grown is grown to the current size). A running container is stopped and started
    /// again. The restored image is prepared beside the current one and replaces it only
    /// once complete, so a failure or a kill leaves the container as it was.
    #[tracing::instrument(skip(self))]
    pub fn restore_snapshot(
        &self,
        name: &str,
        snap: &str,
        timeout: Duration,
    ) -> Result<crate::ContainerInfo> {
        crate::require_root("restore snapshots")?;
        let (_lock, cfg) = self.lock(name)?;
        let dir = self.existing_snapshot(name, snap)?;
        let info = read_info(&dir)?.expect("checked above");
        if info.disk_size > cfg.limits.disk {
            return Err(Error::Unsupported(format!(
                "snapshot {snap:?} holds a {} byte disk, larger than the container's {} bytes",
                info.disk_size, cfg.limits.disk
            )));
        }
        let staged = self.layout.image(name).with_extension("restore");
        let _ = fs::remove_file(&staged);
        let prepared = copy_image(&dir.join("disk.img"), &staged).and_then(|_| {
            if info.disk_size < cfg.limits.disk {
                storage::grow_image_file(&staged, info.disk_size, cfg.limits.disk)
            } else {
                Ok(())
            }
        });
        if let Err(e) = prepared {
            let _ = fs::remove_file(&staged);
            return Err(e);
        }
        self.swap_image(&cfg, &staged, timeout)
    }

    /// Replaces the (locked) container's disk image with `staged`, stopping it first and
    /// starting it again if it ran. On failure `staged` is removed and the container is as
    /// it was.
    pub(crate) fn swap_image(
        &self,
        cfg: &ContainerConfig,
        staged: &Path,
        timeout: Duration,
    ) -> Result<crate::ContainerInfo> {
        let name = &cfg.name;
        let image = self.layout.image(name);
        let was_running = match self.stop_locked(cfg, timeout) {
            Ok(was) => was,
            Err(e) => {
                let _ = fs::remove_file(staged);
                return Err(e);
            }
        };
        let swapped = storage::unmount_all(&self.layout, name).and_then(|()| {
            fs::rename(staged, &image).map_err(|e| Error::io("replace disk image", &image, e))
        });
        if let Err(e) = swapped {
            let _ = fs::remove_file(staged);
            let _ = storage::mount_existing(&self.layout, name, &cfg.template, cfg.id_base);
            if was_running {
                let _ = self.start_locked(cfg);
            }
            return Err(e);
        }
        storage::mount_existing(&self.layout, name, &cfg.template, cfg.id_base)?;
        if was_running {
            self.start_locked(cfg)
        } else {
            Ok(self.info(cfg, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_utc_dates() {
        assert_eq!(default_name(0), "snap-19700101-000000");
        // 2026-11-26 11:45:02 UTC
        assert_eq!(default_name(1_795_693_502), "snap-20261126-114502");
        // A leap day.
        assert_eq!(default_name(1_709_164_800), "snap-20240229-000000");
    }

    #[test]
    fn sparse_copy_keeps_data_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.img");
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = File::create(&src).unwrap();
            f.set_len(64 << 20).unwrap();
            f.seek(SeekFrom::Start(8 << 20)).unwrap();
            f.write_all(&[7u8; 1 << 20]).unwrap();
            f.seek(SeekFrom::Start(60 << 20)).unwrap();
            f.write_all(b"tail").unwrap();
        }
        let dst = dir.path().join("dst.img");
        copy_image(&src, &dst).unwrap();
        assert_eq!(fs::read(&src).unwrap(), fs::read(&dst).unwrap());
        let m = fs::metadata(&dst).unwrap();
        assert_eq!(m.len(), 64 << 20);
        assert!(
            m.blocks() * 512 < 4 << 20,
            "holes stay holes: {}",
            m.blocks()
        );
        // An existing destination is never overwritten.
        assert!(copy_image(&src, &dst).is_err());
    }
}
