//! Sizes and CPU counts as people write them ("512M", 1.5) and as the API receives them
//! (a number or such a text).

use acetate_engine::size::{parse_bytes, parse_cpus};
use serde::Deserialize;

use crate::error::{AppError, AppResult};

/// A size given as a number of bytes or as text such as "512M".
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Size {
    Bytes(u64),
    Text(String),
}

impl Size {
    pub fn bytes(&self, what: &str) -> AppResult<u64> {
        match self {
            Size::Bytes(b) => Ok(*b),
            Size::Text(t) => {
                parse_bytes(t).map_err(|e| AppError::Unprocessable(format!("{what}: {e}")))
            }
        }
    }

    /// The size as a database amount.
    pub fn bytes_i64(&self, what: &str) -> AppResult<i64> {
        let b = self.bytes(what)?;
        i64::try_from(b).map_err(|_| AppError::Unprocessable(format!("{what} is too large")))
    }
}

/// A number of CPUs given as a number (1.5) or as text ("1.5").
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Cpus {
    Number(f64),
    Text(String),
}

impl Cpus {
    /// Thousandths of a CPU.
    pub fn milli(&self, what: &str) -> AppResult<u32> {
        let text = match self {
            Cpus::Number(n) => n.to_string(),
            Cpus::Text(s) => s.trim().to_string(),
        };
        parse_cpus(&text).map_err(|e| AppError::Unprocessable(format!("{what}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cpus_parse_from_numbers_and_text() {
        let s: Size = serde_json::from_str("\"512M\"").unwrap();
        assert_eq!(s.bytes("memory").unwrap(), 512 << 20);
        let s: Size = serde_json::from_str("1024").unwrap();
        assert_eq!(s.bytes_i64("disk").unwrap(), 1024);
        let c: Cpus = serde_json::from_str("1.5").unwrap();
        assert_eq!(c.milli("cpus").unwrap(), 1500);
        let c: Cpus = serde_json::from_str("\"2\"").unwrap();
        assert_eq!(c.milli("cpus").unwrap(), 2000);
        let e = Size::Text("lots".into()).bytes("memory").unwrap_err();
        assert!(e.to_string().starts_with("memory:"), "{e}");
        assert!(serde_json::from_str::<Cpus>("true").is_err());
    }
}
