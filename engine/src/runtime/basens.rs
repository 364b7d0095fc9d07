//! The mount namespace containers are made from. A new mount namespace starts as a copy of
//! its creator's whole mount table, and the host's holds three mounts per container (disk,
//! template, overlay): cloning each container's init from the host's namespace cost more
//! with every container on the host (copying, then making private and detaching them all).
//! Instead, the start's intermediate process enters this namespace, which holds a tmpfs
//! root with `/proc`, `/sys` and the device nodes containers get, attaches there a detached copy
//! of the one container's root (`open_tree` + `move_mount`), clones the init (which copies
//! a handful of mounts) and detaches it again.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

use super::rootfs::Device;
use crate::error::{Error, Result};

/// Where, in the base namespace, the intermediates attach roots (`/ct-<n>`).
pub const SLOT_PREFIX: &str = "/ct-";

fn fail(fd: RawFd) -> ! {
    // SAFETY: reports failure through the pipe and exits without destructors.
    unsafe {
        libc::write(fd, b"0".as_ptr() as *const libc::c_void, 1);
        libc::_exit(1)
    }
}

/// Makes the base namespace: a forked helper unshares a mount namespace, builds the
/// tmpfs root in it and pivots into it; the namespace is kept through a descriptor.
fn make(devices: &[Device]) -> Result<BaseNs> {
    let c = |s: &str| CString::new(s).expect("static paths");
    let scratch = std::env::temp_dir();
    let scratch = CString::new(scratch.as_os_str().as_bytes())
        .map_err(|_| Error::Unsupported("the temporary directory's path has a NUL".into()))?;
    let nodes: Vec<(CString, libc::dev_t)> = devices
        .iter()
        .map(|d| {
            (
                c(&format!("dev/{}", d.name)),
                libc::makedev(d.major, d.minor),
            )
        })
        .collect();
    let (tmpfs, proc_, sys, sysfs, dev, dot, root) = (
        c("tmpfs"),
        c("proc"),
        c("sys"),
        c("sysfs"),
        c("dev"),
        c("."),
        c("/"),
    );
    let opts = c("mode=755,size=1m,nr_inodes=65536");
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    let (hold_r, hold_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    // SAFETY: the child makes system calls on data prepared above, then waits and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork"));
    }
    if pid == 0 {
        let w = ready_w.as_raw_fd();
        // Nothing but our two pipe ends: a copy of another helper's "hold" pipe (forked
        // by another thread) would keep that helper, and its caller, waiting forever.
        let mut keep = [w, hold_r.as_raw_fd()];
        keep.sort_unstable();
        super::child::close_all_except(&keep);
        // SAFETY: plain system calls with NUL-terminated strings prepared by the parent.
        unsafe {
            // The device nodes are 0666 like the host's, whatever the caller's umask.
            libc::umask(0);
            let ok = libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0
                && libc::mount(
                    tmpfs.as_ptr(),
                    scratch.as_ptr(),
                    tmpfs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NOEXEC,
                    opts.as_ptr() as *const libc::c_void,
                ) == 0
                && libc::chdir(scratch.as_ptr()) == 0
                && libc::mkdir(proc_.as_ptr(), 0o555) == 0
                && libc::mkdir(sys.as_ptr(), 0o555) == 0
                && libc::mkdir(dev.as_ptr(), 0o755) == 0;
            if !ok {
                fail(w);
            }
            for (path, num) in &nodes {
                if libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, *num) != 0 {
                    fail(w);
                }
            }
            // A new proc or sysfs may be mounted in a user namespace only where one is
            // already fully visible: containers mount theirs from here.
            let ok = libc::mount(
                proc_.as_ptr(),
                proc_.as_ptr(),
                proc_.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) == 0
                && libc::mount(
                    sysfs.as_ptr(),
                    sys.as_ptr(),
                    sysfs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY,
                    std::ptr::null(),
                ) == 0
                && libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) == 0
                && libc::umount2(dot.as_ptr(), libc::MNT_DETACH) == 0
                && libc::chdir(root.as_ptr()) == 0;
            if !ok {
                fail(w);
            }
            libc::write(w, b"1".as_ptr() as *const libc::c_void, 1);
            let mut b = 0u8;
            libc::read(
                hold_r.as_raw_fd(),
                &mut b as *mut u8 as *mut libc::c_void,
                1,
            );
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(hold_r);
    let mut ok = [0u8; 1];
    let n = nix::unistd::read(ready_r.as_raw_fd(), &mut ok).unwrap_or(0);
    let result = if n == 1 && ok[0] == b'1' {
        let open = |what: &str, flags: i32| {
            let path = format!("/proc/{pid}/{what}");
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(&path)
                .map(OwnedFd::from)
                .map_err(|e| Error::io("open", path, e))
        };
        Ok(BaseNs {
            ns: open("ns/mnt", libc::O_CLOEXEC)?,
            root: open("root", libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)?,
        })
    } else {
        Err(Error::sys(
            "make the base mount namespace",
            std::io::Error::other("the helper failed"),
        ))
    };
    drop(hold_w);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    result
}

/// The base namespace, and its root directory for the parent to tidy up.
#[derive(Debug)]
pub struct BaseNs {
    pub ns: OwnedFd,
    root: OwnedFd,
}

impl BaseNs {
    /// Removes the directory `slot` (`/ct-...`) an intermediate attached a root at, once
    /// the init has left it.
    pub fn remove_slot(&self, slot: &std::ffi::CStr) {
        let name = &slot.to_bytes()[1..];
        if let Ok(name) = CString::new(name) {
            // SAFETY: unlinkat on our directory descriptor with a NUL-terminated name.
            unsafe { libc::unlinkat(self.root.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
        }
    }
}

/// The base namespace of this process, made on first use; `None` where it cannot be made
/// (the start then clones from the caller's own namespace, as before).
pub fn get() -> Option<&'static BaseNs> {
    static BASE: OnceLock<Option<BaseNs>> = OnceLock::new();
    BASE.get_or_init(|| match make(super::CONTAINER_DEVICES) {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::warn!(error = %e, "containers are cloned from the host's mount namespace");
            None
        }
    })
    .as_ref()
}

/// A detached copy of the mount at `path` (and what is mounted below it).
pub fn detached_tree(path: &Path) -> Result<OwnedFd> {
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Unsupported(format!("{}: NUL in path", path.display())))?;
    // SAFETY: open_tree with a NUL-terminated path; returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            p.as_ptr(),
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32)
                as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(Error::last_os(format!("open_tree {}", path.display())));
    }
    // SAFETY: a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
