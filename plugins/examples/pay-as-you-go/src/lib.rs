//! Pay for what you use: 0.01 per CPU-second and 0.01 per GiB-hour of average memory,
//! nothing else. Rounded to whole cents per container and meter.

use acetate_plugin_sdk::billing::{BillingInput, InvoiceLine, Money, Rule};
use acetate_plugin_sdk::money::scale;

struct PayAsYouGo;

impl Rule for PayAsYouGo {
    fn rate(input: BillingInput) -> Result<Vec<InvoiceLine>, String> {
        let mut lines = Vec::new();
        for c in &input.containers {
            lines.push(InvoiceLine {
                description: format!("{}: CPU", c.name),
                quantity_millis: c.cpu_millis,
                unit: "CPU-second".into(),
                amount: Money {
                    amount: scale(1, c.cpu_millis, 1000),
                    currency: input.currency.clone(),
                },
            });
            // GiB-hours of memory in thousandths.
            let gib_hours =
                (u128::from(c.memory_average_bytes) * u128::from(c.seconds_running) * 1000
                    / (3600u128 << 30)) as u64;
            lines.push(InvoiceLine {
                description: format!("{}: memory", c.name),
                quantity_millis: gib_hours,
                unit: "GiB-hour".into(),
                amount: Money {
                    amount: scale(1, gib_hours, 1000),
                    currency: input.currency.clone(),
                },
            });
        }
        Ok(lines)
    }
}

acetate_plugin_sdk::export_billing!(PayAsYouGo);
