//! `acetate bill run` and `acetate meter sample`: the billing and metering jobs on demand.

use std::path::Path;

use clap::Subcommand;

use super::output::{table, Output};
use super::serve::block_on;
use crate::db::Db;
use crate::domain::{Period, Role};
use crate::service::billing::{self, Outcome};

#[derive(Debug, Subcommand)]
pub enum BillCmd {
    /// Bill a period: an invoice per customer with usage, from its reseller's billing rule.
    Run {
        /// The month, YYYY-MM.
        #[arg(long)]
        period: String,
        /// Only this reseller's customers.
        #[arg(long)]
        reseller: Option<String>,
        /// Bill a month that has not ended (its invoices will stay partial).
        #[arg(long)]
        open: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MeterCmd {
    /// Take one sample of every container now (the panel does it every minute).
    Sample,
}

pub fn run_bill(
    state_dir: &Path,
    database: &str,
    out: &Output,
    cmd: BillCmd,
) -> anyhow::Result<i32> {
    let BillCmd::Run {
        period,
        reseller,
        open,
    } = cmd;
    let period: Period = period.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let host = crate::app::plugin_host(state_dir)?;
    block_on(async move {
        let db = Db::connect(database).await?;
        let resellers = match reseller {
            Some(name) => {
                let user = db
                    .user_by_name(&name)
                    .await?
                    .filter(|u| u.role() == Role::Reseller)
                    .ok_or_else(|| anyhow::anyhow!("no reseller named {name:?}"))?;
                vec![user]
            }
            None => {
                db.billable_users(Role::Reseller, None, period.start)
                    .await?
            }
        };
        let report = billing::run(&db, &host, &period, &resellers, open)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let failed = report
            .customers
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed { .. }));
        out.print(&report, |r| {
            let rows: Vec<Vec<String>> = r
                .customers
                .iter()
                .map(|c| {
                    let what = match &c.outcome {
                        Outcome::Invoiced {
                            invoice,
                            total,
                            currency,
                            lines,
                        } => format!(
                            "invoice {invoice}: {} {currency} ({lines} lines)",
                            crate::domain::Money::amount_in(*total, currency)
                        ),
                        Outcome::AlreadyInvoiced { invoice } => {
                            format!("already invoiced ({invoice})")
                        }
                        Outcome::NothingToBill => "nothing to bill".into(),
                        Outcome::Failed { message } => format!("FAILED: {message}"),
                    };
                    vec![c.reseller.clone(), c.customer.clone(), what]
                })
                .collect();
            println!("period {} ({} customers)", r.period.label, rows.len());
            if !rows.is_empty() {
                table(&["RESELLER", "CUSTOMER", "RESULT"], &rows);
            }
        });
        Ok(i32::from(failed))
    })
}

pub fn run_meter(
    state_dir: &Path,
    database: &str,
    settings: &super::EngineSettings,
    cmd: MeterCmd,
) -> anyhow::Result<i32> {
    let MeterCmd::Sample = cmd;
    let engine = std::sync::Arc::new(super::open_engine(state_dir, settings)?);
    let runtime: std::sync::Arc<dyn crate::runtime::Runtime> =
        std::sync::Arc::new(crate::runtime::EngineRuntime(engine));
    block_on(async move {
        let db = Db::connect(database).await?;
        let report = crate::service::metering::sample(&db, &runtime, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "sampled {} containers ({} running)",
            report.sampled, report.running
        );
        Ok(0)
    })
}
