//! Metered usage as billing sees it, and invoices.

use acetate_plugins::{ContainerUsage, InvoiceLine, Limits};
use serde::Serialize;
use sqlx::FromRow;

use super::{now, Db};
use crate::domain::{Period, Role, User};
use crate::error::{AppError, AppResult};

#[derive(Debug, FromRow)]
struct UsageRow {
    container: String,
    seconds: i64,
    seconds_running: i64,
    cpu_us: i64,
    memory_byte_seconds: i64,
    memory_peak: i64,
    disk_byte_seconds: i64,
    disk_peak: i64,
    inodes_peak: i64,
    procs_peak: i64,
    net_rx: i64,
    net_tx: i64,
    /// The container's limits now; `None` once it is destroyed.
    memory: Option<i64>,
    cpus_milli: Option<i64>,
    disk: Option<i64>,
}

/// A customer's usage in a period, per container (also those destroyed since).
pub async fn usage(db: &Db, customer_id: i64, period: &Period) -> AppResult<Vec<ContainerUsage>> {
    let rows: Vec<UsageRow> = sqlx::query_as(
        "SELECT MAX(h.container) AS container, \
         CAST(SUM(h.seconds) AS BIGINT) AS seconds, \
         CAST(SUM(h.seconds_running) AS BIGINT) AS seconds_running, \
         CAST(SUM(h.cpu_us) AS BIGINT) AS cpu_us, \
         CAST(SUM(h.memory_byte_seconds) AS BIGINT) AS memory_byte_seconds, \
         MAX(h.memory_peak) AS memory_peak, \
         CAST(SUM(h.disk_byte_seconds) AS BIGINT) AS disk_byte_seconds, \
         MAX(h.disk_peak) AS disk_peak, MAX(h.inodes_peak) AS inodes_peak, \
         MAX(h.procs_peak) AS procs_peak, \
         CAST(SUM(h.net_rx) AS BIGINT) AS net_rx, CAST(SUM(h.net_tx) AS BIGINT) AS net_tx, \
         MAX(c.memory) AS memory, MAX(c.cpus_milli) AS cpus_milli, MAX(c.disk) AS disk \
         FROM usage_hourly h LEFT JOIN containers c ON c.id = h.container_id \
         WHERE h.customer_id = $1 AND h.hour >= $2 AND h.hour < $3 \
         GROUP BY h.container_id ORDER BY h.container_id",
    )
    .bind(customer_id)
    .bind(period.start)
    .bind(period.end)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let limits = match (r.memory, r.cpus_milli, r.disk) {
            (Some(m), Some(c), Some(d)) => Limits {
                memory_bytes: m.max(0) as u64,
                cpu_millis: c.clamp(0, i64::from(u32::MAX)) as u32,
                disk_bytes: d.max(0) as u64,
                ..Limits::default()
            },
            // Destroyed since: no limits any more.
            _ => Limits {
                memory_bytes: 0,
                cpu_millis: 0,
                processes: 0,
                disk_bytes: 0,
                inodes: 0,
                io_weight: 0,
            },
        };
        let u = |v: i64| v.max(0) as u64;
        let avg = |byte_seconds: i64, seconds: i64| {
            if seconds > 0 {
                u(byte_seconds / seconds)
            } else {
                0
            }
        };
        out.push(ContainerUsage {
            name: r.container,
            seconds_existing: u(r.seconds),
            seconds_running: u(r.seconds_running),
            cpu_millis: u(r.cpu_us / 1000),
            memory_average_bytes: avg(r.memory_byte_seconds, r.seconds_running),
            memory_peak_bytes: u(r.memory_peak),
            disk_average_bytes: avg(r.disk_byte_seconds, r.seconds),
            disk_peak_bytes: u(r.disk_peak),
            inodes_peak: u(r.inodes_peak),
            processes_peak: r.procs_peak.clamp(0, i64::from(u32::MAX)) as u32,
            network_rx_bytes: u(r.net_rx),
            network_tx_bytes: u(r.net_tx),
            limits,
        });
    }
    Ok(out)
}

pub async fn invoice_id(db: &Db, customer_id: i64, period: &str) -> AppResult<Option<i64>> {
    Ok(sqlx::query_as::<_, (i64,)>(
        "SELECT id FROM invoices WHERE customer_id = $1 AND period = $2",
    )
    .bind(customer_id)
    .bind(period)
    .fetch_optional(&db.pool)
    .await?
    .map(|(id,)| id))
}

/// Stores an invoice and its lines in one transaction; `None` if one exists already.
#[allow(clippy::too_many_arguments)]
pub async fn store_invoice(
    db: &Db,
    customer_id: i64,
    reseller_id: i64,
    period: &Period,
    currency: &str,
    total: i64,
    rule: &str,
    lines: &[InvoiceLine],
) -> AppResult<Option<i64>> {
    let mut tx = db.pool.begin().await?;
    let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
        "INSERT INTO invoices (customer_id, reseller_id, period, currency, total, rule, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(customer_id)
    .bind(reseller_id)
    .bind(&period.label)
    .bind(currency)
    .bind(total)
    .bind(rule)
    .bind(now())
    .fetch_one(&mut *tx)
    .await;
    let id = match inserted {
        Ok((id,)) => id,
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    for (position, line) in lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO invoice_lines (invoice_id, position, description, quantity_millis, unit, amount) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(&line.description)
        .bind(line.quantity_millis.min(i64::MAX as u64) as i64)
        .bind(&line.unit)
        .bind(line.amount.amount)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Some(id))
}

/// An invoice as customers and resellers see it.
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    pub id: i64,
    pub customer: String,
    pub reseller: String,
    pub period: String,
    pub currency: String,
    pub total: i64,
    pub rule: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub description: String,
    pub quantity_millis: i64,
    pub unit: String,
    pub amount: i64,
}

const INVOICE_SELECT: &str =
    "SELECT i.id, c.name AS customer, r.name AS reseller, i.period, i.currency, \
     i.total, i.rule, i.created_at FROM invoices i JOIN users c ON c.id = i.customer_id \
     JOIN users r ON r.id = i.reseller_id";

/// Invoices in the user's scope: its own (customer), its customers' (reseller), all (provider).
pub async fn invoices_visible_to(db: &Db, user: &User) -> AppResult<Vec<Invoice>> {
    let (filter, id) = match user.role() {
        Role::Customer => ("WHERE i.customer_id = $1", user.id),
        Role::Reseller => ("WHERE i.reseller_id = $1", user.id),
        Role::Provider => ("WHERE $1 = $1", 0),
    };
    Ok(sqlx::query_as(&format!(
        "{INVOICE_SELECT} {filter} ORDER BY i.period DESC, c.name"
    ))
    .bind(id)
    .fetch_all(&db.pool)
    .await?)
}

/// One invoice with its lines, if it is in the user's scope.
pub async fn invoice(db: &Db, user: &User, id: i64) -> AppResult<(Invoice, Vec<Line>)> {
    let invoice: Invoice = sqlx::query_as(&format!("{INVOICE_SELECT} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    let visible = match user.role() {
        Role::Provider => true,
        Role::Reseller => invoice.reseller == user.name,
        Role::Customer => invoice.customer == user.name,
    };
    if !visible {
        return Err(AppError::NotFound);
    }
    let lines = sqlx::query_as(
        "SELECT description, quantity_millis, unit, amount FROM invoice_lines WHERE invoice_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    Ok((invoice, lines))
}

/// Revenue per period and currency of a reseller (or of all, for the provider).
#[derive(Debug, Clone, FromRow, Serialize, utoipa::ToSchema)]
pub struct Revenue {
    pub period: String,
    pub currency: String,
    pub invoices: i64,
    pub total: i64,
}

pub async fn revenue(db: &Db, user: &User) -> AppResult<Vec<Revenue>> {
    let (filter, id) = match user.role() {
        Role::Reseller => ("WHERE reseller_id = $1", user.id),
        Role::Provider => ("WHERE $1 = $1", 0),
        Role::Customer => return Err(AppError::Forbidden("revenue is for resellers".into())),
    };
    Ok(sqlx::query_as(&format!(
        "SELECT period, currency, COUNT(*) AS invoices, CAST(SUM(total) AS BIGINT) AS total \
         FROM invoices {filter} GROUP BY period, currency ORDER BY period DESC, currency"
    ))
    .bind(id)
    .fetch_all(&db.pool)
    .await?)
}
