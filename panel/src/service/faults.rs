//! Limit hits ("faults") as customers, resellers and the provider see them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::containers::resolve;
use super::AppState;
use crate::db::faults::FaultRow;
use crate::db::overuse::NoticeRow;
use crate::domain::faults::FaultKind;
use crate::domain::User;
use crate::error::{AppError, AppResult};

/// Days of history one may ask for.
pub const MAX_DAYS: i64 = 90;

/// Limit hits over a period, and their sums per kind.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FaultReport {
    pub since: i64,
    /// Sum of the amounts per kind.
    pub totals: BTreeMap<String, i64>,
    pub faults: Vec<FaultRow>,
}

fn since(days: Option<i64>) -> AppResult<i64> {
    let days = days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(AppError::Unprocessable(format!("days: 1 to {MAX_DAYS}")));
    }
    Ok(crate::domain::now() - days * 86_400)
}

fn report(since: i64, faults: Vec<FaultRow>) -> FaultReport {
    let mut totals = BTreeMap::new();
    for f in &faults {
        *totals.entry(f.kind.clone()).or_insert(0) += f.amount;
    }
    FaultReport {
        since,
        totals,
        faults,
    }
}

/// One container's limit hits over the last `days` (30 by default).
pub async fn of_container(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    days: Option<i64>,
) -> AppResult<FaultReport> {
    let since = since(days)?;
    let row = resolve(st, caller, name, owner).await?;
    Ok(report(since, st.db.faults_of(row.id, since).await?))
}

/// Every limit hit in the caller's scope over the last `days`.
pub async fn in_scope(st: &AppState, caller: &User, days: Option<i64>) -> AppResult<FaultReport> {
    let since = since(days)?;
    Ok(report(since, st.db.faults_visible_to(caller, since).await?))
}

/// Messages to customers over a period (from their resellers' overuse policies).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Notices {
    pub since: i64,
    pub notices: Vec<NoticeRow>,
}

/// One container's notices over the last `days` (30 by default).
pub async fn notices_of_container(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    days: Option<i64>,
) -> AppResult<Notices> {
    let since = since(days)?;
    let row = resolve(st, caller, name, owner).await?;
    Ok(Notices {
        since,
        notices: st.db.notices_of(row.id, since).await?,
    })
}

/// The notices of every customer in the caller's scope over the last `days`.
pub async fn notices_in_scope(
    st: &AppState,
    caller: &User,
    days: Option<i64>,
) -> AppResult<Notices> {
    let since = since(days)?;
    Ok(Notices {
        since,
        notices: st.db.notices_visible_to(caller, since).await?,
    })
}

/// A fault row for people: "3 process(es) killed: out of memory".
pub fn describe(f: &FaultRow) -> String {
    match FaultKind::parse(&f.kind) {
        Some(k) => k.describe(f.amount),
        None => format!("{} {}", f.kind, f.amount),
    }
}
