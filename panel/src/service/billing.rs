//! Billing runs: for a period and a reseller, each customer's metered usage goes to the
//! reseller's billing rule (or the bundled default rule, plan prices prorated), whose lines
//! become a stored invoice. An invoice is never rewritten: running a period again only
//! bills customers that have no invoice for it yet.

use std::sync::Arc;

use acetate_plugins::{BillingInput, Host, Kind};
use serde::Serialize;

use super::hooks as plugins;
use super::AppState;
use crate::db::billing::{invoice_id, store_invoice, usage};
pub use crate::db::billing::{Invoice, Line, Revenue};
use crate::db::plugins::{CallRecord, PluginRow};
use crate::db::{now, Db};
use crate::domain::{Money, Period, Role, User};
use crate::error::{AppError, AppResult};

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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomerOutcome {
    pub reseller: String,
    pub customer: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    super::metrics::panel().billing_runs.inc();
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
        for customer in db
            .billable_users(Role::Customer, Some(reseller.id), period.start)
            .await?
        {
            // Read afresh for each customer: the rule sees what it kept for the last one.
            let kv = match &rule_row {
                Some(row) => Arc::new(db.plugin_kv(row.id).await?),
                None => Arc::default(),
            };
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
        db.record_call(row.id, CallRecord::of("billing", &outcome, &detail, &call))
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
    let stored = store_invoice(
        db,
        customer.id,
        reseller.id,
        period,
        &input.currency,
        total,
        rule_name,
        &lines,
    )
    .await?;
    // The rule's key-value writes are kept once its invoice is (as the contract says).
    if let (Some(_), Some(row)) = (stored, rule_row) {
        db.apply_kv(row.id, &call.kv_changes).await?;
    }
    match stored {
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
            Money::amount_in(l.amount, &invoice.currency),
            invoice.currency
        ));
    }
    out.push_str(&format!(
        "{},{},{},\"Total\",,,{},{}\r\n",
        invoice.id,
        invoice.period,
        csv_field(&invoice.customer),
        Money::amount_in(invoice.total, &invoice.currency),
        invoice.currency
    ));
    out
}

/// A billing run for `caller`: the provider's covers every reseller, a reseller's its own
/// customers.
pub async fn run_for(
    st: &AppState,
    caller: &User,
    period: &Period,
    open: bool,
) -> AppResult<RunReport> {
    let resellers = match caller.role() {
        Role::Provider => {
            st.db
                .billable_users(Role::Reseller, None, period.start)
                .await?
        }
        Role::Reseller => vec![caller.clone()],
        Role::Customer => {
            return Err(AppError::Forbidden(
                "billing runs are for resellers and the provider".into(),
            ))
        }
    };
    let report = run(&st.db, &st.plugins, period, &resellers, open).await?;
    st.db
        .audit(Some(caller), "billing.run", &period.label, "ok")
        .await?;
    Ok(report)
}

/// Invoices in the user's scope: its own (customer), its customers' (reseller), all
/// (provider).
pub async fn invoices(st: &AppState, user: &User) -> AppResult<Vec<Invoice>> {
    crate::db::billing::invoices_visible_to(&st.db, user).await
}

/// One invoice with its lines, if it is in the user's scope.
pub async fn invoice(st: &AppState, user: &User, id: i64) -> AppResult<(Invoice, Vec<Line>)> {
    crate::db::billing::invoice(&st.db, user, id).await
}

/// Revenue per period and currency of a reseller (or of all, for the provider).
pub async fn revenue(st: &AppState, user: &User) -> AppResult<Vec<Revenue>> {
    crate::db::billing::revenue(&st.db, user).await
}

/// Bills the month that ended last, every hour (a no-op once it is billed).
pub fn spawn_schedule(db: Db, host: Arc<Host>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let period = Period::containing(now()).previous();
            let resellers = match db.billable_users(Role::Reseller, None, period.start).await {
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
    fn amounts_and_csv() {
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
