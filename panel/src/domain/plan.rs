//! Plans (what a reseller sells), pools (what the provider gives a reseller) and what
//! containers hold of them.

use sqlx::FromRow;

/// The most a reseller's customers may hold, set by the provider.
#[derive(Debug, Clone, Copy, FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Pool {
    #[serde(skip_deserializing)]
    pub reseller_id: i64,
    pub memory: i64,
    pub cpus_milli: i64,
    pub disk: i64,
    pub containers: i64,
}

/// A reseller's plan.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct Plan {
    pub id: i64,
    pub reseller_id: i64,
    pub name: String,
    pub ct_memory: i64,
    pub ct_cpus_milli: i64,
    pub ct_disk: i64,
    pub ct_procs: i64,
    pub max_containers: i64,
    pub total_memory: i64,
    pub total_cpus_milli: i64,
    pub total_disk: i64,
    pub price_minor: i64,
    pub currency: String,
    pub created_at: i64,
    /// Disk I/O caps of each container (0: none): bytes and operations per second.
    pub ct_io_read_bps: i64,
    pub ct_io_write_bps: i64,
    pub ct_io_read_iops: i64,
    pub ct_io_write_iops: i64,
    /// Templates its customers may choose, comma-separated; empty: every one.
    pub templates: String,
    /// Snapshots each container may keep (0: none).
    pub max_snapshots: i64,
    /// Hours between the panel's backups of each container (0: only when asked).
    pub backup_every_hours: i64,
    /// Backups kept per container: the last N, and one per day, week, month (0: rule off).
    pub backup_keep_last: i64,
    pub backup_keep_daily: i64,
    pub backup_keep_weekly: i64,
    pub backup_keep_monthly: i64,
    /// 1: its containers reach the outside; 0: only the host's open ports and forwards.
    pub egress: i64,
    /// 1: its containers keep Acetate's minimal init even where the template has its own (systemd, SysV init).
    pub minimal_init: i64,
}

impl Plan {
    /// Checks that the plan makes sense: every limit above zero, each container's within
    /// the customer's totals. The refusal names the field.
    pub fn check(&self) -> Result<(), String> {
        let b = |v: i64| acetate_engine::size::format_bytes(v.max(0) as u64);
        let c = |v: i64| acetate_engine::size::format_cpus(v.clamp(0, i64::from(u32::MAX)) as u32);
        let positive = [
            ("container memory", self.ct_memory),
            ("container cpus", self.ct_cpus_milli),
            ("container disk", self.ct_disk),
            ("container procs", self.ct_procs),
            ("customer containers", self.max_containers),
            ("customer memory", self.total_memory),
            ("customer cpus", self.total_cpus_milli),
            ("customer disk", self.total_disk),
        ];
        if let Some((what, _)) = positive.iter().find(|(_, v)| *v <= 0) {
            return Err(format!("{what} must be above zero"));
        }
        if self.price_minor < 0 {
            return Err("price cannot be negative".into());
        }
        if self.ct_memory > self.total_memory {
            return Err(format!(
                "container memory {} is above the customer's total {}",
                b(self.ct_memory),
                b(self.total_memory)
            ));
        }
        if self.ct_cpus_milli > self.total_cpus_milli {
            return Err(format!(
                "container cpus {} are above the customer's total {}",
                c(self.ct_cpus_milli),
                c(self.total_cpus_milli)
            ));
        }
        if self.ct_disk > self.total_disk {
            return Err(format!(
                "container disk {} is above the customer's total {}",
                b(self.ct_disk),
                b(self.total_disk)
            ));
        }
        Ok(())
    }

    /// Which backups of each container the plan keeps.
    pub fn retention(&self) -> acetate_engine::backup::Retention {
        let n = |v: i64| (v > 0).then(|| v.min(i64::from(u32::MAX)) as u32);
        acetate_engine::backup::Retention {
            last: n(self.backup_keep_last),
            daily: n(self.backup_keep_daily),
            weekly: n(self.backup_keep_weekly),
            monthly: n(self.backup_keep_monthly),
        }
    }

    /// The templates the plan offers; `None`: every installed one.
    pub fn allowed_templates(&self) -> Option<Vec<&str>> {
        let list: Vec<&str> = self
            .templates
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        (!list.is_empty()).then_some(list)
    }

    /// Whether a customer on this plan may use `template`.
    pub fn offers(&self, template: &str) -> bool {
        self.allowed_templates()
            .is_none_or(|list| list.contains(&template))
    }

    /// The plan's I/O caps as the engine takes them.
    pub fn io_caps(&self) -> acetate_engine::IoLimits {
        let cap = |v: i64| (v > 0).then_some(v as u64);
        acetate_engine::IoLimits {
            read_bps: cap(self.ct_io_read_bps),
            write_bps: cap(self.ct_io_write_bps),
            read_iops: cap(self.ct_io_read_iops),
            write_iops: cap(self.ct_io_write_iops),
        }
    }
}

/// What a set of containers holds.
#[derive(
    Debug, Clone, Copy, Default, FromRow, serde::Serialize, PartialEq, Eq, utoipa::ToSchema,
)]
pub struct Totals {
    pub containers: i64,
    pub memory: i64,
    pub cpus_milli: i64,
    pub disk: i64,
}

impl Totals {
    /// What one container with `limits` holds of plans and pools.
    pub fn of(limits: &acetate_engine::Limits) -> Totals {
        Totals {
            containers: 1,
            memory: limits.memory as i64,
            cpus_milli: i64::from(limits.cpus_milli),
            disk: limits.disk as i64,
        }
    }
}
