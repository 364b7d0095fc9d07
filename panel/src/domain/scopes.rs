//! What an API token may do: every right of its owner (no scopes), or only what its
//! scopes allow.

use std::fmt;

use crate::error::{AppError, AppResult};

/// One right a token can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Reading anything the owner may see (GET), but not `/metrics`.
    Read,
    /// Containers and their operations, limit hits and the templates to choose from.
    Containers,
    /// Invoices, revenue and billing runs.
    Billing,
    /// `/metrics`.
    Metrics,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::Read,
        Scope::Containers,
        Scope::Billing,
        Scope::Metrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Containers => "containers",
            Scope::Billing => "billing",
            Scope::Metrics => "metrics",
        }
    }

    pub fn parse(s: &str) -> AppResult<Scope> {
        Scope::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                AppError::Unprocessable(format!(
                    "{s:?} is not a scope: read, containers, billing or metrics"
                ))
            })
    }

    fn allows(self, method: &str, path: &str) -> bool {
        let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
        match self {
            Scope::Read => (method == "GET" || method == "HEAD") && path != "/metrics",
            Scope::Containers => {
                under("/api/v1/containers")
                    || under("/api/v1/operations")
                    || under("/api/v1/shells")
                    || path == "/api/v1/faults"
                    || (path == "/api/v1/templates" && method == "GET")
            }
            Scope::Billing => {
                under("/api/v1/invoices") || under("/api/v1/billing") || path == "/api/v1/revenue"
            }
            Scope::Metrics => path == "/metrics",
        }
    }
}

/// A token's scopes; empty means every right of its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(pub Vec<Scope>);

impl Scopes {
    /// Parses a stored or given list ("read,billing").
    pub fn parse(list: &str) -> AppResult<Scopes> {
        let mut scopes = Vec::new();
        for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            scopes.push(Scope::parse(s)?);
        }
        scopes.sort();
        scopes.dedup();
        Ok(Scopes(scopes))
    }

    pub fn is_unlimited(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request `method path` is within these scopes.
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.is_unlimited() || self.0.iter().any(|s| s.allows(method, path))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&list.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_allow_what_they_say() {
        let read = Scopes::parse("read").unwrap();
        assert!(read.allows("GET", "/api/v1/containers"));
        assert!(!read.allows("POST", "/api/v1/containers"));
        assert!(!read.allows("GET", "/metrics"));
        let ct = Scopes::parse("containers").unwrap();
        assert!(ct.allows("POST", "/api/v1/containers/web/start"));
        assert!(ct.allows("GET", "/api/v1/operations/7"));
        assert!(!ct.allows("GET", "/api/v1/invoices"));
        assert!(!ct.allows("POST", "/api/v1/tokens"));
        let both = Scopes::parse("billing, metrics").unwrap();
        assert_eq!(both.to_string(), "billing,metrics");
        assert!(both.allows("GET", "/metrics") && both.allows("POST", "/api/v1/billing/run"));
        assert!(Scopes::default().allows("DELETE", "/api/v1/tokens/3"));
        assert!(Scopes::parse("admin").is_err());
    }
}
