//! Idmapped mounts: a user namespace descriptor for a container's id range and a
//! bind mount that shifts ids through it.

use std::fs::{self, File};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::mounts::cstring;
use crate::store::IDS_PER_CONTAINER;

/// Creates a user namespace whose ids map `0..65536` to `base..base+65536` and returns a
/// descriptor of it (for idmapped mounts). The helper process that held it is gone.
pub fn userns_fd(base: u32) -> Result<OwnedFd> {
    userns_fd_mapped(&format!("0 {base} {IDS_PER_CONTAINER}\n"))
}

/// The reverse of [`userns_fd`]: `base..base+65536` map to `0..65536`, so that a mount
/// through it shows a container's files with the ids they have inside (for backups and
/// exports that restore anywhere).
pub fn userns_fd_reverse(base: u32) -> Result<OwnedFd> {
    userns_fd_mapped(&format!("{base} 0 {IDS_PER_CONTAINER}\n"))
}

/// A user namespace with `map` as its uid and gid map.
fn userns_fd_mapped(map: &str) -> Result<OwnedFd> {
    let (ready_r, ready_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    let (hold_r, hold_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    // SAFETY: the child only makes async-signal-safe system calls and then _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork"));
    }
    if pid == 0 {
        // Nothing but our two pipe ends: a copy of another helper's "hold" pipe (forked
        // by another thread) would keep that helper, and its caller, waiting forever.
        let mut keep = [ready_w.as_raw_fd(), hold_r.as_raw_fd()];
        keep.sort_unstable();
        crate::runtime::child::close_all_except(&keep);
        // SAFETY: raw system calls on descriptors inherited from the parent.
        unsafe {
            let ok: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                1
            } else {
                0
            };
            libc::write(ready_w.as_raw_fd(), &ok as *const u8 as *const _, 1);
            let mut b = 0u8;
            libc::read(hold_r.as_raw_fd(), &mut b as *mut u8 as *mut _, 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(hold_r);
    let reap = |hold_w: OwnedFd| {
        drop(hold_w);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    };
    let mut ok = [0u8; 1];
    let n = nix::unistd::read(ready_r.as_raw_fd(), &mut ok).unwrap_or(0);
    if n != 1 || ok[0] != 1 {
        reap(hold_w);
        return Err(Error::sys(
            "create a user namespace",
            std::io::Error::other("unshare(CLONE_NEWUSER) failed"),
        ));
    }
    let result = (|| {
        for file in ["uid_map", "gid_map"] {
            let p = format!("/proc/{pid}/{file}");
            fs::write(&p, map).ctx("write", &p)?;
        }
        let p = format!("/proc/{pid}/ns/user");
        let f = File::open(&p).ctx("open", &p)?;
        Ok(OwnedFd::from(f))
    })();
    reap(hold_w);
    result
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Bind-mounts `source` at `target`, read-only, with its ids shifted into the user
/// namespace `userns` (an idmapped mount): files owned by host root appear owned by the
/// container's root.
pub fn idmapped_bind(source: &Path, target: &Path, userns: &OwnedFd) -> Result<()> {
    idmapped_bind_with(source, target, userns, true)
}

/// [`idmapped_bind`], writable unless `read_only`: files created or chowned through it
/// get their ids shifted the same way.
pub fn idmapped_bind_with(
    source: &Path,
    target: &Path,
    userns: &OwnedFd,
    read_only: bool,
) -> Result<()> {
    let src = cstring(source);
    // SAFETY: open_tree with a valid path; returns a new descriptor or -1.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(Error::last_os(format!("open_tree {}", source.display())));
    }
    // SAFETY: `tree` is a fresh descriptor that we now own.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP
            | MOUNT_ATTR_NODEV
            | if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: `attr` is a valid mount_attr of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(Error::last_os(format!(
            "idmap {} (the kernel or filesystem may not support idmapped mounts)",
            source.display()
        )));
    }
    let tgt = cstring(target);
    // SAFETY: moves the detached tree onto an existing directory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            tgt.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(Error::last_os(format!(
            "attach idmapped mount at {}",
            target.display()
        )));
    }
    Ok(())
}
