//! Creating a container: within the customer's plan and the reseller's pool, as the
//! reseller's hooks decide; the engine's part runs as an operation.

use acetate_engine::{ContainerSpec, Limits};

use super::{
    amended_limits, as_json, customer_plan, fits, outcome_text, plugin_spec, run_hooks, view,
};
use crate::db::operations::OperationRow;
use crate::domain::{quota, ContainerName, Plan, Role, Totals, User};
use crate::error::{AppError, AppResult};
use crate::service::hooks::Verdict;
use crate::service::operations::Done;
use crate::service::AppState;

/// What a customer asks for when creating a container (unset limits: the engine's
/// defaults, capped by the plan).
#[derive(Debug, Clone)]
pub struct NewContainer {
    pub name: ContainerName,
    pub template: Option<String>,
    pub memory: Option<u64>,
    pub cpus_milli: Option<u32>,
    pub disk: Option<u64>,
    pub inodes: Option<u64>,
    pub procs: Option<u64>,
    pub io_weight: Option<u32>,
    /// Disk I/O caps; unset ones are the plan's.
    pub io: acetate_engine::IoLimits,
    /// A backup of one of the customer's containers (its id, or the first 8+ hex digits)
    /// whose files the new container starts with; its template by default.
    pub from_backup: Option<String>,
}

impl NewContainer {
    pub fn named(name: ContainerName) -> NewContainer {
        NewContainer {
            name,
            template: None,
            memory: None,
            cpus_milli: None,
            disk: None,
            inodes: None,
            procs: None,
            io_weight: None,
            io: acetate_engine::IoLimits::default(),
            from_backup: None,
        }
    }

    fn spec(&self, owner: &User, engine_name: &str, plan: &Plan) -> AppResult<ContainerSpec> {
        let defaults = Limits::default();
        let cap = |v: u64, max: i64| v.min(max.max(0) as u64);
        let mut b = ContainerSpec::builder(engine_name)
            .template(
                self.template
                    .clone()
                    .unwrap_or_else(|| crate::service::templates::default_for(plan)),
            )
            .owner(Some(format!("panel:{}", owner.name)))
            .network(true)
            .no_egress(plan.egress == 0)
            .memory(self.memory.unwrap_or(cap(defaults.memory, plan.ct_memory)))
            .cpus_milli(
                self.cpus_milli
                    .unwrap_or(cap(u64::from(defaults.cpus_milli), plan.ct_cpus_milli) as u32),
            )
            .procs(self.procs.unwrap_or(cap(defaults.procs, plan.ct_procs)))
            .io(io_or_plan(&self.io, plan))
            .hostname(Some(hostname_of(self.name.as_str())))
            .disk(self.disk.unwrap_or(cap(defaults.disk, plan.ct_disk)));
        if let Some(i) = self.inodes {
            b = b.inodes(i);
        }
        if let Some(w) = self.io_weight {
            b = b.io_weight(w);
        }
        if let Some(init) = crate::service::plans::plan_init(plan) {
            b = b.init(init);
        }
        b.build()
            .map_err(|e| AppError::Unprocessable(e.to_string()))
    }
}

/// The customer's name for a container as a hostname: lower case, anything but letters,
/// digits and dashes turned into dashes, at most 63 characters.
fn hostname_of(name: &str) -> String {
    let h: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let h = h.trim_matches('-');
    if h.is_empty() {
        "container".to_string()
    } else {
        h.to_string()
    }
}

/// The requested I/O caps, the plan's where none is asked for.
fn io_or_plan(io: &acetate_engine::IoLimits, plan: &Plan) -> acetate_engine::IoLimits {
    let caps = plan.io_caps();
    acetate_engine::IoLimits {
        read_bps: io.read_bps.or(caps.read_bps),
        write_bps: io.write_bps.or(caps.write_bps),
        read_iops: io.read_iops.or(caps.read_iops),
        write_iops: io.write_iops.or(caps.write_iops),
    }
}

fn engine_name() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("ct-{n:016x}")
}

/// Creates and starts a container for customer `user`, within its plan and its
/// reseller's pool, as its reseller's hooks decide.
#[tracing::instrument(skip_all, fields(user = %user.name, container = %req.name))]
pub async fn create(st: &AppState, user: &User, req: NewContainer) -> AppResult<OperationRow> {
    if user.role() != Role::Customer {
        return Err(AppError::Forbidden(
            "containers belong to customers: create them from a customer account".into(),
        ));
    }
    if user.is_suspended() {
        return Err(AppError::Forbidden("your account is suspended".into()));
    }
    let plan = customer_plan(st, user).await?;
    // A taken name is the answer whatever the capacity (the reservation re-checks it).
    if st.db.container(user.id, req.name.as_str()).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "you already have a container named {:?}",
            req.name.as_str()
        )));
    }
    let mut req = req;
    let from_backup = match req.from_backup.take() {
        Some(id) => {
            let backup = super::copies::backup_of(st, user, &id).await?;
            match &req.template {
                Some(t) if t != &backup.template => {
                    return Err(AppError::Unprocessable(format!(
                        "template: backup {} is of template {:?}; leave the template out or \
                         give that one",
                        &backup.id[..8],
                        backup.template
                    )))
                }
                _ => req.template = Some(backup.template.clone()),
            }
            Some(backup.id)
        }
        None => None,
    };
    let engine_name = engine_name();
    let mut spec = req.spec(user, &engine_name, &plan)?;
    crate::service::templates::check_choice(st, &plan, &spec.template).await?;
    let mut name = req.name.to_string();
    let requested = plugin_spec(&name, &spec.template, &spec.limits);
    let (verdict, kv) = run_hooks(
        st,
        user,
        acetate_plugins::EventKind::Create,
        None,
        Some(requested),
    )
    .await?;
    if let Verdict::Amend(amended) = &verdict {
        spec.limits = amended_limits(&spec.limits, &amended.limits)?;
        if amended.template != spec.template {
            crate::service::templates::check_choice(st, &plan, &amended.template)
                .await
                .map_err(|e| {
                    AppError::Unprocessable(format!("your reseller's hook chose a template: {e}"))
                })?;
        }
        spec.template = amended.template.clone();
        if amended.name != name {
            ContainerName::parse(&amended.name).map_err(|e| {
                AppError::Unprocessable(format!("your reseller's hook renamed the container: {e}"))
            })?;
            if st.db.container(user.id, &amended.name).await?.is_some() {
                return Err(AppError::Conflict(format!(
                    "you already have a container named {:?} (the name your reseller's hook chose)",
                    amended.name
                )));
            }
            name = amended.name.clone();
        }
    }
    quota::check_io(&plan, &spec.limits.io).map_err(AppError::Quota)?;
    let holds = Totals::of(&spec.limits);
    let id = st
        .db
        .reserve_container(
            user.id,
            user.reseller_id.unwrap_or(-1),
            &name,
            &engine_name,
            &holds,
            fits(&plan, &holds, spec.limits.procs),
        )
        .await?;
    let target = format!("{}/{}", user.name, name);
    let (st2, user2, target2) = (st.clone(), user.clone(), target.clone());
    let work = async move {
        let en = engine_name.clone();
        let created = st2
            .change(&engine_name, move |e| {
                let info = e.create_and_start(&spec)?;
                let Some(id) = from_backup else {
                    return Ok(info);
                };
                // Nothing half-made: a container whose restore failed goes again.
                e.restore_backup(&id, &en, acetate_engine::DEFAULT_STOP_TIMEOUT)
                    .inspect_err(|_| {
                        let _ = e.destroy(&en, std::time::Duration::from_secs(5));
                    })
            })
            .await;
        st2.db
            .audit(
                Some(&user2),
                "container.create",
                &target2,
                &outcome_text(&created),
            )
            .await?;
        match created {
            Ok(info) => {
                st2.db.set_container_state(id, "ready").await?;
                kv.commit(&st2.db).await?;
                let row = st2
                    .db
                    .container(user2.id, &name)
                    .await?
                    .ok_or(AppError::NotFound)?;
                Ok(Done {
                    message: format!("container {name} created and started"),
                    result: as_json(&view(&row, Some(&info))),
                })
            }
            Err(e) => {
                st2.db.delete_container(id).await?;
                Err(e)
            }
        }
    };
    st.operations
        .spawn(user, "container.create", &target, Some(id), work)
        .await
}
