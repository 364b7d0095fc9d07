//! Interactive sessions in containers (SSH, the browser terminal, streamed exec): who may
//! open one where, how many each account holds, the list of open ones (which their holder,
//! the container's owner and those above may end), and the audit of each (who, which
//! container, when, how long; never what was typed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::containers::{active_owner_of, resolve};
use super::AppState;
use crate::domain::{now, User};
use crate::error::{AppError, AppResult};
use crate::runtime::interactive::{Interactive, SessionRequest};

/// Where a session comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Ssh,
    Terminal,
    Exec,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Ssh => "ssh",
            SessionKind::Terminal => "terminal",
            SessionKind::Exec => "exec",
        }
    }
}

/// Bounds of interactive sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Sessions one account may hold open at once.
    pub per_user: usize,
    /// A session with no input and no output for this long is ended.
    pub idle: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            per_user: 16,
            idle: Duration::from_secs(30 * 60),
        }
    }
}

/// One open session, as listed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub id: u64,
    /// The account that opened it.
    pub user: String,
    /// The container's owner and name.
    pub owner: String,
    pub container: String,
    pub kind: SessionKind,
    /// What runs: `shell`, `sftp`, or the command line.
    pub command: String,
    /// The client's address, if known.
    pub peer: Option<String>,
    /// Unix time it opened.
    pub started_at: i64,
}

impl SessionInfo {
    /// `ssh`, `terminal` or `exec`.
    pub fn kind_name(&self) -> &'static str {
        self.kind.as_str()
    }
}

#[derive(Debug)]
struct Entry {
    info: SessionInfo,
    user_id: i64,
    owner_id: i64,
    end: watch::Sender<bool>,
}

/// The open sessions of this panel process.
#[derive(Debug, Clone)]
pub struct Sessions {
    limits: SessionLimits,
    /// The SSH gateway's port, for the hints pages give.
    ssh_port: Option<u16>,
    next: Arc<AtomicU64>,
    open: Arc<Mutex<HashMap<u64, Entry>>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(SessionLimits::default())
    }
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Sessions {
        Sessions {
            limits,
            ssh_port: None,
            next: Arc::new(AtomicU64::new(1)),
            open: Arc::default(),
        }
    }

    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    /// The same, telling pages on which port the SSH gateway listens.
    pub fn with_ssh_port(mut self, port: Option<u16>) -> Sessions {
        self.ssh_port = port;
        self
    }

    pub fn ssh_port(&self) -> Option<u16> {
        self.ssh_port
    }

    /// Open sessions by kind (`ssh`, `terminal`, `exec`), each kind listed.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let open = self.lock();
        [SessionKind::Ssh, SessionKind::Terminal, SessionKind::Exec]
            .into_iter()
            .map(|k| {
                (
                    k.as_str(),
                    open.values().filter(|e| e.info.kind == k).count(),
                )
            })
            .collect()
    }

    /// Whether session `id` is still open.
    pub fn is_open(&self, id: u64) -> bool {
        self.lock().contains_key(&id)
    }

    /// Ends session `id` (its holder's login ended).
    pub fn end_one(&self, id: u64) {
        if let Some(e) = self.lock().get(&id) {
            let _ = e.end.send(true);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.open.lock().expect("sessions")
    }

    /// Ends every session in containers of `owner_id` (a suspension), and those it opened.
    pub fn end_for_account(&self, owner_id: i64) {
        for e in self.lock().values() {
            if e.owner_id == owner_id || e.user_id == owner_id {
                let _ = e.end.send(true);
            }
        }
    }

    /// Ends every session in container `row_name` of `owner_id` (a stop or a destroy).
    pub fn end_for_container(&self, owner_id: i64, name: &str) {
        for e in self.lock().values() {
            if e.owner_id == owner_id && e.info.container == name {
                let _ = e.end.send(true);
            }
        }
    }
}

/// An open session: the process's streams, and the ticket that unregisters and audits it
/// when it ends.
#[derive(Debug)]
pub struct OpenSession {
    pub io: Interactive,
    pub ticket: Ticket,
}

/// Registration of an open session; [`Ticket::finish`] (or dropping it) ends it.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    st: AppState,
    user: User,
    target: String,
    what: String,
    started: Instant,
    /// Becomes true when someone ends the session from outside.
    pub ended: watch::Receiver<bool>,
    done: bool,
}

impl Ticket {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Unregisters the session and audits how it ended.
    pub async fn finish(mut self, outcome: &str) {
        self.done = true;
        self.st.shells.lock().remove(&self.id);
        let secs = self.started.elapsed().as_secs();
        let result = format!("{}, {secs} s, {outcome}", self.what);
        if let Err(e) = self
            .st
            .db
            .audit(
                Some(&self.user),
                "container.session.end",
                &self.target,
                &result,
            )
            .await
        {
            tracing::warn!(error = %e, "audit the end of a session");
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.st.shells.lock().remove(&self.id);
        let (st, user, target) = (self.st.clone(), self.user.clone(), self.target.clone());
        let result = format!(
            "{}, {} s, connection lost",
            self.what,
            self.started.elapsed().as_secs()
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = st
                    .db
                    .audit(Some(&user), "container.session.end", &target, &result)
                    .await;
            });
        }
    }
}

/// `web` or `alice+web`: the container and, for providers and resellers, its owner.
pub fn parse_target(login: &str) -> (Option<&str>, &str) {
    match login.split_once('+') {
        Some((owner, name)) => (Some(owner), name),
        None => (None, login),
    }
}

/// A short description of what a request runs, for lists and the audit log (a command
/// line is cut, never the input).
fn describe(req: &SessionRequest, what: Option<&str>) -> String {
    if let Some(w) = what {
        return w.to_string();
    }
    if req.argv.is_empty() {
        return "shell".into();
    }
    let line = req.argv.join(" ");
    match line.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

/// Opens a session in container `name` (of `owner` for providers and resellers) for
/// `caller`. `what` names it in lists (`sftp`); otherwise the command or `shell`.
#[allow(clippy::too_many_arguments)]
pub async fn open(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    kind: SessionKind,
    peer: Option<String>,
    req: SessionRequest,
    what: Option<&str>,
) -> AppResult<OpenSession> {
    if caller.is_suspended() {
        let whom = match caller.role() {
            crate::domain::Role::Customer => "your reseller",
            _ => "your provider",
        };
        return Err(AppError::Forbidden(format!(
            "your account is suspended: contact {whom}"
        )));
    }
    let row = resolve(st, caller, name, owner).await?;
    active_owner_of(st, &row).await?;
    let held = st
        .shells
        .lock()
        .values()
        .filter(|e| e.user_id == caller.id)
        .count();
    if held >= st.shells.limits.per_user {
        return Err(AppError::Busy(format!(
            "you already have {held} sessions open: close one first"
        )));
    }
    let io = match st.runtime.open_session(&row.engine_name, req.clone()).await {
        Ok(io) => io,
        Err(AppError::Conflict(_)) => {
            return Err(AppError::Conflict(format!(
                "container {} is not running: start it first",
                row.name
            )))
        }
        Err(e) => return Err(e),
    };
    let what = describe(&req, what);
    let target = format!("{}/{}", row.owner, row.name);
    let id = st.shells.next.fetch_add(1, Ordering::Relaxed);
    let (end, ended) = watch::channel(false);
    st.shells.lock().insert(
        id,
        Entry {
            info: SessionInfo {
                id,
                user: caller.name.clone(),
                owner: row.owner.clone(),
                container: row.name.clone(),
                kind,
                command: what.clone(),
                peer: peer.clone(),
                started_at: now(),
            },
            user_id: caller.id,
            owner_id: row.owner_id,
            end,
        },
    );
    let what = format!("{} {what}", kind.as_str());
    let from = peer.map(|p| format!(" from {p}")).unwrap_or_default();
    st.db
        .audit(
            Some(caller),
            "container.session.open",
            &target,
            &format!("{what}{from}"),
        )
        .await?;
    Ok(OpenSession {
        io,
        ticket: Ticket {
            id,
            st: st.clone(),
            user: caller.clone(),
            target,
            what,
            started: Instant::now(),
            ended,
            done: false,
        },
    })
}

/// The open sessions the caller may see: its own, and those in containers of accounts in
/// its scope.
pub async fn list(st: &AppState, caller: &User) -> AppResult<Vec<SessionInfo>> {
    let entries: Vec<(i64, i64, SessionInfo)> = st
        .shells
        .lock()
        .values()
        .map(|e| (e.user_id, e.owner_id, e.info.clone()))
        .collect();
    let mut out = Vec::new();
    for (user_id, owner_id, info) in entries {
        if user_id == caller.id || owner_id == caller.id || in_scope(st, caller, owner_id).await? {
            out.push(info);
        }
    }
    out.sort_by_key(|i| i.id);
    Ok(out)
}

async fn in_scope(st: &AppState, caller: &User, owner_id: i64) -> AppResult<bool> {
    Ok(match st.db.user_by_id(owner_id).await? {
        Some(owner) => caller.has_in_scope(&owner),
        None => false,
    })
}

/// Ends session `id` if the caller may see it.
pub async fn end(st: &AppState, caller: &User, id: u64) -> AppResult<()> {
    let visible = list(st, caller).await?;
    if !visible.iter().any(|s| s.id == id) {
        return Err(AppError::NotFound);
    }
    st.shells.end_one(id);
    st.db
        .audit(
            Some(caller),
            "container.session.kill",
            &id.to_string(),
            "ok",
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_the_owner_when_given() {
        assert_eq!(parse_target("web"), (None, "web"));
        assert_eq!(parse_target("alice+web"), (Some("alice"), "web"));
    }

    #[test]
    fn long_commands_are_cut_in_lists() {
        let req = SessionRequest {
            argv: vec!["echo".into(), "x".repeat(200)],
            ..Default::default()
        };
        assert!(describe(&req, None).chars().count() <= 81);
        assert_eq!(describe(&SessionRequest::default(), None), "shell");
        assert_eq!(describe(&req, Some("sftp")), "sftp");
    }
}
