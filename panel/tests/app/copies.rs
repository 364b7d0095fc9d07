//! Snapshots and backups through the panel's rules: the plan's fields and their checks,
//! the plan's cap, scope, and the container page's forms.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{login, page, plan, pool, spawn_app, PASSWORD};

#[tokio::test]
async fn plans_set_snapshots_and_backups_and_the_panel_holds_to_them() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    // Bad copies settings are refused, naming the field; nothing is created.
    for (copies, field) in [
        (json!({"max_snapshots": -1}), "max_snapshots"),
        (json!({"keep_last": 1_000_000}), "keep_last"),
        (
            json!({"backup_every_hours": 24, "keep_last": 0}),
            "keep_last",
        ),
    ] {
        let mut p = plan("bad", 5);
        p["copies"] = copies;
        let (status, body) = acme.post("/api/v1/plans", p).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{body}"
        );
    }
    let mut none = plan("nosnap", 5);
    none["copies"] = json!({"max_snapshots": 0});
    let (status, body) = acme.post("/api/v1/plans", none).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["max_snapshots"], 0);
    let (_, plans) = acme.get("/api/v1/plans").await;
    let basic = plans
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "basic")
        .unwrap();
    assert_eq!(
        (
            basic["max_snapshots"].as_i64(),
            basic["backup_keep_last"].as_i64()
        ),
        (Some(5), Some(7))
    );

    let alice = app.customer(&acme, "alice", "basic").await;
    let bob = app.customer(&acme, "bob", "nosnap").await;
    for api in [&alice, &bob] {
        let (status, body) = api.create(json!({"name": "web"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = bob
        .post("/api/v1/containers/web/snapshots?wait=10", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no snapshots"),
        "{body}"
    );

    for n in 0..5 {
        let (status, body) = alice
            .post(
                "/api/v1/containers/web/snapshots?wait=10",
                json!({"name": format!("s{n}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = alice
        .post(
            "/api/v1/containers/web/snapshots?wait=10",
            json!({"name": "s9"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = alice
        .call(
            reqwest::Method::DELETE,
            "/api/v1/containers/web/snapshots/s0",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = alice
        .post(
            "/api/v1/containers/web/snapshots?wait=10",
            json!({"name": "s1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Out of scope: not found, as for a name that does not exist.
    let (status, _) = bob
        .get("/api/v1/containers/web/snapshots?owner=alice")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = acme
        .get("/api/v1/containers/web/snapshots?owner=alice")
        .await;
    assert_eq!(status, StatusCode::OK, "the reseller sees its customer's");

    // A running backup says how far it got in its operation.
    app.engine
        .delay("backup", std::time::Duration::from_millis(2500));
    let (status, op) = alice
        .post("/api/v1/containers/web/backups", json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{op}");
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    let (_, running) = alice.get(&format!("/api/v1/operations/{}", op["id"])).await;
    assert_eq!(running["state"], "running", "{running}");
    assert_eq!(
        running["message"], "backing up: 50M of 100M read",
        "{running}"
    );
    app.engine.delay("backup", std::time::Duration::ZERO);
    let ended = async {
        loop {
            let (_, now) = alice.get(&format!("/api/v1/operations/{}", op["id"])).await;
            if now["state"] != "running" {
                return now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), ended)
        .await
        .unwrap();
    assert_eq!(ended["state"], "succeeded", "{ended}");

    // Backups: made, listed, restored; the audit log says who did what.
    let (status, b) = alice
        .post("/api/v1/containers/web/backups?wait=10", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let (_, list) = alice.get("/api/v1/containers/web/backups").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let id = b["id"].as_str().unwrap();
    let (status, body) = alice
        .post(
            &format!("/api/v1/containers/web/backups/{id}/restore?wait=10"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = alice
        .post(
            "/api/v1/containers/web/backups/short/restore?wait=10",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'container.%snapshot%'")
            .await,
        6,
        "five taken and one deleted; the refused ones changed nothing"
    );

    // The page lists them and takes one from its form.
    let cookie = login(&app, "alice", PASSWORD).await;
    let (status, html) = page(&app, &cookie, "/containers/web").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<td>s4</td>") && html.contains("Back up now"),
        "{html}"
    );
    let csrf = crate::support::csrf_of(&html);
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/containers/web/snapshot-delete", app.base))
        .header("cookie", cookie.as_str())
        .form(&[("csrf", csrf.as_str()), ("snapshot", "s4")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &cookie, "/containers/web").await;
    assert!(!html.contains("<td>s4</td>"), "deleted from the page");
}

#[tokio::test]
async fn the_schedule_backs_up_what_is_due_and_keeps_what_the_plan_says() {
    use acetate::service::containers::copies::scheduled_backups;
    let app = spawn_app().await;
    let mut daily = plan("daily", 5);
    daily["copies"] = json!({"backup_every_hours": 24, "keep_last": 2});
    let acme = app.reseller("acme", daily, pool(10)).await;
    let (status, body) = acme.post("/api/v1/plans", plan("manual", 5)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let alice = app.customer(&acme, "alice", "daily").await;
    let bob = app.customer(&acme, "bob", "manual").await;
    for api in [&alice, &bob] {
        let (status, body) = api.create(json!({"name": "web"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Alice's plan schedules backups: the first pass takes one, the next finds it fresh.
    assert_eq!(scheduled_backups(&app.state).await.unwrap(), 1);
    assert_eq!(scheduled_backups(&app.state).await.unwrap(), 0);
    let (_, list) = alice.get("/api/v1/containers/web/backups").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (_, list) = bob.get("/api/v1/containers/web/backups").await;
    assert_eq!(list, json!([]), "bob's plan backs up only on request");
    // Retention after each backup keeps the plan's last two.
    for _ in 0..3 {
        let (status, _) = alice
            .post("/api/v1/containers/web/backups?wait=10", json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, list) = alice.get("/api/v1/containers/web/backups").await;
    assert_eq!(list.as_array().unwrap().len(), 2, "keep_last 2: {list}");
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'container.backup' AND actor_id IS NULL"
        )
        .await,
        1,
        "the schedule's backup is audited as the panel's"
    );
}

#[tokio::test]
async fn snapshots_count_against_the_customers_disk_allowance() {
    let app = spawn_app().await;
    // 4G of disk in all; one container of 1G.
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web", "disk": "1G"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let refresh = |app: &crate::support::TestApp| {
        for c in app.engine.list_names() {
            app.state
                .snapshot
                .refresh_one(app.state.runtime.as_ref(), &c);
        }
    };
    // Its image holds 2G: a first snapshot fits (1G + 2G), a second would not (1G + 2G + 2G).
    app.engine.set_image_allocated(2 << 30);
    refresh(&app);
    let (status, body) = alice
        .post(
            "/api/v1/containers/web/snapshots?wait=10",
            json!({"name": "one"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = alice
        .post(
            "/api/v1/containers/web/snapshots?wait=10",
            json!({"name": "two"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("disk: your containers' disks (1G) and snapshots (2G)")
            && message.contains("would exceed your plan's 4G"),
        "{message}"
    );
    let (_, list) = alice.get("/api/v1/containers/web/snapshots").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "nothing was taken");
}
