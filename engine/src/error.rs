//! The engine's error type. Every variant carries what a provider needs to act on it.

use std::io;
use std::path::PathBuf;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid name {0:?}: {1}")]
    InvalidName(String, &'static str),
    #[error("container {0:?} already exists")]
    NameTaken(String),
    #[error("no such container: {0:?}")]
    NoSuchContainer(String),
    #[error("container {0:?} has no snapshot {1:?}")]
    NoSuchSnapshot(String, String),
    #[error("no such backup: {0:?}")]
    NoSuchBackup(String),
    #[error("backup repository: {0}")]
    Backup(String),
    #[error("no such template: {0:?} (see `acetate template list`)")]
    NoSuchTemplate(String),
    #[error("template {0:?} already exists")]
    TemplateExists(String),
    #[error("template {0:?} is used by {1} container(s)")]
    TemplateInUse(String, usize),
    #[error("invalid {what}: {msg}")]
    InvalidLimit { what: &'static str, msg: String },
    #[error("container {0:?} is already running")]
    AlreadyRunning(String),
    #[error("container {0:?} is not running")]
    NotRunning(String),
    #[error("acetate must run as root to {0} (running as uid {1})")]
    NotRoot(&'static str, u32),
    #[error("{0}")]
    Unsupported(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {op}: {source}")]
    Cgroup {
        op: String,
        #[source]
        source: cgroups_rs::fs::error::Error,
    },
    #[error("`{cmd}` failed: {output}")]
    Command { cmd: String, output: String },
    #[error("container {name:?} failed to start while {step}: {source}")]
    Setup {
        name: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("corrupt state file {path}: {msg}")]
    CorruptState { path: PathBuf, msg: String },
    #[error("timed out waiting for the lock on {0} (another acetate process is working on it)")]
    LockTimeout(PathBuf),
    #[error("injected failure at {0} (test fail point)")]
    FailPoint(&'static str),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Sys {
            op: op.into(),
            source: source.into(),
        }
    }

    pub(crate) fn last_os(op: impl Into<String>) -> Self {
        Error::sys(op, io::Error::last_os_error())
    }

    /// True for errors caused by the caller's input rather than by the host.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidName(..)
                | Error::NameTaken(_)
                | Error::NoSuchContainer(_)
                | Error::NoSuchTemplate(_)
                | Error::NoSuchSnapshot(..)
                | Error::NoSuchBackup(_)
                | Error::TemplateExists(_)
                | Error::TemplateInUse(..)
                | Error::InvalidLimit { .. }
                | Error::AlreadyRunning(_)
                | Error::NotRunning(_)
                | Error::NotRoot(..)
                | Error::Unsupported(_)
        )
    }
}

/// Adds the operation and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
