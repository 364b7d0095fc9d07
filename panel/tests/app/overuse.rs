//! Limit hits handed to the reseller's overuse policy (the example plugin, WIT 1.2.0): a
//! warning, then a throttle for a while (undone when its time is up), then the account's
//! suspension, each from a metering sample that saw new faults; notices in the API and on
//! the page; the calls in the plugin's record; nothing for resellers without a policy.

use std::time::Duration;

use acetate::service::{metering, overuse};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{login, page, pool, spawn_app, TestApp};

fn basic() -> Value {
    json!({"name": "basic", "price_minor": 500, "currency": "EUR",
           "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
           "customer": {"containers": 3, "memory": "3G", "cpus": 3, "disk": "3G"}})
}

/// Adds faults to the only container of the engine, samples a second later, and runs the
/// overuse job.
async fn strike(app: &TestApp, engine_name: &str) -> overuse::PassReport {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.engine.add_faults(engine_name, 1, 3);
    metering::sample(&app.state.db, &app.state.runtime, None)
        .await
        .unwrap();
    overuse::pass(&app.state).await.unwrap()
}

async fn cpus_milli(api: &crate::support::Api) -> u64 {
    let (status, body) = api.get("/api/v1/containers/web").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["limits"]["cpus_milli"].as_u64().unwrap()
}

#[tokio::test]
async fn the_policy_warns_throttles_for_a_while_then_suspends() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", basic(), pool(10)).await;
    app.plugin(&acme, "policy", "overuse_policy").await;
    let ola = app.customer(&acme, "ola", "basic").await;
    let (status, body) = ola.create(json!({"name": "web", "cpus": 1})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let engine_name = app.engine.list_names().remove(0);
    // A sample without faults hands nothing over.
    metering::sample(&app.state.db, &app.state.runtime, None)
        .await
        .unwrap();
    assert_eq!(overuse::pass(&app.state).await.unwrap().calls, 0);

    // First strike: a notice to the customer, nothing else.
    let report = strike(&app, &engine_name).await;
    assert_eq!((report.events, report.calls), (1, 1), "{report:?}");
    let (status, notices) = ola.get("/api/v1/containers/web/notices").await;
    assert_eq!(status, StatusCode::OK, "{notices}");
    let list = notices["notices"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{notices}");
    assert_eq!(list[0]["source"], "plugin:policy");
    let message = list[0]["message"].as_str().unwrap();
    assert!(
        message.contains("1 process(es) killed for lack of memory")
            && message.contains("3 new process(es) refused"),
        "{message}"
    );
    assert_eq!(cpus_milli(&ola).await, 1000);
    // Handed over once: another pass finds nothing new.
    assert_eq!(overuse::pass(&app.state).await.unwrap().calls, 0);
    // The reseller sees the call and the notice; the call says what was done.
    let (_, calls) = acme.get("/api/v1/plugins/policy/calls").await;
    let call = &calls.as_array().unwrap()[0];
    assert_eq!(call["event"], "overuse", "{calls}");
    assert_eq!(call["outcome"], "actions", "{calls}");
    assert!(
        call["detail"].as_str().unwrap().contains("\"ok\""),
        "{call}"
    );
    let (_, theirs) = acme.get("/api/v1/notices").await;
    assert_eq!(theirs["notices"][0]["owner"], "ola", "{theirs}");

    // Second strike: half the CPU, live, for 15 minutes, and the customer may not undo it.
    strike(&app, &engine_name).await;
    assert_eq!(cpus_milli(&ola).await, 500);
    assert_eq!(app.count("SELECT COUNT(*) FROM limit_reverts").await, 1);
    let (status, body) = ola
        .call(
            reqwest::Method::PATCH,
            "/api/v1/containers/web",
            Some(json!({"cpus": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("throttled for overuse"),
        "{body}"
    );
    // Its time is up: the job restores the CPU it had.
    app.exec("UPDATE limit_reverts SET due_at = 0").await;
    let report = overuse::pass(&app.state).await.unwrap();
    assert_eq!(report.reverted, 1, "{report:?}");
    assert_eq!(cpus_milli(&ola).await, 1000);
    assert_eq!(app.count("SELECT COUNT(*) FROM limit_reverts").await, 0);

    // Third strike within the hour: the account is suspended and its container stopped.
    strike(&app, &engine_name).await;
    let (_, customers) = acme.get("/api/v1/customers").await;
    let ola_row = customers
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ola")
        .unwrap()
        .clone();
    assert_eq!(ola_row["suspended"], true, "{ola_row}");
    let (_, shown) = acme.get("/api/v1/containers/web?owner=ola").await;
    assert_eq!(shown["state"], "stopped", "{shown}");
    let (_, notices) = acme.get("/api/v1/notices").await;
    assert!(
        notices["notices"][0]["message"]
            .as_str()
            .unwrap()
            .contains("3 times within an hour"),
        "{notices}"
    );
    // The container's page shows the notices to whoever may see it.
    let cookie = login(&app, "acme", "a long enough password").await;
    let (status, html) = page(&app, &cookie, "/containers/web?owner=ola").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("From your reseller"), "{html}");
    assert!(html.contains("its CPU is halved for 15"), "{html}");
    assert!(html.contains("Limit hits per day"), "{html}");
    // The reseller's and the provider's pages list the week's hits and notices.
    for (who, password, path) in [
        ("acme", "a long enough password", "/reseller"),
        ("admin", "provider-password-1", "/provider"),
    ] {
        let cookie = login(&app, who, password).await;
        let (status, html) = page(&app, &cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{who}");
        assert!(html.contains("Limit hits, last 7 days"), "{who}: {html}");
        assert!(
            html.contains("href=\"/containers/web?owner=ola\"")
                && html.contains("1 process(es) killed: out of memory")
                && html.contains("3 times within an hour"),
            "{who}: {html}"
        );
    }
}

#[tokio::test]
async fn limit_hits_without_a_policy_are_only_recorded() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", basic(), pool(10)).await;
    // A hook that is no overuse policy is not called for limit hits.
    app.plugin(&acme, "naming", "naming_policy").await;
    let ola = app.customer(&acme, "ola", "basic").await;
    let (status, body) = ola.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let engine_name = app.engine.list_names().remove(0);
    metering::sample(&app.state.db, &app.state.runtime, None)
        .await
        .unwrap();
    let report = strike(&app, &engine_name).await;
    assert_eq!(report.calls, 0, "{report:?}");
    let (_, faults) = ola.get("/api/v1/containers/web/faults").await;
    assert_eq!(faults["totals"]["oom_kill"], 1, "{faults}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM faults WHERE dispatched_at IS NULL")
            .await,
        0
    );
    let (_, notices) = ola.get("/api/v1/notices").await;
    assert_eq!(notices["notices"], json!([]), "{notices}");
}

#[tokio::test]
async fn notices_are_kept_as_long_as_limit_hits() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", basic(), pool(10)).await;
    app.plugin(&acme, "policy", "overuse_policy").await;
    let ola = app.customer(&acme, "ola", "basic").await;
    let (status, body) = ola.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let engine_name = app.engine.list_names().remove(0);
    metering::sample(&app.state.db, &app.state.runtime, None)
        .await
        .unwrap();
    strike(&app, &engine_name).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM notices").await, 1);
    // 91 days later the next full pass forgets the hit and the notice together.
    app.exec("UPDATE notices SET at = at - 91 * 86400").await;
    app.exec("UPDATE faults SET at = at - 91 * 86400").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    metering::sample(&app.state.db, &app.state.runtime, None)
        .await
        .unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM notices").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM faults").await, 0);
}
