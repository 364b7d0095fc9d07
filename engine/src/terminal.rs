//! Terminals for interactive sessions: a pseudo-terminal allocated from the container's own
//! devpts instance (so that `tty` names a device the container sees, owned by its root),
//! its window size, and the login shell the container's `/etc/passwd` gives its root.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Error, Result};
use crate::{require_root, runtime, Engine};

/// `DEVPTS_SUPER_MAGIC` of `statfs(2)`.
const DEVPTS_MAGIC: i64 = 0x1cd1;
/// The container's `tty` group (the gid its devpts is mounted with).
const TTY_GID: u32 = 5;

/// A pseudo-terminal pair: the host keeps `master`, the command gets `slave` as its
/// standard streams and controlling terminal.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

fn os_err(what: &'static str) -> Error {
    Error::sys(what, std::io::Error::last_os_error())
}

/// Sets the window size of the terminal behind `fd` (either side); the foreground
/// process group gets SIGWINCH.
pub fn set_window_size(fd: &impl AsRawFd, cols: u16, rows: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives on the stack.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(os_err("set the terminal's window size"));
    }
    Ok(())
}

impl Engine {
    /// Allocates a pseudo-terminal in running container `name`'s devpts, its slave owned
    /// by the container's root and group `tty`, sized `cols`×`rows`.
    pub fn open_pty(&self, name: &str, cols: u16, rows: u16) -> Result<Pty> {
        require_root("open terminals in containers")?;
        let cfg = self.config(name)?;
        let st = self
            .run_state(name)?
            .ok_or_else(|| Error::NotRunning(name.to_string()))?;
        // The pidfd first: if the init is still the same process after /proc/<pid>/root
        // was opened, that root is the container's.
        let pidfd = runtime::open_init(&st).ok_or_else(|| Error::NotRunning(name.to_string()))?;
        let root = crate::unpack::openat2(
            libc::AT_FDCWD,
            Path::new(&format!("/proc/{}/root", st.pid)),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .map_err(|e| Error::sys("open the container's root", e))?;
        if !runtime::alive(&pidfd) {
            return Err(Error::NotRunning(name.to_string()));
        }
        // Resolved inside the container's root: a link it planted cannot lead out of it.
        let master = crate::unpack::openat2(
            root.as_raw_fd(),
            Path::new("dev/pts/ptmx"),
            libc::O_RDWR | libc::O_NOCTTY,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        )
        .map_err(|e| Error::sys("open the container's /dev/pts/ptmx", e))?;
        let fs = nix::sys::statfs::fstatfs(&master)
            .map_err(|e| Error::sys("inspect the container's ptmx", std::io::Error::from(e)))?;
        if fs.filesystem_type().0 as i64 != DEVPTS_MAGIC {
            return Err(Error::Unsupported(format!(
                "{name}: /dev/pts/ptmx is not a devpts terminal multiplexer"
            )));
        }
        let unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads an int on the stack; TIOCGPTPEER takes flags.
        let slave = unsafe {
            if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) < 0 {
                return Err(os_err("unlock the terminal"));
            }
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if slave < 0 {
            return Err(os_err("open the terminal's slave side"));
        }
        // SAFETY: a fresh descriptor that we own.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        nix::unistd::fchown(
            slave.as_raw_fd(),
            Some(nix::unistd::Uid::from_raw(cfg.id_base)),
            Some(nix::unistd::Gid::from_raw(cfg.id_base + TTY_GID)),
        )
        .map_err(|e| {
            Error::sys(
                "give the terminal to the container's root",
                std::io::Error::from(e),
            )
        })?;
        set_window_size(&slave, cols, rows)?;
        Ok(Pty { master, slave })
    }

    /// The login shell of the container's root (its `/etc/passwd`), `/bin/sh` when it
    /// names none or the file cannot be read.
    pub fn login_shell(&self, name: &str) -> Result<String> {
        let st = self
            .run_state(name)?
            .ok_or_else(|| Error::NotRunning(name.to_string()))?;
        let root = crate::unpack::openat2(
            libc::AT_FDCWD,
            Path::new(&format!("/proc/{}/root", st.pid)),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .map_err(|e| Error::sys("open the container's root", e))?;
        let passwd = crate::unpack::openat2(
            root.as_raw_fd(),
            Path::new("etc/passwd"),
            libc::O_RDONLY | libc::O_NONBLOCK,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        );
        let mut text = String::new();
        if let Ok(fd) = passwd {
            let _ = std::fs::File::from(fd)
                .take(1 << 20)
                .read_to_string(&mut text);
        }
        Ok(root_shell(&text).unwrap_or("/bin/sh").to_string())
    }
}

/// Root's shell in the text of an `/etc/passwd`, if it names an absolute path.
fn root_shell(passwd: &str) -> Option<&str> {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() == 7 && f[0] == "root")
        .map(|f| f[6].trim())
        .filter(|s| s.starts_with('/') && !s.contains(char::is_whitespace))
}

/// The children of process `pid` (host pids; those of its main thread).
pub(crate) fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .collect()
}

/// Hangs up the jobs of the command an exec helper (`helper`, host pid) runs: its
/// children in process groups of their own (a shell with job control makes one per job)
/// get the SIGHUP and SIGCONT that a hung-up shell would have passed on. A command about
/// to be killed cannot pass them on itself; jobs started with nohup live on, as under
/// sshd.
pub(crate) fn hang_up_jobs(helper: i32) {
    for cmd in children(helper) {
        for job in children(cmd) {
            // SAFETY: getpgid and kill(2) take no pointers.
            let pg = unsafe { libc::getpgid(job) };
            if pg > 0 && pg != cmd {
                // SAFETY: as above.
                unsafe {
                    libc::kill(-pg, libc::SIGHUP);
                    libc::kill(-pg, libc::SIGCONT);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::root_shell;

    #[test]
    fn root_shell_comes_from_passwd() {
        let passwd = "daemon:x:1:1::/:/usr/sbin/nologin\nroot:x:0:0:root:/root:/bin/bash\n";
        assert_eq!(root_shell(passwd), Some("/bin/bash"));
        assert_eq!(root_shell("root:x:0:0:root:/root:\n"), None);
        assert_eq!(root_shell("root:x:0:0:root:/root:sh -c x\n"), None);
        assert_eq!(root_shell("nobody:x:65534:65534::/:/bin/sh\n"), None);
    }
}
