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
