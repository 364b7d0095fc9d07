//! Limit hits sent to a reseller's overuse policy (WIT 1.2.0): the event as plain Rust
//! values (serde: the JSON of `acetate plugin run --overuse` and of recorded calls), the
//! actions a policy answers, their conversions and the checks on them.

use serde::{Deserialize, Serialize};

use crate::bindings::types as wit;
use crate::output::clip;
use crate::{ContainerSpec, Failure, Limits, Tenant};

/// Actions one answer may carry.
pub const MAX_ACTIONS: usize = 8;
/// Longest message to a customer or suspension reason.
pub const MAX_MESSAGE: usize = 1000;
/// Longest temporary adjustment: 31 days.
pub const MAX_ADJUST_SECONDS: u64 = 31 * 86_400;

/// One kind of limit hit of a sample: `oom-kill`, `memory-limit`, `process-limit`,
/// `cpu-throttled`, `disk-full`, `inodes-full`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultHit {
    pub kind: String,
    pub amount: u64,
}

/// A container ran into its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OveruseEvent {
    pub at: i64,
    pub tenant: Tenant,
    pub container: ContainerSpec,
    pub faults: Vec<FaultHit>,
    #[serde(default)]
    pub interval_seconds: u64,
}

/// What an overuse policy asks the panel to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "action", content = "value")]
pub enum OveruseAction {
    /// A message for the customer.
    Notify(String),
    /// New limits, for a while (`for_seconds`) or for good.
    Adjust {
        limits: Limits,
        for_seconds: Option<u64>,
    },
    /// Suspend the customer's account, with the reason shown to them.
    Suspend(String),
}

impl OveruseAction {
    /// A short word for records: `notify`, `adjust`, `suspend`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OveruseAction::Notify(_) => "notify",
            OveruseAction::Adjust { .. } => "adjust",
            OveruseAction::Suspend(_) => "suspend",
        }
    }
}

impl From<&FaultHit> for wit::Fault {
    fn from(f: &FaultHit) -> Self {
        wit::Fault {
            kind: f.kind.clone(),
            amount: f.amount,
        }
    }
}

impl From<&OveruseEvent> for wit::OveruseEvent {
    fn from(e: &OveruseEvent) -> Self {
        wit::OveruseEvent {
            at: e.at,
            tenant: (&e.tenant).into(),
            container: (&e.container).into(),
            faults: e.faults.iter().map(Into::into).collect(),
            interval_seconds: e.interval_seconds,
        }
    }
}

impl From<wit::OveruseAction> for OveruseAction {
    fn from(a: wit::OveruseAction) -> Self {
        match a {
            wit::OveruseAction::Notify(m) => OveruseAction::Notify(m),
            wit::OveruseAction::Adjust(adj) => OveruseAction::Adjust {
                limits: adj.limits.into(),
                for_seconds: adj.for_seconds,
            },
            wit::OveruseAction::Suspend(m) => OveruseAction::Suspend(m),
        }
    }
}

/// Refuses answers the panel cannot carry out as meant: too many actions, empty or
/// overlong messages, zero limits, adjustments for zero or more than 31 days.
pub(crate) fn check_actions(actions: Vec<OveruseAction>) -> Result<Vec<OveruseAction>, Failure> {
    if actions.len() > MAX_ACTIONS {
        return Err(Failure::BadOutput(format!(
            "{} overuse actions (at most {MAX_ACTIONS})",
            actions.len()
        )));
    }
    for action in &actions {
        match action {
            OveruseAction::Notify(m) | OveruseAction::Suspend(m) => {
                if m.trim().is_empty() || m.len() > MAX_MESSAGE {
                    return Err(Failure::BadOutput(format!(
                        "a {} message of {} bytes (1 to {MAX_MESSAGE}): {:?}",
                        action.as_str(),
                        m.len(),
                        clip(m, 80)
                    )));
                }
            }
            OveruseAction::Adjust {
                limits,
                for_seconds,
            } => {
                if limits.memory_bytes == 0
                    || limits.cpu_millis == 0
                    || limits.processes == 0
                    || limits.disk_bytes == 0
                {
                    return Err(Failure::BadOutput(
                        "an adjustment with a zero limit (memory, cpu, processes and disk \
                         must all be given)"
                            .into(),
                    ));
                }
                if let Some(s) = for_seconds {
                    if *s == 0 || *s > MAX_ADJUST_SECONDS {
                        return Err(Failure::BadOutput(format!(
                            "an adjustment for {s} seconds (1 to {MAX_ADJUST_SECONDS})"
                        )));
                    }
                }
            }
        }
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let ok = vec![
            OveruseAction::Notify("slow down".into()),
            OveruseAction::Adjust {
                limits: Limits::default(),
                for_seconds: Some(600),
            },
        ];
        assert_eq!(check_actions(ok.clone()).unwrap(), ok);
        let bad = |a: OveruseAction| check_actions(vec![a]).unwrap_err().to_string();
        assert!(bad(OveruseAction::Notify(" ".into())).contains("notify message"));
        assert!(bad(OveruseAction::Suspend("x".repeat(1001))).contains("suspend message"));
        assert!(bad(OveruseAction::Adjust {
            limits: Limits {
                cpu_millis: 0,
                ..Limits::default()
            },
            for_seconds: None
        })
        .contains("zero limit"));
        assert!(bad(OveruseAction::Adjust {
            limits: Limits::default(),
            for_seconds: Some(0)
        })
        .contains("for 0 seconds"));
        let many = vec![OveruseAction::Notify("x".into()); 9];
        assert!(check_actions(many).is_err());
        // The JSON of a recorded answer.
        let json = serde_json::to_string(&OveruseAction::Suspend("abuse".into())).unwrap();
        assert_eq!(json, r#"{"action":"suspend","value":"abuse"}"#);
    }
}
