//! The engine's files under the state dir: where everything lives, the per-container
//! config and run state, and the locks that keep two acetate processes from acting on the
//! same container at once.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::spec::{ContainerSpec, Limits};

/// Paths of the on-disk layout (see DESIGN.md).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn templates(&self) -> PathBuf {
        self.root.join("templates")
    }
    pub fn template(&self, name: &str) -> PathBuf {
        self.templates().join(name)
    }
    pub fn template_rootfs(&self, name: &str) -> PathBuf {
        self.template(name).join("rootfs")
    }
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn container(&self, name: &str) -> PathBuf {
        self.containers().join(name)
    }
    pub fn config(&self, name: &str) -> PathBuf {
        self.container(name).join("config.json")
    }
    pub fn run_state(&self, name: &str) -> PathBuf {
        self.container(name).join("state.json")
    }
    pub fn image(&self, name: &str) -> PathBuf {
        self.container(name).join("disk.img")
    }
    pub fn disk(&self, name: &str) -> PathBuf {
        self.container(name).join("disk")
    }
    pub fn upper(&self, name: &str) -> PathBuf {
        self.disk(name).join("upper")
    }
    pub fn work(&self, name: &str) -> PathBuf {
        self.disk(name).join("work")
    }
    /// The template seen through the container's id mapping (an idmapped bind mount).
    pub fn lower(&self, name: &str) -> PathBuf {
        self.container(name).join("lower")
    }
    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.container(name).join("rootfs")
    }
    /// Present while container `name` should run: made by start, removed by stop, kept
    /// across a host reboot so that the engine starts it again.
    pub fn autostart(&self, name: &str) -> PathBuf {
        self.container(name).join("autostart")
    }
    fn global_lock(&self) -> PathBuf {
        self.root.join(".lock")
    }
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }
    /// Per-container lock files. They live outside the containers' directories so that a
    /// directory being removed can never have its lock re-created inside it.
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Creates the top-level directories (mode 0700: tenants' files are not for host
    /// users). A state dir that others may read or write is narrowed to 0711.
    pub fn ensure(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(&self.root) {
            if meta.permissions().mode() & 0o066 != 0 {
                fs::set_permissions(&self.root, fs::Permissions::from_mode(0o711))
                    .ctx("chmod", &self.root)?;
            }
        }
        for dir in [
            self.root.clone(),
            self.templates(),
            self.containers(),
            self.bin(),
            self.locks(),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .ctx("create directory", &dir)?;
        }
        Ok(())
    }

    /// Takes the lock that serialises creation, destruction and template changes.
    pub fn lock_global(&self, timeout: Duration) -> Result<Lock> {
        Lock::acquire(&self.global_lock(), timeout)
    }

    /// Takes container `name`'s lock (whether or not the container exists).
    pub fn lock_container(&self, name: &str, timeout: Duration) -> Result<Lock> {
        Lock::acquire(&self.locks().join(name), timeout)
    }
}

/// An exclusive `flock` on a file; released when dropped or when the process dies.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Locks the directory `dir` (through its `lock` file, which lives and dies with it).
    pub fn acquire_in(dir: &Path, timeout: Duration) -> Result<Lock> {
        Lock::acquire(&dir.join("lock"), timeout)
    }

    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .ctx("open lock file", path)?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(Error::io("lock", path, err));
            }
            if Instant::now() >= deadline {
                return Err(Error::LockTimeout(path.to_path_buf()));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// A container's persistent configuration (`containers/<name>/config.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub name: String,
    pub template: String,
    pub limits: Limits,
    #[serde(default)]
    pub owner: Option<String>,
    /// First host uid/gid of the container's 65536 ids; container root is this on the host.
    pub id_base: u32,
    /// Unix time of creation.
    pub created_at: u64,
    /// Whether it gets a network interface on the host bridge.
    #[serde(default)]
    pub network: bool,
    /// The name it knows itself by; its engine name when absent.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Public ports of the host that lead to it.
    #[serde(default)]
    pub forwards: Vec<crate::forward::Forward>,
    /// Its traffic to the outside is refused.
    #[serde(default)]
    pub no_egress: bool,
    /// The init it asked for; the template's own when absent.
    #[serde(default)]
    pub init: Option<crate::spec::Init>,
}

impl ContainerConfig {
    /// The name the container knows itself by.
    pub fn hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or(&self.name)
    }
}

/// Ids each container owns on the host.
pub const IDS_PER_CONTAINER: u32 = 65536;
/// First host id handed to containers.
pub const FIRST_ID_BASE: u32 = 1 << 20;

impl ContainerConfig {
    pub fn new(spec: &ContainerSpec, id_base: u32) -> Self {
        ContainerConfig {
            name: spec.name.clone(),
            template: spec.template.clone(),
            limits: spec.limits.clone(),
            owner: spec.owner.clone(),
            id_base,
            created_at: unix_now(),
            network: spec.network || spec.limits.net_rate.is_some(),
            hostname: spec.hostname.clone(),
            forwards: Vec::new(),
            no_egress: spec.no_egress,
            init: spec.init,
        }
    }
}

/// What the engine knows of a running container (`containers/<name>/state.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// Host pid of the container's init.
    pub pid: i32,
    /// Start time of that pid in clock ticks since boot, to tell it from a reused pid.
    pub start_ticks: u64,
    /// Unix time the container started.
    pub started_at: u64,
    /// What runs as its PID 1 (how it is asked to stop).
    #[serde(default = "crate::spec::Init::minimal")]
    pub init: crate::spec::Init,
}

/// FNV-1a (64 bits) of `bytes`: a short stable name for a state (marks, claims), not a
/// secret.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes JSON atomically: a temporary file in the same directory, then rename.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let data = serde_json::to_vec_pretty(value).expect("engine state always serialises");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .ctx("write", &tmp)?;
    f.write_all(&data).ctx("write", &tmp)?;
    f.sync_data().ctx("sync", &tmp)?;
    fs::rename(&tmp, path).ctx("rename into place", path)
}

/// Reads JSON written by [`write_json`]; `Ok(None)` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::CorruptState {
                path: path.to_path_buf(),
                msg: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(read_json::<RunState>(&path).unwrap(), None);
        let st = RunState {
            pid: 42,
            start_ticks: 7,
            init: crate::spec::Init::Systemd,
            started_at: 1,
        };
        write_json(&path, &st).unwrap();
        assert_eq!(read_json::<RunState>(&path).unwrap(), Some(st));
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            read_json::<RunState>(&path),
            Err(Error::CorruptState { .. })
        ));
    }

    #[test]
    fn lock_excludes_a_second_holder_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        layout.ensure().unwrap();
        let dir = layout.containers();
        let held = Lock::acquire_in(&dir, Duration::from_secs(1)).unwrap();
        // flock is per open file description, so a second open in this process conflicts.
        let err = Lock::acquire_in(&dir, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::LockTimeout(_)), "{err}");
        drop(held);
        Lock::acquire_in(&dir, Duration::from_millis(50)).unwrap();
    }
}

#[cfg(test)]
mod layout_tests {
    use super::Layout;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_state_dir_others_may_read_is_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        Layout::new(&root).ensure().unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o711);
        for sub in ["containers", "templates", "locks"] {
            let mode = std::fs::metadata(root.join(sub))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{sub}");
        }
    }
}

/// Removes a container's directory. Right after its mounts were detached the kernel may
/// still be letting go of them, so a directory that is not empty or busy yet is tried again
/// for a moment; a failure names what was left.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    let mut attempts = 0;
    loop {
        match fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if attempts < 40
                    && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EBUSY)) =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => {
                let left: Vec<String> = fs::read_dir(dir)
                    .map(|d| {
                        d.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let e = std::io::Error::new(e.kind(), format!("{e} (left: {})", left.join(", ")));
                return Err(Error::io("remove", dir, e));
            }
        }
    }
}
