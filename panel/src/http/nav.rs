//! The navigation at the top of every page of a logged-in account.

/// The navigation of every page of a logged-in account: the sections its role has, its
/// account, and log out (a form: it changes state).
#[derive(Debug, Clone)]
pub struct Nav {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    /// The section the page belongs to (marked for assistive technology and styling).
    pub here: &'static str,
    links: Vec<(&'static str, &'static str)>,
}

impl Nav {
    pub fn of(user: &crate::domain::User, csrf: &str, here: &'static str) -> Option<Nav> {
        use crate::domain::Role;
        let role = user.role();
        let mut links = Vec::new();
        match role {
            Role::Provider => links.push(("/provider", "Host & resellers")),
            Role::Reseller => links.push(("/reseller", "Customers & plans")),
            Role::Customer => {}
        }
        links.push(("/", "Containers"));
        if role == Role::Reseller {
            links.push(("/plugins", "Plugins"));
        }
        links.push(("/invoices", "Invoices"));
        if role != Role::Customer {
            links.push(("/audit", "Audit log"));
        }
        links.push(("/access", "SSH & sessions"));
        Some(Nav {
            user: user.name.clone(),
            role: role.as_str(),
            csrf: csrf.to_string(),
            here,
            links,
        })
    }

    pub fn links(&self) -> &[(&'static str, &'static str)] {
        &self.links
    }
}
