//! A billing rule with tiered prices, included allowances, overage and a minimum charge:
//! - each container pays its plan's monthly price, prorated to the seconds it existed;
//! - CPU: 50 core-hours a month are included per container, the rest costs 2.00 a
//!   core-hour up to 500 core-hours and 1.00 beyond;
//! - memory above the plan's per-container memory on average is impossible (the kernel caps
//!   it), so memory is not charged; disk above 10 GiB on average costs 0.10 per GiB-month;
//! - an invoice with any container is at least 5.00.

use acetate_plugin_sdk::billing::{BillingInput, InvoiceLine, Money, Rule};
use acetate_plugin_sdk::money::{scale, tiered};

const INCLUDED_CORE_HOURS: u64 = 50;
const CPU_TIERS: [(u64, i64); 2] = [(500_000, 200), (u64::MAX, 100)];
const FREE_DISK: u64 = 10 << 30;
const DISK_PRICE_PER_GIB_MONTH: i64 = 10;
const MINIMUM: i64 = 500;

struct Tiered;

fn line(
    description: String,
    quantity_millis: u64,
    unit: &str,
    amount: i64,
    currency: &str,
) -> InvoiceLine {
    InvoiceLine {
        description,
        quantity_millis,
        unit: unit.into(),
        amount: Money {
            amount,
            currency: currency.into(),
        },
    }
}

impl Rule for Tiered {
    fn rate(input: BillingInput) -> Result<Vec<InvoiceLine>, String> {
        let currency = input.currency.as_str();
        let period = u64::try_from(input.period_end - input.period_start)
            .map_err(|_| "the period ends before it starts".to_string())?;
        let mut lines = Vec::new();
        if let Some(plan) = &input.tenant.plan {
            for c in &input.containers {
                let months = scale(1000, c.seconds_existing, period) as u64;
                let amount = scale(plan.monthly_price.amount, c.seconds_existing, period);
                lines.push(line(
                    format!("{} on plan {}", c.name, plan.name),
                    months,
                    "month",
                    amount,
                    currency,
                ));
            }
        }
        for c in &input.containers {
            // Core-hours in thousandths: cpu-millis / 3600.
            let core_hours = c.cpu_millis / 3600;
            let allowance = scale(
                INCLUDED_CORE_HOURS as i64 * 1000,
                c.seconds_existing,
                period,
            ) as u64;
            let over = core_hours.saturating_sub(allowance);
            if over > 0 {
                let amount = tiered(over, &CPU_TIERS);
                lines.push(line(
                    format!("{}: CPU beyond the included hours", c.name),
                    over,
                    "core-hour",
                    amount,
                    currency,
                ));
            }
            let over_disk = c.disk_average_bytes.saturating_sub(FREE_DISK);
            if over_disk > 0 {
                let gib_months = scale(over_disk as i64, 1000, 1 << 30) as u64;
                let gib_months = scale(gib_months as i64, c.seconds_existing, period) as u64;
                let amount = scale(DISK_PRICE_PER_GIB_MONTH, gib_months, 1000);
                lines.push(line(
                    format!("{}: disk beyond 10 GiB", c.name),
                    gib_months,
                    "GiB-month",
                    amount,
                    currency,
                ));
            }
        }
        let total: i64 = lines.iter().map(|l| l.amount.amount).sum();
        if !input.containers.is_empty() && total < MINIMUM {
            lines.push(line(
                "Minimum charge".into(),
                1000,
                "invoice",
                MINIMUM - total,
                currency,
            ));
        }
        Ok(lines)
    }
}

acetate_plugin_sdk::export_billing!(Tiered);
