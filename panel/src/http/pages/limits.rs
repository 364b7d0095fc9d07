//! The container page's limit hits and notices, as people read them.

use crate::domain::faults::FaultKind;
use crate::domain::User;
use crate::error::AppResult;
use crate::service::{faults, AppState};

/// Limit hits over the last 30 days: the sums per kind in words, the 20 newest as (when,
/// what), a graph of the hits per day (SVG); and what the reseller's policies told the
/// owner, as (when, message).
#[derive(Debug, Default)]
pub(super) struct LimitsView {
    pub totals: Vec<String>,
    pub faults: Vec<(String, String)>,
    pub graph: String,
    pub notices: Vec<(String, String)>,
}

/// One limit hit in a list of many containers': (when, owner, container, what, page).
pub(super) type ScopeRow = (String, String, String, String, String);

/// The limit hits and notices of every container in a reseller's or the provider's scope
/// over the last week, newest first (50 and 20 at most).
#[derive(Debug, Default)]
pub(super) struct ScopeView {
    pub faults: Vec<ScopeRow>,
    pub notices: Vec<ScopeRow>,
}

pub(super) fn page_of(owner: &str, container: &str) -> String {
    format!("/containers/{container}?owner={owner}")
}

/// A limit hit in a list of many containers'.
pub(super) fn scope_row(f: &crate::db::faults::FaultRow) -> ScopeRow {
    (
        super::human_time(f.at),
        f.owner.clone(),
        f.container.clone(),
        faults::describe(f),
        page_of(&f.owner, &f.container),
    )
}

pub(super) async fn in_scope(st: &AppState, user: &User) -> AppResult<ScopeView> {
    let report = faults::in_scope(st, user, Some(7)).await?;
    let notices = faults::notices_in_scope(st, user, Some(7)).await?;
    Ok(ScopeView {
        faults: report.faults.iter().take(50).map(scope_row).collect(),
        notices: notices
            .notices
            .iter()
            .take(20)
            .map(|n| {
                (
                    super::human_time(n.at),
                    n.owner.clone(),
                    n.container.clone(),
                    n.message.clone(),
                    page_of(&n.owner, &n.container),
                )
            })
            .collect(),
    })
}

/// Limit hits per day (every kind, each sample's hit counting once) over `[from, to]`.
fn per_day(at: impl Iterator<Item = i64>, from: i64, to: i64) -> String {
    use super::graph::{day, line, TimeAxis};
    let first = from - from.rem_euclid(86_400);
    let mut days: Vec<(i64, f64)> = (first..=to)
        .step_by(86_400)
        .map(|d| (d + 43_200, 0.0))
        .collect();
    for t in at {
        let i = ((t - first) / 86_400) as usize;
        if let Some(d) = days.get_mut(i) {
            d.1 += 1.0;
        }
    }
    let axis = TimeAxis {
        step: 5 * 86_400,
        label: day,
    };
    line(&days, from, to, 2 * 86_400, |v| format!("{v:.0}"), &axis)
}

pub(super) async fn of_container(
    st: &AppState,
    user: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<LimitsView> {
    let report = faults::of_container(st, user, name, owner, None).await?;
    let notices = faults::notices_of_container(st, user, name, owner, None).await?;
    let now = crate::domain::now();
    Ok(LimitsView {
        graph: per_day(report.faults.iter().map(|f| f.at), report.since, now),
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

#[cfg(test)]
mod tests {
    #[test]
    fn hits_are_counted_per_day() {
        let from = 10 * 86_400 + 3600;
        let svg = super::per_day(
            [from + 10, from + 20, from + 86_400].into_iter(),
            from,
            from + 3 * 86_400,
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        // The scale's top is written: two hits on the busiest day, times 1.1.
        assert!(svg.contains(">2<"), "{svg}");
    }
}
