//! A container's own cgroup2 subtree, for an init that manages groups (systemd): handed to
//! the container's root the way systemd's `Delegate=` hands one to a service, so that it
//! may make groups and move its processes below the top while every limit stays on the
//! top, owned by the host.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::ContainerCgroup;
use crate::error::{Error, Result};

/// The files of a cgroup its delegate may write (besides making directories in it).
const DELEGATED_FILES: &[&str] = &["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"];

/// Groups a container's init may make below its top: systemd makes a few dozen; the bound
/// keeps a tenant from filling the kernel with empty groups (the file stays the host's).
const MAX_DESCENDANTS: &str = "1024";

/// The leaf that commands run inside a container join once its init has turned controllers
/// on below the top (cgroup v2 allows processes only in leaves then).
const EXEC_LEAF: &str = "acetate-exec";

impl ContainerCgroup {
    /// The container's directory in the cgroup2 hierarchy: its only one on a pure v2 host,
    /// the one beside the v1 hierarchies on a hybrid host; none on a v1-only host.
    pub fn v2_dir(&self) -> Option<PathBuf> {
        if self.is_v2() {
            self.paths().into_iter().next()
        } else {
            self.unified.clone()
        }
    }

    /// Hands the container's cgroup2 directory to host uid `uid` (the container's root).
    pub fn delegate(&self, uid: u32) -> Result<()> {
        let dir = self
            .v2_dir()
            .ok_or_else(|| Error::Unsupported("the host has no cgroup2 hierarchy".into()))?;
        let bound = dir.join("cgroup.max.descendants");
        fs::write(&bound, MAX_DESCENDANTS).map_err(|e| Error::io("bound the cgroup", &bound, e))?;
        for path in std::iter::once(dir.clone()).chain(DELEGATED_FILES.iter().map(|f| dir.join(f)))
        {
            std::os::unix::fs::chown(&path, Some(uid), Some(uid))
                .map_err(|e| Error::io("delegate the cgroup", &path, e))?;
        }
        Ok(())
    }

    /// Directories whose `cgroup.procs` a command run inside joins: the container's own,
    /// but in the cgroup2 hierarchy a leaf of the top once the container's init turned
    /// controllers on there.
    pub fn exec_paths(&self) -> Result<Vec<PathBuf>> {
        let v2 = self.v2_dir();
        let mut out = Vec::new();
        for dir in self.paths() {
            if Some(&dir) == v2.as_ref() && has_controllers_below(&dir) {
                let leaf = dir.join(EXEC_LEAF);
                match fs::create_dir(&leaf) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io("create cgroup", leaf, e)),
                }
                out.push(leaf);
            } else {
                out.push(dir);
            }
        }
        Ok(out)
    }
}

fn has_controllers_below(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.subtree_control")).is_ok_and(|s| !s.trim().is_empty())
}

/// The groups below `dir` (made by the container's init), deepest first.
fn groups_below(dir: &Path) -> Vec<PathBuf> {
    let mut groups = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            groups.extend(groups_below(&path));
            groups.push(path);
        }
    }
    groups
}

/// Removes the groups below `dir`, deepest first. Groups still holding processes stay, for
/// the caller's retry.
pub(super) fn remove_below(dir: &Path) {
    for group in groups_below(dir) {
        let _ = fs::remove_dir(&group);
    }
}

/// Adds the processes of the groups below `dir` to `pids`.
pub(super) fn processes_below(dir: &Path, pids: &mut Vec<i32>) {
    for group in groups_below(dir) {
        if let Ok(procs) = fs::read_to_string(group.join("cgroup.procs")) {
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
}
