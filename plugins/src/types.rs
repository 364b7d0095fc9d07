//! The plugin contract's data as plain Rust values (serde: the JSON of `acetate plugin run
//! --event` and of recorded events), and their conversion to and from the WIT types.

use serde::{Deserialize, Serialize};

use crate::bindings::types as wit;

/// An amount in minor units with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

/// A container's limits (the engine's, in the units of the contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub memory_bytes: u64,
    pub cpu_millis: u32,
    pub processes: u32,
    pub disk_bytes: u64,
    pub inodes: u64,
    pub io_weight: u16,
}

impl Default for Limits {
    /// The engine's defaults: 512 MiB, one core, 512 processes, 2 GiB, 131072 inodes.
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            cpu_millis: 1000,
            processes: 512,
            disk_bytes: 2 << 30,
            inodes: (2 << 30) / 16384,
            io_weight: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    pub name: String,
    #[serde(default = "host_template")]
    pub template: String,
    #[serde(default)]
    pub limits: Limits,
}

fn host_template() -> String {
    "host".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    #[serde(default)]
    pub per_container: Limits,
    #[serde(default = "one")]
    pub max_containers: u32,
    pub monthly_price: Money,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub reseller: String,
    pub customer: String,
    #[serde(default)]
    pub plan: Option<Plan>,
    #[serde(default)]
    pub container_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Create,
    Resize,
    Suspend,
    Unsuspend,
    Destroy,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Create => "create",
            EventKind::Resize => "resize",
            EventKind::Suspend => "suspend",
            EventKind::Unsuspend => "unsuspend",
            EventKind::Destroy => "destroy",
        }
    }
}

/// An event a provisioning hook decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub kind: EventKind,
    pub at: i64,
    pub tenant: Tenant,
    #[serde(default)]
    pub current: Option<ContainerSpec>,
    #[serde(default)]
    pub requested: Option<ContainerSpec>,
}

/// A hook's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "decision", content = "value")]
pub enum Decision {
    Allow,
    Deny(String),
    Amend(ContainerSpec),
}

/// Metered usage of one container over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerUsage {
    pub name: String,
    pub seconds_existing: u64,
    pub seconds_running: u64,
    pub cpu_millis: u64,
    pub memory_average_bytes: u64,
    pub memory_peak_bytes: u64,
    pub disk_average_bytes: u64,
    pub disk_peak_bytes: u64,
    pub inodes_peak: u64,
    pub processes_peak: u32,
    pub network_rx_bytes: u64,
    pub network_tx_bytes: u64,
    pub limits: Limits,
}

/// What a billing rule rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingInput {
    pub period: String,
    pub period_start: i64,
    pub period_end: i64,
    pub tenant: Tenant,
    pub currency: String,
    #[serde(default)]
    pub containers: Vec<ContainerUsage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity_millis: u64,
    pub unit: String,
    pub amount: Money,
}

// Conversions to and from the generated WIT types.

impl From<&Money> for wit::Money {
    fn from(m: &Money) -> Self {
        wit::Money {
            amount: m.amount,
            currency: m.currency.clone(),
        }
    }
}

impl From<wit::Money> for Money {
    fn from(m: wit::Money) -> Self {
        Money {
            amount: m.amount,
            currency: m.currency,
        }
    }
}

impl From<&Limits> for wit::Limits {
    fn from(l: &Limits) -> Self {
        wit::Limits {
            memory_bytes: l.memory_bytes,
            cpu_millis: l.cpu_millis,
            processes: l.processes,
            disk_bytes: l.disk_bytes,
            inodes: l.inodes,
            io_weight: l.io_weight,
        }
    }
}

impl From<wit::Limits> for Limits {
    fn from(l: wit::Limits) -> Self {
        Limits {
            memory_bytes: l.memory_bytes,
            cpu_millis: l.cpu_millis,
            processes: l.processes,
            disk_bytes: l.disk_bytes,
            inodes: l.inodes,
            io_weight: l.io_weight,
        }
    }
}

impl From<&ContainerSpec> for wit::ContainerSpec {
    fn from(s: &ContainerSpec) -> Self {
        wit::ContainerSpec {
            name: s.name.clone(),
            template: s.template.clone(),
            limits: (&s.limits).into(),
        }
    }
}

impl From<wit::ContainerSpec> for ContainerSpec {
    fn from(s: wit::ContainerSpec) -> Self {
        ContainerSpec {
            name: s.name,
            template: s.template,
            limits: s.limits.into(),
        }
    }
}

impl From<&Plan> for wit::Plan {
    fn from(p: &Plan) -> Self {
        wit::Plan {
            name: p.name.clone(),
            per_container: (&p.per_container).into(),
            max_containers: p.max_containers,
            monthly_price: (&p.monthly_price).into(),
        }
    }
}

impl From<&Tenant> for wit::Tenant {
    fn from(t: &Tenant) -> Self {
        wit::Tenant {
            reseller: t.reseller.clone(),
            customer: t.customer.clone(),
            plan: t.plan.as_ref().map(Into::into),
            container_count: t.container_count,
        }
    }
}

impl From<EventKind> for wit::EventKind {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::Create => wit::EventKind::Create,
            EventKind::Resize => wit::EventKind::Resize,
            EventKind::Suspend => wit::EventKind::Suspend,
            EventKind::Unsuspend => wit::EventKind::Unsuspend,
            EventKind::Destroy => wit::EventKind::Destroy,
        }
    }
}

impl From<&Event> for wit::Event {
    fn from(e: &Event) -> Self {
        wit::Event {
            kind: e.kind.into(),
            at: e.at,
            tenant: (&e.tenant).into(),
            current: e.current.as_ref().map(Into::into),
            requested: e.requested.as_ref().map(Into::into),
        }
    }
}

impl From<wit::Decision> for Decision {
    fn from(d: wit::Decision) -> Self {
        match d {
            wit::Decision::Allow => Decision::Allow,
            wit::Decision::Deny(message) => Decision::Deny(message),
            wit::Decision::Amend(spec) => Decision::Amend(spec.into()),
        }
    }
}

impl From<&ContainerUsage> for wit::ContainerUsage {
    fn from(u: &ContainerUsage) -> Self {
        wit::ContainerUsage {
            name: u.name.clone(),
            seconds_existing: u.seconds_existing,
            seconds_running: u.seconds_running,
            cpu_millis: u.cpu_millis,
            memory_average_bytes: u.memory_average_bytes,
            memory_peak_bytes: u.memory_peak_bytes,
            disk_average_bytes: u.disk_average_bytes,
            disk_peak_bytes: u.disk_peak_bytes,
            inodes_peak: u.inodes_peak,
            processes_peak: u.processes_peak,
            network_rx_bytes: u.network_rx_bytes,
            network_tx_bytes: u.network_tx_bytes,
            limits: (&u.limits).into(),
        }
    }
}

impl From<&BillingInput> for wit::BillingInput {
    fn from(b: &BillingInput) -> Self {
        wit::BillingInput {
            period: b.period.clone(),
            period_start: b.period_start,
            period_end: b.period_end,
            tenant: (&b.tenant).into(),
            currency: b.currency.clone(),
            containers: b.containers.iter().map(Into::into).collect(),
        }
    }
}

impl From<wit::InvoiceLine> for InvoiceLine {
    fn from(l: wit::InvoiceLine) -> Self {
        InvoiceLine {
            description: l.description,
            quantity_millis: l.quantity_millis,
            unit: l.unit,
            amount: l.amount.into(),
        }
    }
}
