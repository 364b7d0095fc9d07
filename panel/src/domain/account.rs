//! Accounts and their roles, and who may see whom.

use std::str::FromStr;

/// Roles of accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Provider,
    Reseller,
    Customer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Reseller => "reseller",
            Role::Customer => "customer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "provider" => Ok(Role::Provider),
            "reseller" => Ok(Role::Reseller),
            "customer" => Ok(Role::Customer),
            other => Err(format!(
                "{other:?} is not a role (provider, reseller or customer)"
            )),
        }
    }
}

/// An account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub reseller_id: Option<i64>,
    pub password_hash: String,
    pub suspended: i64,
    pub created_at: i64,
    pub plan_id: Option<i64>,
    /// 1 while the password is one someone else chose (generated or reset): the holder is
    /// sent to their account page to change it.
    pub must_change_password: i64,
    /// 1 when logging in to the pages also takes a TOTP code.
    pub totp_enabled: i64,
}

impl User {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Customer)
    }

    pub fn is_suspended(&self) -> bool {
        self.suspended != 0
    }

    /// Whether this account may act on `other`'s things: the provider on everyone's, a
    /// reseller on its own customers', anyone on its own. Everything else is out of scope
    /// (and answers "not found", like a name that does not exist).
    pub fn has_in_scope(&self, other: &User) -> bool {
        self.id == other.id
            || match self.role() {
                Role::Provider => true,
                Role::Reseller => other.reseller_id == Some(self.id),
                Role::Customer => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, role: Role, reseller_id: Option<i64>) -> User {
        User {
            id,
            name: format!("u{id}"),
            role: role.as_str().into(),
            reseller_id,
            password_hash: String::new(),
            suspended: 0,
            created_at: 0,
            plan_id: None,
            must_change_password: 0,
            totp_enabled: 0,
        }
    }

    #[test]
    fn scope_follows_the_reseller_tree() {
        let provider = user(1, Role::Provider, None);
        let reseller = user(2, Role::Reseller, None);
        let other_reseller = user(3, Role::Reseller, None);
        let customer = user(4, Role::Customer, Some(2));
        let stranger = user(5, Role::Customer, Some(3));
        assert!(provider.has_in_scope(&customer));
        assert!(reseller.has_in_scope(&customer));
        assert!(!other_reseller.has_in_scope(&customer));
        assert!(customer.has_in_scope(&customer));
        assert!(!customer.has_in_scope(&stranger));
        assert!(!stranger.has_in_scope(&reseller));
    }
}
