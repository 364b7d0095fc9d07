//! The rule Acetate applies when a reseller has none: each container pays its plan's
//! monthly price, prorated to the seconds it existed in the period.

use acetate_plugin_sdk::billing::{BillingInput, InvoiceLine, Money, Rule};
use acetate_plugin_sdk::money::scale;

struct PlanPrice;

impl Rule for PlanPrice {
    fn rate(input: BillingInput) -> Result<Vec<InvoiceLine>, String> {
        let Some(plan) = &input.tenant.plan else {
            return Ok(Vec::new());
        };
        let period = u64::try_from(input.period_end - input.period_start).unwrap_or(0);
        Ok(input
            .containers
            .iter()
            .map(|c| InvoiceLine {
                description: format!("{} on plan {}", c.name, plan.name),
                quantity_millis: scale(1000, c.seconds_existing, period) as u64,
                unit: "month".into(),
                amount: Money {
                    amount: scale(plan.monthly_price.amount, c.seconds_existing, period),
                    currency: input.currency.clone(),
                },
            })
            .collect())
    }
}

acetate_plugin_sdk::export_billing!(PlanPrice);
