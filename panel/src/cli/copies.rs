//! `acetate ct snapshot|snapshots|rollback|snapshot-delete|backup|backups|restore-backup|
//! forget-backups|export|import`: a container's snapshots, its backups in the provider's
//! repository, and portable archives.

use std::time::Duration;

use acetate_engine::backup::{BackupInfo, Retention};
use acetate_engine::snapshot::SnapshotInfo;
use acetate_engine::Engine;
use clap::Subcommand;

use super::output::{table, Output};

#[derive(Debug, Subcommand)]
pub enum CopiesCmd {
    /// Take a snapshot of a container (running or not; named from the time by default).
    Snapshot {
        name: String,
        snapshot: Option<String>,
    },
    /// List a container's snapshots.
    Snapshots { name: String },
    /// Roll a container back to a snapshot (a running one is stopped and started again).
    Rollback {
        name: String,
        snapshot: String,
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Delete a snapshot.
    SnapshotDelete { name: String, snapshot: String },
    /// Back a container up into the backup repository (--backup-repository).
    Backup { name: String },
    /// List the backups in the repository (of one container, or of all).
    Backups { name: Option<String> },
    /// Restore backup ID into container NAME (its own, or another of the same template).
    RestoreBackup {
        id: String,
        name: String,
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Write a container (running or not) to FILE as one portable archive (.tar.zst:
    /// config and layer, ids as inside the container).
    Export {
        name: String,
        file: std::path::PathBuf,
    },
    /// Create a container (stopped) from an archive of `ct export`, as NAME (its original
    /// name by default). Its template must be installed here.
    Import {
        file: std::path::PathBuf,
        name: Option<String>,
    },
    /// Forget a container's backups beyond the ones to keep, and prune the repository.
    ForgetBackups {
        name: String,
        #[arg(long)]
        keep_last: Option<u32>,
        #[arg(long)]
        keep_daily: Option<u32>,
        #[arg(long)]
        keep_weekly: Option<u32>,
        #[arg(long)]
        keep_monthly: Option<u32>,
    },
}

fn print_snapshots(list: &[SnapshotInfo]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                crate::domain::period::human(s.created_at as i64),
                acetate_engine::size::format_bytes(s.bytes),
                if s.live { "running" } else { "stopped" }.to_string(),
            ]
        })
        .collect();
    table(&["SNAPSHOT", "TAKEN", "SIZE", "CONTAINER WAS"], &rows);
}

fn print_backups(list: &[BackupInfo]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                b.id[..8].to_string(),
                b.container.clone(),
                crate::domain::period::human(b.time as i64),
                acetate_engine::size::format_bytes(b.bytes),
                acetate_engine::size::format_bytes(b.added),
            ]
        })
        .collect();
    table(&["ID", "CONTAINER", "TAKEN", "SIZE", "ADDED"], &rows);
}

pub fn run(engine: &Engine, out: &Output, cmd: CopiesCmd) -> acetate_engine::Result<i32> {
    let repo = engine.backup_repo();
    match cmd {
        CopiesCmd::Snapshot { name, snapshot } => {
            let s = engine.snapshot(&name, snapshot.as_deref(), None)?;
            out.print(&s, |s| println!("snapshot {} of {name} taken", s.name));
        }
        CopiesCmd::Snapshots { name } => {
            out.print(&engine.snapshots(&name)?, |l| print_snapshots(l))
        }
        CopiesCmd::Rollback {
            name,
            snapshot,
            timeout,
        } => {
            let info = engine.restore_snapshot(&name, &snapshot, Duration::from_secs(timeout))?;
            out.print(&info, |_| {
                println!("container {name} rolled back to {snapshot}")
            });
        }
        CopiesCmd::SnapshotDelete { name, snapshot } => {
            engine.delete_snapshot(&name, &snapshot)?;
            out.print(
                &serde_json::json!({ "name": name, "snapshot": snapshot, "deleted": true }),
                |_| println!("snapshot {snapshot} of {name} deleted"),
            );
        }
        CopiesCmd::Backup { name } => {
            let b = engine.backup(&name, repo, None)?;
            out.print(&b, |b| {
                println!(
                    "container {name} backed up: {} ({} in it, {} added)",
                    &b.id[..8],
                    acetate_engine::size::format_bytes(b.bytes),
                    acetate_engine::size::format_bytes(b.added)
                )
            });
        }
        CopiesCmd::Backups { name } => out.print(&engine.backups(repo, name.as_deref())?, |l| {
            print_backups(l)
        }),
        CopiesCmd::RestoreBackup { id, name, timeout } => {
            let info =
                engine.restore_backup(repo, &id, &name, Duration::from_secs(timeout), None)?;
            out.print(&info, |_| println!("backup {id} restored into {name}"));
        }
        CopiesCmd::Export { name, file } => {
            let bytes = engine.export(&name, &file)?;
            out.print(
                &serde_json::json!({ "name": name, "file": file, "bytes": bytes }),
                |_| {
                    println!(
                        "container {name} exported to {} ({})",
                        file.display(),
                        acetate_engine::size::format_bytes(bytes)
                    )
                },
            );
        }
        CopiesCmd::Import { file, name } => {
            let info = engine.import(&file, name.as_deref())?;
            out.print(&info, |i| {
                println!(
                    "container {} imported from {} (stopped)",
                    i.name,
                    file.display()
                )
            });
        }
        CopiesCmd::ForgetBackups {
            name,
            keep_last,
            keep_daily,
            keep_weekly,
            keep_monthly,
        } => {
            let keep = Retention {
                last: keep_last,
                daily: keep_daily,
                weekly: keep_weekly,
                monthly: keep_monthly,
            };
            let gone = engine.forget_backups(repo, &name, &keep)?;
            out.print(&gone, |g| {
                println!("{} backup(s) of {name} forgotten", g.len())
            });
        }
    }
    Ok(0)
}
