//! The container page's limit hits and notices, as people read them.

use crate::domain::faults::FaultKind;
use crate::domain::User;
use crate::error::AppResult;
use crate::service::{faults, AppState};

/// Limit hits over the last 30 days: the sums per kind in words, the 20 newest as (when,
/// what); and what the reseller's policies told the owner, as (when, message).
#[derive(Debug, Default)]
pub(super) struct LimitsView {
    pub totals: Vec<String>,
    pub faults: Vec<(String, String)>,
    pub notices: Vec<(String, String)>,
}

pub(super) async fn of_container(
    st: &AppState,
    user: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<LimitsView> {
    let report = faults::of_container(st, user, name, owner, None).await?;
    let notices = faults::notices_of_container(st, user, name, owner, None).await?;
    Ok(LimitsView {
        totals: report
            .totals
            .iter()
            .filter_map(|(k, v)| FaultKind::parse(k).map(|k| k.describe(*v)))
            .collect(),
        faults: report
            .faults
            .iter()
            .take(20)
            .map(|f| (super::human_time(f.at), faults::describe(f)))
            .collect(),
        notices: notices
            .notices
            .iter()
            .take(20)
            .map(|n| (super::human_time(n.at), n.message.clone()))
            .collect(),
    })
}
