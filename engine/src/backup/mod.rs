//! Backups of containers' writable layers into a repository in restic's format, written
//! and read through rustic_core, so that Debian's `restic` lists and restores them too.
//!
//! A backup is taken from a snapshot (see [`crate::snapshot`]: consistent, even of a
//! running container), mounted read-only in a staging dir and seen through an idmapped
//! mount that shows every file with the ids it has inside the container. The repository
//! stores, under `/acetate/<container>`, the container's `config.json` and its `upper`
//! dir (the overlay's diff: files, whiteouts and their xattrs). Content-defined chunking
//! stores each piece of data once across all containers and all backups; files unchanged
//! since the container's previous backup are not even read again.
//!
//! A restore goes the other way: a fresh image, mounted in the staging dir, is filled
//! through an idmapped mount that gives the files the target container's host ids, and
//! replaces the container's image only once complete. An interrupted backup or restore
//! leaves only its staging dir, which the next one on that container clears.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustic_core::{
    BackupOptions, KeepOptions, LocalDestination, LsOptions, PathList, PruneOptions, Repository,
    RestoreOptions, SnapshotOptions,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::loopdev::LoopDevice;
use crate::store::{ContainerConfig, Layout, Lock};
use crate::{mounts, snapshot, spec, storage, Engine, LOCK_TIMEOUT};

mod repo;
use repo::rustic;
pub use repo::{BackupProgress, BackupRepo};

/// One backup in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// The repository's snapshot id (what `restic snapshots` shows, in full).
    pub id: String,
    pub container: String,
    pub template: String,
    /// The container's owner label when it was backed up (the panel's `panel:<user>`).
    #[serde(default)]
    pub owner: Option<String>,
    /// Unix time it was taken.
    pub time: u64,
    /// Bytes of files in it.
    pub bytes: u64,
    /// Bytes this backup added to the repository (before compression).
    pub added: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
}

const TAG: &str = "acetate";

fn container_tag(name: &str) -> String {
    format!("ct-{name}")
}

fn backup_path(name: &str) -> String {
    format!("/acetate/{name}")
}

fn info_of(snap: &rustic_core::repofile::SnapshotFile) -> Option<BackupInfo> {
    let container = snap.label.clone();
    if !snap.tags.contains(TAG) || !snap.tags.contains(&container_tag(&container)) {
        return None;
    }
    let template = snap
        .tags
        .iter()
        .find_map(|t| t.strip_prefix("template-"))
        .unwrap_or_default()
        .to_string();
    let owner = snap
        .tags
        .iter()
        .find_map(|t| t.strip_prefix("owner-"))
        .map(str::to_string);
    let s = snap.summary.clone().unwrap_or_default();
    Some(BackupInfo {
        id: snap.id.to_hex().as_str().to_string(),
        container,
        template,
        owner,
        time: snap.time.timestamp().as_second().max(0) as u64,
        bytes: s.total_bytes_processed,
        added: s.data_added,
        files_new: s.files_new,
        files_changed: s.files_changed,
        files_unmodified: s.files_unmodified,
    })
}

/// How many backups of a container to keep (restic's `forget --keep-*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub last: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
}

impl Retention {
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
            && self.daily.is_none()
            && self.weekly.is_none()
            && self.monthly.is_none()
    }
    fn keep_options(&self) -> KeepOptions {
        let n = |v: Option<u32>| v.map(|v| v.min(i32::MAX as u32) as i32);
        KeepOptions::default()
            .keep_last(n(self.last))
            .keep_daily(n(self.daily))
            .keep_weekly(n(self.weekly))
            .keep_monthly(n(self.monthly))
    }
}

/// A staging dir under `<state>/backups/stage`; unmounted and removed when dropped.
#[derive(Debug)]
pub(crate) struct Stage {
    dir: PathBuf,
    _lock: Lock,
}

impl Stage {
    /// Takes the stage `what-name` (`backup-web`, `restore-web`), clearing what a killed
    /// process left in it.
    fn take(layout: &Layout, what: &str, name: &str) -> Result<Stage> {
        let root = layout.root().join("backups/stage");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .ctx("create directory", &root)?;
        let lock = Lock::acquire(&root.join(format!(".{what}-{name}.lock")), LOCK_TIMEOUT)
            .map_err(|e| match e {
                Error::LockTimeout(_) => {
                    Error::Unsupported(format!("a {what} of {name:?} is already running"))
                }
                e => e,
            })?;
        let dir = root.join(format!("{what}-{name}"));
        clear(&dir)?;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .ctx("create directory", &dir)?;
        Ok(Stage { dir, _lock: lock })
    }
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Err(e) = clear(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "clearing a backup stage");
        }
    }
}

/// Mount points a stage may hold, innermost first.
const STAGE_MOUNTS: &[&str] = &["root/upper", "rw", "mnt"];

fn clear(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for m in STAGE_MOUNTS {
        let p = dir.join(m);
        if p.exists() {
            mounts::umount_all(&p)?;
        }
    }
    fs::remove_dir_all(dir).ctx("remove", dir)
}

fn mkdir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .ctx("create directory", path)
}

/// Mounts the ext4 image `image` at `target` (read-only without journal replay if `ro`).
fn mount_image(image: &Path, target: &Path, ro: bool) -> Result<()> {
    mkdir(target)?;
    let dev = LoopDevice::attach(image)?;
    let (flags, data) = if ro {
        (libc::MS_RDONLY, "noload")
    } else {
        (0, "")
    };
    mounts::mount(
        &dev.path.to_string_lossy(),
        target,
        "ext4",
        flags | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME,
        Some(data).filter(|d| !d.is_empty()),
    )
    // The mount holds the device now; auto-clear detaches it on unmount.
}

fn backup_error_context(name: &str, e: Error) -> Error {
    match e {
        Error::Backup(msg) => Error::Backup(format!("{name}: {msg}")),
        e => e,
    }
}

impl Engine {
    /// Stages a consistent, read-only view of container `name`'s layer for `what` (a
    /// backup, an export): `root/config.json` and `root/upper`, the latter showing every
    /// file with the ids it has inside the container. The container is locked only while
    /// its snapshot is taken.
    pub(crate) fn staged_view(&self, name: &str, what: &str) -> Result<(Stage, ContainerConfig)> {
        let stage = Stage::take(&self.layout, what, name)?;
        let cfg = {
            let (_lock, cfg) = self.lock(name)?;
            let running = self.run_state(name)?.is_some();
            snapshot::take(&self.layout, &cfg, what, &stage.path("snap"), running)?;
            cfg
        };
        mount_image(&stage.path("snap/disk.img"), &stage.path("mnt"), true)?;
        let root = stage.path("root");
        mkdir(&root.join("upper"))?;
        fs::copy(stage.path("snap/config.json"), root.join("config.json"))
            .ctx("copy", root.join("config.json"))?;
        let ns = storage::userns_fd_reverse(cfg.id_base)?;
        storage::idmapped_bind(&stage.path("mnt/upper"), &root.join("upper"), &ns)?;
        Ok((stage, cfg))
    }

    /// Replaces the (locked) container `cfg`'s layer with one that `fill` writes into the
    /// directory it is given (seen with the ids inside the container). The new image is
    /// made and filled in a stage; the container changes only once it is complete.
    pub(crate) fn refill(
        &self,
        cfg: &ContainerConfig,
        what: &str,
        timeout: Duration,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<crate::ContainerInfo> {
        let target = &cfg.name;
        let stage = Stage::take(&self.layout, what, target)?;
        let staged = self.layout.image(target).with_extension("restore");
        let _ = fs::remove_file(&staged);
        let filled = (|| {
            storage::make_image(&staged, cfg.limits.disk, cfg.limits.inodes)?;
            mount_image(&staged, &stage.path("mnt"), false)?;
            let upper = stage.path("mnt/upper");
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&upper)
                .ctx("create directory", &upper)?;
            std::os::unix::fs::chown(&upper, Some(cfg.id_base), Some(cfg.id_base))
                .ctx("chown", &upper)?;
            mkdir(&stage.path("mnt/work"))?;
            let rw = stage.path("rw");
            mkdir(&rw)?;
            // Files appear (and are created) with the ids they have inside: host
            // `id_base + n` is `n` here.
            let ns = storage::userns_fd_reverse(cfg.id_base)?;
            storage::idmapped_bind_with(&upper, &rw, &ns, false)?;
            fill(&rw)
        })();
        crate::testing::crash_point("restore-filled");
        // Unmounted before the swap, whatever happened.
        drop(stage);
        if let Err(e) = filled {
            let _ = fs::remove_file(&staged);
            return Err(backup_error_context(target, e));
        }
        self.swap_image(cfg, &staged, timeout)
    }

    /// Backs container `name` up (running or not) into `repo`; `progress` counts bytes.
    #[tracing::instrument(skip(self, repo, progress))]
    pub fn backup(
        &self,
        name: &str,
        repo: &BackupRepo,
        progress: Option<&BackupProgress>,
    ) -> Result<BackupInfo> {
        crate::require_root("back containers up")?;
        let (stage, cfg) = self.staged_view(name, "backup")?;
        let root = stage.path("root");
        crate::testing::crash_point("backup-staged");
        let repo = repo.open(progress)?.to_indexed_ids().map_err(rustic)?;
        let mut tags = format!("{TAG},{},template-{}", container_tag(name), cfg.template);
        if let Some(owner) = cfg.owner.as_deref().filter(|o| !o.contains(',')) {
            tags.push_str(&format!(",owner-{owner}"));
        }
        let snap = SnapshotOptions::default()
            .label(name.to_string())
            .add_tags(&tags)
            .and_then(|o| o.to_snapshot())
            .map_err(rustic)?;
        let source = PathList::from_string(&root.to_string_lossy())
            .map_err(rustic)?
            .sanitize()
            .map_err(rustic)?;
        let opts = BackupOptions::default().as_path(Some(PathBuf::from(backup_path(name))));
        let snap = repo
            .backup(&opts, &source, snap)
            .map_err(|e| backup_error_context(name, rustic(e)))?;
        drop(stage);
        info_of(&snap).ok_or_else(|| Error::Backup("the new backup lacks its tags".into()))
    }

    /// Backups in `repo`, of container `name` or of every container, oldest first.
    pub fn backups(&self, repo: &BackupRepo, name: Option<&str>) -> Result<Vec<BackupInfo>> {
        let repo = repo.open(None)?;
        let mut out: Vec<BackupInfo> = repo
            .get_all_snapshots()
            .map_err(rustic)?
            .iter()
            .filter_map(info_of)
            .filter(|b| name.is_none_or(|n| b.container == n))
            .collect();
        out.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        Ok(out)
    }

    /// The container config stored with backup `id` (its template, limits, name).
    pub fn backup_config(&self, repo: &BackupRepo, id: &str) -> Result<ContainerConfig> {
        let repo = repo.open(None)?.to_indexed().map_err(rustic)?;
        let (info, snap) = find(&repo, id)?;
        let node = repo
            .node_from_snapshot_and_path(
                &snap,
                &format!("{}/config.json", backup_path(&info.container)),
            )
            .map_err(rustic)?;
        let mut raw = Vec::new();
        repo.dump(&node, &mut raw).map_err(rustic)?;
        serde_json::from_slice(&raw)
            .map_err(|e| Error::Backup(format!("backup {id}: its config.json: {e}")))
    }

    /// Restores backup `id` into container `target` (its own container or another of the
    /// same template), replacing its writable layer; the target's limits stay. A running
    /// target is stopped and started again. Nothing changes unless the whole backup was
    /// restored.
    #[tracing::instrument(skip(self, repo, progress))]
    pub fn restore_backup(
        &self,
        repo: &BackupRepo,
        id: &str,
        target: &str,
        timeout: Duration,
        progress: Option<&BackupProgress>,
    ) -> Result<crate::ContainerInfo> {
        crate::require_root("restore backups")?;
        spec::validate_name(target).map_err(|_| Error::NoSuchContainer(target.to_string()))?;
        let repo = repo.open(progress)?.to_indexed().map_err(rustic)?;
        let (info, snap) = find(&repo, id)?;
        let (_lock, cfg) = self.lock(target)?;
        if info.template != cfg.template {
            return Err(Error::Unsupported(format!(
                "backup {id} is of a container of template {:?}; {target:?} has {:?} \
                 (restore it to a new container instead)",
                info.template, cfg.template
            )));
        }
        self.refill(&cfg, "restore", timeout, |rw| {
            let node = repo
                .node_from_snapshot_and_path(
                    &snap,
                    &format!("{}/upper", backup_path(&info.container)),
                )
                .map_err(rustic)?;
            let ls = LsOptions::default();
            let dest = LocalDestination::new(&format!("{}/", rw.display()), false, false)
                .map_err(rustic)?;
            let opts = RestoreOptions::default().numeric_id(true);
            let plan = repo
                .prepare_restore(&opts, repo.ls(&node, &ls).map_err(rustic)?, &dest, false)
                .map_err(rustic)?;
            repo.restore(plan, &opts, repo.ls(&node, &ls).map_err(rustic)?, &dest)
                .map_err(rustic)
        })
    }

    /// Applies `keep` to the backups of container `name` and prunes the repository;
    /// returns the ids forgotten.
    #[tracing::instrument(skip(self, repo))]
    pub fn forget_backups(
        &self,
        repo: &BackupRepo,
        name: &str,
        keep: &Retention,
    ) -> Result<Vec<String>> {
        crate::require_root("prune backups")?;
        if keep.is_empty() {
            return Err(Error::InvalidLimit {
                what: "retention",
                msg: "say how many backups to keep (last, daily, weekly or monthly)".into(),
            });
        }
        let open = repo.open(None)?;
        let mine: Vec<_> = open
            .get_all_snapshots()
            .map_err(rustic)?
            .into_iter()
            .filter(|s| info_of(s).is_some_and(|b| b.container == name))
            .collect();
        let now = rustic_core::jiff::Zoned::now();
        let doomed: Vec<_> = keep
            .keep_options()
            .apply(mine, &now)
            .map_err(rustic)?
            .into_iter()
            .filter(|f| !f.keep)
            .map(|f| f.snapshot.id)
            .collect();
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        open.delete_snapshots(&doomed).map_err(rustic)?;
        let prune = PruneOptions::default();
        let plan = open.prune_plan(&prune).map_err(rustic)?;
        open.prune(&prune, plan).map_err(rustic)?;
        Ok(doomed
            .iter()
            .map(|id| id.to_hex().as_str().to_string())
            .collect())
    }
}

/// Backup `id` (a full id or a unique prefix) and its snapshot file.
fn find<S: rustic_core::Open>(
    repo: &Repository<S>,
    id: &str,
) -> Result<(BackupInfo, rustic_core::repofile::SnapshotFile)> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NoSuchBackup(id.to_string()));
    }
    let snap = repo
        .get_snapshot_from_str(id, |_| true)
        .map_err(|_| Error::NoSuchBackup(id.to_string()))?;
    let info = info_of(&snap).ok_or_else(|| Error::NoSuchBackup(id.to_string()))?;
    Ok((info, snap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_needs_something_to_keep() {
        assert!(Retention::default().is_empty());
        let r = Retention {
            last: Some(3),
            ..Retention::default()
        };
        assert!(!r.is_empty());
        assert_eq!(r.keep_options().keep_last, Some(3));
    }
}
