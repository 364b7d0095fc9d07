//! Changing a container in the caller's scope: resize, reinstall, start, stop, restart,
//! destroy (each an operation), and one-shot commands.

use acetate_engine::{Limits, LimitsUpdate};

use super::{
    active_owner_of, amended_limits, as_json, customer_plan, final_sample, fits, outcome_text,
    owner_of, plugin_spec, reserve_limits, resolve, run_hooks, target, view,
};
use crate::db::operations::OperationRow;
use crate::db::ContainerRow;
use crate::domain::{quota, Totals, User};
use crate::error::{AppError, AppResult};
use crate::runtime::CommandOutcome;
use crate::service::hooks::Verdict;
use crate::service::operations::Done;
use crate::service::AppState;

/// New limits for a container; unset ones stay as they are.
#[derive(Debug, Clone, Default)]
pub struct Resize {
    pub memory: Option<u64>,
    pub cpus_milli: Option<u32>,
    pub disk: Option<u64>,
    pub procs: Option<u64>,
    /// New disk I/O caps (`Some(0)` lifts one, where the plan allows).
    pub io: acetate_engine::IoLimits,
}

/// Resizes a container within the owner's plan and the reseller's pool (live if running).
pub async fn resize(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    req: Resize,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = owner_of(st, &row).await?;
    let plan = customer_plan(st, &owner).await?;
    let update = LimitsUpdate {
        memory: req.memory,
        cpus_milli: req.cpus_milli,
        disk: req.disk,
        procs: req.procs,
        io: req.io,
        ..Default::default()
    };
    if update.is_empty() {
        return Err(AppError::Unprocessable(
            "give at least one of memory, cpus, disk, procs, io".into(),
        ));
    }
    let engine_name = row.engine_name.clone();
    let current = st.engine(move |e| e.show(&engine_name)).await?;
    let mut next = update.applied_to(&current.limits);
    next.validate()
        .map_err(|e| AppError::Unprocessable(e.to_string()))?;
    let (verdict, kv) = run_hooks(
        st,
        &owner,
        acetate_plugins::EventKind::Resize,
        Some(plugin_spec(&row.name, &current.template, &current.limits)),
        Some(plugin_spec(&row.name, &current.template, &next)),
    )
    .await?;
    let update = match &verdict {
        Verdict::Amend(amended) => {
            next = amended_limits(&next, &amended.limits)?;
            LimitsUpdate {
                memory: Some(next.memory),
                cpus_milli: Some(next.cpus_milli),
                disk: Some(next.disk),
                procs: Some(next.procs),
                io: update.io,
                ..Default::default()
            }
        }
        _ => update,
    };
    quota::check_io(&plan, &next.io).map_err(AppError::Quota)?;
    reserve_limits(st, &row, &owner, &plan, &next).await?;
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        let engine_name = row2.engine_name.clone();
        let result = st2
            .change(&row2.engine_name, move |e| e.set(&engine_name, &update))
            .await;
        st2.db
            .audit(
                Some(&caller2),
                "container.resize",
                &target(&row2),
                &outcome_text(&result),
            )
            .await?;
        // What it holds is what it has: the new limits, or the old ones if that failed.
        let limits = match &result {
            Ok(info) => info.limits.clone(),
            Err(_) => current.limits.clone(),
        };
        st2.db
            .set_container_holds(row2.id, &Totals::of(&limits))
            .await?;
        let info = result?;
        kv.commit(&st2.db).await?;
        // Limits set on purpose replace a reseller policy's temporary ones for good.
        st2.db.delete_revert(row2.id).await?;
        Ok(Done {
            message: format!("container {} resized", row2.name),
            result: as_json(&view(&row2, Some(&info))),
        })
    };
    st.operations
        .spawn(
            caller,
            "container.resize",
            &target(&row),
            Some(row.id),
            work,
        )
        .await
}

/// Reinstalls a container in the caller's scope: a fresh writable layer, same limits
/// (checked against the plan and pool again, like any other path).
pub async fn reinstall(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    template: Option<String>,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = active_owner_of(st, &row).await?;
    let plan = customer_plan(st, &owner).await?;
    if let Some(t) = &template {
        crate::service::templates::check_choice(st, &plan, t).await?;
    }
    let holds = Totals {
        containers: 1,
        memory: row.memory,
        cpus_milli: row.cpus_milli,
        disk: row.disk,
    };
    let procs = st
        .snapshot
        .get(&row.engine_name)
        .map_or(0, |i| i.limits.procs);
    st.db
        .reserve_holds(
            row.id,
            owner.id,
            owner.reseller_id.unwrap_or(-1),
            &holds,
            fits(&plan, &holds, procs),
        )
        .await?;
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        final_sample(&st2, &row2.engine_name).await;
        let engine_name = row2.engine_name.clone();
        let result = st2
            .change(&row2.engine_name, move |e| {
                e.reinstall(
                    &engine_name,
                    template.as_deref(),
                    acetate_engine::DEFAULT_STOP_TIMEOUT,
                )
            })
            .await;
        st2.db
            .audit(
                Some(&caller2),
                "container.reinstall",
                &target(&row2),
                &outcome_text(&result),
            )
            .await?;
        let info = result?;
        Ok(Done {
            message: format!("container {} reinstalled", row2.name),
            result: as_json(&view(&row2, Some(&info))),
        })
    };
    st.operations
        .spawn(
            caller,
            "container.reinstall",
            &target(&row),
            Some(row.id),
            work,
        )
        .await
}

/// What `act` does to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Action::Start => "started",
            Action::Stop => "stopped",
            Action::Restart => "restarted",
        }
    }
}

/// Starts, stops or restarts a container in the caller's scope. A suspended owner's
/// containers may be stopped, not started.
pub async fn act(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    action: Action,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    if action != Action::Stop {
        active_owner_of(st, &row).await?;
    }
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        if action != Action::Start {
            final_sample(&st2, &row2.engine_name).await;
        }
        let engine_name = row2.engine_name.clone();
        let timeout = acetate_engine::DEFAULT_STOP_TIMEOUT;
        let result = st2
            .change(&row2.engine_name, move |e| match action {
                Action::Start => e.start(&engine_name),
                Action::Stop => e.stop(&engine_name, timeout),
                Action::Restart => e.restart(&engine_name, timeout),
            })
            .await;
        st2.db
            .audit(
                Some(&caller2),
                &format!("container.{}", action.as_str()),
                &target(&row2),
                &outcome_text(&result),
            )
            .await?;
        let info = result?;
        Ok(Done {
            message: format!("container {} {}", row2.name, action.done()),
            result: as_json(&view(&row2, Some(&info))),
        })
    };
    let kind = format!("container.{}", action.as_str());
    st.operations
        .spawn(caller, &kind, &target(&row), Some(row.id), work)
        .await
}

/// Destroys a container in the caller's scope, if the owner's reseller's hooks allow.
pub async fn destroy(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = owner_of(st, &row).await?;
    let limits = Limits {
        memory: row.memory.max(0) as u64,
        cpus_milli: row.cpus_milli.clamp(0, i64::from(u32::MAX)) as u32,
        disk: row.disk.max(0) as u64,
        ..Limits::default()
    };
    let current = match st.snapshot.get(&row.engine_name) {
        Some(info) => plugin_spec(&row.name, &info.template, &info.limits),
        None => plugin_spec(&row.name, "host", &limits),
    };
    let (_, kv) = run_hooks(
        st,
        &owner,
        acetate_plugins::EventKind::Destroy,
        Some(current),
        None,
    )
    .await?;
    st.db.set_container_state(row.id, "destroying").await?;
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        let result = finish_destroy(&st2, &row2).await;
        st2.db
            .audit(
                Some(&caller2),
                "container.destroy",
                &target(&row2),
                &outcome_text(&result),
            )
            .await?;
        result?;
        kv.commit(&st2.db).await?;
        Ok(Done {
            message: format!("container {} destroyed", row2.name),
            result: None,
        })
    };
    st.operations
        .spawn(
            caller,
            "container.destroy",
            &target(&row),
            Some(row.id),
            work,
        )
        .await
}

/// Destroys every container of `owner` (an account being deleted), each sampled for
/// billing first; stops at the first failure, leaving the rest as they are.
pub async fn destroy_all_of(st: &AppState, owner: &User) -> AppResult<usize> {
    let rows = st.db.containers_visible_to(owner).await?;
    for row in &rows {
        st.db.set_container_state(row.id, "destroying").await?;
        finish_destroy(st, row).await?;
    }
    Ok(rows.len())
}

/// The engine's part of a destroy (also finishing one a panel restart interrupted): the
/// row goes once the container is gone; if the engine fails, the container stays usable.
pub(super) async fn finish_destroy(st: &AppState, row: &ContainerRow) -> AppResult<()> {
    // On a full disk the reserve makes room for the database writes of a destroy.
    let _ = st.engine(|e| e.relieve_disk()).await;
    final_sample(st, &row.engine_name).await;
    let engine_name = row.engine_name.clone();
    let result = st
        .change(&row.engine_name, move |e| {
            e.destroy(&engine_name, acetate_engine::DEFAULT_STOP_TIMEOUT)
        })
        .await;
    match result {
        Ok(()) => st.db.delete_container(row.id).await,
        Err(e) => {
            st.db.set_container_state(row.id, "ready").await?;
            Err(e)
        }
    }
}

/// Runs a command in a container of the caller's scope, within the caller's share of
/// concurrent commands, its timeout and the output bound.
pub async fn exec(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    command: Vec<String>,
    timeout_seconds: Option<u64>,
) -> AppResult<CommandOutcome> {
    if command.is_empty() {
        return Err(AppError::Unprocessable(
            "command: give at least the program to run".into(),
        ));
    }
    let timeout = st.exec.timeout(timeout_seconds)?;
    let row = resolve(st, caller, name, owner).await?;
    let _permit = st.exec.admit(caller.id)?;
    let max_output = st.exec.limits().max_output;
    let done = st
        .runtime
        .run_command(&row.engine_name, command, timeout, max_output)
        .await?;
    let mut result = format!("exit {}", done.exit_code);
    if done.timed_out {
        result.push_str(", timed out");
    }
    if done.truncated {
        result.push_str(", output cut");
    }
    st.db
        .audit(Some(caller), "container.exec", &target(&row), &result)
        .await?;
    Ok(done)
}
