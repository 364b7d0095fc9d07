//! Long actions as operations: 202 and where to follow them, `?wait` for the old answers,
//! failures recorded with their reason, and a restarted panel finishing or failing what
//! its predecessor left in flight.

use std::time::Duration;

use acetate::app::App;
use acetate::domain::Totals;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, plan, pool, spawn_app, spawn_beside};

#[tokio::test]
async fn actions_answer_202_with_the_operation_to_follow() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    app.engine.delay("create", Duration::from_millis(500));
    let (status, location, op) = alice
        .call_full(
            Method::POST,
            "/api/v1/containers",
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{op}");
    let location = location.expect("Location");
    assert_eq!(op["location"], location.as_str());
    assert_eq!(op["state"], "running");
    assert_eq!(op["kind"], "container.create");
    assert_eq!(op["target"], "alice/web");
    // While it runs, the container shows as being created.
    let (_, list) = alice.get("/api/v1/containers").await;
    assert_eq!(list[0]["state"], "creating", "{list}");
    // Another panel on the database sees the same operation.
    let second = spawn_beside(&app).await;
    let there = crate::support::Api {
        base: second.base.clone(),
        ..alice.clone()
    };
    let (status, done) = there.get(&format!("{location}?wait=10")).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["name"], "web");
    assert_eq!(done["result"]["state"], "running");
    let (_, list) = alice.get("/api/v1/operations").await;
    assert_eq!(list[0]["id"], op["id"]);

    // A stop without waiting, then with: the old answers.
    let (status, body) = alice
        .post("/api/v1/containers/web/stop?wait=10", json!({}))
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("stopped"))
    );
    let (status, body) = alice
        .post("/api/v1/containers/web/stop?wait=10", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = alice
        .call(Method::DELETE, "/api/v1/containers/web?wait=10", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.engine.count(), 0);
}

#[tokio::test]
async fn a_failed_create_is_a_failed_operation_and_leaves_nothing() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    app.engine.fail("create", 1);
    let (status, location, _) = alice
        .call_full(
            Method::POST,
            "/api/v1/containers",
            Some(json!({"name": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, op) = alice.get(&format!("{}?wait=10", location.unwrap())).await;
    assert_eq!(op["state"], "failed", "{op}");
    assert!(!op["message"].as_str().unwrap().is_empty(), "{op}");
    assert_eq!(app.count("SELECT COUNT(*) FROM containers").await, 0);
    assert_eq!(app.engine.count(), 0);
    // The name is free again.
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A wait that runs out answers 202, as without a wait.
    app.engine.delay("stop", Duration::from_secs(2));
    let (status, location, _) = alice
        .call_full(Method::POST, "/api/v1/containers/web/stop?wait=0", None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(location.unwrap().starts_with("/api/v1/operations/"));
}

#[tokio::test]
async fn a_restarted_panel_finishes_or_fails_what_a_dead_one_left() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, _) = alice.create(json!({"name": "kept"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice.create(json!({"name": "doomed"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let db = &app.state.db;
    let owner = db.user_by_name("alice").await.unwrap().unwrap();
    // A dead panel process on this host: a create half-way, a destroy half-way, a stop.
    let dead = format!("{}/{}/1", acetate::service::operations::host_id(), i32::MAX);
    let holds = Totals {
        containers: 1,
        ..Totals::default()
    };
    let half = db
        .reserve_container(owner.id, -1, "half", "ct-half", &holds, |_, _, _| Ok(()))
        .await
        .unwrap();
    let create = db
        .insert_operation(
            owner.id,
            "container.create",
            "alice/half",
            Some(half),
            &dead,
        )
        .await
        .unwrap();
    let doomed = db.container(owner.id, "doomed").await.unwrap().unwrap();
    db.set_container_state(doomed.id, "destroying")
        .await
        .unwrap();
    let destroy = db
        .insert_operation(
            owner.id,
            "container.destroy",
            "alice/doomed",
            Some(doomed.id),
            &dead,
        )
        .await
        .unwrap();
    let kept = db.container(owner.id, "kept").await.unwrap().unwrap();
    let stop = db
        .insert_operation(
            owner.id,
            "container.stop",
            "alice/kept",
            Some(kept.id),
            &dead,
        )
        .await
        .unwrap();
    // A live panel's operation is left alone.
    let live = db
        .insert_operation(
            owner.id,
            "container.stop",
            "alice/kept",
            Some(kept.id),
            app.state.operations.runner(),
        )
        .await
        .unwrap();

    let restarted = spawn_beside(&app).await;
    App::prepare(&restarted.state, None).await.unwrap();
    let get = |id: i64| {
        let alice = alice.clone();
        async move { alice.get(&format!("/api/v1/operations/{id}")).await.1 }
    };
    let op = get(create.id).await;
    assert_eq!(op["state"], "failed", "{op}");
    assert_error(
        &json!({"error": {"code": op["error_code"], "message": op["message"]}}),
        "interrupted",
    );
    assert!(
        op["message"].as_str().unwrap().contains("nothing was kept"),
        "{op}"
    );
    assert!(db.container(owner.id, "half").await.unwrap().is_none());
    let op = get(destroy.id).await;
    assert_eq!(op["state"], "succeeded", "{op}");
    assert!(db.container(owner.id, "doomed").await.unwrap().is_none());
    let op = get(stop.id).await;
    assert_eq!(op["state"], "failed", "{op}");
    assert!(
        op["message"].as_str().unwrap().contains("is running now"),
        "{op}"
    );
    assert_eq!(get(live.id).await["state"], "running");
    assert_eq!(app.engine.count(), 1, "only kept is left");
}

#[tokio::test]
async fn the_provider_deletes_templates_nobody_uses() {
    let app = spawn_app().await;
    app.engine.add_template("bookworm");
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice
        .create(json!({"name": "web", "template": "bookworm"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let provider = app.api("admin").await;
    let delete = |api: &crate::support::Api, name: &str| {
        let (api, path) = (api.clone(), format!("/api/v1/templates/{name}"));
        async move { api.call(Method::DELETE, &path, None).await }
    };
    let (status, body) = delete(&provider, "bookworm").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("used by 1"),
        "{body}"
    );
    assert_eq!(delete(&alice, "bookworm").await.0, StatusCode::FORBIDDEN);
    assert_eq!(delete(&provider, "nothing").await.0, StatusCode::NOT_FOUND);
    let (status, _) = alice
        .call(Method::DELETE, "/api/v1/containers/web?wait=10", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = delete(&provider, "bookworm").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, list) = provider.get("/api/v1/templates").await;
    assert!(!list.to_string().contains("bookworm"), "{list}");
}

#[tokio::test]
async fn a_container_destroyed_behind_the_panels_back_leaves_no_ghost() {
    use acetate::runtime::Runtime;
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, _) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED);
    // The provider destroys it with the CLI.
    let engine_name = app.engine.list().unwrap()[0].name.clone();
    app.engine
        .destroy(&engine_name, Duration::from_secs(1))
        .unwrap();
    app.state.snapshot.refresh_all(&app.engine).unwrap();
    let gone = acetate::service::containers::reconcile_vanished(&app.state)
        .await
        .unwrap();
    assert_eq!(gone, 1);
    let (_, list) = alice.get("/api/v1/containers").await;
    assert_eq!(list, json!([]), "no ghost row");
    let (_, ops) = alice.get("/api/v1/operations").await;
    assert_eq!(ops[0]["kind"], "container.vanished", "{ops}");
    assert!(
        ops[0]["message"]
            .as_str()
            .unwrap()
            .contains("outside the panel"),
        "{ops}"
    );
    // The name is free again.
    let (status, _) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_halt_or_reboot_from_inside_is_finished_and_its_owner_told() {
    use acetate::runtime::Runtime;
    use acetate::service::containers::settle_inside_halts;
    use acetate_engine::spec::Halt;
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    for name in ["web", "db"] {
        let (status, body) = alice.create(json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let engine_name = |name: &str| {
        app.engine
            .list()
            .unwrap()
            .into_iter()
            .find(|c| c.hostname == name)
            .unwrap()
            .name
    };
    let (web, db) = (engine_name("web"), engine_name("db"));
    let mut watch = acetate::service::containers::HaltWatch::default();
    // The settler's first pass notes the systemd containers running.
    app.state.snapshot.refresh_all(&app.engine).unwrap();
    assert_eq!(
        settle_inside_halts(&app.state, &mut watch).await.unwrap(),
        0
    );
    // web's SysV init reboots inside (it stays up, alone); db's systemd powers off and
    // exits by itself.
    app.engine.halt_inside(&web, Halt::Reboot);
    app.engine.exit_inside(&db, Halt::PowerOff);
    app.state.snapshot.refresh_all(&app.engine).unwrap();
    assert_eq!(
        settle_inside_halts(&app.state, &mut watch).await.unwrap(),
        2
    );
    let state = |name: &str| app.engine.show(name).unwrap().state;
    assert_eq!(state(&web), acetate_engine::State::Running);
    assert_eq!(state(&db), acetate_engine::State::Stopped);
    let (_, ops) = alice.get("/api/v1/operations").await;
    let text = ops.to_string();
    for expect in [
        "container.rebooted",
        "web was rebooted from inside: it started again",
        "container.halted",
        "db was shut down from inside: it is stopped",
    ] {
        assert!(text.contains(expect), "{expect}: {ops}");
    }
    let audit = app
        .api("admin")
        .await
        .get("/api/v1/audit?on=alice/web")
        .await
        .1;
    assert!(audit.to_string().contains("container.rebooted"), "{audit}");
    // Nothing more to finish; a stopped container is not looked at again.
    app.state.snapshot.refresh_all(&app.engine).unwrap();
    assert_eq!(
        settle_inside_halts(&app.state, &mut watch).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn customers_choose_among_the_templates_their_plan_offers() {
    let app = spawn_app().await;
    app.engine.add_template("bookworm");
    app.engine.add_template("alpine");
    let offer = json!({"name": "deb", "price_minor": 500, "currency": "EUR",
        "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
        "customer": {"containers": 3, "memory": "2G", "cpus": 2, "disk": "2G"},
        "templates": ["bookworm"]});
    let acme = app.reseller("acme", offer, pool(10)).await;
    let (status, body) = acme
        .post(
            "/api/v1/plans",
            json!({"name": "bad", "price_minor": 1, "currency": "EUR",
                "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
                "customer": {"containers": 3, "memory": "2G", "cpus": 2, "disk": "2G"},
                "templates": ["nothing"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let dora = app.customer(&acme, "dora", "deb").await;
    // Only what the plan offers, without the provider's details.
    let (_, list) = dora.get("/api/v1/templates").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "bookworm");
    assert_eq!(list[0]["source"], "");
    // No template asked: the plan's; another one is refused with the choices, no CLI talk.
    let (status, body) = dora.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["template"], "bookworm");
    for t in ["alpine", "missing"] {
        let (status, body) = dora.create(json!({"name": "x", "template": t})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("choose one of: bookworm"), "{message}");
        assert!(!message.contains("acetate"), "{message}");
    }
    let (status, body) = dora
        .post(
            "/api/v1/containers/web/reinstall?wait=10",
            json!({"template": "alpine"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(app.engine.count(), 1);
}
