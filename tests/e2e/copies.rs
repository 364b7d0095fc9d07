//! Snapshots and backups from the outside: the API within a customer's plan and scope,
//! and the CLI killed (SIGKILL) in the middle of a snapshot, a backup and a restore.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use acetate_engine::testing::{unique_name, CRASH_AT};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::api::{customer, reseller_with_plan, roomy_pool};
use crate::support::{state_dir, Server};

fn plan(max_snapshots: i64) -> Value {
    json!({"name": "basic", "price_minor": 500, "currency": "EUR",
           "container": {"memory": "512M", "cpus": 1, "disk": "256M", "procs": 256},
           "customer": {"containers": 3, "memory": "2G", "cpus": 4, "disk": "1G"},
           "copies": {"max_snapshots": max_snapshots, "keep_last": 2}})
}

#[tokio::test]
async fn customers_snapshot_back_up_and_restore_within_their_plan() {
    let Some(state) = state_dir("customers_snapshot_back_up_and_restore_within_their_plan") else {
        return;
    };
    let repo = tempfile::tempdir().unwrap();
    let repo_path = repo.path().join("repo");
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/panel.db?mode=rwc", dir.path().display());
    let server = Server::start_with(
        &state,
        &db,
        "127.0.0.1:0",
        &[("ACETATE_BACKUP_REPOSITORY", repo_path.to_str().unwrap())],
    );
    let http = Client::new();
    let (_provider, reseller) =
        reseller_with_plan(&server, &http, "res-copies", plan(2), roomy_pool()).await;
    let alice = customer(&server, &http, &reseller, "alice-copies").await;
    let bob = customer(&server, &http, &reseller, "bob-copies").await;
    for name in ["web", "spare"] {
        let (status, body) = alice
            .post(
                "/api/v1/containers",
                json!({"name": name, "memory": "128M", "disk": "128M"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let exec = |cmd: &str| json!({"command": ["sh", "-c", cmd]});
    let (status, out) = alice
        .post(
            "/api/v1/containers/web/exec",
            exec("echo first > /root/note"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");

    // Snapshots: take, list, change, roll back.
    let (status, snap) = alice
        .post(
            "/api/v1/containers/web/snapshots",
            json!({"name": "before"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{snap}");
    assert_eq!(
        (snap["name"].as_str(), snap["live"].as_bool()),
        (Some("before"), Some(true))
    );
    alice
        .post(
            "/api/v1/containers/web/exec",
            exec("echo second > /root/note"),
        )
        .await;
    let (status, body) = alice
        .post("/api/v1/containers/web/snapshots/before/restore", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "running");
    let (_, out) = alice
        .post("/api/v1/containers/web/exec", exec("cat /root/note"))
        .await;
    assert_eq!(out["stdout"], "first\n");

    // The plan's cap on snapshots, and bad names, change nothing.
    let (status, _) = alice
        .post("/api/v1/containers/web/snapshots", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = alice
        .post("/api/v1/containers/web/snapshots", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("plan allows"),
        "{body}"
    );
    let (status, body) = alice
        .post(
            "/api/v1/containers/web/snapshots",
            json!({"name": "No Spaces"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, list) = alice.get("/api/v1/containers/web/snapshots").await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    // Another customer sees none of it.
    let (status, _) = bob.get("/api/v1/containers/web/snapshots").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = bob
        .post(
            "/api/v1/containers/web/snapshots/before/restore?owner=alice-copies",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = bob
        .call(
            Method::DELETE,
            "/api/v1/containers/web/snapshots/before",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = alice
        .call(
            Method::DELETE,
            "/api/v1/containers/web/snapshots/before",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = alice
        .call(
            Method::DELETE,
            "/api/v1/containers/web/snapshots/before",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Backups: back up, change, restore; into another container of the same owner too.
    let (status, b1) = alice
        .post("/api/v1/containers/web/backups", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b1}");
    let id = b1["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    alice
        .post(
            "/api/v1/containers/web/exec",
            exec("echo third > /root/note"),
        )
        .await;
    let (status, b2) = alice
        .post("/api/v1/containers/web/backups", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b2}");
    let (_, list) = alice.get("/api/v1/containers/web/backups").await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let (status, body) = alice
        .post(
            &format!("/api/v1/containers/web/backups/{}/restore", &id[..12]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, out) = alice
        .post("/api/v1/containers/web/exec", exec("cat /root/note"))
        .await;
    assert_eq!(out["stdout"], "first\n");
    let (status, body) = alice
        .post(
            &format!(
                "/api/v1/containers/web/backups/{}/restore",
                b2["id"].as_str().unwrap()
            ),
            json!({"into": "spare"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, out) = alice
        .post("/api/v1/containers/spare/exec", exec("cat /root/note"))
        .await;
    assert_eq!(out["stdout"], "third\n");
    let (_, out) = alice
        .post("/api/v1/containers/web/exec", exec("cat /root/note"))
        .await;
    assert_eq!(
        out["stdout"], "first\n",
        "restoring into spare left web alone"
    );

    // A new container from a backup, in one step; a template that is not the backup's is
    // refused before anything is made.
    let (status, body) = alice
        .post(
            "/api/v1/containers",
            json!({"name": "again", "memory": "128M", "disk": "128M", "from_backup": &id[..10],
                   "template": "no-such"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = alice
        .post(
            "/api/v1/containers",
            json!({"name": "again", "memory": "128M", "disk": "128M", "from_backup": &id[..10]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, out) = alice
        .post("/api/v1/containers/again/exec", exec("cat /root/note"))
        .await;
    assert_eq!(out["stdout"], "first\n");
    let (status, _) = bob
        .post(
            "/api/v1/containers",
            json!({"name": "stolen", "memory": "128M", "disk": "128M", "from_backup": &id}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "not bob's backup");
    let (status, _) = alice
        .post("/api/v1/containers/again/backups", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice
        .call(Method::DELETE, "/api/v1/containers/again", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Bob can neither list nor restore alice's backups; unknown ids are not found.
    let (status, _) = bob
        .post(
            &format!("/api/v1/containers/web/backups/{id}/restore?owner=alice-copies"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = alice
        .post(
            "/api/v1/containers/web/backups/deadbeefdeadbeef/restore",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The plan keeps the last two backups: a third makes the oldest go.
    let (status, _) = alice
        .post("/api/v1/containers/web/backups", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = alice.get("/api/v1/containers/web/backups").await;
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(
        !ids.contains(&id.as_str()),
        "the oldest was forgotten: {list}"
    );
    // The customer's list has every backup of theirs, those of destroyed containers too.
    let (status, all) = alice.get("/api/v1/backups").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        all.as_array().unwrap().len(),
        3,
        "web's two and again's: {all}"
    );
    let (_, none) = bob.get("/api/v1/backups").await;
    assert_eq!(none, json!([]));
    drop(server);
}

fn acetate_with(state: &Path, repo: &Path, args: &[&str], crash_at: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_acetate"));
    cmd.arg("--state-dir")
        .arg(state)
        .arg("--backup-repository")
        .arg(repo)
        .args(args);
    if let Some(point) = crash_at {
        cmd.env(CRASH_AT, point);
    }
    cmd.output().unwrap()
}

fn ok_with(state: &Path, repo: &Path, args: &[&str]) -> String {
    let out = acetate_with(state, repo, args, None);
    assert!(
        out.status.success(),
        "acetate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn killed(out: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(libc::SIGKILL)
}

/// Mounts under `dir` in this process's namespace.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    acetate_engine::mounts::mount_table()
        .unwrap()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.starts_with(dir))
        .collect()
}

#[test]
fn a_snapshot_backup_or_restore_killed_half_way_leaves_the_container_as_it_was() {
    let Some(state) =
        state_dir("a_snapshot_backup_or_restore_killed_half_way_leaves_the_container_as_it_was")
    else {
        return;
    };
    let repo = tempfile::tempdir().unwrap();
    let repo = repo.path().join("repo");
    let name = unique_name("cli-copies");
    let run = |args: &[&str]| ok_with(&state, &repo, args);
    run(&["ct", "create", &name, "--disk", "128M"]);
    run(&["ct", "start", &name]);
    run(&["ct", "exec", &name, "--", "sh", "-c", "echo one > /root/f"]);
    let read = || run(&["ct", "exec", &name, "--", "cat", "/root/f"]);

    // Killed while the filesystem is frozen: the next look at the container thaws it, and
    // no half-written snapshot shows.
    let out = acetate_with(
        &state,
        &repo,
        &["ct", "snapshot", &name, "half"],
        Some("snapshot-frozen"),
    );
    assert!(killed(&out), "{out:?}");
    let list: Value = serde_json::from_str(&run(&["ct", "snapshots", &name, "--json"])).unwrap();
    assert_eq!(list, json!([]));
    let out = Command::new("timeout")
        .args(["20", env!("CARGO_BIN_EXE_acetate"), "--state-dir"])
        .arg(&state)
        .args([
            "ct",
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            "echo two > /root/f && sync",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "writes go through again: {out:?}");
    run(&["ct", "snapshot", &name, "half"]);
    let snaps = state.join("containers").join(&name).join("snapshots");
    let entries: Vec<_> = std::fs::read_dir(&snaps)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["half"], "the interrupted one was swept");

    // Killed with the backup staged: nothing in the repository, nothing mounted once the
    // next backup ran.
    let out = acetate_with(
        &state,
        &repo,
        &["ct", "backup", &name],
        Some("backup-staged"),
    );
    assert!(killed(&out), "{out:?}");
    let listed: Value =
        serde_json::from_str(&run(&["ct", "backups", &name, "--json"])).unwrap_or(json!([]));
    assert_eq!(listed, json!([]));
    let b: Value = serde_json::from_str(&run(&["ct", "backup", &name, "--json"])).unwrap();
    // Only this container's stages: other tests' panels may be backing theirs up.
    let stages = [
        state.join(format!("backups/stage/backup-{name}")),
        state.join(format!("backups/stage/restore-{name}")),
    ];
    let staged = || -> Vec<PathBuf> { stages.iter().flat_map(|s| mounts_under(s)).collect() };
    assert!(staged().is_empty(), "{:?}", staged());

    // Killed with the restore complete but not swapped in: the container is untouched.
    run(&[
        "ct",
        "exec",
        &name,
        "--",
        "sh",
        "-c",
        "echo three > /root/f",
    ]);
    let id = b["id"].as_str().unwrap();
    let out = acetate_with(
        &state,
        &repo,
        &["ct", "restore-backup", id, &name],
        Some("restore-filled"),
    );
    assert!(killed(&out), "{out:?}");
    assert_eq!(read(), "three\n");
    run(&["ct", "restore-backup", id, &name]);
    assert_eq!(read(), "two\n");
    assert!(staged().is_empty(), "{:?}", staged());
    assert!(!state
        .join("containers")
        .join(&name)
        .join("disk.restore")
        .exists());

    // Export and import, and an import killed half-way: `serve`'s recovery removes it.
    let file = repo.with_file_name("export.tar.zst");
    run(&["ct", "export", &name, file.to_str().unwrap()]);
    let copy = unique_name("cli-copied");
    let out = acetate_with(
        &state,
        &repo,
        &["ct", "import", file.to_str().unwrap(), &copy],
        Some("import-filling"),
    );
    assert!(killed(&out), "{out:?}");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let engine = acetate_engine::Engine::open(&state).unwrap();
    // Another test's panel starting on this shared state dir may have recovered it first.
    engine.recover().unwrap();
    assert!(
        engine.show(&copy).is_err(),
        "the half-imported container is gone"
    );
    assert!(acetate_engine::testing::leftovers(engine.layout(), &copy).is_empty());
    run(&["ct", "import", file.to_str().unwrap(), &copy]);
    run(&["ct", "start", &copy]);
    assert_eq!(run(&["ct", "exec", &copy, "--", "cat", "/root/f"]), "two\n");
    run(&["ct", "destroy", &copy]);

    run(&["ct", "rollback", &name, "half"]);
    assert_eq!(read(), "two\n");
    run(&["ct", "destroy", &name]);
    assert!(
        acetate_engine::testing::leftovers(&acetate_engine::store::Layout::new(&state), &name)
            .is_empty()
    );
}
