//! Names users give things, checked once where they enter the panel.

use std::fmt;

use crate::error::{AppError, AppResult};

/// Longest name a customer may give a container.
pub const MAX_CONTAINER_NAME: usize = 40;

/// A customer's name for one of its containers (unique per customer, not per host).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerName(String);

impl ContainerName {
    pub fn parse(name: &str) -> AppResult<ContainerName> {
        acetate_engine::spec::validate_name(name)
            .map_err(|e| AppError::Unprocessable(e.to_string()))?;
        if name.len() > MAX_CONTAINER_NAME {
            return Err(AppError::Unprocessable(format!(
                "container names have at most {MAX_CONTAINER_NAME} characters"
            )));
        }
        Ok(ContainerName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account name: 1 to 64 lower-case letters, digits, '-', '_' or '.'.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

impl UserName {
    pub fn parse(name: &str) -> AppResult<UserName> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !ok {
            return Err(AppError::Unprocessable(format!(
                "invalid user name {name:?}: 1 to 64 lower-case letters, digits, '-', '_' or '.'"
            )));
        }
        Ok(UserName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_once() {
        assert!(ContainerName::parse("web-1").is_ok());
        assert!(ContainerName::parse(&"a".repeat(41)).is_err());
        assert!(ContainerName::parse("../etc").is_err());
        assert!(UserName::parse("alice.b-2").is_ok());
        assert!(UserName::parse("Alice").is_err());
        assert!(UserName::parse("").is_err());
    }
}
