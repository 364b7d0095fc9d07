//! Running containers: starting `acetate-init` in new namespaces, running commands inside
//! a running container, and stopping it. A container's init is re-parented away from the
//! process that started it, so containers outlive the CLI and the panel.

pub mod basens;
pub mod child;
mod report;
pub mod rootfs;

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use child::{ExecCtx, StartCtx};
use report::{describe_step, read_report};
pub use rootfs::{root_ops, Device, CONTAINER_DEVICES};

use crate::cgroup::ContainerCgroup;
use crate::error::{Error, IoContext, Result};
use crate::security::{self, SeccompPrograms};
use crate::store::{unix_now, Layout, RunState, IDS_PER_CONTAINER};

/// The init binary, compiled by build.rs from `init/init.rs`.
const INIT_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/acetate-init"));

/// Writes the embedded init binary under the state dir (once per version) and opens it.
pub(crate) fn install_init(layout: &Layout) -> Result<File> {
    // FNV-1a: a version tag, not a security measure (the directory is root-only).
    let hash = INIT_BINARY.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = layout.bin().join(format!("acetate-init-{hash:016x}"));
    if !path.exists() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o755)
            .open(&tmp)
            .ctx("write", &tmp)?;
        f.write_all(INIT_BINARY).ctx("write", &tmp)?;
        f.sync_all().ctx("sync", &tmp)?;
        drop(f);
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).ctx("chmod", &tmp)?;
        fs::rename(&tmp, &path).ctx("install", &path)?;
    }
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .ctx("open", &path)
}

/// Host pid and identity check of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Alive,
    Gone,
}

/// Reads `(state char, start time in ticks)` of a pid from `/proc/<pid>/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 22 (starttime) is the 20th after the command.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether the init recorded in `st` is still that process and has not exited.
pub fn check(st: &RunState) -> ProcState {
    match proc_stat(st.pid) {
        Some((state, start)) if start == st.start_ticks && state != 'Z' && state != 'X' => {
            ProcState::Alive
        }
        _ => ProcState::Gone,
    }
}

fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::last_os(format!("pidfd_open {pid}")));
    }
    // SAFETY: a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Opens a pidfd for a recorded init, checking that it is still the same process.
pub fn open_init(st: &RunState) -> Option<OwnedFd> {
    let fd = pidfd_open(st.pid).ok()?;
    // The pid may have been reused between the state file and pidfd_open: check again now
    // that the descriptor pins the process.
    (check(st) == ProcState::Alive).then_some(fd)
}

fn pidfd_signal(fd: &OwnedFd, sig: i32) -> Result<()> {
    // SAFETY: pidfd_send_signal with a null siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(Error::sys("signal container init", e));
    }
    Ok(())
}

/// Whether the process behind `fd` still runs.
pub fn alive(fd: &OwnedFd) -> bool {
    !pidfd_wait(fd, Duration::ZERO)
}

/// Waits until the process behind a pidfd exits, up to `timeout`; whether it did.
pub(crate) fn pidfd_wait(fd: &impl AsRawFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if rc > 0 {
            return true;
        }
        if rc == 0 || Instant::now() >= deadline {
            return false;
        }
    }
}

fn cstr(s: impl AsRef<[u8]>) -> Result<CString> {
    CString::new(s.as_ref().to_vec())
        .map_err(|_| Error::Unsupported("arguments and environment may not contain NUL".into()))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))
}

/// Inputs of [`start`].
#[derive(Debug)]
pub struct StartParams<'a> {
    pub name: &'a str,
    /// What it calls itself (`sethostname`).
    pub hostname: &'a str,
    pub rootfs: &'a Path,
    pub init: &'a File,
    /// Boot the template's own init (`/sbin/init`) instead of `init`.
    pub boot: crate::spec::Init,
    pub id_base: u32,
    pub cgroup: &'a ContainerCgroup,
    pub seccomp: &'a SeccompPrograms,
    /// Connect to the host bridge, with this rate limit (bit/s) if any.
    pub network: Option<(
        &'a crate::network::NetInfo,
        &'a crate::netconf::Network,
        Option<u64>,
    )>,
}

const NS_FLAGS: i32 = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET;

/// Starts the container's init. The cgroup must exist; on error the half-started process
/// is killed (the caller removes the cgroup).
pub fn start(p: &StartParams<'_>) -> Result<RunState> {
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let systemd = p.boot == crate::spec::Init::Systemd;
    let templates = p.boot.is_templates();
    let argv_owned = [cstr(if templates {
        "/sbin/init"
    } else {
        "acetate-init"
    })?];
    let env_owned = [cstr("container=acetate")?];
    let mut ops = root_ops();
    // The kernel makes a new random uuid at each read.
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map_err(|e| Error::io("read", "/proc/sys/kernel/random/uuid", e))?;
    ops.extend(rootfs::boot_id_ops(&uuid));
    if systemd {
        p.cgroup.v2_dir().ok_or_else(|| {
            Error::Unsupported(
                "booting systemd needs a cgroup2 hierarchy (a pure v2 or a hybrid host); \
                 ask for the minimal init"
                    .into(),
            )
        })?;
        ops.extend(rootfs::cgroup2_ops());
    }
    if templates {
        ops.extend(rootfs::run_lock_ops());
    }
    let argv: Vec<*const libc::c_char> = argv_owned
        .iter()
        .map(|s| s.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    let envp: Vec<*const libc::c_char> = env_owned
        .iter()
        .map(|s| s.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    // The init is cloned from the base mount namespace where there is one, with a
    // detached copy of its root attached there under a name of its own.
    let base = basens::get();
    let tree = match base {
        Some(_) => Some(basens::detached_tree(p.rootfs)?),
        None => None,
    };
    let rootfs = match &tree {
        Some(_) => {
            static SLOTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = SLOTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            CString::new(format!("{}{}-{n}", basens::SLOT_PREFIX, std::process::id()))
                .expect("no NUL")
        }
        None => CString::new(p.rootfs.as_os_str().as_bytes()).expect("no NUL"),
    };
    let mut ctx = Box::new(StartCtx {
        rootfs,
        base_ns: base.map_or(-1, |b| b.ns.as_raw_fd()),
        tree_fd: tree.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
        hostname: cstr(p.hostname)?,
        ops,
        init_fd: p.init.as_raw_fd(),
        init_path: templates.then(|| c"/sbin/init".to_owned()),
        argv,
        envp,
        go_fd: go_r.as_raw_fd(),
        err_fd: err_w.as_raw_fd(),
        keep_fds: {
            let mut keep = [go_r.as_raw_fd(), err_w.as_raw_fd(), p.init.as_raw_fd()];
            keep.sort_unstable();
            keep
        },
        keep_caps: security::kept_caps_mask(),
        last_cap: security::last_cap(),
        seccomp: p.seccomp.clone(),
        stack: vec![0u8; 256 << 10],
        init_pid: 0,
        clone_flags: NS_FLAGS | libc::SIGCHLD,
    });
    let mut small_stack = vec![0u8; 64 << 10];
    let top = ((small_stack.as_mut_ptr() as usize + small_stack.len()) & !15) as *mut libc::c_void;
    let ctx_ptr = &mut *ctx as *mut StartCtx as *mut libc::c_void;
    // SAFETY: the intermediate shares our memory (CLONE_VM) while we are suspended
    // (CLONE_VFORK); it only calls clone and writes `init_pid`.
    let mid = unsafe {
        libc::clone(
            child::intermediate_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            ctx_ptr,
        )
    };
    if mid < 0 {
        return Err(Error::last_os("clone"));
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(mid), None);
    drop(go_r);
    drop(err_w);
    // Once the init is past its root setup (or gone), the base namespace's slot goes.
    struct Slot<'a>(Option<&'a basens::BaseNs>, CString);
    impl Drop for Slot<'_> {
        fn drop(&mut self) {
            if let Some(base) = self.0 {
                base.remove_slot(&self.1);
            }
        }
    }
    let _slot = Slot(base.filter(|_| tree.is_some()), ctx.rootfs.clone());
    let pid = ctx.init_pid;
    if pid <= 0 {
        return Err(Error::Setup {
            name: p.name.to_string(),
            step: "creating the container's namespaces",
            source: std::io::Error::from_raw_os_error(-pid),
        });
    }
    let pidfd = pidfd_open(pid)?;
    let kill = |e: Error| {
        let _ = pidfd_signal(&pidfd, libc::SIGKILL);
        e
    };
    // Its network is connected on a thread of its own from now on, while its ids and
    // cgroups are set here (a move into a v1 cgroup may wait milliseconds for the kernel)
    // and it builds its root; it executes only once that thread is done.
    let attaching = crate::network::Attaching::start(pid, p.network)
        .map_err(|e| kill(Error::sys("start the network thread", e)))?;
    let map = format!("0 {} {IDS_PER_CONTAINER}\n", p.id_base);
    for file in ["uid_map", "gid_map"] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, &map).map_err(|e| kill(Error::io("write", path, e)))?;
    }
    p.cgroup.add_process(pid).map_err(kill)?;
    if systemd {
        // Its own subtree, as systemd's Delegate= hands one to a service: it may make
        // groups and move its processes below, never change the limits set on the top.
        p.cgroup.delegate(p.id_base).map_err(kill)?;
    }
    // The init must survive an OOM inside its container; the hog is the one to go.
    let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), "-999");
    let (_, start_ticks) = proc_stat(pid).ok_or_else(|| {
        kill(Error::sys(
            "read the init's start time",
            std::io::Error::from_raw_os_error(libc::ESRCH),
        ))
    })?;
    // Two releases: the first lets the init build its root while its network is being
    // connected (so a networked start costs little more than a plain one); the second
    // lets it lock itself down and execute.
    let release = |what| nix::unistd::write(&go_w, &[1]).map_err(|e| kill(Error::sys(what, e)));
    release("release container init")?;
    let attached = attaching.join().map_err(kill);
    // An init that failed its setup meanwhile (the likelier cause of a failed attach, or
    // of a write it can no longer read) is told by its report.
    let released = attached.and_then(|()| {
        crate::testing::crash_point("start");
        release("let the container init run")
    });
    drop(go_w);
    if let Some((code, errno)) = read_report(&err_r) {
        return Err(kill(Error::Setup {
            name: p.name.to_string(),
            step: describe_step(&ctx.ops, code, errno),
            source: std::io::Error::from_raw_os_error(errno),
        }));
    }
    released?;
    Ok(RunState {
        pid,
        start_ticks,
        started_at: unix_now(),
        init: p.boot,
    })
}

/// Standard streams for [`exec`]: `None` inherits the caller's.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecIo {
    pub stdin: Option<RawFd>,
    pub stdout: Option<RawFd>,
    pub stderr: Option<RawFd>,
    /// Make stdin (a terminal) the command's controlling terminal.
    pub tty: bool,
}

/// Default `PATH` inside containers.
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command running inside a container, through its helper process. Killing the helper
/// kills the command; dropping an `ExecChild` that was not waited for kills and reaps it.
#[derive(Debug)]
pub struct ExecChild {
    pid: i32,
    pidfd: OwnedFd,
    reaped: bool,
}

impl ExecChild {
    /// Readable once the command (and its helper) ended: for waiting in an event loop.
    pub fn pidfd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.pidfd.as_fd()
    }

    /// Host pid of the helper process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the command's process group (the command leads it), not to its
    /// helper: SIGHUP lets a shell hang up its jobs as a closed terminal would.
    pub fn signal_group(&self, sig: i32) {
        for pid in crate::terminal::children(self.pid) {
            // SAFETY: kill(2) takes no pointers; the command leads its own process group.
            unsafe { libc::kill(-pid, sig) };
        }
    }

    /// Kills the command with every process of its process group, then its helper; its
    /// jobs are hung up first ([`crate::terminal::hang_up_jobs`]).
    pub fn kill(&self) {
        crate::terminal::hang_up_jobs(self.pid);
        self.signal_group(libc::SIGKILL);
        let _ = pidfd_signal(&self.pidfd, libc::SIGKILL);
    }

    /// Waits for the command and returns its exit code (128+signal if killed).
    pub fn wait(mut self) -> Result<i32> {
        self.reaped = true;
        let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None)
            .map_err(|e| Error::sys("wait for exec helper", e))?;
        use nix::sys::wait::WaitStatus;
        match status {
            WaitStatus::Exited(_, code) => Ok(code),
            WaitStatus::Signaled(_, sig, _) => Ok(128 + sig as i32),
            other => Err(Error::sys(
                "exec helper",
                std::io::Error::other(format!("unexpected status {other:?}")),
            )),
        }
    }
}

impl Drop for ExecChild {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        }
    }
}

/// Starts `argv` inside the running container whose init is behind `pidfd`, as its root,
/// in its namespaces and cgroup. Returns once the command runs (or failed to start).
pub fn spawn_exec(
    pidfd: &OwnedFd,
    cgroup: &ContainerCgroup,
    argv: &[String],
    env: &[(String, String)],
    io: ExecIo,
    seccomp: &SeccompPrograms,
) -> Result<ExecChild> {
    let Some(command) = argv.first() else {
        return Err(Error::Unsupported("exec needs a command".into()));
    };
    let argv_owned = argv.iter().map(cstr).collect::<Result<Vec<_>>>()?;
    let mut env_owned = vec![
        cstr(format!("PATH={CONTAINER_PATH}"))?,
        cstr("HOME=/root")?,
        cstr("container=acetate")?,
    ];
    for (k, v) in env {
        if k.is_empty() || k.contains('=') {
            return Err(Error::Unsupported(format!(
                "invalid environment variable name {k:?}"
            )));
        }
        env_owned.retain(|e| !e.as_bytes().starts_with(format!("{k}=").as_bytes()));
        env_owned.push(cstr(format!("{k}={v}"))?);
    }
    let cgroup_dirs = cgroup.exec_paths()?;
    if cgroup_dirs.len() > child::MAX_CGROUP_DIRS {
        return Err(Error::Unsupported(format!(
            "the container's cgroup lives in {} hierarchies; exec handles {} at most",
            cgroup_dirs.len(),
            child::MAX_CGROUP_DIRS
        )));
    }
    let (err_r, err_w) = pipe()?;
    let ctx = ExecCtx {
        pidfd: pidfd.as_raw_fd(),
        cgroup_procs: cgroup_dirs
            .iter()
            .map(|p| cstr(p.join("cgroup.procs").as_os_str().as_bytes()))
            .collect::<Result<_>>()?,
        argv: argv_owned
            .iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect(),
        envp: env_owned
            .iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect(),
        path_dirs: CONTAINER_PATH
            .split(':')
            .map(|d| cstr(format!("{d}/")))
            .collect::<Result<_>>()?,
        command: cstr(command)?,
        stdio: [
            io.stdin.unwrap_or(-1),
            io.stdout.unwrap_or(-1),
            io.stderr.unwrap_or(-1),
        ],
        err_fd: err_w.as_raw_fd(),
        tty: io.tty,
        parent: std::process::id() as libc::pid_t,
        keep_caps: security::kept_caps_mask(),
        last_cap: security::last_cap(),
        seccomp: seccomp.clone(),
    };
    // SAFETY: the child only runs `exec_helper`, which makes system calls on prepared data.
    let helper = unsafe { libc::fork() };
    if helper < 0 {
        return Err(Error::last_os("fork"));
    }
    if helper == 0 {
        child::exec_helper(&ctx);
    }
    drop(err_w);
    let child = match pidfd_open(helper) {
        Ok(fd) => ExecChild {
            pid: helper,
            pidfd: fd,
            reaped: false,
        },
        Err(e) => {
            // SAFETY: kill and reap our own child.
            unsafe { libc::kill(helper, libc::SIGKILL) };
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(helper), None);
            return Err(e);
        }
    };
    if let Some((code, errno)) = read_report(&err_r) {
        drop(child);
        return Err(Error::Setup {
            name: String::new(),
            step: describe_step(&[], code, errno),
            source: std::io::Error::from_raw_os_error(errno),
        });
    }
    Ok(child)
}

/// Stops a container's init, then SIGKILL after `timeout`. Returns whether it had to kill.
/// Acetate's init takes SIGTERM (it passes it on to every process and exits once they are
/// gone); systemd takes SIGRTMIN+3 (halt: its units stop in order, then, in a container,
/// it exits).
pub fn stop(st: &RunState, timeout: Duration) -> Result<bool> {
    let Some(fd) = open_init(st) else {
        return Ok(false);
    };
    let sig = match st.init {
        crate::spec::Init::Minimal => libc::SIGTERM,
        crate::spec::Init::Systemd => libc::SIGRTMIN() + 3,
        // Asked for runlevel 0 by the caller (see `Engine::halt_sysvinit`); its rest is
        // only to wait for.
        crate::spec::Init::Sysvinit => 0,
    };
    if sig != 0 {
        pidfd_signal(&fd, sig)?;
    }
    if pidfd_wait(&fd, timeout) {
        return Ok(false);
    }
    pidfd_signal(&fd, libc::SIGKILL)?;
    pidfd_wait(&fd, Duration::from_secs(10));
    Ok(true)
}

/// Kills a container's init at once (the kernel then kills everything in its pid namespace).
pub fn kill(st: &RunState) -> Result<()> {
    if let Some(fd) = open_init(st) {
        pidfd_signal(&fd, libc::SIGKILL)?;
        pidfd_wait(&fd, Duration::from_secs(10));
    }
    Ok(())
}
