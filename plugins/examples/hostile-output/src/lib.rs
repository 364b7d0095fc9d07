//! Hostile: answers with a flood of invoice lines and a flood of log. The host's output
//! and log caps must stop it.

use acetate_plugin_sdk::billing::{BillingInput, InvoiceLine, Money, Rule};
use acetate_plugin_sdk::log;

struct Flood;

impl Rule for Flood {
    fn rate(input: BillingInput) -> Result<Vec<InvoiceLine>, String> {
        for i in 0..20_000 {
            log::info(&format!("log line {i} of a flood"));
        }
        let description = "x".repeat(40);
        Ok((0..100_000)
            .map(|_| InvoiceLine {
                description: description.clone(),
                quantity_millis: 1000,
                unit: "unit".into(),
                amount: Money {
                    amount: 1,
                    currency: input.currency.clone(),
                },
            })
            .collect())
    }
}

acetate_plugin_sdk::export_billing!(Flood);
