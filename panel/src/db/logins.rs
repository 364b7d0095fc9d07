//! Failed-login counters and the addresses accounts log in from, shared by every panel on
//! the database (a guesser cannot spread attempts over panels).

use super::Db;
use crate::error::AppResult;

impl Db {
    /// Seconds left on the longest lock among `keys`, if any is locked at `now`.
    pub async fn login_locks(&self, keys: &[&str], now: i64) -> AppResult<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for key in keys {
            let row: Option<(i64,)> = sqlx::query_as(
                "SELECT locked_until FROM login_counters WHERE key = $1 AND locked_until > $2",
            )
            .bind(*key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            if let Some((until,)) = row {
                out.push((key.to_string(), until - now));
            }
        }
        Ok(out)
    }

    /// Counts a failure for `key` in a window of `window` seconds; at `max` failures the
    /// key is locked for `lock` seconds and its count starts again.
    pub async fn count_login_failure(
        &self,
        key: &str,
        now: i64,
        window: i64,
        max: i64,
        lock: i64,
    ) -> AppResult<()> {
        let (failures,): (i64,) = sqlx::query_as(
            "INSERT INTO login_counters (key, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, 0) ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN login_counters.window_start <= $3 THEN 1 \
                 ELSE login_counters.failures + 1 END, \
             window_start = CASE WHEN login_counters.window_start <= $3 THEN $2 \
                 ELSE login_counters.window_start END \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - window)
        .fetch_one(&self.pool)
        .await?;
        if failures >= max {
            sqlx::query(
                "UPDATE login_counters SET failures = 0, window_start = $1, locked_until = $2 \
                 WHERE key = $3",
            )
            .bind(now)
            .bind(now + lock)
            .bind(key)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn forget_login_failures(&self, key: &str) -> AppResult<()> {
        sqlx::query("DELETE FROM login_counters WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remembers that `account` logged in from `address`, keeping the newest `keep`.
    pub async fn remember_login_address(
        &self,
        account: &str,
        address: &str,
        now: i64,
        keep: i64,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO login_known (account, address, at) VALUES ($1, $2, $3) \
             ON CONFLICT (account, address) DO UPDATE SET at = excluded.at",
        )
        .bind(account)
        .bind(address)
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM login_known WHERE account = $1 AND address NOT IN \
             (SELECT address FROM login_known WHERE account = $1 ORDER BY at DESC LIMIT $2)",
        )
        .bind(account)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn is_known_login_address(&self, account: &str, address: &str) -> AppResult<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT at FROM login_known WHERE account = $1 AND address = $2")
                .bind(account)
                .bind(address)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// Drops counters that neither lock nor count any more.
    pub async fn prune_login_counters(&self, now: i64, window: i64) -> AppResult<()> {
        sqlx::query("DELETE FROM login_counters WHERE locked_until <= $1 AND window_start <= $2")
            .bind(now)
            .bind(now - window)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets every failure counted against `account` (alone or with any address).
    pub async fn unlock_account(&self, account: &str) -> AppResult<u64> {
        let pair_suffix = format!("%|{account}");
        let done = sqlx::query(
            "DELETE FROM login_counters WHERE key = $1 OR (key LIKE 'pair:%' AND key LIKE $2)",
        )
        .bind(format!("acct:{account}"))
        .bind(pair_suffix)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
