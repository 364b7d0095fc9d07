//! Deleting accounts: a customer (by its reseller or the provider) or a reseller with all
//! its customers (by the provider), after the name is typed again. Their containers are
//! sampled for billing, stopped and destroyed in one operation; the accounts then hold
//! nothing, cannot log in and are listed nowhere, and the period's invoice still bills
//! them up to that moment.

use super::operations::Done;
use super::{containers, AppState};
use crate::db::operations::OperationRow;
use crate::domain::{Role, User};
use crate::error::{AppError, AppResult};

fn confirmed(name: &str, confirm: &str) -> AppResult<()> {
    if confirm.trim() != name {
        return Err(AppError::Unprocessable(format!(
            "confirm: type the account's name ({name:?}) to delete it and everything it holds"
        )));
    }
    Ok(())
}

/// Suspends `user`, destroys its containers, and marks it deleted.
async fn close(st: &AppState, caller: &User, user: &User) -> AppResult<usize> {
    st.db.set_suspended(user.id, true).await?;
    let destroyed = containers::destroy_all_of(st, user).await?;
    st.db.mark_user_deleted(user.id).await?;
    st.db
        .audit(
            Some(caller),
            &format!("{}.delete", user.role().as_str()),
            &user.name,
            &format!("ok: {destroyed} container(s) destroyed"),
        )
        .await?;
    Ok(destroyed)
}

/// Deletes a customer the caller manages, with its containers (an operation).
pub async fn delete_customer(
    st: &AppState,
    caller: &User,
    name: &str,
    confirm: &str,
) -> AppResult<OperationRow> {
    let user = super::accounts::managed_customer(st, caller, name).await?;
    confirmed(&user.name, confirm)?;
    let (st2, caller2, user2) = (st.clone(), caller.clone(), user.clone());
    let work = async move {
        let n = close(&st2, &caller2, &user2).await?;
        Ok(Done {
            message: format!("customer {} deleted with {n} container(s)", user2.name),
            result: None,
        })
    };
    st.operations
        .spawn(caller, "customer.delete", &user.name, None, work)
        .await
}

/// Deletes a reseller (provider), with all its customers and their containers (an
/// operation).
pub async fn delete_reseller(
    st: &AppState,
    caller: &User,
    name: &str,
    confirm: &str,
) -> AppResult<OperationRow> {
    super::require(caller, Role::Provider)?;
    let reseller = st
        .db
        .user_by_name(name)
        .await?
        .filter(|u| u.role() == Role::Reseller)
        .ok_or(AppError::NotFound)?;
    confirmed(&reseller.name, confirm)?;
    let (st2, caller2, reseller2) = (st.clone(), caller.clone(), reseller.clone());
    let work = async move {
        let mut containers = 0;
        let customers = st2.db.customers_of(reseller2.id).await?;
        for customer in &customers {
            containers += close(&st2, &caller2, customer).await?;
        }
        close(&st2, &caller2, &reseller2).await?;
        Ok(Done {
            message: format!(
                "reseller {} deleted with {} customer(s) and {containers} container(s)",
                reseller2.name,
                customers.len()
            ),
            result: None,
        })
    };
    st.operations
        .spawn(caller, "reseller.delete", &reseller.name, None, work)
        .await
}
