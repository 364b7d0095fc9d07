//! Resellers' pools and plans, and customers.

use super::{conflict, now, Db};
use crate::domain::{Plan, Pool, Role, Totals, User};
use crate::error::AppResult;

impl Db {
    // ---- resellers, plans, customers -----------------------------------------------

    pub async fn users_with_role(&self, role: Role) -> AppResult<Vec<User>> {
        Ok(sqlx::query_as::<_, User>(
            "SELECT * FROM users WHERE role = $1 AND deleted_at IS NULL ORDER BY name",
        )
        .bind(role.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn customers_of(&self, reseller_id: i64) -> AppResult<Vec<User>> {
        Ok(sqlx::query_as::<_, User>(
            "SELECT * FROM users WHERE role = 'customer' AND reseller_id = $1 \
             AND deleted_at IS NULL ORDER BY name",
        )
        .bind(reseller_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Accounts of `role` (and of reseller `reseller_id`, if given) to bill for a period
    /// starting at `since`: the live ones and those deleted during or after it.
    pub async fn billable_users(
        &self,
        role: Role,
        reseller_id: Option<i64>,
        since: i64,
    ) -> AppResult<Vec<User>> {
        Ok(sqlx::query_as::<_, User>(
            "SELECT * FROM users WHERE role = $1 AND (deleted_at IS NULL OR deleted_at >= $2) \
             AND (CAST($3 AS BIGINT) IS NULL OR reseller_id = CAST($3 AS BIGINT)) ORDER BY name",
        )
        .bind(role.as_str())
        .bind(since)
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

    /// What the pools of every reseller but `except` (and deleted ones) add up to.
    pub async fn pools_total(&self, except: i64) -> AppResult<Totals> {
        Ok(sqlx::query_as::<_, Totals>(
            "SELECT CAST(COALESCE(SUM(p.containers), 0) AS BIGINT) AS containers, \
             CAST(COALESCE(SUM(p.memory), 0) AS BIGINT) AS memory, \
             CAST(COALESCE(SUM(p.cpus_milli), 0) AS BIGINT) AS cpus_milli, \
             CAST(COALESCE(SUM(p.disk), 0) AS BIGINT) AS disk \
             FROM reseller_pools p JOIN users u ON u.id = p.reseller_id \
             WHERE p.reseller_id <> $1 AND u.deleted_at IS NULL",
        )
        .bind(except)
        .fetch_one(&self.pool)
        .await?)
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
             created_at, ct_io_read_bps, ct_io_write_bps, ct_io_read_iops, ct_io_write_iops, \
             templates, max_snapshots, backup_every_hours, backup_keep_last, backup_keep_daily, \
             backup_keep_weekly, backup_keep_monthly, egress, minimal_init) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21, $22, $23, $24, $25, $26) RETURNING id",
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
        .bind(p.ct_io_read_bps)
        .bind(p.ct_io_write_bps)
        .bind(p.ct_io_read_iops)
        .bind(p.ct_io_write_iops)
        .bind(&p.templates)
        .bind(p.max_snapshots)
        .bind(p.backup_every_hours)
        .bind(p.backup_keep_last)
        .bind(p.backup_keep_daily)
        .bind(p.backup_keep_weekly)
        .bind(p.backup_keep_monthly)
        .bind(p.egress)
        .bind(p.minimal_init)
        .fetch_one(&self.pool)
        .await
        .map_err(conflict(format!(
            "you already have a plan named {:?}",
            p.name
        )))?;
        Ok(id)
    }

    /// Replaces every field of plan `p.id` but its reseller, name and creation time.
    pub async fn update_plan(&self, p: &Plan) -> AppResult<()> {
        sqlx::query(
            "UPDATE plans SET ct_memory = $1, ct_cpus_milli = $2, ct_disk = $3, ct_procs = $4, \
             max_containers = $5, total_memory = $6, total_cpus_milli = $7, total_disk = $8, \
             price_minor = $9, currency = $10, ct_io_read_bps = $11, ct_io_write_bps = $12, \
             ct_io_read_iops = $13, ct_io_write_iops = $14, templates = $15, \
             max_snapshots = $16, backup_every_hours = $17, backup_keep_last = $18, \
             backup_keep_daily = $19, backup_keep_weekly = $20, backup_keep_monthly = $21, \
             egress = $22, minimal_init = $23 WHERE id = $24",
        )
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
        .bind(p.ct_io_read_bps)
        .bind(p.ct_io_write_bps)
        .bind(p.ct_io_read_iops)
        .bind(p.ct_io_write_iops)
        .bind(&p.templates)
        .bind(p.max_snapshots)
        .bind(p.backup_every_hours)
        .bind(p.backup_keep_last)
        .bind(p.backup_keep_daily)
        .bind(p.backup_keep_weekly)
        .bind(p.backup_keep_monthly)
        .bind(p.egress)
        .bind(p.minimal_init)
        .bind(p.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a plan; only one no customer is on (the caller checks).
    pub async fn delete_plan(&self, id: i64) -> AppResult<()> {
        sqlx::query("DELETE FROM plans WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The customers on plan `plan_id`.
    pub async fn customers_on_plan(&self, plan_id: i64) -> AppResult<Vec<User>> {
        Ok(sqlx::query_as::<_, User>(
            "SELECT * FROM users WHERE role = 'customer' AND plan_id = $1 AND deleted_at IS NULL \
             ORDER BY name",
        )
        .bind(plan_id)
        .fetch_all(&self.pool)
        .await?)
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
}
