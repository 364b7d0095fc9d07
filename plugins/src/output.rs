//! What a plugin call yields: a failed call classified into a [`Failure`], and the
//! checks on a hook's decision and a billing rule's invoice lines.

use wasmtime::Trap;

use crate::sandbox::State;
use crate::{Decision, Failure, InvoiceLine};
pub(crate) fn classify(error: wasmtime::Error, state: &State) -> Failure {
    if let Some(Trap::OutOfFuel) = error.downcast_ref::<Trap>() {
        return Failure::OutOfFuel;
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return Failure::OutOfTime;
    }
    if state.limiter.refused {
        return Failure::OutOfMemory;
    }
    if state.host_calls_exceeded {
        return Failure::TooManyHostCalls;
    }
    match error.downcast_ref::<Trap>() {
        Some(trap) => Failure::Trapped(trap.to_string()),
        None => Failure::Trapped(clip(&format!("{error:#}"), 500)),
    }
}

const MAX_MESSAGE: usize = 1000;
const MAX_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 200;
const MAX_UNIT: usize = 32;
/// Ten billion in major units: any single amount above is garbage.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

pub(crate) fn check_decision(decision: Decision) -> Result<Decision, Failure> {
    match &decision {
        Decision::Allow => {}
        Decision::Deny(message) if message.len() > MAX_MESSAGE => {
            return Err(Failure::BadOutput(format!(
                "a refusal message of {} bytes (at most {MAX_MESSAGE})",
                message.len()
            )));
        }
        Decision::Deny(_) => {}
        Decision::Amend(spec) => {
            if spec.name.is_empty() || spec.name.len() > MAX_NAME || spec.template.len() > MAX_NAME
            {
                return Err(Failure::BadOutput(
                    "an amended spec with an empty or overlong name".into(),
                ));
            }
        }
    }
    Ok(decision)
}

pub(crate) fn check_lines(
    lines: Vec<InvoiceLine>,
    currency: &str,
    max_lines: usize,
) -> Result<Vec<InvoiceLine>, Failure> {
    if lines.len() > max_lines {
        return Err(Failure::BadOutput(format!(
            "{} invoice lines (at most {max_lines})",
            lines.len()
        )));
    }
    let mut total: i64 = 0;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if line.description.trim().is_empty() || line.description.len() > MAX_DESCRIPTION {
            return Err(Failure::BadOutput(format!(
                "line {n}: a description must be 1 to {MAX_DESCRIPTION} bytes"
            )));
        }
        if line.unit.len() > MAX_UNIT {
            return Err(Failure::BadOutput(format!(
                "line {n}: a unit is at most {MAX_UNIT} bytes"
            )));
        }
        if line.amount.currency != currency {
            return Err(Failure::BadOutput(format!(
                "line {n}: currency {:?}, but the invoice is in {currency}",
                clip(&line.amount.currency, 10)
            )));
        }
        if line.amount.amount.abs() > MAX_AMOUNT {
            return Err(Failure::BadOutput(format!(
                "line {n}: an amount of {} minor units",
                line.amount.amount
            )));
        }
        total = total
            .checked_add(line.amount.amount)
            .ok_or_else(|| Failure::BadOutput("the total overflows".into()))?;
    }
    Ok(lines)
}

pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContainerSpec, Limits, Money};

    fn line(amount: i64, currency: &str) -> InvoiceLine {
        InvoiceLine {
            description: "web".into(),
            quantity_millis: 1000,
            unit: "month".into(),
            amount: Money {
                amount,
                currency: currency.into(),
            },
        }
    }

    #[test]
    fn answers_outside_the_contract_are_bad_output() {
        let bad = |r: Result<Vec<InvoiceLine>, Failure>| match r {
            Err(Failure::BadOutput(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(check_lines(vec![line(100, "EUR")], "EUR", 10).is_ok());
        assert!(bad(check_lines(vec![line(100, "USD")], "EUR", 10)).contains("currency \"USD\""));
        assert!(bad(check_lines(vec![line(MAX_AMOUNT + 1, "EUR")], "EUR", 10)).contains("amount"));
        let mut unnamed = line(1, "EUR");
        unnamed.description = " ".into();
        assert!(bad(check_lines(vec![unnamed], "EUR", 10)).contains("description"));
        let mut long_unit = line(1, "EUR");
        long_unit.unit = "u".repeat(MAX_UNIT + 1);
        assert!(bad(check_lines(vec![long_unit], "EUR", 10)).contains("unit"));
        assert!(bad(check_lines(vec![line(1, "EUR"); 11], "EUR", 10)).contains("11 invoice lines"));

        assert!(check_decision(Decision::Deny("x".repeat(MAX_MESSAGE))).is_ok());
        assert!(matches!(
            check_decision(Decision::Deny("x".repeat(MAX_MESSAGE + 1))),
            Err(Failure::BadOutput(_))
        ));
        let spec = |name: &str| ContainerSpec {
            name: name.into(),
            template: "host".into(),
            limits: Limits::default(),
        };
        assert!(check_decision(Decision::Amend(spec("web"))).is_ok());
        assert!(matches!(
            check_decision(Decision::Amend(spec(""))),
            Err(Failure::BadOutput(_))
        ));
        assert!(matches!(
            check_decision(Decision::Amend(spec(&"n".repeat(MAX_NAME + 1)))),
            Err(Failure::BadOutput(_))
        ));
    }
}
