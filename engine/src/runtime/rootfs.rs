//! The container's root filesystem: the steps that turn the overlay into its `/` (prepared
//! by the parent as [`Op`]s) and their execution in the freshly cloned child, which
//! resolves every path beneath the root without following a symbolic link, so that a
//! template or layer that turns `proc` or `dev` into a link cannot point a mount at the
//! host. The execution side runs between `clone` and `exec`: it makes system calls on
//! prepared data and never allocates.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};

use crate::security::errno;

/// `struct open_how` of `openat2(2)` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dir, path, flags | O_CLOEXEC, resolve)`: a new descriptor or the errno. No
/// allocation, so the start child may call it.
pub(crate) fn openat2(dir: c_int, path: &CStr, flags: c_int, resolve: u64) -> Result<c_int, i32> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: openat2 with a NUL-terminated path and a properly sized open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd as c_int)
    }
}

/// Opens `path` beneath the directory `root` without following any symbolic link (nor
/// `..` out of it).
fn open_beneath(root: c_int, path: &CStr, flags: c_int) -> Result<c_int, i32> {
    openat2(
        root,
        path,
        flags | libc::O_NOFOLLOW,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
}

fn ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// A path inside the container's root, split for the `*at` system calls: the directory
/// that holds it (`.` for the root itself) and its last component. The child resolves the
/// directory beneath the root without following any symbolic link, so a template or an
/// upper layer that turns `proc` or `dev` into a link cannot point a mount at the host.
#[derive(Debug)]
pub struct InRoot {
    pub full: CString,
    pub parent: CString,
    pub leaf: CString,
}

impl InRoot {
    /// `path` relative to the root, such as `dev/pts` (leading slashes are ignored).
    pub fn new(path: &str) -> InRoot {
        let path = path.trim_start_matches('/');
        let (parent, leaf) = match path.rsplit_once('/') {
            Some((p, l)) => (p, l),
            None => (".", path),
        };
        let c = |s: &str| CString::new(s).expect("paths of the root layout have no NUL");
        InRoot {
            full: c(path),
            parent: c(parent),
            leaf: c(leaf),
        }
    }
}

/// Where a mount comes from.
#[derive(Debug)]
pub enum Source {
    /// A filesystem's name (`proc`, `tmpfs`...): no path.
    Name(CString),
    /// A path of the host (such as `/dev/null`), trusted.
    Host(CString),
    /// A path inside the container's root, resolved like a target.
    InRoot(InRoot),
}

/// One filesystem step of the container's root setup.
#[derive(Debug)]
pub enum Op {
    /// `mkdir`, existing is fine (but not as a symbolic link).
    Mkdir { path: InRoot, mode: u32 },
    /// Creates an empty file if missing (a bind target for a device node).
    Touch { path: InRoot },
    /// `mount(2)`; with `optional`, a missing target is skipped.
    Mount {
        src: Source,
        dst: InRoot,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
        optional: bool,
    },
    /// Bind `dst` onto itself, then remount it read-only keeping `flags`.
    ReadOnly {
        dst: InRoot,
        flags: libc::c_ulong,
        optional: bool,
    },
    /// `symlink(target, link)`, existing is fine.
    Symlink { target: CString, link: InRoot },
    /// Creates file `path` (it must not exist) with `text`, read-only for all.
    Write { path: InRoot, text: CString },
}

const MS_NOSUID: libc::c_ulong = libc::MS_NOSUID;
const MS_NODEV: libc::c_ulong = libc::MS_NODEV;
const MS_NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

fn c(s: &str) -> CString {
    CString::new(s).expect("static string")
}

/// The filesystem steps that turn the overlay into a container's `/`, relative to it (the
/// child runs them from inside, before `pivot_root`, resolving every path beneath it).
pub fn root_ops() -> Vec<Op> {
    let p = InRoot::new;
    let mount = |src: &str, dst: &str, fstype: &str, flags, data: Option<&str>| Op::Mount {
        src: Source::Name(c(src)),
        dst: p(dst),
        fstype: Some(c(fstype)),
        flags,
        data: data.map(c),
        optional: false,
    };
    let mut ops = Vec::new();
    for (dir, mode) in [
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/dev", 0o755),
        ("/run", 0o755),
        ("/tmp", 0o1777),
    ] {
        ops.push(Op::Mkdir { path: p(dir), mode });
    }
    ops.push(mount(
        "proc",
        "/proc",
        "proc",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        None,
    ));
    ops.push(mount(
        "sysfs",
        "/sys",
        "sysfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC | libc::MS_RDONLY,
        None,
    ));
    ops.push(mount(
        "tmpfs",
        "/dev",
        "tmpfs",
        MS_NOSUID | MS_NOEXEC | libc::MS_STRICTATIME,
        Some("mode=755,size=64k,nr_inodes=256"),
    ));
    for dev in CONTAINER_DEVICES.iter().map(|d| d.name) {
        let dst = format!("/dev/{dev}");
        ops.push(Op::Touch { path: p(&dst) });
        ops.push(Op::Mount {
            src: Source::Host(c(&dst)),
            dst: p(&dst),
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
            optional: false,
        });
    }
    ops.push(Op::Mkdir {
        path: p("/dev/pts"),
        mode: 0o755,
    });
    ops.push(mount(
        "devpts",
        "/dev/pts",
        "devpts",
        MS_NOSUID | MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    ));
    ops.push(Op::Mkdir {
        path: p("/dev/shm"),
        mode: 0o1777,
    });
    ops.push(mount(
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    ));
    ops.push(Op::Mkdir {
        path: p("/dev/mqueue"),
        mode: 0o755,
    });
    ops.push(mount(
        "mqueue",
        "/dev/mqueue",
        "mqueue",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        None,
    ));
    for (link, target) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            target: c(target),
            link: p(link),
        });
    }
    ops.push(mount(
        "tmpfs",
        "/run",
        "tmpfs",
        MS_NOSUID | MS_NODEV,
        Some("mode=755,size=65536k"),
    ));
    // Kernel interfaces that reveal or change host state: hide files, hide directories.
    for file in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/latency_stats",
        "/proc/kallsyms",
        "/proc/kmsg",
        "/proc/sysrq-trigger",
    ] {
        ops.push(Op::Mount {
            src: Source::InRoot(p("/dev/null")),
            dst: p(file),
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
            optional: true,
        });
    }
    for dir in ["/proc/acpi", "/proc/scsi", "/proc/asound", "/sys/firmware"] {
        ops.push(Op::Mount {
            src: Source::Name(c("tmpfs")),
            dst: p(dir),
            fstype: Some(c("tmpfs")),
            flags: libc::MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data: Some(c("size=0")),
            optional: true,
        });
    }
    for dir in ["/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs"] {
        ops.push(Op::ReadOnly {
            dst: p(dir),
            flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
            optional: true,
        });
    }
    ops
}

/// Where a container's boot id is kept (in its own `/dev`, a tmpfs made at each start).
const BOOT_ID: &str = "/dev/.acetate-boot-id";

/// A boot id of the container's own, `uuid` (new at each start), over the kernel's
/// `/proc/sys/kernel/random/boot_id`, which is the host's: without it every start of a
/// container is the same boot to its journal (`journalctl -b`, `--list-boots`) and logins.
pub fn boot_id_ops(uuid: &str) -> Vec<Op> {
    vec![
        Op::Write {
            path: InRoot::new(BOOT_ID),
            text: CString::new(format!("{}\n", uuid.trim())).expect("no NUL in a uuid"),
        },
        Op::Mount {
            src: Source::InRoot(InRoot::new(BOOT_ID)),
            dst: InRoot::new("/proc/sys/kernel/random/boot_id"),
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
            optional: true,
        },
    ]
}

/// What systemd expects mounted before it starts and cannot mount itself without
/// CAP_SYS_ADMIN: the container's cgroup2 subtree (its cgroup namespace's root) at
/// `/sys/fs/cgroup`, where it finds a unified hierarchy to manage.
pub fn cgroup2_ops() -> Vec<Op> {
    vec![Op::Mount {
        src: Source::Name(c("cgroup2")),
        dst: InRoot::new("/sys/fs/cgroup"),
        fstype: Some(c("cgroup2")),
        flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
        data: None,
        optional: false,
    }]
}

/// `/run/lock`, which a distribution's init (systemd, SysV init's `mountkernfs`) mounts
/// itself on a machine and cannot in a container.
pub fn run_lock_ops() -> Vec<Op> {
    vec![
        Op::Mkdir {
            path: InRoot::new("/run/lock"),
            mode: 0o1777,
        },
        Op::Mount {
            src: Source::Name(c("tmpfs")),
            dst: InRoot::new("/run/lock"),
            fstype: Some(c("tmpfs")),
            flags: MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data: Some(c("mode=1777,size=5m")),
            optional: false,
        },
    ]
}

/// A device node a container gets in its `/dev` (bound from the host's).
#[derive(Debug, Clone, Copy)]
pub struct Device {
    pub name: &'static str,
    pub major: u32,
    pub minor: u32,
}

/// The only device nodes a container has; the devices cgroup allows these and the
/// pseudo-terminals of its own devpts, nothing else.
pub const CONTAINER_DEVICES: &[Device] = &[
    Device {
        name: "null",
        major: 1,
        minor: 3,
    },
    Device {
        name: "zero",
        major: 1,
        minor: 5,
    },
    Device {
        name: "full",
        major: 1,
        minor: 7,
    },
    Device {
        name: "random",
        major: 1,
        minor: 8,
    },
    Device {
        name: "urandom",
        major: 1,
        minor: 9,
    },
    Device {
        name: "tty",
        major: 5,
        minor: 0,
    },
];

/// A descriptor that is closed when dropped (plain `close`, fine between fork and exec).
struct Fd(c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: closing a descriptor this process opened.
        unsafe { libc::close(self.0) };
    }
}

/// `/proc/self/fd/<fd>` in a stack buffer, NUL-terminated: the path by which `mount(2)`
/// reaches exactly the file a descriptor holds.
struct FdPath([u8; 32]);

impl FdPath {
    fn new(fd: c_int) -> FdPath {
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 10];
        let mut n = fd as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[prefix.len() + i] = digits[len - 1 - i];
        }
        FdPath(buf)
    }
    fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr() as *const c_char
    }
}

fn parent_of(root: c_int, p: &InRoot) -> Result<Fd, i32> {
    open_beneath(root, &p.parent, libc::O_PATH | libc::O_DIRECTORY).map(Fd)
}

/// The target of a mount, or `None` if it is missing and `optional`.
fn open_target(root: c_int, dst: &InRoot, optional: bool) -> Result<Option<Fd>, i32> {
    match open_beneath(root, &dst.full, libc::O_PATH) {
        Ok(fd) => Ok(Some(Fd(fd))),
        Err(libc::ENOENT) if optional => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens `path` for writing, made with `mode` if missing (`O_CREAT` with `flags`).
fn create(root: c_int, path: &InRoot, flags: c_int, mode: libc::mode_t) -> Result<Fd, i32> {
    let dir = parent_of(root, path)?;
    // SAFETY: the name is a CString of the (copied) parent memory; the descriptor is ours.
    let fd = unsafe {
        libc::openat(
            dir.0,
            path.leaf.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | flags,
            mode,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    Ok(Fd(fd))
}

pub(super) fn run_op(root: c_int, op: &Op) -> Result<(), i32> {
    // SAFETY: every pointer comes from a CString owned by the (copied) parent memory or a
    // stack buffer; descriptors are our own.
    unsafe {
        match op {
            Op::Mkdir { path, mode } => {
                let dir = parent_of(root, path)?;
                if libc::mkdirat(dir.0, path.leaf.as_ptr(), *mode) != 0 && errno() != libc::EEXIST {
                    return Err(errno());
                }
                // Whatever is there must be a directory, not a link to one.
                drop(Fd(open_beneath(
                    root,
                    &path.full,
                    libc::O_PATH | libc::O_DIRECTORY,
                )?));
            }
            Op::Touch { path } => {
                drop(create(root, path, libc::O_NOFOLLOW, 0o666)?);
            }
            Op::Mount {
                src,
                dst,
                fstype,
                flags,
                data,
                optional,
            } => {
                let Some(target) = open_target(root, dst, *optional)? else {
                    return Ok(());
                };
                let target_path = FdPath::new(target.0);
                let source_fd;
                let source_path;
                let src_ptr = match src {
                    Source::Name(n) | Source::Host(n) => n.as_ptr(),
                    Source::InRoot(p) => {
                        source_fd = Fd(open_beneath(root, &p.full, libc::O_PATH)?);
                        source_path = FdPath::new(source_fd.0);
                        source_path.as_ptr()
                    }
                };
                let rc = libc::mount(
                    src_ptr,
                    target_path.as_ptr(),
                    ptr(fstype),
                    *flags,
                    ptr(data) as *const c_void,
                );
                if rc != 0 {
                    return Err(errno());
                }
            }
            Op::ReadOnly {
                dst,
                flags,
                optional,
            } => {
                let Some(target) = open_target(root, dst, *optional)? else {
                    return Ok(());
                };
                let path = FdPath::new(target.0);
                let rc = libc::mount(
                    path.as_ptr(),
                    path.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                );
                if rc != 0 {
                    return Err(errno());
                }
                // The descriptor still names the mount below the new bind: look it up again.
                let top = Fd(open_beneath(root, &dst.full, libc::O_PATH)?);
                let path = FdPath::new(top.0);
                let rc = libc::mount(
                    std::ptr::null(),
                    path.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags,
                    std::ptr::null(),
                );
                if rc != 0 {
                    return Err(errno());
                }
            }
            Op::Write { path, text } => {
                let fd = create(root, path, libc::O_EXCL, 0o444)?;
                let bytes = text.as_bytes();
                if libc::write(fd.0, bytes.as_ptr() as *const c_void, bytes.len())
                    != bytes.len() as isize
                {
                    return Err(errno());
                }
            }
            Op::Symlink { target, link } => {
                let dir = parent_of(root, link)?;
                if libc::symlinkat(target.as_ptr(), dir.0, link.leaf.as_ptr()) != 0
                    && errno() != libc::EEXIST
                {
                    return Err(errno());
                }
            }
        }
    }
    Ok(())
}
