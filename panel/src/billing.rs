//! Billing runs: for a period and a reseller, each customer's metered usage goes to the
//! reseller's billing rule (or the bundled default rule, plan prices prorated), whose lines
//! become a stored invoice. An invoice is never rewritten: running a period again only
//! bills customers that have no invoice for it yet.

use std::str::FromStr;
use std::sync::Arc;

use acetate_plugins::{BillingInput, ContainerUsage, Host, InvoiceLine, Kind, Limits};
use serde::Serialize;
use sqlx::FromRow;

use crate::db::{now, Db, Role, User};
use crate::error::{AppError, AppResult};
use crate::plugins::{self, PluginRow};

/// A calendar month in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    pub label: String,
    pub start: i64,
    pub end: i64,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

impl Period {
    pub fn month(year: i64, month: i64) -> Period {
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        Period {
            label: format!("{year:04}-{month:02}"),
            start: days_from_civil(year, month, 1) * 86_400,
            end: days_from_civil(ny, nm, 1) * 86_400,
        }
    }

    /// The month that contains Unix time `t`.
    pub fn containing(t: i64) -> Period {
        let (y, m) = civil_from_days(t.div_euclid(86_400));
        Period::month(y, m)
    }

    /// The month before this one.
    pub fn previous(&self) -> Period {
        Period::containing(self.start - 1)
    }

    pub fn has_ended(&self, now: i64) -> bool {
        now >= self.end
    }
}

impl FromStr for Period {
    type Err = AppError;
    fn from_str(s: &str) -> AppResult<Period> {
        let bad = || {
            AppError::Unprocessable(format!(
                "{s:?} is not a period: use YYYY-MM, such as 2026-11"
            ))
        };
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i64 = y.parse().map_err(|_| bad())?;
        let month: i64 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(1970..=9999).contains(&year) {
            return Err(bad());
        }
        Ok(Period::month(year, month))
    }
}

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

/// The input a billing rule gets for one customer.
pub async fn input_for(db: &Db, customer: &User, period: &Period) -> AppResult<BillingInput> {
    let tenant = plugins::tenant_of(db, customer).await?;
    let currency = tenant
        .plan
        .as_ref()
        .map_or_else(|| "EUR".to_string(), |p| p.monthly_price.currency.clone());
    Ok(BillingInput {
        period: period.label.clone(),
        period_start: period.start,
        period_end: period.end,
        tenant,
        currency,
        containers: usage(db, customer.id, period).await?,
    })
}

/// The billing rule a reseller uses: its enabled one, else `None` for the bundled default.
pub async fn rule_of(db: &Db, reseller_id: i64) -> AppResult<Option<PluginRow>> {
    Ok(db
        .plugins_of(reseller_id)
        .await?
        .into_iter()
        .find(|p| p.kind == Kind::Billing.as_str() && p.enabled != 0))
}

/// What a run did for one customer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Invoiced {
        invoice: i64,
        total: i64,
        currency: String,
        lines: usize,
    },
    AlreadyInvoiced {
        invoice: i64,
    },
    NothingToBill,
    Failed {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerOutcome {
    pub reseller: String,
    pub customer: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub period: Period,
    pub customers: Vec<CustomerOutcome>,
}

/// Bills `period` for every customer of `resellers`. Refuses a period that has not ended
/// unless `open` is set (an invoice is final: a partial month would stay partial).
pub async fn run(
    db: &Db,
    host: &Arc<Host>,
    period: &Period,
    resellers: &[User],
    open: bool,
) -> AppResult<RunReport> {
    let now = now();
    if period.start > now {
        return Err(AppError::Unprocessable(format!(
            "{} has not begun",
            period.label
        )));
    }
    if !period.has_ended(now) && !open {
        return Err(AppError::Unprocessable(format!(
            "{} has not ended yet: its invoices would be final with part of the month \
             (pass --open to bill it anyway)",
            period.label
        )));
    }
    let default_rule = {
        let host = host.clone();
        tokio::task::spawn_blocking(move || host.load(acetate_plugins::DEFAULT_BILLING_RULE))
            .await?
            .map_err(|e| AppError::Internal(format!("the bundled billing rule: {e}")))?
    };
    let mut report = RunReport {
        period: period.clone(),
        customers: Vec::new(),
    };
    for reseller in resellers.iter().filter(|r| r.role() == Role::Reseller) {
        let rule_row = rule_of(db, reseller.id).await?;
        let rule = match &rule_row {
            Some(row) => plugins::load(db, host, row).await?,
            None => default_rule.clone(),
        };
        let rule_name = rule_row
            .as_ref()
            .map_or("default".to_string(), |r| r.name.clone());
        let kv = match &rule_row {
            Some(row) => Arc::new(db.plugin_kv(row.id).await?),
            None => Arc::default(),
        };
        for customer in db.customers_of(reseller.id).await? {
            let outcome = bill_customer(
                db,
                host,
                &rule,
                rule_row.as_ref(),
                &rule_name,
                &kv,
                reseller,
                &customer,
                period,
            )
            .await?;
            report.customers.push(CustomerOutcome {
                reseller: reseller.name.clone(),
                customer: customer.name.clone(),
                outcome,
            });
        }
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn bill_customer(
    db: &Db,
    host: &Arc<Host>,
    rule: &Arc<acetate_plugins::Plugin>,
    rule_row: Option<&PluginRow>,
    rule_name: &str,
    kv: &Arc<acetate_plugins::Kv>,
    reseller: &User,
    customer: &User,
    period: &Period,
) -> AppResult<Outcome> {
    if let Some(id) = invoice_id(db, customer.id, &period.label).await? {
        return Ok(Outcome::AlreadyInvoiced { invoice: id });
    }
    let input = input_for(db, customer, period).await?;
    if input.containers.is_empty() {
        return Ok(Outcome::NothingToBill);
    }
    let (h, r, i, k) = (host.clone(), rule.clone(), input.clone(), kv.clone());
    let call = plugins::call(move || h.billing(&r, &i, k)).await?;
    if let Some(row) = rule_row {
        let (outcome, detail) = match &call.result {
            Ok(lines) => (
                "ok".to_string(),
                format!(
                    "{} lines for {} ({})",
                    lines.len(),
                    customer.name,
                    period.label
                ),
            ),
            Err(f) => (
                "failure".to_string(),
                format!("{} ({}): {f}", customer.name, period.label),
            ),
        };
        db.record_call(
            row.id,
            plugins::CallRecord {
                event: "billing",
                outcome: &outcome,
                detail: &detail,
                fuel: call.fuel_used,
                micros: call.elapsed.as_micros(),
                log: &call.log,
                dry_run: false,
            },
        )
        .await?;
    }
    let lines = match call.result {
        Ok(lines) => lines,
        Err(failure) => {
            return Ok(Outcome::Failed {
                message: format!("billing rule {rule_name:?} {failure}"),
            });
        }
    };
    if lines.is_empty() {
        return Ok(Outcome::NothingToBill);
    }
    let total: i64 = lines.iter().map(|l| l.amount.amount).sum();
    match store_invoice(
        db,
        customer.id,
        reseller.id,
        period,
        &input.currency,
        total,
        rule_name,
        &lines,
    )
    .await?
    {
        Some(id) => Ok(Outcome::Invoiced {
            invoice: id,
            total,
            currency: input.currency,
            lines: lines.len(),
        }),
        // Another run got there first.
        None => Ok(Outcome::AlreadyInvoiced {
            invoice: invoice_id(db, customer.id, &period.label)
                .await?
                .unwrap_or(0),
        }),
    }
}

async fn invoice_id(db: &Db, customer_id: i64, period: &str) -> AppResult<Option<i64>> {
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
async fn store_invoice(
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
#[derive(Debug, Clone, FromRow, Serialize)]
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

#[derive(Debug, Clone, FromRow, Serialize)]
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

/// Formats minor units as a decimal amount: 1234 -> "12.34".
pub fn format_amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

fn csv_field(s: &str) -> String {
    // Quote always; neutralise spreadsheet formulas.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The invoice as CSV: one row per line, then the total.
pub fn csv(invoice: &Invoice, lines: &[Line]) -> String {
    let mut out =
        String::from("invoice,period,customer,description,quantity,unit,amount,currency\r\n");
    for l in lines {
        out.push_str(&format!(
            "{},{},{},{},{}.{:03},{},{},{}\r\n",
            invoice.id,
            invoice.period,
            csv_field(&invoice.customer),
            csv_field(&l.description),
            l.quantity_millis / 1000,
            l.quantity_millis % 1000,
            csv_field(&l.unit),
            format_amount(l.amount),
            invoice.currency
        ));
    }
    out.push_str(&format!(
        "{},{},{},\"Total\",,,{},{}\r\n",
        invoice.id,
        invoice.period,
        csv_field(&invoice.customer),
        format_amount(invoice.total),
        invoice.currency
    ));
    out
}

/// Revenue per period and currency of a reseller (or of all, for the provider).
#[derive(Debug, Clone, FromRow, Serialize)]
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

/// Bills the month that ended last, every hour (a no-op once it is billed).
pub fn spawn_schedule(db: Db, host: Arc<Host>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let period = Period::containing(now()).previous();
            let resellers = match db.users_with_role(Role::Reseller).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduled billing: listing resellers");
                    continue;
                }
            };
            match run(&db, &host, &period, &resellers, false).await {
                Ok(report) => {
                    let made = report
                        .customers
                        .iter()
                        .filter(|c| matches!(c.outcome, Outcome::Invoiced { .. }))
                        .count();
                    if made > 0 {
                        tracing::info!(period = %period.label, invoices = made, "scheduled billing");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "scheduled billing failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_calendar_months_in_utc() {
        let p: Period = "2026-11".parse().unwrap();
        assert_eq!(p.start, 1_793_491_200); // 2026-11-01T00:00:00Z
        assert_eq!(p.end - p.start, 30 * 86_400);
        let feb: Period = "2028-02".parse().unwrap();
        assert_eq!(feb.end - feb.start, 29 * 86_400);
        let dec: Period = "2026-12".parse().unwrap();
        assert_eq!(dec.end, "2027-01".parse::<Period>().unwrap().start);
        assert_eq!(Period::containing(p.start), p);
        assert_eq!(Period::containing(p.end - 1), p);
        assert_eq!(Period::containing(p.end).label, "2026-12");
        assert_eq!(dec.previous(), p);
        for bad in [
            "2026-13", "2026-00", "26-11", "2026/11", "", "2026-1", "abcd-ef",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_and_csv() {
        assert_eq!(format_amount(1234), "12.34");
        assert_eq!(format_amount(-5), "-0.05");
        assert_eq!(format_amount(0), "0.00");
        let inv = Invoice {
            id: 7,
            customer: "carol".into(),
            reseller: "acme".into(),
            period: "2026-11".into(),
            currency: "EUR".into(),
            total: 1050,
            rule: "default".into(),
            created_at: 0,
        };
        let lines = [Line {
            description: "=cmd \"x\"".into(),
            quantity_millis: 1500,
            unit: "month".into(),
            amount: 1050,
        }];
        let text = csv(&inv, &lines);
        assert!(
            text.contains("\"'=cmd \"\"x\"\"\",1.500,\"month\",10.50,EUR"),
            "{text}"
        );
        assert!(text.ends_with("\"Total\",,,10.50,EUR\r\n"), "{text}");
    }
}
