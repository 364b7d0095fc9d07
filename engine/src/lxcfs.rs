//! Honest views inside containers through lxcfs (Debian's package): one FUSE daemon for the
//! host, mounted at `/var/lib/lxcfs`, whose `proc/meminfo`, `proc/cpuinfo`, `proc/stat`,
//! `proc/uptime`... answer each reader with its own cgroup's limits and usage. Acetate starts
//! it when it is not running (with CPU-quota and load-average virtualisation) and binds its
//! files over the container's `/proc` and `/sys` files after each start.
//!
//! A container keeps working without lxcfs: it then sees the host's figures. When lxcfs
//! dies, [`supervise`] takes the dead binds out of every running container (host views)
//! and, once lxcfs runs again, binds the new ones in live.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Where lxcfs is mounted (the Debian package's own place).
pub const MOUNT: &str = "/var/lib/lxcfs";

/// The files lxcfs virtualises, as paths inside a container.
pub const FILES: [&str; 9] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/loadavg",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/slabinfo",
    "/sys/devices/system/cpu/online",
];

const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// Whether lxcfs answers at [`MOUNT`].
pub fn is_up() -> bool {
    match nix::sys::statfs::statfs(MOUNT) {
        Ok(s) if s.filesystem_type().0 == FUSE_SUPER_MAGIC => {
            Path::new(MOUNT).join("proc/meminfo").exists()
        }
        _ => false,
    }
}

/// The identity of the lxcfs instance that answers now (its mount's device), if any.
pub fn instance() -> Option<u64> {
    if !is_up() {
        return None;
    }
    nix::sys::stat::stat(MOUNT).ok().map(|s| s.st_dev)
}

/// Whether lxcfs is installed on the host.
pub fn installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("lxcfs").is_file()))
}

/// Starts lxcfs unless it answers already; `Ok(false)` when it is not installed.
pub fn ensure() -> Result<bool> {
    if is_up() {
        return Ok(true);
    }
    if !installed() {
        return Ok(false);
    }
    // A dead daemon leaves its mount behind (ENOTCONN): take it away first.
    let mount = CString::new(MOUNT).expect("no NUL");
    // SAFETY: umount2 with a NUL-terminated path.
    unsafe { libc::umount2(mount.as_ptr(), libc::MNT_DETACH) };
    std::fs::create_dir_all(MOUNT).map_err(|e| Error::io("create", MOUNT, e))?;
    std::fs::create_dir_all("/run/acetate").map_err(|e| Error::io("create", "/run/acetate", e))?;
    // lxcfs runs on after the caller, like the containers: `setsid --fork` starts it in a
    // session of its own and returns at once (lxcfs itself stays in the foreground).
    let status = std::process::Command::new("setsid")
        .args([
            "--fork",
            "lxcfs",
            "--foreground",
            "--enable-cfs",
            "--enable-loadavg",
            "--enable-pidfd",
            "--pidfile=/run/acetate/lxcfs.pid",
            MOUNT,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::io("run", "lxcfs", e))?;
    if !status.success() {
        return Err(Error::Command {
            cmd: "lxcfs".into(),
            output: format!("exited with {status}"),
        });
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if is_up() {
            tracing::info!(mount = MOUNT, "started lxcfs");
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::Unsupported(format!(
        "lxcfs did not answer at {MOUNT} within 5 s"
    )))
}

/// A detached bind mount of one lxcfs file.
fn detached(path: &Path) -> Result<OwnedFd> {
    let p = CString::new(path.to_string_lossy().as_bytes()).expect("no NUL");
    // SAFETY: open_tree with a NUL-terminated path; returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            p.as_ptr(),
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Error::last_os(format!("open_tree {}", path.display())));
    }
    // SAFETY: a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Binds lxcfs's files over the container's own in the mount namespace of `pid` (its init),
/// replacing binds made before; with `attach` false, only takes them away (host views).
/// Returns how many files are bound.
pub fn refresh(pid: i32, attach: bool) -> Result<usize> {
    let mut trees: Vec<(OwnedFd, CString)> = Vec::new();
    if attach {
        for file in FILES {
            let src = Path::new(MOUNT).join(file.trim_start_matches('/'));
            if !src.exists() {
                continue;
            }
            trees.push((detached(&src)?, CString::new(file).expect("no NUL")));
        }
    }
    let targets: Vec<CString> = FILES
        .iter()
        .map(|f| CString::new(*f).expect("no NUL"))
        .collect();
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| Error::io("open", format!("/proc/{pid}/ns/mnt"), e))?;
    let ns_fd = ns.as_raw_fd();
    let pairs: Vec<(RawFd, &CString)> = trees.iter().map(|(fd, t)| (fd.as_raw_fd(), t)).collect();
    // The helper only makes system calls: no allocation after fork.
    // SAFETY: fork in a possibly multi-threaded process; the child calls only
    // async-signal-safe functions and exits.
    match unsafe { libc::fork() } {
        -1 => Err(Error::last_os("fork")),
        0 => {
            // SAFETY: plain system calls on prepared descriptors and NUL-terminated paths.
            unsafe {
                if libc::setns(ns_fd, libc::CLONE_NEWNS) != 0 {
                    libc::_exit(100);
                }
                // Binds of an earlier run (or of a dead daemon), possibly stacked.
                for t in &targets {
                    for _ in 0..4 {
                        if libc::umount2(t.as_ptr(), libc::MNT_DETACH) != 0 {
                            break;
                        }
                    }
                }
                let mut failed = 0;
                for (fd, target) in &pairs {
                    // The target is resolved in the container's own root, without links.
                    let dst = crate::runtime::rootfs::openat2(
                        libc::AT_FDCWD,
                        target,
                        libc::O_PATH,
                        libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
                    )
                    .unwrap_or(-1);
                    if dst < 0 {
                        failed += 1;
                        continue;
                    }
                    let rc = libc::syscall(
                        libc::SYS_move_mount,
                        *fd,
                        c"".as_ptr(),
                        dst,
                        c"".as_ptr(),
                        0x4u32 | 0x40u32, // MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH
                    );
                    if rc != 0 {
                        failed += 1;
                    }
                    libc::close(dst);
                }
                libc::_exit(failed);
            }
        }
        child => {
            let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None)
                .map_err(|e| Error::sys("wait for the lxcfs helper", std::io::Error::from(e)))?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(trees.len()),
                nix::sys::wait::WaitStatus::Exited(_, 100) => Err(Error::Unsupported(format!(
                    "cannot enter the mount namespace of {pid}"
                ))),
                nix::sys::wait::WaitStatus::Exited(_, n) => Err(Error::Unsupported(format!(
                    "{n} of lxcfs's files could not be bound in {pid}'s namespace"
                ))),
                other => Err(Error::Unsupported(format!("the lxcfs helper: {other:?}"))),
            }
        }
    }
}

/// Binds lxcfs's views into a container just started (starting lxcfs if it is installed
/// and not running). Without lxcfs the container runs with the host's figures.
pub(crate) fn attach(name: &str, pid: i32) {
    match ensure() {
        Ok(true) => {
            if let Err(e) = refresh(pid, true) {
                tracing::warn!(container = name, error = %e, "binding lxcfs's files");
            }
        }
        Ok(false) => tracing::debug!("lxcfs is not installed: containers see the host's figures"),
        Err(e) => tracing::warn!(container = name, error = %e, "lxcfs does not run"),
    }
}

impl crate::Engine {
    /// Keeps lxcfs's views right in every running container: when lxcfs died, its dead
    /// files are taken out (the containers see the host's figures) and it is started again;
    /// when a new lxcfs instance answers, its files are bound in live. Cheap while nothing
    /// changed (a `statfs` and a `stat`): call it every few seconds.
    pub fn supervise_lxcfs(&self) -> Result<()> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEEN: AtomicU64 = AtomicU64::new(0);
        let now = instance();
        if now.is_some() && now == Some(SEEN.load(Ordering::SeqCst)) {
            return Ok(());
        }
        if !installed() {
            return Ok(());
        }
        let running: Vec<(String, i32)> = self
            .list()?
            .into_iter()
            .filter_map(|c| c.pid.map(|p| (c.name, p)))
            .collect();
        if now.is_none() {
            tracing::warn!(
                "lxcfs is not answering: containers see the host's figures until it does"
            );
            for (name, pid) in &running {
                if let Err(e) = refresh(*pid, false) {
                    tracing::warn!(container = %name, error = %e, "taking lxcfs's files out");
                }
            }
            ensure()?;
        }
        let Some(instance) = instance() else {
            return Ok(());
        };
        for (name, pid) in &running {
            if let Err(e) = refresh(*pid, true) {
                tracing::warn!(container = %name, error = %e, "binding lxcfs's files");
            }
        }
        SEEN.store(instance, Ordering::SeqCst);
        Ok(())
    }
}
