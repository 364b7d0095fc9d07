//! Startup that tests can drive: `App::build` opens the database and the engine, repairs
//! what a crash left, creates the first provider account, binds the listener (port 0 in
//! tests) and exposes its address; `run` serves until a shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use acetate_engine::Engine;
use axum::Router;
use tokio::net::TcpListener;

use crate::auth::{self, Secret};
use crate::db::{Db, Role};
use crate::error::{AppError, AppResult};
use crate::routes;
use crate::snapshot::Snapshot;

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
    /// The provider's rules for the state dir's disk.
    pub disk: acetate_engine::capacity::DiskPolicy,
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub engine: Arc<Engine>,
    /// Serialises capacity checks with the allocations they allow.
    pub alloc: Arc<tokio::sync::Mutex<()>>,
    /// Recent state and usage of every container.
    pub snapshot: Snapshot,
    /// Serialised container lists per user, valid for one (rows, snapshot) generation.
    pub list_cache: ListCache,
    /// Failed logins per account, for lockout.
    pub logins: Arc<std::sync::Mutex<auth::LoginLimiter>>,
    /// The WebAssembly host for resellers' plugins.
    pub plugins: Arc<acetate_plugins::Host>,
    /// The dashboard's rendered rows per session, valid for one (rows, snapshot) generation.
    pub page_cache: PageCache,
    /// Long operations under way or recently done.
    pub jobs: crate::jobs::Jobs,
    /// Bounds on one-shot commands (per user and panel-wide).
    pub exec: crate::exec::ExecGate,
}

/// session CSRF token -> ((rows generation, snapshot generation), no rows, HTML).
pub type PageCache =
    Arc<std::sync::Mutex<std::collections::HashMap<String, ((u64, u64), bool, Arc<str>)>>>;

/// user id -> (container rows generation, snapshot generation, JSON body).
pub type ListCache =
    Arc<std::sync::Mutex<std::collections::HashMap<i64, (u64, u64, bytes::Bytes)>>>;

impl AppState {
    /// Runs blocking engine work off the async threads.
    /// Runs a change on container `name` off the async threads, then refreshes its entry
    /// in the snapshot whatever the outcome.
    pub async fn change<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&Engine) -> acetate_engine::Result<T> + Send + 'static,
    ) -> AppResult<T> {
        let (engine, snap, name) = (self.engine.clone(), self.snapshot.clone(), name.to_string());
        Ok(tokio::task::spawn_blocking(move || {
            let result = f(&engine);
            snap.refresh_one(&engine, &name);
            result
        })
        .await??)
    }

    pub async fn engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> acetate_engine::Result<T> + Send + 'static,
    ) -> AppResult<T> {
        let engine = self.engine.clone();
        Ok(tokio::task::spawn_blocking(move || f(&engine)).await??)
    }
}

/// A built app, listening, not yet serving.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
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
        let engine = crate::cli::open_engine(&config.state_dir, config.disk)?;
        let db = Db::connect(&config.database_url).await?;
        let plugins = plugin_host(&config.state_dir)?;
        let state = AppState {
            db,
            engine: Arc::new(engine),
            alloc: Arc::default(),
            snapshot: Snapshot::default(),
            list_cache: ListCache::default(),
            logins: Arc::default(),
            plugins,
            page_cache: PageCache::default(),
            jobs: crate::jobs::Jobs::default(),
            exec: crate::exec::ExecGate::default(),
        };
        let built = state.engine(|e| e.ensure_host_template()).await?;
        if built {
            tracing::info!("built the host template");
        }
        reconcile(&state).await?;
        let snap = state.snapshot.clone();
        state.engine(move |e| snap.refresh_all(e)).await?;
        let first = bootstrap(&state, config.admin_password).await?;
        let listener = TcpListener::bind(&config.listen).await?;
        Ok((
            App {
                listener,
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

    pub fn router(state: AppState) -> Router {
        routes::router().with_state(state)
    }

    /// Serves until SIGINT or SIGTERM. Containers keep running after it returns.
    pub async fn run(self) -> anyhow::Result<()> {
        self.state
            .snapshot
            .spawn_refresher(self.state.engine.clone());
        crate::metering::spawn(
            self.state.db.clone(),
            self.state.engine.clone(),
            self.meter_interval,
        );
        crate::billing::spawn_schedule(self.state.db.clone(), self.state.plugins.clone());
        spawn_disk_guard(self.state.engine.clone());
        spawn_autostart(self.state.engine.clone());
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

/// Starts every container that should run and does not (after a host reboot), four at a
/// time, while the panel already serves; each failure is logged with its container.
fn spawn_autostart(engine: Arc<Engine>) {
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
/// (so the panel and its database keep working), and takes it back once there is room.
fn spawn_disk_guard(engine: Arc<Engine>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            let engine = engine.clone();
            match tokio::task::spawn_blocking(move || engine.relieve_disk()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "checking the state dir's disk failed"),
                Err(e) => tracing::warn!(error = %e, "the disk guard failed"),
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
    state
        .db
        .create_user("admin", Role::Provider, None, &hash)
        .await?;
    state
        .db
        .audit(None, "user.create", "admin (provider)", "ok")
        .await?;
    Ok(Some(FirstLogin {
        user: "admin".into(),
        password: generated.then_some(password),
    }))
}

/// Makes the database and the engine agree after a crash in the middle of a create or a
/// destroy: the engine sweeps its own debris, then rows left half-way are finished off.
async fn reconcile(state: &AppState) -> AppResult<()> {
    let repaired = state.engine(|e| e.recover()).await?;
    if !repaired.is_empty() {
        tracing::warn!(?repaired, "engine recovered containers after a crash");
    }
    for row in state.db.unfinished_containers().await? {
        let name = row.engine_name.clone();
        let result = state
            .engine(
                move |e| match e.destroy(&name, std::time::Duration::from_secs(10)) {
                    Err(acetate_engine::Error::NoSuchContainer(_)) => Ok(()),
                    other => other,
                },
            )
            .await;
        match result {
            Ok(()) => {
                state.db.delete_container(row.id).await?;
                state
                    .db
                    .audit(
                        None,
                        "container.reconcile",
                        &format!("{}/{}", row.owner, row.name),
                        "removed",
                    )
                    .await?;
            }
            Err(e) => tracing::error!(container = %row.engine_name, error = %e, "reconcile failed"),
        }
    }
    Ok(())
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(format!("{e:#}"))
    }
}
