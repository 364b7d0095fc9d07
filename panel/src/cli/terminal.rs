//! `acetate ct enter` and `ct exec -t`: a command on a pseudo-terminal of the container's
//! own devpts, relayed to the caller's terminal (put in raw mode for the duration, window
//! size followed).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use acetate_engine::{Engine, Error, ExecIo, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};

/// The caller's terminal size as (cols, rows), if stdin is a terminal.
fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize that lives on the stack.
    let rc = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// Puts the caller's terminal in raw mode until dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

fn io(what: &'static str) -> impl Fn(nix::Error) -> Error {
    move |e| Error::Sys {
        op: what.to_string(),
        source: std::io::Error::from(e),
    }
}

/// Runs `argv` (the root's login shell if empty) in container `name` on a terminal and
/// returns its exit code.
pub fn run(engine: &Engine, name: &str, argv: &[String], env: &[(String, String)]) -> Result<i32> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let size = window_size(stdin.as_fd()).unwrap_or((80, 24));
    let argv = if argv.is_empty() {
        vec![engine.login_shell(name)?, "-l".to_string()]
    } else {
        argv.to_vec()
    };
    let mut env = env.to_vec();
    if !env.iter().any(|(k, _)| k == "TERM") {
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        env.push(("TERM".into(), term));
    }
    let pty = engine.open_pty(name, size.0, size.1)?;
    let child = engine.spawn_exec(
        name,
        &argv,
        &env,
        ExecIo {
            stdin: Some(pty.slave.as_raw_fd()),
            stdout: Some(pty.slave.as_raw_fd()),
            stderr: Some(pty.slave.as_raw_fd()),
            tty: true,
        },
    )?;
    drop(pty.slave);
    let raw = RawMode::enter();
    relay(&pty.master, stdin.as_fd(), stdout.as_fd(), size)?;
    drop(raw);
    child.wait()
}

/// Copies the caller's input to the terminal and the terminal's output to the caller
/// until the terminal hangs up (every process holding it ended).
fn relay(
    master: &OwnedFd,
    stdin: BorrowedFd<'_>,
    stdout: BorrowedFd<'_>,
    mut size: (u16, u16),
) -> Result<()> {
    let mut buf = [0u8; 16 << 10];
    let mut input_open = true;
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if input_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        // A short timeout follows the caller's window size without a signal handler.
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(io("wait for the terminal")(e)),
            Ok(_) => {}
        }
        let master_ready = fds[0].revents().unwrap_or(PollFlags::empty());
        let input_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if let Some(now) = window_size(stdin) {
            if now != size {
                size = now;
                let _ = acetate_engine::terminal::set_window_size(master, now.0, now.1);
            }
        }
        if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) | Err(nix::Error::EIO) => return Ok(()),
                Ok(n) => write_all(stdout, &buf[..n])?,
                Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                Err(e) => return Err(io("read the terminal")(e)),
            }
        }
        if input_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(0) => input_open = false,
                Ok(n) => write_all(master.as_fd(), &buf[..n])?,
                Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                Err(_) => input_open = false,
            }
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(io("write to the terminal")(e)),
        }
    }
    Ok(())
}
