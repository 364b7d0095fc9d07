//! Startup that tests can drive: `App::build` opens the database and the engine, repairs
//! what a crash left, creates the first provider account, binds the listener (port 0 in
//! tests) and exposes its address; `run` serves until a shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::db::Db;
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::http;
use crate::runtime::{EngineRuntime, Runtime};
use crate::service::auth::{self, Secret};
pub use crate::service::AppState;

/// Everything `acetate serve` is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub database_url: String,
    pub state_dir: PathBuf,
    /// Password for the first provider account; generated (and printed once) if absent.
    pub admin_password: Option<Secret>,
    /// How often the metering job samples every container.
    pub meter_interval: std::time::Duration,
    /// The provider's settings for the engine (disk policy, backup repository).
    pub engine: crate::cli::EngineSettings,
    /// A separate address serving `/metrics` without a token.
    pub metrics_listen: Option<String>,
    /// The SSH gateway's address (`None`: no gateway) and settings.
    pub ssh_listen: Option<String>,
    pub ssh: crate::ssh::SshSettings,
    /// The front door's addresses; `front_optional` says a taken default port only turns
    /// it off (with a warning) rather than failing the start.
    pub front: crate::front::FrontSettings,
    pub front_optional: bool,
    /// Where its certificates come from.
    pub acme: crate::service::certs::AcmeSettings,
    /// The panel's own hostnames, which no customer may attach; the front door serves the
    /// panel under them over HTTPS.
    pub panel_hosts: Vec<String>,
    /// The provider's certificate and key (PEM files) for those names; without them the
    /// certificates come over ACME.
    pub panel_cert: Option<(PathBuf, PathBuf)>,
    /// Roles whose accounts must set up a second factor before using the pages.
    pub second_factor_roles: Vec<Role>,
    /// Proxies (besides this host's) whose forwarding headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// A built app, listening, not yet serving.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    ssh: Option<(
        TcpListener,
        russh::keys::PrivateKey,
        crate::ssh::SshSettings,
    )>,
    front: crate::front::Listeners,
    acme: crate::service::certs::AcmeSettings,
    state: AppState,
    meter_interval: std::time::Duration,
}

/// What the first start tells the operator.
#[derive(Debug)]
pub struct FirstLogin {
    pub user: String,
    pub password: Option<Secret>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<(App, Option<FirstLogin>)> {
        let engine = crate::cli::open_engine(&config.state_dir, &config.engine)?;
        let runtime: Arc<dyn Runtime> = Arc::new(EngineRuntime(Arc::new(engine)));
        let db = Db::connect(&config.database_url)
            .await?
            .seal_with(&config.state_dir)?;
        let plugins = plugin_host(&config.state_dir)?;
        let mut state = AppState::new(db, runtime, plugins);
        let built = state.engine(|e| e.ensure_host_template()).await?;
        if built {
            tracing::info!("built the host template");
        }
        let listener = TcpListener::bind(&config.listen).await?;
        let metrics = match &config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let ssh = match &config.ssh_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("SSH gateway: listen on {addr}: {e}"))?;
                let key = crate::ssh::host_key(&config.state_dir)?;
                Some((listener, key, config.ssh.clone()))
            }
            None => None,
        };
        let ssh_port = ssh
            .as_ref()
            .and_then(|(l, _, _)| l.local_addr().ok())
            .map(|a| a.port());
        state.shells =
            crate::service::shells::Sessions::new(crate::service::shells::SessionLimits {
                idle: config.ssh.idle,
                ..Default::default()
            })
            .with_ssh_port(ssh_port);
        let front = match crate::front::Listeners::bind(&config.front).await {
            Ok(l) => l,
            Err(e) if config.front_optional => {
                tracing::warn!(error = %e, "the front door is off");
                crate::front::Listeners::default()
            }
            Err(e) => return Err(e),
        };
        state.front = panel_front(&state, &config, &listener, &front).await?;
        state.second_factor_roles = Arc::new(config.second_factor_roles.clone());
        state.trusted_proxies = Arc::new(config.trusted_proxies.clone());
        let first = App::prepare(&state, config.admin_password).await?;
        Ok((
            App {
                listener,
                metrics,
                ssh,
                front,
                acme: config.acme,
                state,
                meter_interval: config.meter_interval,
            },
            first,
        ))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address of the separate metrics listener, if there is one.
    pub fn ssh_addr(&self) -> Option<SocketAddr> {
        self.ssh.as_ref().and_then(|(l, _, _)| l.local_addr().ok())
    }

    /// The front door's HTTP and HTTPS addresses, where it listens.
    pub fn front_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (self.front.http_addr(), self.front.https_addr())
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn router(state: AppState) -> Router {
        http::router(state)
    }

    /// What a panel does before it serves: the engine sweeps its own debris, operations
    /// a stopped panel left are finished or failed, the snapshot is filled, and the first
    /// provider account is made on a new database.
    pub async fn prepare(
        state: &AppState,
        admin_password: Option<Secret>,
    ) -> AppResult<Option<FirstLogin>> {
        let repaired = state.engine(|e| e.recover()).await?;
        if !repaired.is_empty() {
            tracing::warn!(?repaired, "engine recovered containers after a crash");
        }
        let snap = state.snapshot.clone();
        state.engine(move |e| snap.refresh_all(e)).await?;
        crate::service::containers::recover_operations(state).await?;
        crate::service::containers::reconcile_vanished(state).await?;
        bootstrap(state, admin_password).await
    }

    /// Serves until SIGINT or SIGTERM. Containers keep running after it returns.
    pub async fn run(self) -> anyhow::Result<()> {
        let st = &self.state;
        st.snapshot.spawn_refresher(st.runtime.clone());
        st.operations.spawn_heartbeat();
        crate::service::metering::spawn(st.db.clone(), st.runtime.clone(), self.meter_interval);
        crate::service::overuse::spawn(st.clone());
        crate::service::billing::spawn_schedule(st.db.clone(), st.plugins.clone());
        spawn_disk_guard(st.runtime.clone());
        spawn_autostart(st.runtime.clone());
        spawn_login_pruning(st.logins.clone(), st.db.clone());
        spawn_reconciler(st.clone());
        spawn_settler(st.clone());
        spawn_backup_schedule(st.clone());
        if let Some((listener, key, settings)) = self.ssh {
            let st = self.state.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::ssh::serve(listener, st, key, settings).await {
                    tracing::error!(error = %e, "the SSH gateway stopped");
                }
            });
        }
        if self.front.http.is_some() || self.front.https.is_some() {
            st.front.reload(&st.db).await;
            st.front
                .spawn_reloader(st.db.clone(), std::time::Duration::from_secs(10));
            if self.front.https.is_some() {
                crate::service::certs::spawn_issuer(st.clone(), self.acme.clone());
            }
            crate::front::serve(self.front, st.clone())?;
        }
        if let Some(listener) = self.metrics {
            let router = http::metrics::open_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        let router = App::router(self.state);
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await?;
        Ok(())
    }
}

/// The front door's state: the panel's hostnames reserved and, when it serves HTTPS,
/// served in front of the panel's own listener with the provider's certificate files or
/// ACME's.
async fn panel_front(
    state: &AppState,
    config: &Config,
    listener: &TcpListener,
    front: &crate::front::Listeners,
) -> anyhow::Result<crate::service::domains::Front> {
    let hosts = config.panel_hosts.clone();
    let mut f = crate::service::domains::Front::new(hosts.clone());
    let mut acme_hosts = Vec::new();
    if front.https.is_some() && !hosts.is_empty() {
        let mut backend = listener.local_addr()?;
        if backend.ip().is_unspecified() {
            backend.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let files = match &config.panel_cert {
            Some((cert, key)) => {
                let read = |p: &PathBuf| {
                    std::fs::read_to_string(p).map_err(|e| {
                        anyhow::anyhow!("--panel-cert/--panel-key {}: {e}", p.display())
                    })
                };
                let c = crate::service::certs::certified_key(&read(cert)?, &read(key)?)
                    .map_err(|e| e.context("--panel-cert/--panel-key"))?;
                Some(c)
            }
            None => {
                acme_hosts = hosts.clone();
                None
            }
        };
        f = f.serving_panel(backend, files);
    }
    state.db.set_panel_hosts(&acme_hosts).await?;
    Ok(f)
}

/// Starts every container that should run and does not (after a host reboot), four at a
/// time, while the panel already serves; each failure is logged with its container.
fn spawn_autostart(engine: Arc<dyn Runtime>) {
    tokio::task::spawn_blocking(move || match engine.start_all(4) {
        Ok(results) => {
            let started = results.iter().filter(|(_, r)| r.is_ok()).count();
            for (name, r) in &results {
                if let Err(e) = r {
                    tracing::error!(container = %name, error = %e, "autostart failed");
                }
            }
            if !results.is_empty() {
                tracing::info!(started, failed = results.len() - started, "autostart done");
            }
        }
        Err(e) => tracing::error!(error = %e, "autostart failed"),
    });
}

/// Every few seconds, gives up the disk reserve when tenants filled the state dir's disk
/// (so the panel and its database keep working), and takes it back once there is room;
/// and keeps lxcfs running with its views bound in every container.
fn spawn_disk_guard(engine: Arc<dyn Runtime>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            let engine = engine.clone();
            let e2 = engine.clone();
            match tokio::task::spawn_blocking(move || engine.relieve_disk()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "checking the state dir's disk failed"),
                Err(e) => tracing::warn!(error = %e, "the disk guard failed"),
            }
            match tokio::task::spawn_blocking(move || e2.supervise_lxcfs()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "lxcfs"),
                Err(e) => tracing::warn!(error = %e, "the lxcfs supervisor failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The plugin host, caching compiled plugins under `<state>/plugins/cache`.
pub fn plugin_host(state_dir: &std::path::Path) -> anyhow::Result<Arc<acetate_plugins::Host>> {
    let cache = state_dir.join("plugins").join("cache");
    Ok(Arc::new(acetate_plugins::Host::new(
        Some(&cache),
        acetate_plugins::Budget::default(),
    )?))
}

/// Creates the provider account on first start.
async fn bootstrap(state: &AppState, password: Option<Secret>) -> AppResult<Option<FirstLogin>> {
    if state.db.provider_count().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => {
            auth::check_password_strength(&p.0)?;
            (p, false)
        }
        None => (auth::generate_password(), true),
    };
    let pw = password.clone();
    let hash = auth::hash_bounded(pw).await?;
    let id = state
        .db
        .create_user("admin", Role::Provider, None, &hash)
        .await?;
    if generated {
        // Printed on the console: changed at the first login.
        state.db.require_password_change(id).await?;
    }
    state
        .db
        .audit(None, "user.create", "admin (provider)", "ok")
        .await?;
    Ok(Some(FirstLogin {
        user: "admin".into(),
        password: generated.then_some(password),
    }))
}

/// Every minute, removes the rows of containers destroyed behind the panel's back.
fn spawn_reconciler(st: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = crate::service::containers::reconcile_vanished(&st).await {
                tracing::warn!(error = %e, "reconciling containers");
            }
        }
    });
}

/// Every five seconds, finishes the halts and reboots SysV inits began inside their
/// containers (a customer's `reboot` brings the container back within seconds).
fn spawn_settler(st: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = crate::service::containers::HaltWatch::default();
        loop {
            tick.tick().await;
            if let Err(e) = crate::service::containers::settle_inside_halts(&st, &mut watch).await {
                tracing::warn!(error = %e, "finishing halts and reboots from inside");
            }
        }
    });
}

/// Every ten minutes, backs up the containers whose plans schedule backups and are due.
fn spawn_backup_schedule(st: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = crate::service::containers::copies::scheduled_backups(&st).await {
                tracing::warn!(error = %e, "scheduled backups");
            }
        }
    });
}

/// Forgets login counters that no longer lock or count, and ended sessions, every ten
/// minutes.
fn spawn_login_pruning(logins: auth::LoginLimiter, db: Db) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = logins.prune(crate::domain::now()).await {
                tracing::warn!(error = %e, "pruning login counters");
            }
            if let Err(e) = db
                .purge_sessions(crate::service::sessions::SESSION_IDLE)
                .await
            {
                tracing::warn!(error = %e, "purging sessions");
            }
        }
    });
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(format!("{e:#}"))
    }
}
