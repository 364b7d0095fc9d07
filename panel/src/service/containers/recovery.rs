//! What a panel finishes or fails at start: operations whose panel is gone, and container
//! rows a crash left half-way.

use super::change::finish_destroy;
use super::target;
use crate::error::AppResult;
use crate::service::operations::{host_id, Runner, STALE_AFTER};
use crate::service::AppState;

/// At start: the operations of panel processes that are gone are finished or failed,
/// then container rows a crash left half-way (with no operation running on them) are
/// finished off. An interrupted create is undone (nothing half-made stays), an interrupted
/// destroy is completed, anything else is failed with the container's state now.
pub async fn recover_operations(st: &AppState) -> AppResult<()> {
    let now = crate::domain::now();
    let here = host_id();
    for op in st.db.running_operations().await? {
        if op.runner == st.operations.runner() {
            continue;
        }
        let runner = Runner::parse(&op.runner);
        let local = runner.as_ref().is_some_and(|r| r.host == here);
        let orphan = match &runner {
            Some(r) if local => !r.is_alive_here(),
            _ => op.updated_at < now - STALE_AFTER,
        };
        if !orphan {
            continue;
        }
        let row = match op.container_id {
            Some(id) => st.db.container_by_id(id).await?,
            None => None,
        };
        let (ok, message) = match (op.kind.as_str(), row) {
            ("container.create", Some(row)) if local => {
                let engine_name = row.engine_name.clone();
                st.engine(move |e| e.destroy(&engine_name, acetate_engine::DEFAULT_STOP_TIMEOUT))
                    .await?;
                st.db.delete_container(row.id).await?;
                (
                    false,
                    "interrupted: the panel stopped while creating the container; nothing was kept"
                        .to_string(),
                )
            }
            ("container.destroy", Some(row)) if local => match finish_destroy(st, &row).await {
                Ok(()) => (
                    true,
                    format!(
                        "container {} destroyed (finished after a panel restart)",
                        row.name
                    ),
                ),
                Err(e) => (false, format!("interrupted by a panel restart, then: {e}")),
            },
            (_, Some(row)) => {
                let state = st
                    .snapshot
                    .get(&row.engine_name)
                    .map_or("unknown".to_string(), |i| i.state.to_string());
                (false, format!("interrupted: the panel stopped before this finished; the container is {state} now"))
            }
            (_, None) => (
                false,
                "interrupted: the panel stopped before this finished".to_string(),
            ),
        };
        let code = (!ok).then_some("interrupted");
        st.db
            .finish_operation(op.id, ok, &message, code, None)
            .await?;
        st.db
            .audit(None, &op.kind, &op.target, &format!("recovered: {message}"))
            .await?;
        tracing::warn!(id = op.id, kind = %op.kind, target = %op.target, %message, "operation recovered");
    }
    for row in st.db.unfinished_containers().await? {
        if st.db.container_busy(row.id).await? {
            continue;
        }
        let name = row.engine_name.clone();
        let result = st
            .engine(move |e| e.destroy(&name, std::time::Duration::from_secs(10)))
            .await;
        match result {
            Ok(()) => {
                st.db.delete_container(row.id).await?;
                st.db
                    .audit(None, "container.reconcile", &target(&row), "removed")
                    .await?;
            }
            Err(e) => {
                tracing::error!(container = %row.engine_name, error = %e, "reconcile failed")
            }
        }
    }
    Ok(())
}

/// Containers destroyed behind the panel's back (with the CLI, or lost with the host's
/// disk): their rows go, and their owners find out from an operation that says so (and the
/// audit log). Only containers missing from the snapshot are looked up again.
pub async fn reconcile_vanished(st: &AppState) -> AppResult<usize> {
    let mut gone = 0;
    for row in st.db.metered_containers(None).await? {
        if st.snapshot.get(&row.engine_name).is_some() {
            continue;
        }
        let name = row.engine_name.clone();
        let exists = st
            .engine(move |e| match e.show(&name) {
                Ok(_) => Ok(true),
                Err(acetate_engine::Error::NoSuchContainer(_)) => Ok(false),
                Err(e) => Err(e),
            })
            .await?;
        if exists || st.db.container_busy(row.id).await? {
            continue;
        }
        let owner = st.db.user_name(row.owner_id).await?;
        let target = format!("{owner}/{}", row.name);
        let message = format!(
            "container {} was destroyed outside the panel (on the host): its record is removed",
            row.name
        );
        st.db.delete_container(row.id).await?;
        st.operations
            .record_finished(
                row.owner_id,
                "container.vanished",
                &target,
                false,
                &message,
                Some("not_found"),
            )
            .await?;
        st.db
            .audit(None, "container.vanished", &target, "removed")
            .await?;
        tracing::warn!(container = %target, "destroyed outside the panel");
        gone += 1;
    }
    Ok(gone)
}

/// What the settler saw at its last pass: the systemd containers then running, whose stop
/// since makes them worth a look (a systemd exits by itself when halted inside). Stopped
/// containers are not looked at again and again: the cost follows what changed.
#[derive(Debug, Default)]
pub struct HaltWatch {
    systemd_running: std::collections::HashSet<String>,
}

/// Containers halted or rebooted from inside (a customer's `halt` or `reboot`), which
/// their init cannot finish in a container: the engine stops them, or starts them again,
/// and their owners find an operation saying so. Looked at: the containers the snapshot
/// shows running SysV init, and those running systemd at the last pass and stopped now;
/// those made outside the panel are settled too, only logged.
pub async fn settle_inside_halts(st: &AppState, watch: &mut HaltWatch) -> AppResult<usize> {
    use acetate_engine::spec::{Halt, Init};
    use acetate_engine::State;
    let mut names = Vec::new();
    let mut running = std::collections::HashSet::new();
    for c in st.snapshot.all() {
        match (c.state, c.init) {
            (State::Running, Init::Sysvinit) => names.push(c.name.clone()),
            (State::Running, Init::Systemd) => {
                running.insert(c.name.clone());
            }
            (State::Stopped, Init::Systemd) if watch.systemd_running.contains(&c.name) => {
                names.push(c.name.clone())
            }
            _ => {}
        }
    }
    if names.is_empty() {
        watch.systemd_running = running;
        return Ok(0);
    }
    // On an error the watch stays as it was: the same containers are looked at again.
    let settled = st.engine(move |e| e.settle_halts(&names)).await?;
    watch.systemd_running = running;
    for (engine_name, halt, outcome) in &settled {
        let Some(row) = st.db.container_by_engine_name(engine_name).await? else {
            continue;
        };
        let target = format!("{}/{}", row.owner, row.name);
        let (kind, message) = match (halt, outcome) {
            (Halt::PowerOff, _) => (
                "container.halted",
                format!(
                    "container {} was shut down from inside: it is stopped",
                    row.name
                ),
            ),
            (Halt::Reboot, Ok(())) => (
                "container.rebooted",
                format!(
                    "container {} was rebooted from inside: it started again",
                    row.name
                ),
            ),
            (Halt::Reboot, Err(e)) => (
                "container.rebooted",
                format!(
                    "container {} was rebooted from inside, but did not start again: {e}",
                    row.name
                ),
            ),
        };
        let failed = outcome.as_ref().err().map(|_| "start_failed");
        st.operations
            .record_finished(
                row.owner_id,
                kind,
                &target,
                failed.is_none(),
                &message,
                failed,
            )
            .await?;
        st.db.audit(None, kind, &target, "from inside").await?;
    }
    let changed: Vec<String> = settled.iter().map(|(n, _, _)| n.clone()).collect();
    st.changed(changed).await?;
    Ok(settled.len())
}
