//! The SSH gateway (`acetate serve`, port 2222 by default): one SSH server (russh) for every
//! container, no daemon inside any. `ssh web@host` logs a customer in to its container
//! `web` with a key from its account; `ssh alice+web@host` names the owner (providers and
//! resellers entering a customer's container). Shells, commands, `scp`, `sftp` (the
//! container's own `sftp-server`), `rsync` and `git` run inside the container exactly as
//! `ct exec` does, as the container's root, each an audited session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

mod hostkey;
pub use hostkey::host_key;

use crate::domain::User;
use crate::error::AppError;
use crate::runtime::interactive::{SessionRequest, DRAIN, HANG_UP_GRACE};
use crate::service::shells::{self, OpenSession, SessionKind};
use crate::service::{keys, sessions, AppState};

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// Accept account passwords (`alice+web` logs in as alice) besides keys.
    pub password_auth: bool,
    /// A connection with no traffic from its client for this long is closed.
    pub idle: Duration,
}

/// Runs `sftp-server` from where distributions install it; says what to install if the
/// container has none.
const SFTP_SERVER: &str = "for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server \
     /usr/lib/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server; do \
     [ -x \"$p\" ] && exec \"$p\"; done; \
     echo 'acetate: this container has no sftp-server: install it (Debian: apt install openssh-sftp-server)' >&2; exit 127";

/// Serves SSH on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    st: AppState,
    key: PrivateKey,
    settings: SshSettings,
) -> std::io::Result<()> {
    let mut methods = vec![MethodKind::PublicKey];
    if settings.password_auth {
        methods.push(MethodKind::Password);
    }
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-Acetate".into()),
        methods: MethodSet::from(&methods[..]),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        // Idle sessions are ended by the gateway itself, counting traffic both ways (a
        // client answers keepalives, so russh's own inactivity timer would never fire for
        // a live one); keepalives find dead peers.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let mut server = Gateway {
        st,
        idle: settings.idle,
    };
    use russh::server::Server as _;
    server.run_on_socket(config, &listener).await
}

struct Gateway {
    st: AppState,
    idle: Duration,
}

impl russh::server::Server for Gateway {
    type Handler = Connection;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection {
        Connection {
            st: self.st.clone(),
            idle: self.idle,
            peer,
            login: None,
            channels: HashMap::new(),
        }
    }
}

/// A channel between its opening and its shell, command or subsystem.
struct Pending {
    channel: Channel<Msg>,
    /// (TERM, cols, rows)
    pty: Option<(String, u16, u16)>,
    env: Vec<(String, String)>,
}

/// The account logged in and the container it asked for.
struct Login {
    user: User,
    owner: Option<String>,
    name: String,
}

struct Connection {
    st: AppState,
    /// Sessions with no traffic either way for this long are ended.
    idle: Duration,
    peer: Option<SocketAddr>,
    login: Option<Login>,
    channels: HashMap<ChannelId, Pending>,
}

/// A terminal dimension from the client; 0 (unknown) becomes `default`.
fn dim(v: u32, default: u16) -> u16 {
    if v == 0 {
        default
    } else {
        v.min(u16::MAX as u32) as u16
    }
}

impl Connection {
    /// Accepts `user` for login `target` if the container is in its scope.
    async fn admit(&mut self, user: User, target: &str) -> anyhow::Result<Auth> {
        let (owner, name) = shells::parse_target(target);
        match crate::service::containers::resolve(&self.st, &user, name, owner).await {
            Ok(_) => {
                self.login = Some(Login {
                    user,
                    owner: owner.map(str::to_string),
                    name: name.to_string(),
                });
                Ok(Auth::Accept)
            }
            Err(AppError::NotFound) => Ok(Auth::reject()),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts what a channel asked for and pumps it; says why on the channel if it cannot.
    async fn start(
        &mut self,
        id: ChannelId,
        argv: Vec<String>,
        what: Option<&str>,
        session: &mut Session,
    ) -> anyhow::Result<()> {
        let (Some(pending), Some(login)) = (self.channels.remove(&id), self.login.as_ref()) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        session.channel_success(id)?;
        let mut env = pending.env;
        let tty = pending.pty.map(|(term, cols, rows)| {
            env.push(("TERM".into(), term));
            (cols, rows)
        });
        let req = SessionRequest { argv, env, tty };
        let opened = shells::open(
            &self.st,
            &login.user,
            &login.name,
            login.owner.as_deref(),
            SessionKind::Ssh,
            self.peer.map(|p| p.ip().to_string()),
            req,
            what,
        )
        .await;
        let channel = pending.channel;
        match opened {
            Ok(open) => {
                tokio::spawn(pump(channel, open, tty.is_some(), self.idle));
            }
            Err(e) => {
                let msg = match e {
                    AppError::NotFound => format!("no container {} here", login.name),
                    e => e.to_string(),
                };
                tokio::spawn(async move {
                    let _ = channel
                        .extended_data_bytes(1, format!("acetate: {msg}\r\n").into_bytes())
                        .await;
                    let _ = channel.exit_status(1).await;
                    let _ = channel.eof().await;
                    let _ = channel.close().await;
                });
            }
        }
        Ok(())
    }
}

impl russh::server::Handler for Connection {
    type Error = anyhow::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> anyhow::Result<Auth> {
        Ok(if keys::is_known(&self.st, offer.public_key).await? {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> anyhow::Result<Auth> {
        match keys::account_of(&self.st, key.public_key).await? {
            Some(account) => self.admit(account, user).await,
            None => Ok(Auth::reject()),
        }
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> anyhow::Result<Auth> {
        // `alice+web`: alice's password, alice's container web.
        let Some((account, name)) = user.split_once('+') else {
            return Ok(Auth::reject());
        };
        let address = self.peer.map(|p| p.ip().to_string()).unwrap_or_default();
        let secret = crate::service::auth::Secret(password.to_string());
        match sessions::check_password(&self.st, account, secret, &address).await {
            Ok(u) => self.admit(u, name).await,
            Err(_) => Ok(Auth::reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> anyhow::Result<()> {
        self.channels.insert(
            channel.id(),
            Pending {
                channel,
                pty: None,
                env: Vec::new(),
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        id: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> anyhow::Result<()> {
        match self.channels.get_mut(&id) {
            Some(p) => {
                let term = if term.is_empty() || term.len() > 64 {
                    "xterm".to_string()
                } else {
                    term.to_string()
                };
                p.pty = Some((term, dim(cols, 80), dim(rows, 24)));
                session.channel_success(id)?;
            }
            None => session.channel_failure(id)?,
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        id: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> anyhow::Result<()> {
        // Like OpenSSH's default AcceptEnv: the locale, nothing that changes what runs.
        let allowed = (name == "LANG" || name.starts_with("LC_"))
            && name.len() <= 64
            && value.len() <= 256
            && !value.contains('\0');
        match self.channels.get_mut(&id) {
            Some(p) if allowed && p.env.len() < 32 => {
                p.env.push((name.to_string(), value.to_string()));
                session.channel_success(id)?;
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }

    async fn shell_request(&mut self, id: ChannelId, session: &mut Session) -> anyhow::Result<()> {
        self.start(id, Vec::new(), None, session).await
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> anyhow::Result<()> {
        let command = String::from_utf8_lossy(data).into_owned();
        let shown: String = command.chars().take(80).collect();
        let argv = vec!["/bin/sh".into(), "-c".into(), command];
        self.start(id, argv, Some(&shown), session).await
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> anyhow::Result<()> {
        if name != "sftp" {
            self.channels.remove(&id);
            session.channel_failure(id)?;
            return Ok(());
        }
        let argv = vec!["/bin/sh".into(), "-c".into(), SFTP_SERVER.into()];
        self.start(id, argv, Some("sftp"), session).await
    }
}

/// Records activity now.
fn note(last: &AtomicU64, started: tokio::time::Instant) {
    last.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
}

/// Copies a process's output to the channel, noting each chunk as activity.
async fn copy_noting(
    from: crate::runtime::interactive::Reader,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    last: Arc<AtomicU64>,
    started: tokio::time::Instant,
) {
    use tokio::io::AsyncReadExt;
    let mut from = BufReader::with_capacity(32 << 10, from);
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                note(&last, started);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.flush().await;
}

/// Moves bytes between a channel and its process until either ends, then reports the
/// exit status and closes the channel. A closed channel (the client went away) ends the
/// process with every process of its group.
async fn pump(mut channel: Channel<Msg>, open: OpenSession, tty: bool, idle: Duration) {
    let OpenSession { io, mut ticket } = open;
    let process = io.process;
    let mut stdin = Some(io.stdin);
    let started = tokio::time::Instant::now();
    // Milliseconds since `started` of the last byte either way.
    let last = Arc::new(AtomicU64::new(0));
    let out = tokio::spawn(copy_noting(
        io.stdout,
        channel.make_writer(),
        last.clone(),
        started,
    ));
    let err = io.stderr.map(|stderr| {
        tokio::spawn(copy_noting(
            stderr,
            channel.make_writer_ext(Some(1)),
            last.clone(),
            started,
        ))
    });
    let mut ended_by = None;
    loop {
        let quiet_until = started + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
        tokio::select! {
            _ = tokio::time::sleep_until(quiet_until) => {
                // Output may have come meanwhile: the deadline moves with it.
                let now = started + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
                if now <= tokio::time::Instant::now() {
                    let _ = channel
                        .extended_data_bytes(1, b"\r\nacetate: idle for too long, session ended\r\n".to_vec())
                        .await;
                    process.hang_up(HANG_UP_GRACE).await;
                    ended_by = Some("idle");
                    break;
                }
            }
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    note(&last, started);
                    if let Some(w) = stdin.as_mut() {
                        if w.write_all(&data).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Some(ChannelMsg::Eof) => {
                    // A terminal has no end of input but ^D; pipes close.
                    if !tty {
                        stdin = None;
                    }
                }
                Some(ChannelMsg::WindowChange { col_width, row_height, .. }) => {
                    process.resize(dim(col_width, 80), dim(row_height, 24));
                }
                Some(ChannelMsg::Signal { .. }) => process.kill(),
                None | Some(ChannelMsg::Close) => {
                    process.hang_up(HANG_UP_GRACE).await;
                    ended_by = Some("disconnected");
                    break;
                }
                Some(_) => {}
            },
            _ = process.exited() => break,
            _ = ticket.ended.changed() => {
                let _ = channel
                    .extended_data_bytes(1, b"\r\nacetate: this session was ended\r\n".to_vec())
                    .await;
                process.kill();
                ended_by = Some("ended");
                break;
            }
        }
    }
    drop(stdin);
    let code = process.wait().await.unwrap_or(255);
    let aborts: Vec<_> = std::iter::once(&out)
        .chain(err.as_ref())
        .map(|t| t.abort_handle())
        .collect();
    let drained = async {
        let _ = out.await;
        if let Some(err) = err {
            let _ = err.await;
        }
    };
    if tokio::time::timeout(DRAIN, drained).await.is_err() {
        aborts.iter().for_each(|a| a.abort());
    }
    if ended_by != Some("disconnected") {
        let _ = channel.exit_status(code as u32).await;
        let _ = channel.eof().await;
        let _ = channel.close().await;
    }
    let outcome = match ended_by {
        Some(why) => why.to_string(),
        None => format!("exit {code}"),
    };
    ticket.finish(&outcome).await;
}
