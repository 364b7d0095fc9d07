//! Domain names customers attach to containers: checked and kept in one form (lower case,
//! ASCII, no trailing dot), so that equality and "is under" are plain string tests.

use std::fmt;

use crate::error::{AppError, AppResult};

/// A fully qualified domain name such as `shop.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainName(String);

impl DomainName {
    /// Parses `text` as a domain name with at least two labels. Internationalised names
    /// are taken in their `xn--` form; wildcards, addresses and single labels are refused
    /// with the reason (`what` names the field).
    pub fn parse(what: &str, text: &str) -> AppResult<DomainName> {
        DomainName::parse_labels(what, text, 2)
    }

    /// As [`DomainName::parse`], also taking a single label (a suffix such as `com`).
    pub fn parse_suffix(what: &str, text: &str) -> AppResult<DomainName> {
        DomainName::parse_labels(what, text, 1)
    }

    fn parse_labels(what: &str, text: &str, min_labels: usize) -> AppResult<DomainName> {
        let bad = |why: &str| AppError::Unprocessable(format!("{what}: {text:?} {why}"));
        let name = normalise(text);
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        if !name.is_ascii() {
            return Err(bad(
                "is not ASCII: write an internationalised name in its xn-- form",
            ));
        }
        if name.starts_with("*.") {
            return Err(bad(
                "is a wildcard: attach each name (wildcards need DNS-01, which the front door does not do)",
            ));
        }
        if name.len() > 253 {
            return Err(bad("is longer than 253 characters"));
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < min_labels {
            return Err(bad("is not a full domain name (such as shop.example.com)"));
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("has an empty label or one longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(bad("may hold only letters, digits, hyphens and dots"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("has a label that starts or ends with a hyphen"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("is an address, not a domain name"));
        }
        Ok(DomainName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self` is `other` or a subdomain of it.
    pub fn is_within(&self, other: &str) -> bool {
        within(&self.0, other)
    }
}

/// `text` in the form names are kept in (trimmed, lower case, no trailing dot), unchecked:
/// for looking up a name as typed.
pub fn normalise(text: &str) -> String {
    text.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `name` is `other` or a name under it (both in the kept form).
pub fn within(name: &str, other: &str) -> bool {
    name == other
        || name
            .strip_suffix(other)
            .is_some_and(|head| head.ends_with('.'))
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_in_one_form() {
        let d = DomainName::parse("domain", " Shop.Example.COM. ").unwrap();
        assert_eq!(d.as_str(), "shop.example.com");
        assert!(DomainName::parse("domain", "xn--bcher-kva.example").is_ok());
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for (text, why) in [
            ("", "empty"),
            ("localhost", "full domain name"),
            ("*.example.com", "wildcard"),
            ("bücher.example", "xn--"),
            ("a..b", "empty label"),
            ("-a.example.com", "hyphen"),
            ("a_b.example.com", "only letters"),
            ("192.0.2.1", "address"),
            (&format!("{}.com", "a".repeat(64)), "63"),
        ] {
            let err = DomainName::parse("domain", text).unwrap_err().to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        assert!(DomainName::parse_suffix("suffix", "com").is_ok());
    }

    #[test]
    fn within_means_equal_or_below_a_dot() {
        let d = DomainName::parse("d", "shop.example.com").unwrap();
        assert!(d.is_within("shop.example.com"));
        assert!(d.is_within("example.com"));
        assert!(!d.is_within("ample.com"));
        assert!(!d.is_within("other.com"));
    }
}
