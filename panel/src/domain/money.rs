//! Money: integer minor units of an ISO 4217 currency, written with that currency's own
//! number of decimals (JPY has none, EUR two, KWD three). Never floats.

use std::fmt;

use crate::error::{AppError, AppResult};

/// A currency that has minor units (ISO 4217 codes such as XAU, which have none, are
/// refused: prices here are always integer minor units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses a three-letter ISO 4217 code such as "EUR" (case-insensitive).
    pub fn parse(code: &str) -> AppResult<Currency> {
        let upper = code.trim().to_ascii_uppercase();
        let bad = || {
            AppError::Unprocessable(format!(
                "currency: {code:?} is not an ISO 4217 currency code such as EUR"
            ))
        };
        let c = iso_currency::Currency::from_code(&upper).ok_or_else(bad)?;
        c.exponent().ok_or_else(bad)?;
        Ok(Currency(c))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Decimals of the minor unit: 0 for JPY, 2 for EUR, 3 for KWD.
    pub fn exponent(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(2))
    }

    /// Parses a decimal amount written by a person ("12.5") into minor units; more
    /// decimals than the currency has are refused.
    pub fn parse_amount(self, text: &str) -> AppResult<i64> {
        let text = text.trim();
        let bad = || {
            let example = Money::new(1250 * 10i64.pow(self.exponent()) / 100, self);
            AppError::Unprocessable(format!(
                "price: {text:?} is not an amount in {} (such as {})",
                self.code(),
                example.amount()
            ))
        };
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let exp = self.exponent() as usize;
        if whole.is_empty()
            || frac.len() > exp
            || (text.contains('.') && frac.is_empty())
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let frac = format!("{frac:0<exp$}");
        let frac: i64 = if exp == 0 {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        whole
            .parse::<i64>()
            .ok()
            .and_then(|w| w.checked_mul(10i64.pow(exp as u32)))
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(bad)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount: minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Minor units of the currency named by `code`; unknown codes are written with two
    /// decimals (amounts stored before codes were checked).
    pub fn amount_in(minor: i64, code: &str) -> String {
        match Currency::parse(code) {
            Ok(c) => Money::new(minor, c).amount(),
            Err(_) => with_decimals(minor, 2),
        }
    }

    /// The decimal amount without the code: "12.34", "1234" (JPY), "1.234" (KWD).
    pub fn amount(&self) -> String {
        with_decimals(self.minor, self.currency.exponent())
    }
}

fn with_decimals(minor: i64, exp: u32) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exp == 0 {
        return format!("{sign}{abs}");
    }
    let unit = 10u64.pow(exp);
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = exp as usize
    )
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn amounts_use_the_currency_exponent() {
        assert_eq!(Money::new(1234, cur("EUR")).to_string(), "12.34 EUR");
        assert_eq!(Money::new(-5, cur("EUR")).amount(), "-0.05");
        assert_eq!(Money::new(0, cur("EUR")).amount(), "0.00");
        assert_eq!(Money::new(1234, cur("JPY")).to_string(), "1234 JPY");
        assert_eq!(Money::new(1234, cur("KWD")).to_string(), "1.234 KWD");
        assert_eq!(Money::new(5, cur("KWD")).amount(), "0.005");
        assert_eq!(Money::amount_in(1234, "XYZ"), "12.34");
    }

    #[test]
    fn amounts_parse_within_the_exponent() {
        assert_eq!(cur("EUR").parse_amount("12.5").unwrap(), 1250);
        assert_eq!(cur("EUR").parse_amount("7").unwrap(), 700);
        assert!(cur("EUR").parse_amount("1.234").is_err());
        assert_eq!(cur("JPY").parse_amount("500").unwrap(), 500);
        assert!(cur("JPY").parse_amount("5.5").is_err());
        assert_eq!(cur("KWD").parse_amount("1.5").unwrap(), 1500);
        assert!(cur("EUR").parse_amount("-1").is_err());
        assert!(cur("EUR").parse_amount("1.").is_err());
        assert!(cur("EUR").parse_amount("99999999999999999999").is_err());
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(cur("eur").code(), "EUR");
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("ABC").is_err());
        assert!(Currency::parse("XAU").is_err());
    }
}
