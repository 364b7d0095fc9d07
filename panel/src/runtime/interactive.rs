//! Interactive processes in real containers, for the SSH gateway, the browser terminal and
//! streamed exec: stdin, stdout and stderr as non-blocking pipes, or one pseudo-terminal
//! from the container's own devpts, all read and written without holding a thread.

use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use acetate_engine::{Engine, ExecChild, ExecIo};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{AppError, AppResult};

/// How long output is still passed on after the process ended (a background process it
/// left may hold its streams open).
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a hung-up session may take to end before it is killed.
pub const HANG_UP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// What to start: a command, its environment, and a terminal of `(cols, rows)` if any.
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    /// The command; empty for the login shell of the container's root.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub tty: Option<(u16, u16)>,
}

pub type Reader = Pin<Box<dyn AsyncRead + Send>>;
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// A started interactive process: its streams and its handle.
pub struct Interactive {
    pub stdin: Writer,
    pub stdout: Reader,
    /// `None` with a terminal (which merges both outputs).
    pub stderr: Option<Reader>,
    pub process: Process,
}

impl std::fmt::Debug for Interactive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interactive")
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

/// The process behind an [`Interactive`]: resize its terminal, end it, wait for it.
#[derive(Debug)]
pub struct Process {
    child: ExecChild,
    pty: Option<Arc<AsyncFd<OwnedFd>>>,
}

impl Process {
    /// Host pid of the helper that runs the command (for tests and diagnostics).
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Gives the terminal a new size (the foreground job gets SIGWINCH); a no-op
    /// without a terminal.
    pub fn resize(&self, cols: u16, rows: u16) {
        if let Some(pty) = &self.pty {
            let _ = acetate_engine::terminal::set_window_size(pty.get_ref(), cols, rows);
        }
    }

    /// Ends the command with every process of its group.
    pub fn kill(&self) {
        self.child.kill();
    }

    /// Ends the command as a closed terminal does: SIGHUP to its group (a shell passes it
    /// on to its jobs), then, if it still runs after `grace`, SIGKILL to the group.
    pub async fn hang_up(&self, grace: std::time::Duration) {
        self.child.signal_group(nix::libc::SIGHUP);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            self.kill();
        }
    }

    /// Waits until the command ended, without holding a thread.
    pub async fn exited(&self) {
        super::command::exited(&self.child).await;
    }

    /// Waits for the command's end and returns its exit code (128+signal if killed).
    pub async fn wait(self) -> AppResult<i32> {
        self.exited().await;
        let child = self.child;
        Ok(tokio::task::spawn_blocking(move || child.wait()).await??)
    }
}

fn io_err(e: std::io::Error) -> AppError {
    AppError::Internal(format!("set up the session's streams: {e}"))
}

fn nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?;
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// A non-blocking descriptor (pipe end or terminal master) as an async stream.
struct FdStream(Arc<AsyncFd<OwnedFd>>);

impl FdStream {
    fn new(fd: OwnedFd) -> std::io::Result<FdStream> {
        nonblocking(&fd)?;
        // The AsyncFd owns the descriptor until it is dropped, the I/O-safety condition
        // the deprecation asks for (its replacement is `unsafe`, kept out of this crate).
        #[allow(deprecated)]
        let afd = AsyncFd::new(fd)?;
        Ok(FdStream(Arc::new(afd)))
    }
}

impl AsyncRead for FdStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| {
                nix::unistd::read(fd.get_ref().as_raw_fd(), unfilled).map_err(std::io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // A terminal whose every slave closed answers EIO: that is its end.
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => {
                    return Poll::Ready(Ok(()))
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for FdStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(Into::into)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// Starts `req` in running container `name` (engine name).
pub async fn open(
    engine: Arc<Engine>,
    name: String,
    req: SessionRequest,
) -> AppResult<Interactive> {
    tokio::task::spawn_blocking(move || open_blocking(&engine, &name, req)).await?
}

fn open_blocking(engine: &Engine, name: &str, req: SessionRequest) -> AppResult<Interactive> {
    let argv = if req.argv.is_empty() {
        vec![engine.login_shell(name)?, "-l".to_string()]
    } else {
        req.argv
    };
    let mut env = vec![
        ("USER".to_string(), "root".to_string()),
        ("LOGNAME".to_string(), "root".to_string()),
    ];
    env.extend(req.env);
    match req.tty {
        Some((cols, rows)) => {
            let pty = engine.open_pty(name, cols, rows)?;
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
            let master = FdStream::new(pty.master).map_err(io_err)?;
            let shared = master.0.clone();
            Ok(Interactive {
                stdin: Box::pin(FdStream(shared.clone())),
                stdout: Box::pin(master),
                stderr: None,
                process: Process {
                    child,
                    pty: Some(shared),
                },
            })
        }
        None => {
            let (in_r, in_w) = pipe().map_err(io_err)?;
            let (out_r, out_w) = pipe().map_err(io_err)?;
            let (err_r, err_w) = pipe().map_err(io_err)?;
            let child = engine.spawn_exec(
                name,
                &argv,
                &env,
                ExecIo {
                    stdin: Some(in_r.as_raw_fd()),
                    stdout: Some(out_w.as_raw_fd()),
                    stderr: Some(err_w.as_raw_fd()),
                    tty: false,
                },
            )?;
            drop((in_r, out_w, err_w));
            Ok(Interactive {
                stdin: Box::pin(FdStream::new(in_w).map_err(io_err)?),
                stdout: Box::pin(FdStream::new(out_r).map_err(io_err)?),
                stderr: Some(Box::pin(FdStream::new(err_r).map_err(io_err)?)),
                process: Process { child, pty: None },
            })
        }
    }
}
