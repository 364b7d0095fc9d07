//! Invoices numbered in one unbroken sequence per reseller, as invoicing rules in many
//! countries (the EU's among them) require: the number is kept in the rule's key-value
//! store, which the panel keeps once the invoice is stored. Each container pays its plan's
//! monthly price, prorated to the seconds it existed in the period.

use acetate_plugin_sdk::billing::{BillingInput, InvoiceLine, Money, Rule};
use acetate_plugin_sdk::kv;
use acetate_plugin_sdk::money::scale;

struct Numbered;

impl Rule for Numbered {
    fn rate(input: BillingInput) -> Result<Vec<InvoiceLine>, String> {
        let Some(plan) = &input.tenant.plan else {
            return Ok(Vec::new());
        };
        let period = u64::try_from(input.period_end - input.period_start).unwrap_or(0);
        let mut lines: Vec<InvoiceLine> = input
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
            .collect();
        if lines.is_empty() {
            return Ok(lines);
        }
        let number = kv::add("invoice-number", 1)?;
        lines.insert(
            0,
            InvoiceLine {
                description: format!("invoice {}-{number:06}", input.tenant.reseller),
                quantity_millis: 0,
                unit: "".into(),
                amount: Money {
                    amount: 0,
                    currency: input.currency.clone(),
                },
            },
        );
        Ok(lines)
    }
}

acetate_plugin_sdk::export_billing!(Numbered);
