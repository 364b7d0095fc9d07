//! Public port ranges of resellers and the forwards made from them.

use super::{conflict, now, Db};
use crate::error::AppResult;

/// A forward as stored and listed.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ForwardRow {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub container_id: i64,
    /// The host address it is published on; empty: every address of the host.
    pub public_address: String,
    pub public_port: i64,
    /// `tcp` or `udp`.
    pub proto: String,
    pub private_port: i64,
    pub created_at: i64,
}

/// A reseller's range of public ports on one address of the host.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PortRange {
    pub first_port: i64,
    pub last_port: i64,
    /// The host's address (IPv4 or IPv6) the ports are on; empty (the default): every address.
    #[serde(default)]
    pub address: String,
}

impl Db {
    /// A reseller's ranges, by address.
    pub async fn port_ranges(&self, reseller_id: i64) -> AppResult<Vec<PortRange>> {
        Ok(sqlx::query_as(
            "SELECT first_port, last_port, address FROM reseller_ports WHERE reseller_id = $1 \
             ORDER BY address",
        )
        .bind(reseller_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The other resellers' ranges that overlap `range` (same ports on the same address,
    /// or either on every address), by reseller name.
    pub async fn overlapping_ranges(
        &self,
        reseller_id: i64,
        range: &PortRange,
    ) -> AppResult<Vec<(String, i64, i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT u.name, p.first_port, p.last_port, p.address FROM reseller_ports p \
             JOIN users u ON u.id = p.reseller_id \
             WHERE p.reseller_id <> $1 AND p.first_port <= $3 AND p.last_port >= $2 \
             AND (p.address = $4 OR p.address = '' OR $4 = '')",
        )
        .bind(reseller_id)
        .bind(range.first_port)
        .bind(range.last_port)
        .bind(&range.address)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets the reseller's range on `range.address` (replacing the one there).
    pub async fn set_port_range(&self, reseller_id: i64, range: &PortRange) -> AppResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM reseller_ports WHERE reseller_id = $1 AND address = $2")
            .bind(reseller_id)
            .bind(&range.address)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO reseller_ports (reseller_id, address, first_port, last_port) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(reseller_id)
        .bind(&range.address)
        .bind(range.first_port)
        .bind(range.last_port)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the reseller's range on `address` away; whether there was one.
    pub async fn delete_port_range(&self, reseller_id: i64, address: &str) -> AppResult<bool> {
        let done =
            sqlx::query("DELETE FROM reseller_ports WHERE reseller_id = $1 AND address = $2")
                .bind(reseller_id)
                .bind(address)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forwards of the reseller's customers on `range.address` outside its ports.
    pub async fn forwards_outside(
        &self,
        reseller_id: i64,
        range: &PortRange,
    ) -> AppResult<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT f.public_port FROM forwards f JOIN containers c ON c.id = f.container_id \
             JOIN users u ON u.id = c.owner_id \
             WHERE u.reseller_id = $1 AND f.public_address = $4 \
             AND (f.public_port < $2 OR f.public_port > $3)",
        )
        .bind(reseller_id)
        .bind(range.first_port)
        .bind(range.last_port)
        .bind(&range.address)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(p,)| p).collect())
    }

    pub async fn forwards_of(&self, container_id: i64) -> AppResult<Vec<ForwardRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM forwards WHERE container_id = $1 \
             ORDER BY public_address, public_port, proto",
        )
        .bind(container_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn add_forward(
        &self,
        container_id: i64,
        public_address: &str,
        public_port: i64,
        proto: &str,
        private_port: i64,
    ) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO forwards \
             (container_id, public_address, public_port, proto, private_port, created_at) \
             VALUES ($1, $6, $2, $3, $4, $5)",
        )
        .bind(container_id)
        .bind(public_port)
        .bind(proto)
        .bind(private_port)
        .bind(now())
        .bind(public_address)
        .execute(&self.pool)
        .await
        .map_err(conflict(format!(
            "public_port: {}{public_port}/{proto} is already forwarded",
            if public_address.is_empty() {
                String::new()
            } else {
                format!("{public_address}:")
            }
        )))?;
        Ok(())
    }

    pub async fn delete_forward(
        &self,
        container_id: i64,
        public_address: &str,
        public_port: i64,
        proto: &str,
    ) -> AppResult<bool> {
        let done = sqlx::query(
            "DELETE FROM forwards WHERE container_id = $1 AND public_port = $2 AND proto = $3 \
             AND public_address = $4",
        )
        .bind(container_id)
        .bind(public_port)
        .bind(proto)
        .bind(public_address)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
