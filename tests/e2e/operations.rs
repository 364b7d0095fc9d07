//! Operations across panels and crashes: two panels on one PostgreSQL database creating at
//! once never over-allocate a reseller's pool, and a panel killed (SIGKILL) in the middle
//! of a create comes back, fails the operation visibly and leaves nothing half-made.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::api::{customer, reseller_with_plan, roomy_plan, Api};
use crate::support::{state_dir, Server};

#[tokio::test]
async fn two_panels_on_postgresql_never_over_allocate_a_pool() {
    let test = "two_panels_on_postgresql_never_over_allocate_a_pool";
    let Some(state) = state_dir(test) else {
        return;
    };
    let Some(pg) = crate::support::Postgres::start(test) else {
        return;
    };
    let first = Server::start(&state, &pg.url);
    let second = Server::start(&state, &pg.url);
    let http = Client::new();
    let pool = json!({"memory": "16G", "cpus": 8, "disk": "32G", "containers": 3});
    let (_, reseller) = reseller_with_plan(&first, &http, "res-two", roomy_plan(), pool).await;
    let mut callers = Vec::new();
    for (i, name) in ["p2-ann", "p2-ben", "p2-cat", "p2-dan"].iter().enumerate() {
        let api = customer(&first, &http, &reseller, name).await;
        let base = if i % 2 == 0 {
            &first.base
        } else {
            &second.base
        };
        callers.push((
            name.to_string(),
            Api::new(&http, base, api.token().to_string()),
        ));
    }
    let creates = callers.iter().flat_map(|(who, api)| {
        (0..4).map(move |n| async move {
            let body = json!({"name": format!("c{n}"), "memory": "64M", "disk": "64M"});
            (who.clone(), n, api.post("/api/v1/containers", body).await)
        })
    });
    let results = futures_util::future::join_all(creates).await;
    let mut made = Vec::new();
    for (who, n, (status, body)) in results {
        match status {
            StatusCode::CREATED => made.push((who, n)),
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(body["error"]["code"], "quota_exceeded", "{body}")
            }
            other => panic!("{who}/c{n}: {other}: {body}"),
        }
    }
    assert_eq!(made.len(), 3, "the pool holds three: {made:?}");
    let provider = Api::new(
        &http,
        &second.base,
        first.cli(&["token", "create", "admin"], ""),
    );
    let (_, all) = provider.get("/api/v1/containers").await;
    let owned: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["owner"].is_string())
        .collect();
    assert_eq!(owned.len(), 3, "{all}");
    assert!(owned.iter().all(|c| c["state"] == "running"), "{all}");
    // A stop through one panel shows at once in the other's listing (no waiting for its
    // background refresh, nor a listing it cached).
    let (who, n) = &made[0];
    let on_first = Api::new(&http, &first.base, provider.token().to_string());
    let (status, body) = on_first
        .post(
            &format!("/api/v1/containers/c{n}/stop?owner={who}"),
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{status}: {body}");
    let (_, all) = provider.get("/api/v1/containers").await;
    let state = |all: &Value| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|c| c["owner"] == who.as_str() && c["name"] == format!("c{n}"))
            .map(|c| c["state"].clone())
    };
    assert_eq!(state(&all), Some(json!("stopped")), "{all}");
    for (who, n) in made {
        let (status, _) = provider
            .call(
                Method::DELETE,
                &format!("/api/v1/containers/c{n}?owner={who}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    first.stop();
    second.stop();
}

#[tokio::test]
async fn a_panel_killed_in_the_middle_of_a_create_fails_it_visibly_after_a_restart() {
    let test = "a_panel_killed_in_the_middle_of_a_create_fails_it_visibly_after_a_restart";
    let Some(state) = state_dir(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/panel.db?mode=rwc", dir.path().display());
    // A panel that kills itself (SIGKILL) while starting a container.
    let mut doomed = Server::start_with(
        &state,
        &db,
        "127.0.0.1:0",
        &[(acetate_engine::testing::CRASH_AT, "start")],
    );
    let http = Client::new();
    let (_, reseller) = reseller_with_plan(
        &doomed,
        &http,
        "res-kill",
        roomy_plan(),
        crate::api::roomy_pool(),
    )
    .await;
    let vic_token = customer(&doomed, &http, &reseller, "vic-killed")
        .await
        .token()
        .to_string();
    drop(reseller);
    let resp = http
        .post(format!("{}/api/v1/containers", doomed.base))
        .bearer_auth(&vic_token)
        .json(&json!({"name": "web", "disk": "64M"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let status = doomed.child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the panel was killed");

    let server = Server::start(&state, &db);
    let vic = Api::new(&http, &server.base, vic_token);
    let (status, op) = vic.get(&location).await;
    assert_eq!(status, StatusCode::OK, "{op}");
    assert_eq!(op["state"], "failed", "{op}");
    assert_eq!(op["error_code"], "interrupted", "{op}");
    assert!(
        op["message"].as_str().unwrap().contains("nothing was kept"),
        "{op}"
    );
    let (_, list) = vic.get("/api/v1/containers").await;
    assert_eq!(list, json!([]), "no half-made container");
    // The engine has nothing of vic's either (the suite's state dir is shared).
    let engine_list = crate::support::ok(&state, &["ct", "list", "--json"]);
    let engine_list: Value = serde_json::from_str(&engine_list).unwrap();
    assert!(
        !engine_list
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["owner"] == "panel:vic-killed"),
        "{engine_list}"
    );
    // The name is free and the customer's plan room is back.
    let (status, body) = vic
        .post("/api/v1/containers", json!({"name": "web", "disk": "64M"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = vic
        .call(Method::DELETE, "/api/v1/containers/web", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop();
}
