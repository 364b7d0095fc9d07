//! Plans and pools: every path that allocates checks them, and the check and the row it
//! allows are one transaction, so panels side by side cannot over-allocate a pool.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, plan, pool, spawn_app, spawn_beside};

#[tokio::test]
async fn plans_and_pools_limit_creates_and_resizes() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 2), pool(3)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let bob = app.customer(&acme, "bob", "basic").await;
    for name in ["one", "two"] {
        let (status, body) = alice.create(json!({"name": name, "memory": "256M"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // The plan: two containers, 1G each at most.
    let (status, body) = alice.create(json!({"name": "three"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error(&body, "quota_exceeded");
    let (status, body) = bob.create(json!({"name": "big", "memory": "2G"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per container"),
        "{body}"
    );
    // The pool: three containers over all of acme's customers.
    let (status, body) = bob.create(json!({"name": "one"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = bob.create(json!({"name": "two"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("capacity is used up"),
        "{body}"
    );
    // Resizes too; a refused one changes nothing.
    let (status, body) = alice
        .call(
            Method::PATCH,
            "/api/v1/containers/one?wait=10",
            Some(json!({"memory": "4G"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, one) = alice.get("/api/v1/containers/one").await;
    assert_eq!(one["limits"]["memory"], 256 << 20);
    let (status, body) = alice
        .call(
            Method::PATCH,
            "/api/v1/containers/one?wait=10",
            Some(json!({"memory": "512M"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["limits"]["memory"], 512 << 20);
    // Refusals left nothing behind.
    assert_eq!(app.engine.count(), 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM containers").await, 3);
    // Bad input: a clear error, nothing made.
    let (status, body) = alice.create(json!({"name": "../x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = alice.create(json!({"name": "ok", "memory": "lots"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("memory:"),
        "{body}"
    );
    assert_eq!(app.engine.count(), 3);
}

#[tokio::test]
async fn two_panels_creating_at_once_never_over_allocate_a_pool() {
    let app = spawn_app().await;
    let second = spawn_beside(&app).await;
    let acme = app.reseller("acme", plan("basic", 10), pool(3)).await;
    let mut callers = Vec::new();
    for (i, name) in ["ann", "ben", "cat", "dan"].iter().enumerate() {
        let api = app.customer(&acme, name, "basic").await;
        // Half of them go through the other panel.
        let api = if i % 2 == 0 {
            api
        } else {
            crate::support::Api {
                base: second.base.clone(),
                ..api
            }
        };
        callers.push(api);
    }
    let creates = callers.iter().flat_map(|api| {
        (0..3).map(move |n| {
            let api = api.clone();
            async move { api.create(json!({"name": format!("c{n}")})).await }
        })
    });
    let handles: Vec<_> = creates.map(tokio::spawn).collect();
    let mut made = 0;
    for h in handles {
        let (status, body) = h.await.unwrap();
        match status {
            StatusCode::CREATED => made += 1,
            StatusCode::UNPROCESSABLE_ENTITY => assert_error(&body, "quota_exceeded"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(made, 3, "the pool holds three containers");
    assert_eq!(app.count("SELECT COUNT(*) FROM containers").await, 3);
    assert_eq!(app.engine.count(), 3);
}

#[tokio::test]
async fn a_plans_disk_io_caps_apply_to_every_container_and_cannot_be_lifted() {
    let app = spawn_app().await;
    let capped = json!({"name": "capped", "price_minor": 500, "currency": "EUR",
        "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
        "customer": {"containers": 3, "memory": "2G", "cpus": 2, "disk": "2G"},
        "io": {"write_bps": "10M", "read_iops": 500}});
    let acme = app.reseller("acme", capped, pool(10)).await;
    let (_, plans) = acme.get("/api/v1/plans").await;
    assert_eq!(plans[0]["ct_io_write_bps"], 10 << 20, "{plans}");
    let alice = app.customer(&acme, "alice", "capped").await;
    let (status, body) = alice.create(json!({"name": "db"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["limits"]["io"]["write_bps"], 10 << 20, "{body}");
    assert_eq!(body["limits"]["io"]["read_iops"], 500, "{body}");
    let (status, body) = alice
        .create(json!({"name": "fast", "io": {"write_bps": "20M"}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error(&body, "quota_exceeded");
    // Live: lower is fine, lifting is not.
    let resize = |io: serde_json::Value| {
        let alice = alice.clone();
        async move {
            alice
                .call(
                    Method::PATCH,
                    "/api/v1/containers/db?wait=10",
                    Some(json!({ "io": io })),
                )
                .await
        }
    };
    let (status, body) = resize(json!({"write_bps": "5M", "read_bps": "50M"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["limits"]["io"]["write_bps"], 5 << 20, "{body}");
    assert_eq!(body["limits"]["io"]["read_bps"], 50 << 20, "{body}");
    let (status, body) = resize(json!({"write_bps": 0})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be lifted"),
        "{body}"
    );
    let (_, db) = alice.get("/api/v1/containers/db").await;
    assert_eq!(db["limits"]["io"]["write_bps"], 5 << 20, "unchanged: {db}");
}

#[tokio::test]
async fn absurd_plans_and_pools_below_what_is_used_are_refused() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let absurd = json!({"name": "absurd", "price_minor": 500, "currency": "EUR",
        "container": {"memory": "4G", "cpus": 1, "disk": "1G", "procs": 256},
        "customer": {"containers": 3, "memory": "2G", "cpus": 2, "disk": "2G"}});
    let (status, body) = acme.post("/api/v1/plans", absurd).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("container memory"),
        "{body}"
    );
    let none = json!({"name": "none", "price_minor": 500, "currency": "EUR",
        "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
        "customer": {"containers": 0, "memory": "2G", "cpus": 2, "disk": "2G"}});
    let (status, body) = acme.post("/api/v1/plans", none).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let alice = app.customer(&acme, "alice", "basic").await;
    for name in ["a", "b"] {
        let (status, _) = alice.create(json!({"name": format!("web-{name}")})).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let provider = app.api("admin").await;
    let (status, body) = provider
        .call(Method::PUT, "/api/v1/resellers/acme/pool", Some(pool(1)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already hold"),
        "{body}"
    );
    let (_, resellers) = provider.get("/api/v1/resellers").await;
    assert_eq!(
        resellers[0]["pool"]["containers"], 10,
        "unchanged: {resellers}"
    );
}
