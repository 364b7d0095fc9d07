//! Code that runs in freshly cloned or forked processes, between `clone`/`fork` and `exec`.
//!
//! The process that forks may be multi-threaded (the panel runs tokio), so nothing here
//! allocates, locks or panics: every input is prepared by the parent, and failures are
//! reported as `(step, errno)` pairs through a pipe.

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};

use super::rootfs::{run_op, Op};
use crate::security::{self, SeccompPrograms};

/// Everything the container's first process needs, prepared by the parent.
#[derive(Debug)]
pub struct StartCtx {
    pub rootfs: CString,
    pub hostname: CString,
    pub ops: Vec<Op>,
    pub init_fd: c_int,
    /// Executed by path inside the new root instead of `init_fd` (the template's own init).
    pub init_path: Option<CString>,
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    pub go_fd: c_int,
    pub err_fd: c_int,
    /// `go_fd`, `err_fd` and `init_fd`, sorted: every other descriptor is closed first.
    pub keep_fds: [c_int; 3],
    pub keep_caps: u64,
    pub last_cap: u32,
    pub seccomp: SeccompPrograms,
    pub stack: Vec<u8>,
    /// Written by the intermediate process (shared memory): the init's host pid.
    pub init_pid: c_int,
    pub clone_flags: c_int,
    /// The base mount namespace to clone the init from (see `basens`), or -1 to clone
    /// from the caller's own.
    pub base_ns: c_int,
    /// A detached copy of the container's root, attached at `rootfs` in the base
    /// namespace for the clone (-1 without a base namespace).
    pub tree_fd: c_int,
}

/// Steps reported on failure besides the indexes of `ops`.
pub mod step {
    pub const WAIT: u32 = 1_000;
    pub const IDS: u32 = 1_001;
    pub const CGROUP_NS: u32 = 1_002;
    pub const HOSTNAME: u32 = 1_003;
    pub const PIVOT: u32 = 1_004;
    pub const LOOPBACK: u32 = 1_005;
    pub const STDIO: u32 = 1_006;
    pub const CAPS: u32 = 1_007;
    pub const SECCOMP: u32 = 1_008;
    pub const EXEC: u32 = 1_009;
    pub const JOIN_CGROUP: u32 = 1_010;
    pub const SETNS: u32 = 1_011;
    pub const FORK: u32 = 1_012;
    pub const PRIVATE: u32 = 1_013;
    pub const BIND_ROOT: u32 = 1_014;
}

fn errno() -> i32 {
    security::errno()
}

/// Reports `(step, errno)` to the parent and exits.
fn fail(err_fd: c_int, step: u32, err: i32) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&step.to_ne_bytes());
    buf[4..].copy_from_slice(&err.to_ne_bytes());
    // SAFETY: writes a stack buffer to a pipe, then exits without running any destructor.
    unsafe {
        libc::write(err_fd, buf.as_ptr() as *const c_void, 8);
        libc::_exit(1)
    }
}

fn ok_or_fail(rc: c_int, err_fd: c_int, step: u32) {
    if rc != 0 {
        fail(err_fd, step, errno());
    }
}

/// Closes every descriptor of this process but those in `keep` (sorted ascending) and
/// the standard streams: nothing of the panel (listening sockets, database, locks) may
/// reach a container or outlive the panel in a helper.
pub(crate) fn close_all_except(keep: &[c_int]) {
    let mut next: u32 = 3;
    for &fd in keep {
        if fd < 0 || (fd as u32) < next {
            continue;
        }
        if fd as u32 > next {
            // SAFETY: closes a range of this process's descriptors.
            unsafe { libc::syscall(libc::SYS_close_range, next, fd as u32 - 1, 0u32) };
        }
        next = fd as u32 + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, next, u32::MAX, 0u32) };
}

/// A pidfd of this process's parent, checked to still be `parent`: readable once the
/// parent process is gone. (`PR_SET_PDEATHSIG` would fire when the forking *thread* ends,
/// and the panel forks from pooled threads that come and go.)
fn watch_parent(parent: libc::pid_t, err_fd: c_int) -> c_int {
    // SAFETY: pidfd_open and getppid take no pointers.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, parent, 0) as c_int;
        if fd < 0 || libc::getppid() != parent {
            fail(err_fd, step::WAIT, libc::ESRCH);
        }
        fd
    }
}

/// Becomes root of the user namespace just entered or created.
///
/// Raw system calls, not the libc wrappers: glibc's set*id wrappers signal every thread it
/// believes the process has, and a child made by a raw `clone` of a multi-threaded parent
/// inherits that list without glibc's fork handlers, so the wrappers would wait forever
/// for threads that do not exist. The raw calls change this (single) thread only.
fn become_root(err_fd: c_int) {
    // SAFETY: plain system calls with integer arguments.
    unsafe {
        ok_or_fail(
            libc::syscall(libc::SYS_setresgid, 0, 0, 0) as c_int,
            err_fd,
            step::IDS,
        );
        ok_or_fail(
            libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) as c_int,
            err_fd,
            step::IDS,
        );
        ok_or_fail(
            libc::syscall(libc::SYS_setresuid, 0, 0, 0) as c_int,
            err_fd,
            step::IDS,
        );
    }
}

/// Drops capabilities and installs seccomp: the last steps before `exec`.
fn lock_down(err_fd: c_int, keep: u64, last_cap: u32, seccomp: &SeccompPrograms) {
    if let Err(e) = security::drop_bounding_set(keep, last_cap) {
        fail(err_fd, step::CAPS, e);
    }
    if let Err(e) = security::install_seccomp(seccomp) {
        fail(err_fd, step::SECCOMP, e);
    }
    if let Err(e) = security::set_caps(keep) {
        fail(err_fd, step::CAPS, e);
    }
}

/// Brings the loopback interface of the new network namespace up.
fn loopback_up() -> Result<(), i32> {
    // SAFETY: ifreq is plain data; ioctls on a socket we own.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(errno());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as c_char;
        }
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as i16;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let e = errno();
        libc::close(sock);
        if rc != 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// Entry of the intermediate process (shares the parent's memory, parent suspended): clones
/// the container's init into new namespaces, records its pid, and exits so that the init
/// is re-parented and outlives whoever started it.
pub(super) extern "C" fn intermediate_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's StartCtx, alive while the parent is suspended (vfork).
    let ctx = unsafe { &mut *(arg as *mut StartCtx) };
    let top = ctx.stack.as_mut_ptr() as usize + ctx.stack.len();
    let top = (top & !15) as *mut c_void;
    let base = ctx.base_ns >= 0;
    if base {
        // SAFETY: plain system calls with prepared, NUL-terminated paths.
        unsafe {
            if libc::setns(ctx.base_ns, libc::CLONE_NEWNS) != 0
                || libc::mkdir(ctx.rootfs.as_ptr(), 0o700) != 0
            {
                ctx.init_pid = -errno();
                return 0;
            }
            if libc::syscall(
                libc::SYS_move_mount,
                ctx.tree_fd,
                c"".as_ptr(),
                libc::AT_FDCWD,
                ctx.rootfs.as_ptr(),
                0x4u32, // MOVE_MOUNT_F_EMPTY_PATH
            ) != 0
            {
                ctx.init_pid = -errno();
                return 0;
            }
        }
    }
    // SAFETY: a new process on its own stack, in a copy of this address space.
    let pid = unsafe { libc::clone(container_main, top, ctx.clone_flags, arg) };
    ctx.init_pid = if pid < 0 { -errno() } else { pid };
    if base {
        // SAFETY: the init has its own copy; the base namespace lets go of this one. The
        // directory stays until the init has left it (removing a mountpoint detaches
        // the mounts on it in every namespace): the parent removes it then.
        unsafe { libc::umount2(ctx.rootfs.as_ptr(), libc::MNT_DETACH) };
    }
    0
}

/// Waits for the parent's next byte on the "go" pipe; exits if the parent died or gave up.
fn wait_for_parent(go_fd: c_int) {
    let mut go = 0u8;
    // SAFETY: reads one byte into a stack variable.
    let n = unsafe { libc::read(go_fd, &mut go as *mut u8 as *mut c_void, 1) };
    if n != 1 {
        // SAFETY: exit without destructors.
        unsafe { libc::_exit(1) };
    }
}

/// Entry of the container's first process, in new namespaces. Waits for the parent to map
/// its ids and place it in its cgroup, builds the root filesystem, waits for the parent to
/// have connected its network, locks itself down and executes its init.
extern "C" fn container_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` points at this process's own copy of the parent's StartCtx.
    let ctx = unsafe { &*(arg as *const StartCtx) };
    let err_fd = ctx.err_fd;
    // Only our own pipes and the init stay open: a copy of the parent's lock or of the
    // "go" pipe's write end would keep this process waiting (and the lock held) forever
    // if the parent died before releasing us.
    close_all_except(&ctx.keep_fds);
    wait_for_parent(ctx.go_fd);
    // SAFETY: plain system calls with valid pointers.
    unsafe {
        // Nothing we mount may propagate back to the host.
        ok_or_fail(
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            err_fd,
            step::PRIVATE,
        );
        // Mounts copied from the host are locked and pivot_root refuses them: bind the root
        // onto itself to get a mount of our own, and enter it. This is done while still the
        // host's uid 0, since the state dir is not open to others.
        ok_or_fail(
            libc::mount(
                ctx.rootfs.as_ptr(),
                ctx.rootfs.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ),
            err_fd,
            step::BIND_ROOT,
        );
        ok_or_fail(libc::chdir(ctx.rootfs.as_ptr()), err_fd, step::BIND_ROOT);
    }
    // SAFETY: opens the directory just entered.
    let root = unsafe {
        libc::open(
            c".".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if root < 0 {
        fail(err_fd, step::BIND_ROOT, errno());
    }
    become_root(err_fd);
    // SAFETY: plain system calls with valid pointers.
    unsafe {
        // After the parent moved us into the container's cgroup: it becomes our cgroup root.
        ok_or_fail(
            libc::unshare(libc::CLONE_NEWCGROUP),
            err_fd,
            step::CGROUP_NS,
        );
        ok_or_fail(
            libc::sethostname(ctx.hostname.as_ptr(), ctx.hostname.as_bytes().len()),
            err_fd,
            step::HOSTNAME,
        );
    }
    for (i, op) in ctx.ops.iter().enumerate() {
        if let Err(e) = run_op(root, op) {
            fail(err_fd, i as u32, e);
        }
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(root) };
    // SAFETY: plain system calls with valid pointers.
    unsafe {
        ok_or_fail(
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as c_int,
            err_fd,
            step::PIVOT,
        );
        ok_or_fail(
            libc::umount2(c".".as_ptr(), libc::MNT_DETACH),
            err_fd,
            step::PIVOT,
        );
        ok_or_fail(libc::chdir(c"/".as_ptr()), err_fd, step::PIVOT);
    }
    if let Err(e) = loopback_up() {
        fail(err_fd, step::LOOPBACK, e);
    }
    // SAFETY: plain system calls.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            fail(err_fd, step::STDIO, errno());
        }
        for fd in 0..3 {
            if null != fd && libc::dup2(null, fd) < 0 {
                fail(err_fd, step::STDIO, errno());
            }
        }
        if null > 2 {
            libc::close(null);
        }
    }
    // The parent connects the network meanwhile: nothing inside runs before it is there.
    wait_for_parent(ctx.go_fd);
    lock_down(err_fd, ctx.keep_caps, ctx.last_cap, &ctx.seccomp);
    // SAFETY: marks every other descriptor close-on-exec, then replaces this process.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if let Some(path) = &ctx.init_path {
            libc::execve(path.as_ptr(), ctx.argv.as_ptr(), ctx.envp.as_ptr());
            fail(err_fd, step::EXEC, errno());
        }
        libc::syscall(
            libc::SYS_execveat,
            ctx.init_fd,
            c"".as_ptr(),
            ctx.argv.as_ptr(),
            ctx.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    fail(err_fd, step::EXEC, errno())
}

/// Everything `exec` needs in its forked helper, prepared by the parent.
#[derive(Debug)]
pub struct ExecCtx {
    pub pidfd: c_int,
    pub cgroup_procs: Vec<CString>,
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    /// `PATH` directories, each ending in '/'.
    pub path_dirs: Vec<CString>,
    /// The command (argv\[0\]) as given.
    pub command: CString,
    pub stdio: [c_int; 3],
    pub err_fd: c_int,
    /// Make stdin the command's controlling terminal.
    pub tty: bool,
    /// The process that forks the helper: the helper dies with it.
    pub parent: libc::pid_t,
    pub keep_caps: u64,
    pub last_cap: u32,
    pub seccomp: SeccompPrograms,
}

/// Most hierarchies a cgroup lives in (v1: one per controller).
pub const MAX_CGROUP_DIRS: usize = 12;

const JOIN_FLAGS: c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP;

fn write_stderr(parts: &[&[u8]]) {
    for p in parts {
        // SAFETY: writes a live buffer to fd 2.
        unsafe { libc::write(2, p.as_ptr() as *const c_void, p.len()) };
    }
}

/// The forked helper of `exec`: enters the container's namespaces, forks the command
/// inside them (the command alone joins the container's cgroup), waits for it and exits
/// with its status (128+signal if killed). The helper keeps none of its parent's
/// descriptors and dies with its parent; the command dies with the helper.
pub fn exec_helper(ctx: &ExecCtx) -> ! {
    let err_fd = ctx.err_fd;
    let parent_fd = watch_parent(ctx.parent, err_fd);
    // The cgroup's `cgroup.procs` files, opened as host root before entering the
    // namespaces; the command writes itself into them.
    let mut cgroup_fds = [-1 as c_int; MAX_CGROUP_DIRS];
    // SAFETY: plain system calls with pointers into the parent's prepared data.
    unsafe {
        for (i, fd) in ctx.stdio.iter().enumerate() {
            if *fd >= 0 && *fd != i as c_int && libc::dup2(*fd, i as c_int) < 0 {
                fail(err_fd, step::STDIO, errno());
            }
        }
        for (slot, procs) in cgroup_fds.iter_mut().zip(&ctx.cgroup_procs) {
            *slot = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if *slot < 0 {
                fail(err_fd, step::JOIN_CGROUP, errno());
            }
        }
    }
    let mut keep = [-1 as c_int; MAX_CGROUP_DIRS + 3];
    keep[..3].copy_from_slice(&[err_fd, ctx.pidfd, parent_fd]);
    keep[3..].copy_from_slice(&cgroup_fds);
    keep.sort_unstable();
    close_all_except(&keep);
    // SAFETY: plain system call.
    unsafe { ok_or_fail(libc::setns(ctx.pidfd, JOIN_FLAGS), err_fd, step::SETNS) };
    become_root(err_fd);
    // SAFETY: fork of a single-threaded process.
    let child = unsafe { libc::fork() };
    if child < 0 {
        fail(err_fd, step::FORK, errno());
    }
    if child == 0 {
        // SAFETY: plain system calls on our own descriptors.
        unsafe {
            for &fd in cgroup_fds.iter().filter(|fd| **fd >= 0) {
                if libc::write(fd, b"0".as_ptr() as *const c_void, 1) != 1 {
                    fail(err_fd, step::JOIN_CGROUP, errno());
                }
            }
            libc::chdir(c"/".as_ptr());
        }
        lock_down(err_fd, ctx.keep_caps, ctx.last_cap, &ctx.seccomp);
        // SAFETY: setsid, prctl and getppid take no pointers. A session (and process
        // group) of its own lets the helper and the engine end the command with every
        // process it started. The helper lives outside the pid namespace, so it shows as
        // parent 0; anything else means it already died.
        unsafe {
            libc::setsid();
            if ctx.tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                fail(err_fd, step::STDIO, errno());
            }
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != 0 {
                libc::_exit(125);
            }
        }
        // SAFETY: close the error pipe on exec; the parent learns success from its EOF.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
        }
        exec_command(ctx)
    }
    // The helper's copies of the error pipe and cgroup files must not stay open.
    for &fd in cgroup_fds.iter().chain([&err_fd]).filter(|fd| **fd >= 0) {
        // SAFETY: closing our own descriptors.
        unsafe { libc::close(fd) };
    }
    let status = wait_child_or_parent(child, parent_fd);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    };
    // SAFETY: exit without destructors.
    unsafe { libc::_exit(code) }
}

/// Waits for `child`; if the parent process dies first, kills the child (and so the
/// command) and waits for it all the same. Returns the wait status.
fn wait_child_or_parent(child: libc::pid_t, parent_fd: c_int) -> c_int {
    // SAFETY: pidfd_open takes no pointer.
    let child_fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child, 0) as c_int };
    let mut killed = false;
    loop {
        if child_fd >= 0 && !killed {
            let mut fds = [
                libc::pollfd {
                    fd: child_fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: parent_fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll on two valid pollfds on the stack.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if rc < 0 && errno() == libc::EINTR {
                continue;
            }
            if fds[1].revents != 0 && fds[0].revents == 0 {
                // SAFETY: signals our own child's process group, then the child.
                unsafe {
                    libc::kill(-child, libc::SIGKILL);
                    libc::kill(child, libc::SIGKILL);
                }
                killed = true;
                continue;
            }
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        let rc = unsafe { libc::waitpid(child, &mut status, 0) };
        if rc == child {
            return status;
        }
        if rc < 0 && errno() != libc::EINTR {
            // SAFETY: exit without destructors.
            unsafe { libc::_exit(125) };
        }
    }
}

/// Executes the command, searching `PATH` like a shell; prints why on failure.
fn exec_command(ctx: &ExecCtx) -> ! {
    let cmd = ctx.command.as_bytes();
    let mut last = libc::ENOENT;
    if cmd.contains(&b'/') {
        // SAFETY: valid argv/envp arrays terminated by NULL.
        unsafe { libc::execve(ctx.command.as_ptr(), ctx.argv.as_ptr(), ctx.envp.as_ptr()) };
        last = errno();
    } else {
        let mut buf = [0u8; 4096];
        for dir in &ctx.path_dirs {
            let d = dir.as_bytes();
            if d.len() + cmd.len() + 1 > buf.len() {
                continue;
            }
            buf[..d.len()].copy_from_slice(d);
            buf[d.len()..d.len() + cmd.len()].copy_from_slice(cmd);
            buf[d.len() + cmd.len()] = 0;
            // SAFETY: `buf` is NUL-terminated; argv/envp are NULL-terminated arrays.
            unsafe {
                libc::execve(
                    buf.as_ptr() as *const c_char,
                    ctx.argv.as_ptr(),
                    ctx.envp.as_ptr(),
                )
            };
            let e = errno();
            if e != libc::ENOENT && e != libc::ENOTDIR {
                last = e;
            }
        }
    }
    let (why, code): (&[u8], c_int) = match last {
        libc::ENOENT => (b": command not found\n", 127),
        libc::EACCES => (b": permission denied\n", 126),
        libc::ENOEXEC => (b": exec format error\n", 126),
        _ => (b": cannot execute\n", 126),
    };
    write_stderr(&[b"acetate: ", cmd, why]);
    // SAFETY: exit without destructors.
    unsafe { libc::_exit(code) }
}
