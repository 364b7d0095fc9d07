//! Use cases: the only layer that combines the database, the engine (through
//! [`crate::runtime::Runtime`]) and the plugin host. One function per action, taking
//! domain inputs and returning domain results; the JSON API, the pages, the CLI and the
//! background jobs all call the same functions.

pub mod accounts;

/// Refuses a caller without `role` (services that only one kind of account may use).
pub(crate) fn require(
    caller: &crate::domain::User,
    role: crate::domain::Role,
) -> crate::error::AppResult<()> {
    if caller.role() != role {
        return Err(crate::error::AppError::Forbidden(format!(
            "only a {} account can do this",
            role.as_str()
        )));
    }
    Ok(())
}
pub mod auth;
pub mod billing;
pub mod certs;
pub mod closing;
pub mod containers;
pub mod domains;
pub mod exec;
pub mod faults;
pub mod forwards;
pub mod hooks;
pub mod host;
pub mod keys;
pub mod metering;
pub mod metrics;
pub mod operations;
pub mod oversight;
pub mod overuse;
pub mod plans;
pub mod plugins;
pub mod sessions;
pub mod shells;
pub mod snapshot;
pub mod templates;
pub mod totp;

use std::sync::Arc;

use crate::db::Db;
use crate::error::AppResult;
use crate::runtime::Runtime;

/// Shared by every handler and job.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub runtime: Arc<dyn Runtime>,
    /// Recent state and usage of every container.
    pub snapshot: snapshot::Snapshot,
    /// Serialised container lists per user, valid for one (rows, snapshot) generation.
    pub list_cache: ListCache,
    /// Failed logins, counted in the database.
    pub logins: auth::LoginLimiter,
    /// The WebAssembly host for resellers' plugins.
    pub plugins: Arc<acetate_plugins::Host>,
    /// The dashboard's rendered rows per session, valid for one (rows, snapshot) generation.
    pub page_cache: PageCache,
    /// Long actions, stored in the database.
    pub operations: operations::Operations,
    /// Bounds on one-shot commands (per user and panel-wide).
    pub exec: exec::ExecGate,
    /// The containers' part of `/metrics`, valid for one (rows, snapshot) generation.
    pub metrics_cache: metrics::MetricsCache,
    /// Open interactive sessions (SSH, terminal, streamed exec).
    pub shells: shells::Sessions,
    /// The front door's routes, certificates and ACME challenges.
    pub front: domains::Front,
    /// Roles whose accounts must have a second factor before they do anything on the pages
    /// (the provider's setting).
    pub second_factor_roles: Arc<Vec<crate::domain::Role>>,
    /// Proxies besides this host's own whose `X-Forwarded-For`/`-Proto` are believed (the
    /// provider's setting).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

/// session CSRF token -> ((rows generation, snapshot generation), no rows, HTML).
pub type PageCache =
    Arc<std::sync::Mutex<std::collections::HashMap<String, ((u64, u64), bool, Arc<str>)>>>;

/// Per user: the rows' generations (this panel's, the database's), the snapshot's, and the
/// listing's body.
pub type ListCache =
    Arc<std::sync::Mutex<std::collections::HashMap<i64, ((u64, (i64, i64)), u64, bytes::Bytes)>>>;

impl AppState {
    /// The state of a panel on `db` and `runtime`, nothing running yet.
    pub fn new(db: Db, runtime: Arc<dyn Runtime>, plugins: Arc<acetate_plugins::Host>) -> Self {
        AppState {
            logins: auth::LoginLimiter::new(db.clone()),
            operations: operations::Operations::new(db.clone()),
            db,
            runtime,
            snapshot: snapshot::Snapshot::default(),
            list_cache: ListCache::default(),
            plugins,
            page_cache: PageCache::default(),
            exec: exec::ExecGate::default(),
            metrics_cache: metrics::MetricsCache::default(),
            shells: shells::Sessions::default(),
            front: domains::Front::default(),
            second_factor_roles: Arc::default(),
            trusted_proxies: Arc::default(),
        }
    }

    /// Runs a change on container `name` off the async threads, then notes it (see
    /// `changed`) whatever the outcome.
    pub async fn change<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&dyn Runtime) -> acetate_engine::Result<T> + Send + 'static,
    ) -> AppResult<T> {
        let rt = self.runtime.clone();
        let result = tokio::task::spawn_blocking(move || f(rt.as_ref())).await?;
        self.changed(vec![name.to_string()]).await?;
        Ok(result?)
    }

    /// Notes that this panel changed containers `names`: for the other panels on the
    /// database (their rows' `changed_at`), then in this panel's snapshot.
    pub async fn changed(&self, names: Vec<String>) -> AppResult<()> {
        if let Err(e) = self.db.touch_containers(&names).await {
            tracing::warn!(error = %e, "noting a change of containers for other panels");
        }
        self.refresh(names).await
    }

    /// Reads containers `names` into the snapshot again (off the async threads).
    pub async fn refresh(&self, names: Vec<String>) -> AppResult<()> {
        let snap = self.snapshot.clone();
        self.engine(move |e| {
            for name in &names {
                snap.refresh_one(e, name);
            }
            Ok(())
        })
        .await
    }

    /// Runs blocking engine work off the async threads.
    pub async fn engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Runtime) -> acetate_engine::Result<T> + Send + 'static,
    ) -> AppResult<T> {
        let rt = self.runtime.clone();
        Ok(tokio::task::spawn_blocking(move || f(rt.as_ref())).await??)
    }
}
