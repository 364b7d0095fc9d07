//! One account as the provider (any reseller or customer) or a reseller (its customers)
//! oversees it: what it holds, its containers or customers, its invoices and its limit
//! hits, on one page and in one API answer.

use serde::Serialize;

use super::accounts::{customer_view, CustomerView};
use super::containers::ContainerView;
use super::AppState;
use crate::db::billing::Invoice;
use crate::db::faults::FaultRow;
use crate::domain::{Plan, Pool, Role, Totals, User};
use crate::error::{AppError, AppResult};

/// Days of limit hits shown.
pub const FAULT_DAYS: i64 = 30;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountOverview {
    pub name: String,
    /// `reseller` or `customer`.
    pub role: String,
    pub suspended: bool,
    /// A customer's reseller.
    pub reseller: Option<String>,
    /// A customer's plan.
    pub plan: Option<String>,
    /// What its containers hold (a reseller's: all its customers').
    pub used: Totals,
    /// A reseller's pool, if set.
    pub pool: Option<Pool>,
    /// A reseller's customers.
    pub customers: Vec<CustomerView>,
    /// A reseller's plans.
    pub plans: Vec<Plan>,
    /// A customer's containers.
    pub containers: Vec<ContainerView>,
    /// Its invoices (a reseller's: its customers').
    pub invoices: Vec<Invoice>,
    /// Limit hits of its containers (a reseller's: its customers') over the last 30 days,
    /// newest first.
    pub faults: Vec<FaultRow>,
}

/// The account `name`, for the provider or its reseller; anyone else is told it does
/// not exist.
pub async fn overview(st: &AppState, caller: &User, name: &str) -> AppResult<AccountOverview> {
    let user = st.db.user_by_name(name).await?.ok_or(AppError::NotFound)?;
    let allowed = match caller.role() {
        Role::Provider => user.role() != Role::Provider,
        Role::Reseller => user.reseller_id == Some(caller.id),
        Role::Customer => false,
    };
    if !allowed || user.id == caller.id {
        return Err(AppError::NotFound);
    }
    let since = crate::domain::now() - FAULT_DAYS * 86_400;
    let invoices = super::billing::invoices(st, &user).await?;
    let faults = st.db.faults_visible_to(&user, since).await?;
    let suspended = user.is_suspended();
    match user.role() {
        Role::Reseller => {
            let mut customers = Vec::new();
            for c in st.db.customers_of(user.id).await? {
                customers.push(customer_view(st, &c).await?);
            }
            Ok(AccountOverview {
                name: user.name.clone(),
                role: "reseller".into(),
                suspended,
                reseller: None,
                plan: None,
                used: st.db.reseller_totals(user.id, -1).await?,
                pool: st.db.pool(user.id).await?,
                customers,
                plans: st.db.plans_of(user.id).await?,
                containers: Vec::new(),
                invoices,
                faults,
            })
        }
        _ => {
            let view = customer_view(st, &user).await?;
            let reseller = match user.reseller_id {
                Some(id) => Some(st.db.user_name(id).await?),
                None => None,
            };
            Ok(AccountOverview {
                name: user.name.clone(),
                role: "customer".into(),
                suspended,
                reseller,
                plan: view.plan,
                used: view.used,
                pool: None,
                customers: Vec::new(),
                plans: Vec::new(),
                containers: super::containers::list(st, &user).await?,
                invoices,
                faults,
            })
        }
    }
}
