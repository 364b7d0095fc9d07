//! schemathesis (PyPI; `scripts/setup` installs it) against a live panel as a customer:
//! generated requests from the OpenAPI document, a bounded number per operation, on
//! loopback; no answer may be a server error or differ from the document. (Run by hand
//! with more examples it found nothing either: `--max-examples 50`.)

use serde_json::json;

use crate::support::{plan, pool, spawn_app};

const TOOL: &str = "/var/tmp/acetate-tools/venv/bin/schemathesis";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_meet_no_server_error_and_no_answer_outside_the_document() {
    if !std::path::Path::new(TOOL).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "schemathesis is missing: scripts/setup installs it"
        );
        eprintln!("SKIPPED: schemathesis is not installed (scripts/setup)");
        return;
    }
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let schema = format!("{}/api/v1/openapi.json", app.base);
    let (base, token) = (app.base.clone(), alice.token.clone());
    // Its cache (`.schemathesis/`) goes to a directory of its own, not into the tree.
    let work = tempfile::tempdir().unwrap();
    let cwd = work.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(TOOL)
            .current_dir(&cwd)
            .args(["run", &schema, "--url", &base])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "8",
                "--seed",
                "1",
                "--no-color",
            ])
            // Plugin uploads are application/wasm, which schemathesis cannot send by itself.
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env(
                "PYTHONPATH",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/app"),
            )
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    // It did run: every operation, thousands of cases (not a run that selected nothing).
    let generated: u64 = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_suffix(" passed")?
                .split(" generated")
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(generated > 1000, "{text}");
    assert!(!text.contains("Selected: 0/"), "{text}");
}
