//! Admission of one-shot commands from the API and the pages: how many one user, and the
//! whole panel, run at once, and how long each may run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{AppError, AppResult};

/// Bounds of one-shot commands.
#[derive(Debug, Clone, Copy)]
pub struct ExecLimits {
    /// Commands one user may have running at once.
    pub per_user: usize,
    /// Commands the panel runs at once, over all users.
    pub total: usize,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    /// Bytes kept of each of stdout and stderr.
    pub max_output: usize,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            per_user: 4,
            total: 64,
            default_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(600),
            max_output: 1 << 20,
        }
    }
}

/// Admission of commands: per user and panel-wide.
#[derive(Debug, Clone)]
pub struct ExecGate {
    limits: ExecLimits,
    total: Arc<Semaphore>,
    users: Arc<Mutex<HashMap<i64, Arc<Semaphore>>>>,
}

impl Default for ExecGate {
    fn default() -> Self {
        ExecGate::new(ExecLimits::default())
    }
}

/// Held while a command runs.
#[derive(Debug)]
pub struct ExecPermit {
    _user: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl ExecGate {
    pub fn new(limits: ExecLimits) -> ExecGate {
        ExecGate {
            limits,
            total: Arc::new(Semaphore::new(limits.total)),
            users: Arc::default(),
        }
    }

    pub fn limits(&self) -> &ExecLimits {
        &self.limits
    }

    /// A permit for `user`, or 429 at once if they (or the panel) run too many.
    pub fn admit(&self, user: i64) -> AppResult<ExecPermit> {
        let sem = {
            let mut users = self.users.lock().expect("exec gate");
            users.retain(|_, s| s.available_permits() < self.limits.per_user);
            users
                .entry(user)
                .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_user)))
                .clone()
        };
        let user_permit = sem.try_acquire_owned().map_err(|_| {
            AppError::Busy(format!(
                "you already have {} commands running: wait for one to end",
                self.limits.per_user
            ))
        })?;
        let total = self.total.clone().try_acquire_owned().map_err(|_| {
            AppError::Busy("the panel runs too many commands at once: try again shortly".into())
        })?;
        Ok(ExecPermit {
            _user: user_permit,
            _total: total,
        })
    }

    /// The timeout for a request that asked for `seconds` (the default if none); more
    /// than the maximum is refused.
    pub fn timeout(&self, seconds: Option<u64>) -> AppResult<Duration> {
        match seconds {
            None => Ok(self.limits.default_timeout),
            Some(0) => Err(AppError::Unprocessable(
                "timeout_seconds: give at least 1 second".into(),
            )),
            Some(s) if Duration::from_secs(s) > self.limits.max_timeout => {
                Err(AppError::Unprocessable(format!(
                    "timeout_seconds: at most {} seconds",
                    self.limits.max_timeout.as_secs()
                )))
            }
            Some(s) => Ok(Duration::from_secs(s)),
        }
    }
}
