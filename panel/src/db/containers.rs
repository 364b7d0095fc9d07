//! Containers as the panel knows them: whose, named what, holding what.

use sqlx::FromRow;

use super::{conflict, now, Db};
use crate::domain::{Pool, Role, Totals, User};
use crate::error::{AppError, AppResult};

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
    /// When a panel last changed it (ms since the epoch).
    pub changed_at: i64,
}

const CONTAINER_COLS: &str = "c.id, c.owner_id, u.name AS owner, c.name, c.engine_name, \
                              c.state, c.created_at, c.memory, c.cpus_milli, c.disk, \
                              c.changed_at";

const TOTALS: &str = "COUNT(*) AS containers, \
                      CAST(COALESCE(SUM(c.memory), 0) AS BIGINT) AS memory, \
                      CAST(COALESCE(SUM(c.cpus_milli), 0) AS BIGINT) AS cpus_milli, \
                      CAST(COALESCE(SUM(c.disk), 0) AS BIGINT) AS disk";

impl Db {
    // ---- containers --------------------------------------------------------------

    pub async fn set_container_state(&self, id: i64, state: &str) -> AppResult<()> {
        sqlx::query("UPDATE containers SET state = $1, changed_at = $2 WHERE id = $3")
            .bind(state)
            .bind(crate::domain::now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.containers_changed();
        Ok(())
    }

    /// Notes that this panel has just changed containers `engine_names` (those it knows),
    /// for the other panels on the same database.
    pub async fn touch_containers(&self, engine_names: &[String]) -> AppResult<()> {
        let at = crate::domain::now_ms();
        for name in engine_names {
            sqlx::query("UPDATE containers SET changed_at = $1 WHERE engine_name = $2")
                .bind(at)
                .bind(name)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Changes whenever any panel on this database adds, removes or changes a container:
    /// the latest change and the number of rows.
    pub async fn containers_revision(&self) -> AppResult<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT CAST(COALESCE(MAX(changed_at), 0) AS BIGINT), \
             CAST(COUNT(*) AS BIGINT) FROM containers",
        )
        .fetch_one(&self.pool)
        .await?)
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

    pub async fn container_by_id(&self, id: i64) -> AppResult<Option<ContainerRow>> {
        Ok(sqlx::query_as::<_, ContainerRow>(&format!(
            "SELECT {CONTAINER_COLS} FROM containers c JOIN users u ON u.id = c.owner_id \
             WHERE c.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn container_by_engine_name(&self, engine: &str) -> AppResult<Option<ContainerRow>> {
        Ok(sqlx::query_as::<_, ContainerRow>(&format!(
            "SELECT {CONTAINER_COLS} FROM containers c JOIN users u ON u.id = c.owner_id \
             WHERE c.engine_name = $1"
        ))
        .bind(engine)
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

    /// engine name -> (owner's account name, owner's name for it), for every container.
    pub async fn container_names(
        &self,
    ) -> AppResult<std::collections::HashMap<String, (String, String)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT c.engine_name, u.name, c.name FROM containers c \
             JOIN users u ON u.id = c.owner_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(engine, owner, name)| (engine, (owner, name)))
            .collect())
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

    /// Reserves a container name and what it holds (state `creating`) if `fits` accepts it
    /// given the reseller's pool and what the customer's and the reseller's other
    /// containers hold. Check and insert are one transaction, serialised per reseller over
    /// every panel on the database: two creates cannot both take the last room.
    pub async fn reserve_container(
        &self,
        owner_id: i64,
        reseller_id: i64,
        name: &str,
        engine_name: &str,
        holds: &Totals,
        fits: impl FnOnce(Option<&Pool>, &Totals, &Totals) -> Result<(), String>,
    ) -> AppResult<i64> {
        let mut tx = self.capacity_tx(reseller_id).await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO containers \
             (owner_id, name, engine_name, state, created_at, memory, cpus_milli, disk, \
              changed_at) \
             VALUES ($1, $2, $3, 'creating', $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(owner_id)
        .bind(name)
        .bind(engine_name)
        .bind(now())
        .bind(holds.memory)
        .bind(holds.cpus_milli)
        .bind(holds.disk)
        .bind(crate::domain::now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!(
            "you already have a container named {name:?}"
        )))?;
        let (pool, mine, theirs) = capacity_in(&mut tx, owner_id, reseller_id, id).await?;
        fits(pool.as_ref(), &mine, &theirs).map_err(AppError::Quota)?;
        tx.commit().await?;
        self.containers_changed();
        Ok(id)
    }

    /// Raises what container `id` holds to `holds` if `fits` accepts it (see
    /// [`Db::reserve_container`]). What it holds never drops here: a resize that lowers
    /// it records the lower figure once done ([`Db::set_container_holds`]).
    pub async fn reserve_holds(
        &self,
        id: i64,
        owner_id: i64,
        reseller_id: i64,
        holds: &Totals,
        fits: impl FnOnce(Option<&Pool>, &Totals, &Totals) -> Result<(), String>,
    ) -> AppResult<()> {
        let mut tx = self.capacity_tx(reseller_id).await?;
        sqlx::query(
            "UPDATE containers SET \
             memory = CASE WHEN memory > $1 THEN memory ELSE $1 END, \
             cpus_milli = CASE WHEN cpus_milli > $2 THEN cpus_milli ELSE $2 END, \
             disk = CASE WHEN disk > $3 THEN disk ELSE $3 END WHERE id = $4",
        )
        .bind(holds.memory)
        .bind(holds.cpus_milli)
        .bind(holds.disk)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let (pool, mine, theirs) = capacity_in(&mut tx, owner_id, reseller_id, id).await?;
        fits(pool.as_ref(), &mine, &theirs).map_err(AppError::Quota)?;
        tx.commit().await?;
        self.containers_changed();
        Ok(())
    }
}

/// The pool, and what the customer's and the reseller's containers other than `except`
/// hold, read inside a capacity transaction.
async fn capacity_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    owner_id: i64,
    reseller_id: i64,
    except: i64,
) -> AppResult<(Option<Pool>, Totals, Totals)> {
    let pool = sqlx::query_as::<_, Pool>("SELECT * FROM reseller_pools WHERE reseller_id = $1")
        .bind(reseller_id)
        .fetch_optional(&mut **tx)
        .await?;
    let mine = sqlx::query_as::<_, Totals>(&format!(
        "SELECT {TOTALS} FROM containers c WHERE c.owner_id = $1 AND c.id <> $2"
    ))
    .bind(owner_id)
    .bind(except)
    .fetch_one(&mut **tx)
    .await?;
    let theirs = sqlx::query_as::<_, Totals>(&format!(
        "SELECT {TOTALS} FROM containers c JOIN users u ON u.id = c.owner_id \
         WHERE u.reseller_id = $1 AND c.id <> $2"
    ))
    .bind(reseller_id)
    .bind(except)
    .fetch_one(&mut **tx)
    .await?;
    Ok((pool, mine, theirs))
}
