//! Long actions as durable operations. Each is a database row from the moment it is
//! accepted: any panel on the database sees it, its end (success with what it produced,
//! or failure with the error's code and message) is stored, and while it runs its panel
//! renews it. A panel that starts up finishes or fails the operations of a panel process
//! on this host that is gone, and fails those whose panel elsewhere stopped renewing them
//! ([`crate::service::containers::recover_operations`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::db::operations::OperationRow;
use crate::db::Db;
use crate::domain::{Role, User};
use crate::error::{AppError, AppResult};

/// How often a panel renews the operations it runs.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Operations of another host not renewed for this long are failed.
pub const STALE_AFTER: i64 = 120;
/// Finished operations are kept this long.
pub const KEEP: i64 = 7 * 86_400;
/// The longest `wait` a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// What a finished operation produced.
#[derive(Debug, Clone, Default)]
pub struct Done {
    /// For people: "container web started".
    pub message: String,
    /// What it made or changed, as the API shows it.
    pub result: Option<serde_json::Value>,
}

/// This panel process's operations.
#[derive(Debug, Clone)]
pub struct Operations {
    db: Db,
    runner: Arc<str>,
    /// Woken whenever an operation of this process ends.
    ended: Arc<tokio::sync::Notify>,
}

/// Who runs an operation: the host, and the process on it (pid and start time, so that a
/// recycled pid is not taken for the same process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub host: String,
    pub pid: i32,
    pub start_time: u64,
}

impl Runner {
    pub fn this_process() -> Runner {
        let pid = std::process::id() as i32;
        Runner {
            host: host_id(),
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
        }
    }

    pub fn parse(s: &str) -> Option<Runner> {
        let mut parts = s.rsplitn(3, '/');
        let start_time = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_string();
        Some(Runner {
            host,
            pid,
            start_time,
        })
    }

    /// Whether this runner is a live process on this host (false for other hosts).
    pub fn is_alive_here(&self) -> bool {
        self.host == host_id() && process_start_time(self.pid) == Some(self.start_time)
    }
}

impl std::fmt::Display for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.host, self.pid, self.start_time)
    }
}

/// This host's identity: its machine id, else its host name.
pub fn host_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// When process `pid` started, in clock ticks since boot (field 22 of its stat).
fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Operations {
    pub fn new(db: Db) -> Operations {
        Operations {
            db,
            runner: Runner::this_process().to_string().into(),
            ended: Arc::default(),
        }
    }

    pub fn runner(&self) -> &str {
        &self.runner
    }

    /// Records, already finished, an operation that happened without the panel (on the
    /// host, or inside a container), so that its owner finds it with the others.
    pub async fn record_finished(
        &self,
        owner_id: i64,
        kind: &str,
        target: &str,
        succeeded: bool,
        message: &str,
        error_code: Option<&str>,
    ) -> AppResult<()> {
        let op = self
            .db
            .insert_operation(owner_id, kind, target, None, &self.runner)
            .await?;
        self.db
            .finish_operation(op.id, succeeded, message, error_code, None)
            .await?;
        Ok(())
    }

    /// Records an operation of `owner` and runs `work` in the background; its result ends
    /// the operation. The work is not tied to the request that started it: a client that
    /// goes away does not stop it.
    pub async fn spawn<F>(
        &self,
        owner: &User,
        kind: &str,
        target: &str,
        container_id: Option<i64>,
        work: F,
    ) -> AppResult<OperationRow>
    where
        F: Future<Output = AppResult<Done>> + Send + 'static,
    {
        let row = self
            .db
            .insert_operation(owner.id, kind, target, container_id, &self.runner)
            .await?;
        let (db, ended, id) = (self.db.clone(), self.ended.clone(), row.id);
        // The provider sees the cause of internal failures (the host is theirs).
        let full_errors = owner.role() == Role::Provider;
        let span = tracing::info_span!("operation", id, kind = %kind, target = %target);
        let kind = kind.to_string();
        tokio::spawn(async move {
            // A panic in the work fails the operation instead of leaving it running.
            let outcome = match tokio::spawn(work).await {
                Ok(outcome) => outcome,
                Err(e) => Err(AppError::Internal(format!("the operation stopped: {e}"))),
            };
            let stored = match &outcome {
                Ok(done) => {
                    let result = done.result.as_ref().map(|v| v.to_string());
                    db.finish_operation(id, true, &done.message, None, result.as_deref())
                        .await
                }
                Err(e) => {
                    let _g = span.enter();
                    if e.is_internal() {
                        tracing::error!(error = %e, "operation failed");
                    } else {
                        tracing::info!(error = %e, "operation refused");
                    }
                    let message = if full_errors {
                        e.chain()
                    } else {
                        e.public_message()
                    };
                    db.finish_operation(id, false, &message, Some(e.code()), None)
                        .await
                }
            };
            if let Err(e) = stored {
                tracing::error!(id, error = %e, "recording the end of an operation");
            }
            let state = if outcome.is_ok() {
                "succeeded"
            } else {
                "failed"
            };
            super::metrics::panel()
                .operations
                .with_label_values(&[kind.as_str(), state])
                .inc();
            ended.notify_waiters();
        });
        Ok(row)
    }

    /// The operation, once it ended or `timeout` passed (whichever comes first). Ends of
    /// this panel's operations wake the wait at once; others' are polled.
    pub async fn wait(&self, id: i64, timeout: Duration) -> AppResult<OperationRow> {
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_WAIT);
        loop {
            let ended = self.ended.notified();
            let row = self.db.operation(id).await?.ok_or(AppError::NotFound)?;
            if row.state != "running" || tokio::time::Instant::now() >= deadline {
                return Ok(row);
            }
            let poll = tokio::time::Instant::now() + Duration::from_millis(250);
            tokio::select! {
                _ = ended => {}
                _ = tokio::time::sleep_until(poll.min(deadline)) => {}
            }
        }
    }

    /// An operation in `caller`'s scope: its own, its customers' (reseller), any
    /// (provider). Anything else is not found.
    pub async fn get(&self, caller: &User, id: i64) -> AppResult<OperationRow> {
        let row = self.db.operation(id).await?.ok_or(AppError::NotFound)?;
        if row.owner_id == caller.id || caller.role() == Role::Provider {
            return Ok(row);
        }
        if caller.role() == Role::Reseller {
            if let Some(owner) = self.db.user_by_id(row.owner_id).await? {
                if caller.has_in_scope(&owner) {
                    return Ok(row);
                }
            }
        }
        Err(AppError::NotFound)
    }

    /// The newest operations `caller` started.
    pub async fn recent(&self, caller: &User) -> AppResult<Vec<OperationRow>> {
        self.db.operations_of(caller.id, 50).await
    }

    /// Renews this process's running operations, and forgets old finished ones, until the
    /// process ends.
    pub fn spawn_heartbeat(&self) {
        let (db, runner) = (self.db.clone(), self.runner.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            loop {
                tick.tick().await;
                if let Err(e) = db.heartbeat_operations(&runner).await {
                    tracing::warn!(error = %e, "renewing operations");
                }
                n += 1;
                if n % 360 == 1 {
                    let before = crate::domain::now() - KEEP;
                    if let Err(e) = db.prune_operations(before).await {
                        tracing::warn!(error = %e, "forgetting old operations");
                    }
                }
            }
        });
    }
}

/// A finished operation's failure as the error it was.
pub fn failure_of(row: &OperationRow) -> Option<AppError> {
    (row.state == "failed").then(|| {
        AppError::from_code(
            row.error_code.as_deref().unwrap_or("internal"),
            &row.message,
        )
    })
}

impl Operations {
    /// Waits up to `timeout` for an operation: `Ok(Some(row))` if it succeeded, the
    /// error it failed with, or `Ok(None)` while it still runs.
    pub async fn outcome_within(
        &self,
        row: &OperationRow,
        timeout: Duration,
    ) -> AppResult<Option<OperationRow>> {
        let row = self.wait(row.id, timeout).await?;
        if let Some(e) = failure_of(&row) {
            return Err(e);
        }
        Ok((row.state == "succeeded").then_some(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runners_name_a_process_on_a_host() {
        let me = Runner::this_process();
        assert!(me.start_time > 0);
        assert_eq!(Runner::parse(&me.to_string()), Some(me.clone()));
        assert!(me.is_alive_here());
        let gone = Runner {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(!gone.is_alive_here(), "a recycled pid is another process");
        let elsewhere = Runner {
            host: "another-host".into(),
            ..me
        };
        assert!(!elsewhere.is_alive_here());
        assert_eq!(Runner::parse("garbage"), None);
    }
}
