//! The control-plane database: SQLite in the state dir by default, PostgreSQL for many
//! hosts. One code path through sqlx's `Any` driver; migrations per backend, embedded.

use std::path::Path;
use std::str::FromStr;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, FromRow};

use crate::error::{AppError, AppResult};

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

/// Database pool.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    /// Bumped by every change this process makes to container rows (for caches).
    containers_gen: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Roles of accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Provider,
    Reseller,
    Customer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Reseller => "reseller",
            Role::Customer => "customer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "provider" => Ok(Role::Provider),
            "reseller" => Ok(Role::Reseller),
            "customer" => Ok(Role::Customer),
            other => Err(format!(
                "{other:?} is not a role (provider, reseller or customer)"
            )),
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub reseller_id: Option<i64>,
    pub password_hash: String,
    pub suspended: i64,
    pub created_at: i64,
    pub plan_id: Option<i64>,
}

impl User {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Customer)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct ContainerRow {
    pub id: i64,
    pub owner_id: i64,
    pub owner: String,
    pub name: String,
    pub engine_name: String,
    pub state: String,
    pub created_at: i64,
    pub memory: i64,
    pub cpus_milli: i64,
    pub disk: i64,
}

/// The most a reseller's customers may hold, set by the provider.
#[derive(Debug, Clone, Copy, FromRow, serde::Serialize, serde::Deserialize)]
pub struct Pool {
    #[serde(skip_deserializing)]
    pub reseller_id: i64,
    pub memory: i64,
    pub cpus_milli: i64,
    pub disk: i64,
    pub containers: i64,
}

/// A reseller's plan.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Plan {
    pub id: i64,
    pub reseller_id: i64,
    pub name: String,
    pub ct_memory: i64,
    pub ct_cpus_milli: i64,
    pub ct_disk: i64,
    pub ct_procs: i64,
    pub max_containers: i64,
    pub total_memory: i64,
    pub total_cpus_milli: i64,
    pub total_disk: i64,
    pub price_minor: i64,
    pub currency: String,
    pub created_at: i64,
}

/// An API token as its owner sees it (never the token itself).
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// One audit log entry.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub result: String,
}

/// What a set of containers holds.
#[derive(Debug, Clone, Copy, Default, FromRow, serde::Serialize, PartialEq, Eq)]
pub struct Totals {
    pub containers: i64,
    pub memory: i64,
    pub cpus_milli: i64,
    pub disk: i64,
}

pub fn now() -> i64 {
    acetate_engine::store::unix_now() as i64
}

/// Turns unique-constraint violations into a 409 with `what` as the message.
fn conflict(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> AppError {
    let what = what.into();
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => AppError::Conflict(what),
        _ => AppError::Db(e),
    }
}

const CONTAINER_COLS: &str = "c.id, c.owner_id, u.name AS owner, c.name, c.engine_name, \
                              c.state, c.created_at, c.memory, c.cpus_milli, c.disk";

const TOTALS: &str = "COUNT(*) AS containers, \
                      CAST(COALESCE(SUM(c.memory), 0) AS BIGINT) AS memory, \
                      CAST(COALESCE(SUM(c.cpus_milli), 0) AS BIGINT) AS cpus_milli, \
                      CAST(COALESCE(SUM(c.disk), 0) AS BIGINT) AS disk";

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
        Ok(Db {
            pool,
            containers_gen: Default::default(),
        })
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

    // ---- users -------------------------------------------------------------------

    pub async fn provider_count(&self) -> AppResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'provider'")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        reseller_id: Option<i64>,
        password_hash: &str,
    ) -> AppResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO users (name, role, reseller_id, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(reseller_id)
        .bind(password_hash)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!("a user named {name:?} already exists")))?;
        Ok(id)
    }

    pub async fn user_by_name(&self, name: &str) -> AppResult<Option<User>> {
        Ok(
            sqlx::query_as::<_, User>("SELECT * FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn user_by_token(&self, token_hash: &str) -> AppResult<Option<User>> {
        Ok(sqlx::query_as::<_, User>(
            "SELECT u.* FROM users u JOIN api_tokens t ON t.user_id = u.id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn insert_token(
        &self,
        user_id: i64,
        token_hash: &str,
        label: &str,
    ) -> AppResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (user_id, token_hash, label, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(label)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn tokens_of(&self, user_id: i64) -> AppResult<Vec<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(
            "SELECT id, label, created_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes one of `user_id`'s tokens; false if it has no such live token.
    pub async fn revoke_token(&self, user_id: i64, token_id: i64) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 \
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(token_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- sessions ------------------------------------------------------------------

    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        ttl: i64,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now())
        .bind(now() + ttl)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user and CSRF token of a live session.
    pub async fn session(&self, id_hash: &str) -> AppResult<Option<(User, String)>> {
        let Some((user_id, csrf)): Option<(i64, String)> = sqlx::query_as(
            "SELECT user_id, csrf FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let user = sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(user.map(|u| (u, csrf)))
    }

    /// Sets a new password hash and ends every session of the user but `keep`.
    pub async fn set_password(&self, user_id: i64, hash: &str, keep: &str) -> AppResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> AppResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- containers --------------------------------------------------------------

    /// Reserves a container name and its resources for its owner (state `creating`).
    pub async fn insert_container(
        &self,
        owner_id: i64,
        name: &str,
        engine_name: &str,
        holds: &Totals,
    ) -> AppResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO containers \
             (owner_id, name, engine_name, state, created_at, memory, cpus_milli, disk) \
             VALUES ($1, $2, $3, 'creating', $4, $5, $6, $7) RETURNING id",
        )
        .bind(owner_id)
        .bind(name)
        .bind(engine_name)
        .bind(now())
        .bind(holds.memory)
        .bind(holds.cpus_milli)
        .bind(holds.disk)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!(
            "you already have a container named {name:?}"
        )))?;
        self.containers_changed();
        Ok(id)
    }

    pub async fn set_container_state(&self, id: i64, state: &str) -> AppResult<()> {
        sqlx::query("UPDATE containers SET state = $1 WHERE id = $2")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.containers_changed();
        Ok(())
    }

    pub async fn delete_container(&self, id: i64) -> AppResult<()> {
        sqlx::query("DELETE FROM containers WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.containers_changed();
        Ok(())
    }

    /// Containers `user` may see: its own (customer), its customers' (reseller), all
    /// (provider).
    pub async fn containers_visible_to(&self, user: &User) -> AppResult<Vec<ContainerRow>> {
        let (filter, id) = match user.role() {
            Role::Provider => ("", None),
            Role::Reseller => ("WHERE u.reseller_id = $1", Some(user.id)),
            Role::Customer => ("WHERE c.owner_id = $1", Some(user.id)),
        };
        let sql = format!(
            "SELECT {CONTAINER_COLS} FROM containers c JOIN users u ON u.id = c.owner_id \
             {filter} ORDER BY u.name, c.name"
        );
        let mut q = sqlx::query_as::<_, ContainerRow>(&sql);
        if let Some(id) = id {
            q = q.bind(id);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    /// One container of `owner_id` by its owner's name for it.
    pub async fn container(&self, owner_id: i64, name: &str) -> AppResult<Option<ContainerRow>> {
        Ok(sqlx::query_as::<_, ContainerRow>(&format!(
            "SELECT {CONTAINER_COLS} FROM containers c JOIN users u ON u.id = c.owner_id \
             WHERE c.owner_id = $1 AND c.name = $2"
        ))
        .bind(owner_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Rows left in a transitional state by a crash.
    pub async fn unfinished_containers(&self) -> AppResult<Vec<ContainerRow>> {
        Ok(sqlx::query_as::<_, ContainerRow>(&format!(
            "SELECT {CONTAINER_COLS} FROM containers c JOIN users u ON u.id = c.owner_id \
             WHERE c.state <> 'ready'"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn all_engine_names(&self) -> AppResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT engine_name FROM containers")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(n,)| n).collect())
    }

    pub async fn set_container_holds(&self, id: i64, holds: &Totals) -> AppResult<()> {
        sqlx::query("UPDATE containers SET memory = $1, cpus_milli = $2, disk = $3 WHERE id = $4")
            .bind(holds.memory)
            .bind(holds.cpus_milli)
            .bind(holds.disk)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.containers_changed();
        Ok(())
    }

    /// What a customer's containers hold, leaving out container `except`.
    pub async fn customer_totals(&self, owner_id: i64, except: i64) -> AppResult<Totals> {
        Ok(sqlx::query_as::<_, Totals>(&format!(
            "SELECT {TOTALS} FROM containers c WHERE c.owner_id = $1 AND c.id <> $2"
        ))
        .bind(owner_id)
        .bind(except)
        .fetch_one(&self.pool)
        .await?)
    }

    /// What all of a reseller's customers' containers hold, leaving out `except`.
    pub async fn reseller_totals(&self, reseller_id: i64, except: i64) -> AppResult<Totals> {
        Ok(sqlx::query_as::<_, Totals>(&format!(
            "SELECT {TOTALS} FROM containers c JOIN users u ON u.id = c.owner_id \
             WHERE u.reseller_id = $1 AND c.id <> $2"
        ))
        .bind(reseller_id)
        .bind(except)
        .fetch_one(&self.pool)
        .await?)
    }

    // ---- resellers, plans, customers -----------------------------------------------

    pub async fn users_with_role(&self, role: Role) -> AppResult<Vec<User>> {
        Ok(
            sqlx::query_as::<_, User>("SELECT * FROM users WHERE role = $1 ORDER BY name")
                .bind(role.as_str())
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn customers_of(&self, reseller_id: i64) -> AppResult<Vec<User>> {
        Ok(sqlx::query_as::<_, User>(
            "SELECT * FROM users WHERE role = 'customer' AND reseller_id = $1 ORDER BY name",
        )
        .bind(reseller_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn set_suspended(&self, user_id: i64, suspended: bool) -> AppResult<()> {
        sqlx::query("UPDATE users SET suspended = $1 WHERE id = $2")
            .bind(i64::from(suspended))
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_user_plan(&self, user_id: i64, plan_id: i64) -> AppResult<()> {
        sqlx::query("UPDATE users SET plan_id = $1 WHERE id = $2")
            .bind(plan_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_pool(&self, pool: &Pool) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO reseller_pools (reseller_id, memory, cpus_milli, disk, containers) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (reseller_id) DO UPDATE SET \
             memory = excluded.memory, cpus_milli = excluded.cpus_milli, \
             disk = excluded.disk, containers = excluded.containers",
        )
        .bind(pool.reseller_id)
        .bind(pool.memory)
        .bind(pool.cpus_milli)
        .bind(pool.disk)
        .bind(pool.containers)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pool(&self, reseller_id: i64) -> AppResult<Option<Pool>> {
        Ok(
            sqlx::query_as::<_, Pool>("SELECT * FROM reseller_pools WHERE reseller_id = $1")
                .bind(reseller_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn create_plan(&self, p: &Plan) -> AppResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO plans (reseller_id, name, ct_memory, ct_cpus_milli, ct_disk, ct_procs, \
             max_containers, total_memory, total_cpus_milli, total_disk, price_minor, currency, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             RETURNING id",
        )
        .bind(p.reseller_id)
        .bind(&p.name)
        .bind(p.ct_memory)
        .bind(p.ct_cpus_milli)
        .bind(p.ct_disk)
        .bind(p.ct_procs)
        .bind(p.max_containers)
        .bind(p.total_memory)
        .bind(p.total_cpus_milli)
        .bind(p.total_disk)
        .bind(p.price_minor)
        .bind(&p.currency)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!(
            "you already have a plan named {:?}",
            p.name
        )))?;
        Ok(id)
    }

    pub async fn plans_of(&self, reseller_id: i64) -> AppResult<Vec<Plan>> {
        Ok(
            sqlx::query_as::<_, Plan>("SELECT * FROM plans WHERE reseller_id = $1 ORDER BY name")
                .bind(reseller_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn plan_by_name(&self, reseller_id: i64, name: &str) -> AppResult<Option<Plan>> {
        Ok(
            sqlx::query_as::<_, Plan>("SELECT * FROM plans WHERE reseller_id = $1 AND name = $2")
                .bind(reseller_id)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn plan(&self, id: i64) -> AppResult<Option<Plan>> {
        Ok(
            sqlx::query_as::<_, Plan>("SELECT * FROM plans WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Audit entries `user` may read: all for the provider; for a reseller, its own
    /// actions and its customers'. Newest first.
    pub async fn audit_visible_to(&self, user: &User, limit: i64) -> AppResult<Vec<AuditRow>> {
        let (filter, id) = match user.role() {
            Role::Provider => ("", None),
            _ => (
                "WHERE a.actor_id = $1 OR a.actor_id IN \
                 (SELECT id FROM users WHERE reseller_id = $1)",
                Some(user.id),
            ),
        };
        let sql = format!(
            "SELECT a.id, a.at, a.actor, a.action, a.target, a.result FROM audit_log a \
             {filter} ORDER BY a.id DESC LIMIT {limit}"
        );
        let mut q = sqlx::query_as::<_, AuditRow>(&sql);
        if let Some(id) = id {
            q = q.bind(id);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    // ---- audit -------------------------------------------------------------------

    /// Records a state-changing action and its result.
    pub async fn audit(
        &self,
        actor: Option<&User>,
        action: &str,
        target: &str,
        result: &str,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor_id, actor, action, target, result) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(now())
        .bind(actor.map(|u| u.id))
        .bind(actor.map_or("system", |u| u.name.as_str()))
        .bind(action)
        .bind(target)
        .bind(result)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
