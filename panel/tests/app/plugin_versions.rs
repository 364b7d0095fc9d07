//! A plugin replaced in place and rolled back (switches, store and calls kept), and dry
//! runs from the plugin page on an example event or one typed in.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{csrf_of, login, page, pool, spawn_app, Api, TestApp, PASSWORD};

fn basic() -> Value {
    json!({"name": "basic", "price_minor": 500, "currency": "EUR",
           "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
           "customer": {"containers": 10, "memory": "10G", "cpus": 10, "disk": "10G"}})
}

async fn put_wasm(app: &TestApp, reseller: &Api, name: &str, wasm: Vec<u8>) -> (StatusCode, Value) {
    let resp = app
        .http
        .put(format!("{}/api/v1/plugins/{name}", app.base))
        .bearer_auth(&reseller.token)
        .body(wasm)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn example(name: &str) -> Vec<u8> {
    acetate_plugins::example(name).unwrap()
}

#[tokio::test]
async fn a_plugin_is_replaced_in_place_and_rolled_back() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", basic(), pool(20)).await;
    app.plugin(&acme, "policy", "naming_policy").await;
    let (status, _) = acme
        .call(
            Method::PATCH,
            "/api/v1/plugins/policy",
            Some(json!({"on_failure": "allow"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let kim = app.customer(&acme, "kim", "basic").await;
    let (status, body) = kim.create(json!({"name": "web-1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = kim.create(json!({"name": "admin"})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the naming policy refuses it"
    );
    let (_, before) = acme.get("/api/v1/plugins/policy").await;

    // Never replaced: nothing to roll back to.
    let (status, body) = acme
        .post("/api/v1/plugins/policy/rollback", json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Another kind, or garbage, is refused and changes nothing.
    let (status, body) = put_wasm(&app, &acme, "policy", example("pay_as_you_go")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is a hook plugin and this component is a billing plugin"),
        "{body}"
    );
    let (status, _) = put_wasm(&app, &acme, "policy", b"not wasm".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, same) = acme.get("/api/v1/plugins/policy").await;
    assert_eq!(same, before);

    // A new version: same name, switches and store; the old one kept.
    let (status, after) = put_wasm(&app, &acme, "policy", example("overuse_policy")).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_ne!(after["sha256"], before["sha256"]);
    assert_eq!(after["previous_sha256"], before["sha256"]);
    assert_eq!(
        (after["enabled"].clone(), after["on_failure"].clone()),
        (json!(true), json!("allow"))
    );
    assert_eq!(after["id"], before["id"]);
    let kv_keys = app
        .count("SELECT COUNT(*) FROM plugin_kv WHERE key LIKE 'creates/kim/%'")
        .await;
    assert_eq!(kv_keys, 1, "the store stays");
    let (status, body) = kim.create(json!({"name": "admin"})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the new version has no naming rule: {body}"
    );

    // Rolled back from the page: the naming rule is back; a second rollback undoes it.
    let cookie = login(&app, "acme", PASSWORD).await;
    let (status, html) = page(&app, &cookie, "/plugins/policy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Previous version") && html.contains("Roll back to the previous version"),
        "{html}"
    );
    let resp = no_redirects()
        .post(format!("{}/plugins/policy/rollback", app.base))
        .header("cookie", cookie.as_str())
        .form(&[("csrf", csrf_of(&html).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, back) = acme.get("/api/v1/plugins/policy").await;
    assert_eq!(back["sha256"], before["sha256"]);
    assert_eq!(back["previous_sha256"], after["sha256"]);
    let (status, _) = kim.create(json!({"name": "root"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the naming rule is back");
    let (status, again) = acme
        .post("/api/v1/plugins/policy/rollback", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["sha256"], after["sha256"]);
    let audit = app
        .count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('plugin.replace', 'plugin.rollback')",
        )
        .await;
    assert_eq!(audit, 3);
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_plugin_page_dry_runs_an_example_or_a_typed_event() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", basic(), pool(20)).await;
    app.plugin(&acme, "naming", "naming_policy").await;
    app.plugin(&acme, "policy", "overuse_policy").await;
    let cookie = login(&app, "acme", PASSWORD).await;
    let run = |plugin: &'static str, fields: Vec<(&'static str, String)>| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            let (_, html) = page(app, &cookie, &format!("/plugins/{plugin}")).await;
            let mut form = vec![("csrf", csrf_of(&html))];
            form.extend(fields);
            let resp = no_redirects()
                .post(format!("{}/plugins/{plugin}/dry-run", app.base))
                .header("cookie", cookie.as_str())
                .form(&form)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    // The page offers the examples.
    let (_, html) = page(&app, &cookie, "/plugins/policy").await;
    assert!(html.contains("<option>overuse</option>"), "{html}");
    // An example overuse event: the policy's first warning.
    let (status, html) = run(
        "policy",
        vec![("example", "overuse".into()), ("input", String::new())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("notify") && html.contains("ran into its limits"),
        "{html}"
    );
    // A typed create event: refused by the naming rule.
    let mut create: Value =
        serde_json::from_str(&acetate_plugins::sample_input("create").unwrap()).unwrap();
    create["requested"]["name"] = json!("Web_1");
    let (status, html) = run("naming", vec![("input", create.to_string())]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("deny: use lower-case letters"), "{html}");
    // Garbage is named, and nothing ran.
    let (status, html) = run("naming", vec![("input", "{\"kind\": 3}".into())]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("neither a hook event nor an overuse event"),
        "{html}"
    );
    let dry_runs = app
        .count("SELECT COUNT(*) FROM plugin_calls WHERE dry_run = 1")
        .await;
    assert_eq!(dry_runs, 2);
}
