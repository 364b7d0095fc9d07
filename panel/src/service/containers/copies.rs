//! Snapshots and backups of a container in the caller's scope, within the owner's plan:
//! how many snapshots it keeps, the disk they take against the customer's allowance, and
//! which backups are kept. Taking, restoring and backing up are operations; the scheduled
//! backups of `serve` run through [`scheduled_backups`].

use std::sync::atomic::Ordering::Relaxed;

use acetate_engine::backup::{BackupInfo, BackupProgress};
use acetate_engine::snapshot::SnapshotInfo;

use super::{
    active_owner_of, as_json, customer_plan, outcome_text, owner_of, resolve, target, view,
};
use crate::db::operations::OperationRow;
use crate::db::ContainerRow;
use crate::domain::User;
use crate::error::{AppError, AppResult};
use crate::service::operations::Done;
use crate::service::AppState;

/// The snapshots of a container in the caller's scope, oldest first.
pub async fn snapshots(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<Vec<SnapshotInfo>> {
    let row = resolve(st, caller, name, owner).await?;
    let engine_name = row.engine_name.clone();
    st.engine(move |e| e.snapshots(&engine_name)).await
}

/// Host disk the customer's snapshots take, over all their containers.
async fn snapshot_bytes(st: &AppState, owner: &User) -> AppResult<u64> {
    let names: Vec<String> = st
        .db
        .containers_visible_to(owner)
        .await?
        .into_iter()
        .filter(|r| r.state == "ready")
        .map(|r| r.engine_name)
        .collect();
    st.engine(move |e| {
        let mut total = 0;
        for n in &names {
            total += e
                .snapshots(n)
                .map_or(0, |l| l.iter().map(|s| s.bytes).sum::<u64>());
        }
        Ok(total)
    })
    .await
}

/// Takes a snapshot (named from the time unless `snap` is given) within the plan: its
/// number of snapshots, and the customer's disk allowance, which snapshots count against
/// with the disk they really take.
pub async fn take_snapshot(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    snap: Option<String>,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = active_owner_of(st, &row).await?;
    let plan = customer_plan(st, &owner).await?;
    if plan.max_snapshots <= 0 {
        return Err(AppError::Quota(
            "your plan includes no snapshots: ask your reseller".into(),
        ));
    }
    if let Some(s) = &snap {
        acetate_engine::spec::validate_name(s)
            .map_err(|e| AppError::Unprocessable(format!("snapshot name: {e}")))?;
    }
    let containers = st.db.customer_totals(owner.id, -1).await?.disk.max(0) as u64;
    let taken = snapshot_bytes(st, &owner).await?;
    let this = st
        .snapshot
        .get(&row.engine_name)
        .and_then(|i| i.usage.disk)
        .map_or(0, |d| d.image_allocated);
    let allowance = plan.total_disk.max(0) as u64;
    if containers + taken + this > allowance {
        let b = acetate_engine::size::format_bytes;
        return Err(AppError::Quota(format!(
            "disk: your containers' disks ({}) and snapshots ({}) with this one (about {}) \
             would exceed your plan's {}: delete a snapshot first",
            b(containers),
            b(taken),
            b(this),
            b(allowance)
        )));
    }
    let max = plan.max_snapshots as usize;
    let engine_name = row.engine_name.clone();
    let existing = st.engine(move |e| e.snapshots(&engine_name)).await?;
    if existing.len() >= max {
        return Err(AppError::Quota(format!(
            "{} has {} snapshots, as many as your plan allows: delete one first",
            row.name,
            existing.len()
        )));
    }
    if let Some(s) = snap
        .as_ref()
        .filter(|s| existing.iter().any(|e| &e.name == *s))
    {
        return Err(AppError::Conflict(format!(
            "{} already has a snapshot called {s:?}",
            row.name
        )));
    }
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        let engine_name = row2.engine_name.clone();
        let result = st2
            .engine(move |e| e.snapshot(&engine_name, snap.as_deref(), Some(max)))
            .await;
        audit(&st2, &caller2, "container.snapshot", &row2, &result).await?;
        let info = result?;
        Ok(Done {
            message: format!("snapshot {} of {} taken", info.name, row2.name),
            result: serde_json::to_value(&info).ok(),
        })
    };
    st.operations
        .spawn(
            caller,
            "container.snapshot",
            &target(&row),
            Some(row.id),
            work,
        )
        .await
}

async fn audit<T>(
    st: &AppState,
    caller: &User,
    action: &str,
    row: &ContainerRow,
    result: &AppResult<T>,
) -> AppResult<()> {
    st.db
        .audit(Some(caller), action, &target(row), &outcome_text(result))
        .await
}

/// Rolls a container back to one of its snapshots (stopped and started again if it ran).
pub async fn restore_snapshot(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    snap: String,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    active_owner_of(st, &row).await?;
    let engine_name = row.engine_name.clone();
    let s = snap.clone();
    let known = st
        .engine(move |e| e.snapshots(&engine_name))
        .await?
        .iter()
        .any(|i| i.name == s);
    if !known {
        return Err(AppError::NotFound);
    }
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let work = async move {
        let engine_name = row2.engine_name.clone();
        let result = st2
            .change(&row2.engine_name, move |e| {
                e.restore_snapshot(&engine_name, &snap, acetate_engine::DEFAULT_STOP_TIMEOUT)
            })
            .await;
        audit(&st2, &caller2, "container.snapshot_restore", &row2, &result).await?;
        let info = result?;
        Ok(Done {
            message: format!("container {} restored from its snapshot", row2.name),
            result: as_json(&view(&row2, Some(&info))),
        })
    };
    st.operations
        .spawn(
            caller,
            "container.snapshot_restore",
            &target(&row),
            Some(row.id),
            work,
        )
        .await
}

/// Deletes one of a container's snapshots.
pub async fn delete_snapshot(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    snap: String,
) -> AppResult<()> {
    let row = resolve(st, caller, name, owner).await?;
    let engine_name = row.engine_name.clone();
    let result = st
        .engine(move |e| e.delete_snapshot(&engine_name, &snap))
        .await;
    audit(st, caller, "container.snapshot_delete", &row, &result).await?;
    result
}

/// A container's backups in the provider's repository, oldest first.
pub async fn backups(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<Vec<BackupInfo>> {
    let row = resolve(st, caller, name, owner).await?;
    let engine_name = row.engine_name.clone();
    st.engine(move |e| e.backups(Some(&engine_name))).await
}

/// The owner label the panel gives a customer's containers (and their backups).
fn owner_label(customer: &User) -> String {
    format!("panel:{}", customer.name)
}

/// Every backup of `customer`'s containers, those since destroyed included, oldest first.
pub async fn customer_backups(st: &AppState, customer: &User) -> AppResult<Vec<BackupInfo>> {
    let label = owner_label(customer);
    Ok(st
        .engine(|e| e.backups(None))
        .await?
        .into_iter()
        .filter(|b| b.owner.as_deref() == Some(label.as_str()))
        .collect())
}

/// One of `customer`'s backups by its id or a prefix of at least 8 hex digits.
pub async fn backup_of(st: &AppState, customer: &User, id: &str) -> AppResult<BackupInfo> {
    let wanted = id.to_ascii_lowercase();
    if wanted.len() < 8 {
        return Err(AppError::Unprocessable(
            "from_backup: give the backup's id (at least its first 8 hex digits)".into(),
        ));
    }
    customer_backups(st, customer)
        .await?
        .into_iter()
        .find(|b| b.id.starts_with(&wanted))
        .ok_or_else(|| AppError::Unprocessable(format!("from_backup: you have no backup {id:?}")))
}

/// Backs a container up now, then applies the plan's retention to its backups.
pub async fn backup(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
) -> AppResult<OperationRow> {
    let row = resolve(st, caller, name, owner).await?;
    let owner = active_owner_of(st, &row).await?;
    let plan = customer_plan(st, &owner).await?;
    let (st2, caller2, row2) = (st.clone(), caller.clone(), row.clone());
    let (id_tx, id_rx) = tokio::sync::oneshot::channel::<i64>();
    let work = async move {
        let progress = BackupProgress::default();
        // The operation's message says how far the backup got, every second.
        let reporter = id_rx.await.ok().map(|id| {
            let (db, p) = (st2.db.clone(), progress.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let (done, total) = (p.done.load(Relaxed), p.total.load(Relaxed));
                    if total > 0 {
                        let b = acetate_engine::size::format_bytes;
                        let text = format!("backing up: {} of {} read", b(done), b(total));
                        let _ = db.operation_progress(id, &text).await;
                    }
                }
            })
        });
        let result = back_up(&st2, &row2, &plan, Some(progress)).await;
        if let Some(r) = reporter {
            r.abort();
        }
        audit(&st2, &caller2, "container.backup", &row2, &result).await?;
        let info = result?;
        Ok(Done {
            message: format!("container {} backed up ({})", row2.name, &info.id[..8]),
            result: serde_json::to_value(&info).ok(),
        })
    };
    let op = st
        .operations
        .spawn(
            caller,
            "container.backup",
            &target(&row),
            Some(row.id),
            work,
        )
        .await?;
    let _ = id_tx.send(op.id);
    Ok(op)
}

/// One backup and the plan's retention after it.
async fn back_up(
    st: &AppState,
    row: &ContainerRow,
    plan: &crate::domain::Plan,
    progress: Option<BackupProgress>,
) -> AppResult<BackupInfo> {
    let engine_name = row.engine_name.clone();
    let keep = plan.retention();
    st.engine(move |e| {
        let info = e.backup(&engine_name, progress.as_ref())?;
        if !keep.is_empty() {
            e.forget_backups(&engine_name, &keep)?;
        }
        Ok(info)
    })
    .await
}

/// Restores backup `id` of container `name` into `into` (another container of the same
/// owner and template; `name` itself by default), replacing only that container's disk.
pub async fn restore_backup(
    st: &AppState,
    caller: &User,
    name: &str,
    owner: Option<&str>,
    id: String,
    into: Option<String>,
) -> AppResult<OperationRow> {
    let source = resolve(st, caller, name, owner).await?;
    let target_row = match &into {
        Some(other) => resolve(st, caller, other, Some(&source.owner)).await?,
        None => source.clone(),
    };
    active_owner_of(st, &target_row).await?;
    let engine_name = source.engine_name.clone();
    let wanted = id.to_ascii_lowercase();
    let found = st
        .engine(move |e| e.backups(Some(&engine_name)))
        .await?
        .into_iter()
        .find(|b| wanted.len() >= 8 && b.id.starts_with(&wanted));
    let Some(found) = found else {
        return Err(AppError::NotFound);
    };
    let (st2, caller2, row2) = (st.clone(), caller.clone(), target_row.clone());
    let work = async move {
        let engine_name = row2.engine_name.clone();
        let result = st2
            .change(&row2.engine_name, move |e| {
                e.restore_backup(
                    &found.id,
                    &engine_name,
                    acetate_engine::DEFAULT_STOP_TIMEOUT,
                )
            })
            .await;
        audit(&st2, &caller2, "container.backup_restore", &row2, &result).await?;
        let info = result?;
        Ok(Done {
            message: format!("container {} restored from a backup", row2.name),
            result: as_json(&view(&row2, Some(&info))),
        })
    };
    st.operations
        .spawn(
            caller,
            "container.backup_restore",
            &target(&target_row),
            Some(target_row.id),
            work,
        )
        .await
}

/// Backs up every container whose plan schedules backups and whose last backup is older
/// than the plan's interval (one at a time: backups read disks), applying each plan's
/// retention. Returns how many it took.
pub async fn scheduled_backups(st: &AppState) -> AppResult<usize> {
    let providers = st.db.users_with_role(crate::domain::Role::Provider).await?;
    let Some(provider) = providers.first() else {
        return Ok(0);
    };
    let rows: Vec<ContainerRow> = st
        .db
        .containers_visible_to(provider)
        .await?
        .into_iter()
        .filter(|r| r.state == "ready")
        .collect();
    let mut due = Vec::new();
    for row in rows {
        let owner = owner_of(st, &row).await?;
        let Some(plan) = (match owner.plan_id {
            Some(id) => st.db.plan(id).await?,
            None => None,
        }) else {
            continue;
        };
        if plan.backup_every_hours > 0 && !owner.is_suspended() {
            due.push((row, plan));
        }
    }
    if due.is_empty() {
        return Ok(0);
    }
    let last = st.engine(|e| e.backups(None)).await?;
    let now = crate::domain::now();
    let mut taken = 0;
    for (row, plan) in due {
        let newest = last
            .iter()
            .filter(|b| b.container == row.engine_name)
            .map(|b| b.time as i64)
            .max()
            .unwrap_or(0);
        if now - newest < plan.backup_every_hours * 3600 {
            continue;
        }
        let result = back_up(st, &row, &plan, None).await;
        st.db
            .audit(
                None,
                "container.backup",
                &target(&row),
                &outcome_text(&result),
            )
            .await?;
        match result {
            Ok(_) => taken += 1,
            Err(e) => tracing::warn!(container = %row.engine_name, error = %e, "scheduled backup"),
        }
    }
    Ok(taken)
}
