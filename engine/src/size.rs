//! Parsing and printing of the human sizes used on the command line and in the API:
//! bytes (`512M`, `2G`, `1.5GiB`), CPU counts (`0.5`, `1.5`) and network rates (`100mbit`).

use std::fmt;

/// Why a size, CPU count or rate did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Splits `"1.5GiB"` into `("1.5", "gib")`.
fn split_number(input: &str) -> Result<(f64, String), ParseError> {
    let s = input.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() || num.matches('.').count() > 1 || num.ends_with('.') {
        return Err(ParseError(format!(
            "{input:?} is not a number with an optional unit"
        )));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| ParseError(format!("{input:?} is not a number")))?;
    Ok((value, unit.trim().to_ascii_lowercase()))
}

/// Parses a byte size: a plain number of bytes, or a number with a binary unit
/// (`K`, `M`, `G`, `T`, optionally followed by `i`, `B` or `iB`; all powers of 1024).
pub fn parse_bytes(input: &str) -> Result<u64, ParseError> {
    let (value, unit) = split_number(input)?;
    let shift = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(ParseError(format!(
                "{input:?} has an unknown unit (use K, M, G or T, e.g. 512M)"
            )))
        }
    };
    if (unit == "b" || unit.is_empty()) && value.fract() != 0.0 {
        return Err(ParseError(format!(
            "{input:?} is not a whole number of bytes"
        )));
    }
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(ParseError(format!("{input:?} is too large")));
    }
    Ok(bytes.round() as u64)
}

/// Parses a CPU count (`0.5`, `2`) into thousandths of a CPU.
pub fn parse_cpus(input: &str) -> Result<u32, ParseError> {
    let (value, unit) = split_number(input)?;
    if !unit.is_empty() {
        return Err(ParseError(format!(
            "{input:?} is not a CPU count (use a number such as 0.5 or 2)"
        )));
    }
    let milli = (value * 1000.0).round();
    if milli > u32::MAX as f64 {
        return Err(ParseError(format!("{input:?} is too large")));
    }
    Ok(milli as u32)
}

/// Parses a network rate in the units of `tc`: `bit`, `kbit`, `mbit`, `gbit` (powers of
/// 1000), or bytes per second with `bps`, `kbps`, `mbps`, `gbps`. Returns bits per second.
pub fn parse_rate(input: &str) -> Result<u64, ParseError> {
    let (value, unit) = split_number(input)?;
    let bits_per_unit: f64 = match unit.as_str() {
        "bit" | "" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => {
            return Err(ParseError(format!(
                "{input:?} has an unknown rate unit (use bit, kbit, mbit or gbit, e.g. 100mbit)"
            )))
        }
    };
    let bits = value * bits_per_unit;
    if bits >= u64::MAX as f64 {
        return Err(ParseError(format!("{input:?} is too large")));
    }
    Ok(bits.round() as u64)
}

/// Prints a byte count with the largest binary unit that keeps it readable (`512M`, `1.5G`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("T", 40), ("G", 30), ("M", 20), ("K", 10)];
    for (name, shift) in UNITS {
        let unit = 1u64 << shift;
        if bytes >= unit {
            let value = bytes as f64 / unit as f64;
            return if bytes.is_multiple_of(unit) {
                format!("{}{name}", bytes / unit)
            } else {
                format!("{value:.1}{name}")
            };
        }
    }
    format!("{bytes}B")
}

/// Prints thousandths of a CPU as a decimal CPU count (`1500` → `1.5`).
pub fn format_cpus(milli: u32) -> String {
    if milli.is_multiple_of(1000) {
        format!("{}", milli / 1000)
    } else {
        let s = format!("{}.{:03}", milli / 1000, milli % 1000);
        s.trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_with_units() {
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("2G").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("2g").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("64KB").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes(" 1T ").unwrap(), 1 << 40);
    }

    #[test]
    fn bytes_rejects_garbage() {
        for bad in [
            "",
            "M",
            "12X",
            "1..5G",
            "-1G",
            "1.5",
            "abc",
            "5.G",
            "99999999999T",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500);
        assert_eq!(parse_cpus("1.5").unwrap(), 1500);
        assert_eq!(parse_cpus("2").unwrap(), 2000);
        assert!(parse_cpus("2 cores").is_err());
        assert!(parse_cpus("-1").is_err());
        assert_eq!(format_cpus(1500), "1.5");
        assert_eq!(format_cpus(250), "0.25");
        assert_eq!(format_cpus(2000), "2");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100mbit").unwrap(), 100_000_000);
        assert_eq!(parse_rate("1gbit").unwrap(), 1_000_000_000);
        assert_eq!(parse_rate("10mbps").unwrap(), 80_000_000);
        assert!(parse_rate("100 furlongs").is_err());
    }

    #[test]
    fn format_round_trips() {
        for s in ["512M", "2G", "1.5G", "64K", "1T"] {
            assert_eq!(format_bytes(parse_bytes(s).unwrap()), s);
        }
        assert_eq!(format_bytes(100), "100B");
    }
}
