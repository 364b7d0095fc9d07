//! The reseller's provisioning hooks on real requests: deny with a message, amend within
//! the plan; their key-value writes count only actions that happened.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, pool, spawn_app, TestApp};

fn trial() -> Value {
    json!({"name": "trial-s", "price_minor": 0, "currency": "EUR",
           "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
           "customer": {"containers": 3, "memory": "2G", "cpus": 2, "disk": "2G"}})
}

#[tokio::test]
async fn hooks_deny_and_amend_creates() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", trial(), pool(10)).await;
    app.plugin(&acme, "policy", "naming_policy").await;
    let tina = app.customer(&acme, "tina", "trial-s").await;
    let (status, body) = tina.create(json!({"name": "admin"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "denied_by_policy");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reserved"),
        "{body}"
    );
    // A trial gets 256 MiB, whatever it asked for.
    let (status, body) = tina.create(json!({"name": "site", "memory": "768M"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["limits"]["memory"], 256 << 20, "{body}");
    // And one container only.
    let (status, body) = tina.create(json!({"name": "second"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(app.engine.count(), 1);
}

/// The policy's per-day counter of creates.
async fn counted(app: &TestApp, customer: &str) -> i64 {
    let db = &app.state.db;
    let row = db
        .plugin_by_name(db_id(app, "acme").await, "policy")
        .await
        .unwrap()
        .unwrap();
    let kv = db.plugin_kv(row.id).await.unwrap();
    kv.iter()
        .find(|(k, _)| k.starts_with(&format!("creates/{customer}/")))
        .map_or(0, |(_, v)| i64::from_le_bytes(v[..8].try_into().unwrap()))
}

async fn db_id(app: &TestApp, name: &str) -> i64 {
    app.state.db.user_by_name(name).await.unwrap().unwrap().id
}

#[tokio::test]
async fn only_creates_that_happened_count_towards_a_hooks_limit() {
    let app = spawn_app().await;
    let roomy = json!({"name": "basic", "price_minor": 500, "currency": "EUR",
           "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 512},
           "customer": {"containers": 10, "memory": "10G", "cpus": 10, "disk": "10G"}});
    let acme = app.reseller("acme", roomy, pool(20)).await;
    app.plugin(&acme, "policy", "naming_policy").await;
    let kim = app.customer(&acme, "kim", "basic").await;
    // Three creates the engine fails, one the plan refuses: none of them counts.
    app.engine.fail("create", 3);
    for n in 0..3 {
        let (status, body) = kim.create(json!({"name": format!("bad{n}")})).await;
        assert!(!status.is_success(), "{status}: {body}");
    }
    let (status, body) = kim.create(json!({"name": "huge", "memory": "8G"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(counted(&app, "kim").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM containers").await, 0);
    // Five a day, as the policy says.
    for n in 0..5 {
        let (status, body) = kim.create(json!({"name": format!("ok{n}")})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(counted(&app, "kim").await, 5);
    let (status, body) = kim.create(json!({"name": "sixth"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("a day"),
        "{body}"
    );
    assert_eq!(
        counted(&app, "kim").await,
        5,
        "a refused create does not count"
    );
}
