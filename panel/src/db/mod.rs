//! The control-plane database: SQLite in the state dir by default, PostgreSQL for many
//! hosts. One code path through sqlx's `Any` driver; migrations per backend, embedded.
//! All of the panel's SQL lives in this module, one file per aggregate; the pool is
//! private to it.

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};
use std::path::Path;

use crate::error::{AppError, AppResult};

mod audit;
pub mod billing;
mod containers;
pub mod domains;
pub mod faults;
pub mod forwards;
pub mod keys;
mod logins;
pub mod metering;
pub mod operations;
pub mod overuse;
mod plans;
pub mod plugin_versions;
pub mod plugins;
pub mod sealed;
mod sessions;
pub mod totp;
mod users;

pub use audit::{AuditFilter, AuditRow};
pub use containers::ContainerRow;
pub use users::TokenRow;

static SQLITE: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("../migrations/postgres");

/// The default database: SQLite in the state dir.
pub fn default_url(state_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        state_dir.join("acetate.db").display()
    )
}

/// Makes the SQLite database file readable by root alone (0600), creating it so if
/// missing: it holds password hashes and session keys, and SQLite gives its WAL and
/// shared-memory files the mode of the database file.
fn private_sqlite_file(url: &str) -> AppResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
        return Ok(());
    }
    let io = |e: std::io::Error| AppError::Internal(format!("database file {path}: {e}"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    for side in ["-wal", "-shm"] {
        let p = format!("{path}{side}");
        if std::path::Path::new(&p).exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

/// SQLite databases made before names became reusable still have `users.name UNIQUE`:
/// the table is rebuilt once (see `users_rebuild.sql`).
async fn free_deleted_names(pool: &AnyPool) -> AppResult<()> {
    let (old,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' \
         AND name LIKE 'sqlite_autoindex_users_%'",
    )
    .fetch_one(pool)
    .await?;
    if old == 0 {
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    conn.execute("PRAGMA foreign_keys = OFF").await?;
    let rebuilt = conn.execute(include_str!("users_rebuild.sql")).await;
    if rebuilt.is_err() {
        let _ = conn.execute("ROLLBACK").await;
    }
    conn.execute("PRAGMA foreign_keys = ON").await?;
    rebuilt
        .map(|_| ())
        .map_err(|e| AppError::Internal(format!("database migration failed: {e}")))
}

/// Database pool.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    /// SQLite (one writer at a time) rather than PostgreSQL.
    sqlite: bool,
    /// Bumped by every change this process makes to container rows (for caches).
    containers_gen: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Seals the secrets kept in the database (see `sealed`); none: kept as they are.
    sealer: Option<std::sync::Arc<sealed::Sealer>>,
}

fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

pub use crate::domain::now;

/// Turns unique-constraint violations into a 409 with `what` as the message.
fn conflict(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> AppError {
    let what = what.into();
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => AppError::Conflict(what),
        _ => AppError::Db(e),
    }
}

impl Db {
    /// Connects and runs the migrations of the backend the URL names.
    pub async fn connect(url: &str) -> AppResult<Db> {
        sqlx::any::install_default_drivers();
        let sqlite = is_sqlite(url);
        if sqlite {
            private_sqlite_file(url)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        let migrator = if sqlite { &SQLITE } else { &POSTGRES };
        migrator
            .run(&pool)
            .await
            .map_err(|e| AppError::Internal(format!("database migration failed: {e}")))?;
        if sqlite {
            free_deleted_names(&pool).await?;
        }
        Ok(Db {
            pool,
            sqlite,
            containers_gen: Default::default(),
            sealer: None,
        })
    }

    /// Seals the secrets this database keeps with the key of `state_dir`.
    pub fn seal_with(mut self, state_dir: &std::path::Path) -> AppResult<Db> {
        self.sealer = Some(std::sync::Arc::new(sealed::Sealer::of_state_dir(
            state_dir,
        )?));
        Ok(self)
    }

    /// `plain` as stored in column `what`.
    fn seal(&self, what: &str, plain: &str) -> AppResult<String> {
        match &self.sealer {
            Some(s) => s.seal(what, plain),
            None => Ok(plain.to_string()),
        }
    }

    /// The secret stored in column `what`.
    fn unseal(&self, what: &str, stored: &str) -> AppResult<String> {
        match &self.sealer {
            Some(s) => s.open(what, stored),
            None if stored.starts_with("sealed1:") => Err(AppError::Internal(
                "a sealed secret, and no key to open it (this command has no state dir)".into(),
            )),
            None => Ok(stored.to_string()),
        }
    }

    /// Generation of the container rows: changes after every insert, update or delete.
    pub fn containers_generation(&self) -> u64 {
        self.containers_gen
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn containers_changed(&self) {
        self.containers_gen
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Namespace of the panel's PostgreSQL advisory locks on resellers' capacity.
const CAPACITY_LOCK: i64 = 0x4163_6574 << 24;

impl Db {
    /// A write transaction serialised with every other capacity check of `reseller_id`,
    /// in this panel and in any other on the same database: on SQLite the database's write
    /// lock (taken at `BEGIN IMMEDIATE`), on PostgreSQL an advisory lock per reseller held
    /// until the transaction ends.
    async fn capacity_tx(
        &self,
        reseller_id: i64,
    ) -> AppResult<sqlx::Transaction<'static, sqlx::Any>> {
        if self.sqlite {
            return Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CAPACITY_LOCK + reseller_id)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}
