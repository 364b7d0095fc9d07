//! One-shot commands in real containers: output read through pipes and cut at a bound
//! while it is read (never buffered unbounded, never written to the host's disk), and a
//! timeout that kills the command. Waiting holds no thread: the command's exit is seen
//! through its pidfd.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acetate_engine::{Engine, ExecChild, ExecIo};
use tokio::io::AsyncReadExt;

use super::CommandOutcome;
use crate::error::{AppError, AppResult};

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// Output read so far, and whether it was cut.
type Captured = Arc<Mutex<(Vec<u8>, bool)>>;

/// Reads up to `max` bytes into `into`; past that the pipe is closed (the command gets
/// EPIPE).
async fn read_bounded(fd: OwnedFd, max: usize, into: Captured) {
    let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
        return;
    };
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match rx.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut got = into.lock().expect("captured output");
                let room = max - got.0.len();
                if n > room {
                    got.0.extend_from_slice(&chunk[..room]);
                    got.1 = true;
                    return;
                }
                got.0.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Waits until `child` ended, without holding a thread.
pub(super) async fn exited(child: &ExecChild) {
    let Ok(fd) = child.pidfd().try_clone_to_owned() else {
        return;
    };
    // The descriptor is an OwnedFd that the AsyncFd owns until it is dropped, the
    // I/O-safety condition the deprecation asks for (the replacement is `unsafe`, which
    // this crate keeps out).
    #[allow(deprecated)]
    let afd = tokio::io::unix::AsyncFd::with_interest(fd, tokio::io::Interest::READABLE);
    if let Ok(afd) = afd {
        let _ = afd.readable().await;
    }
}

/// How long output is still read after the command ended (a background process it left
/// may hold its pipes open).
const DRAIN: Duration = Duration::from_millis(500);

/// Runs `argv` in container `name` (engine name) with no input, keeping at most
/// `max_output` bytes of each stream and killing it after `timeout`.
pub async fn run(
    engine: Arc<Engine>,
    name: String,
    argv: Vec<String>,
    timeout: Duration,
    max_output: usize,
) -> AppResult<CommandOutcome> {
    let io_err = |e: std::io::Error| AppError::Internal(format!("capture command output: {e}"));
    let (out_r, out_w) = pipe().map_err(io_err)?;
    let (err_r, err_w) = pipe().map_err(io_err)?;
    let null = std::fs::File::open("/dev/null").map_err(io_err)?;
    let child = tokio::task::spawn_blocking(move || {
        engine.spawn_exec(
            &name,
            &argv,
            &[],
            ExecIo {
                stdin: Some(null.as_raw_fd()),
                stdout: Some(out_w.as_raw_fd()),
                stderr: Some(err_w.as_raw_fd()),
                tty: false,
            },
        )
        // The write ends (and /dev/null) close here: only the command holds them now.
    })
    .await??;
    let (out, err) = (Captured::default(), Captured::default());
    let readers = tokio::spawn({
        let (out, err) = (out.clone(), err.clone());
        async move {
            tokio::join!(
                read_bounded(out_r, max_output, out),
                read_bounded(err_r, max_output, err)
            );
        }
    });
    let timed_out = tokio::time::timeout(timeout, exited(&child)).await.is_err();
    if timed_out {
        child.kill();
    }
    let exit_code = tokio::task::spawn_blocking(move || child.wait()).await??;
    let abort = readers.abort_handle();
    if tokio::time::timeout(DRAIN, readers).await.is_err() {
        abort.abort();
    }
    let take = |c: &Captured| {
        let got = std::mem::take(&mut *c.lock().expect("captured output"));
        (String::from_utf8_lossy(&got.0).into_owned(), got.1)
    };
    let ((stdout, cut_out), (stderr, cut_err)) = (take(&out), take(&err));
    Ok(CommandOutcome {
        exit_code,
        stdout,
        stderr,
        truncated: cut_out || cut_err,
        timed_out,
    })
}
