//! Resellers manage the plans they made: change one (the customers over it are named),
//! delete one nobody is on, move a customer to a plan that fits what it holds.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{login, page, plan, pool, spawn_app, PASSWORD};

#[tokio::test]
async fn resellers_change_delete_and_move_between_their_plans() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(20)).await;
    let other = app.reseller("other", plan("basic", 5), pool(20)).await;
    let (status, body) = acme.post("/api/v1/plans", plan("small", 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let alice = app.customer(&acme, "alice", "basic").await;
    for name in ["web", "db"] {
        let (status, body) = alice
            .create(json!({"name": name, "memory": "512M", "cpus": 1, "disk": "512M"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // A change re-checks the plan's customers and names who is over, and what.
    let mut tighter = plan("basic", 1);
    tighter["container"]["memory"] = json!("512M");
    tighter["customer"]["memory"] = json!("768M");
    tighter["price_minor"] = json!(900);
    let (status, body) = acme
        .call(Method::PUT, "/api/v1/plans/basic", Some(tighter))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"]["price_minor"], 900);
    assert_eq!(body["over"][0]["customer"], "alice", "{body}");
    let reasons = body["over"][0]["reasons"].to_string();
    assert!(
        reasons.contains("2 containers, the plan allows 1"),
        "{reasons}"
    );
    assert!(
        reasons.contains("1G memory in all, the plan allows 768M"),
        "{reasons}"
    );
    // Alice keeps what she has; a third container is refused by the new limits.
    let (status, _) = alice
        .create(json!({"name": "third", "memory": "64M"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Bad changes change nothing: a rename, an invalid field, another reseller's plan.
    let mut renamed = plan("premium", 5);
    renamed["price_minor"] = json!(1);
    let (status, body) = acme
        .call(Method::PUT, "/api/v1/plans/basic", Some(renamed))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("name:"),
        "{body}"
    );
    let mut bad = plan("basic", 5);
    bad["copies"] = json!({"keep_last": -1});
    let (status, _) = acme
        .call(Method::PUT, "/api/v1/plans/basic", Some(bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = other
        .call(Method::PUT, "/api/v1/plans/small", Some(plan("small", 9)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = acme.get("/api/v1/plans").await;
    let basic = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "basic")
        .unwrap()
        .clone();
    assert_eq!(
        (
            basic["price_minor"].as_i64(),
            basic["max_containers"].as_i64()
        ),
        (Some(900), Some(1))
    );

    // A plan in use cannot be deleted; the message names who is on it.
    let (status, body) = acme.call(Method::DELETE, "/api/v1/plans/basic", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("alice"),
        "{body}"
    );

    // Moving alice to a plan too small for her is refused with the reasons...
    let (status, body) = acme
        .call(
            Method::PUT,
            "/api/v1/customers/alice/plan",
            Some(json!({"plan": "small"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 containers"),
        "{body}"
    );
    // ...to a roomy one goes through, and then the old plan can go.
    let (status, body) = acme.post("/api/v1/plans", plan("roomy", 10)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = acme
        .call(
            Method::PUT,
            "/api/v1/customers/alice/plan",
            Some(json!({"plan": "roomy"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"], "roomy");
    let (status, _) = other
        .call(
            Method::PUT,
            "/api/v1/customers/alice/plan",
            Some(json!({"plan": "basic"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not other's customer");
    let (status, _) = alice
        .call(
            Method::PUT,
            "/api/v1/customers/alice/plan",
            Some(json!({"plan": "basic"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "customers do not choose their plan"
    );
    let (status, _) = acme.call(Method::DELETE, "/api/v1/plans/basic", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = acme.call(Method::DELETE, "/api/v1/plans/basic", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action IN ('plan.update', 'plan.delete', 'customer.plan')")
            .await,
        3
    );
}

#[tokio::test]
async fn the_reseller_page_moves_customers_and_deletes_plans() {
    use crate::support::{login, page, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(20)).await;
    let (status, _) = acme.post("/api/v1/plans", plan("other", 5)).await;
    assert_eq!(status, StatusCode::CREATED);
    app.customer(&acme, "alice", "basic").await;
    let cookie = login(&app, "acme", PASSWORD).await;
    let (_, html) = page(&app, &cookie, "/reseller").await;
    let csrf = crate::support::csrf_of(&html);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        http.post(format!("{}{path}", app.base))
            .header("cookie", cookie.as_str())
            .form(&form)
            .send()
    };
    // In use: the page says by whom, and nothing changes.
    let resp = post("/reseller/plans/basic/delete", vec![("csrf", csrf.clone())])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(resp.text().await.unwrap().contains("alice"));
    let resp = post(
        "/reseller/customers/alice/plan",
        vec![("csrf", csrf.clone()), ("plan", "other".into())],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = post("/reseller/plans/basic/delete", vec![("csrf", csrf.clone())])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, list) = acme.get("/api/v1/customers").await;
    assert_eq!(list[0]["plan"], "other", "{list}");
    // A forged form changes nothing.
    let resp = post(
        "/reseller/plans/other/delete",
        vec![("csrf", "forged".into())],
    )
    .await
    .unwrap();
    assert!(resp.status().is_client_error());
    let (_, plans) = acme.get("/api/v1/plans").await;
    assert_eq!(plans.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn deleting_accounts_destroys_what_they_hold_and_still_bills_them() {
    use crate::support::{try_login, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(20)).await;
    let other = app.reseller("other", plan("basic", 5), pool(20)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let bob = app.customer(&acme, "bob", "basic").await;
    for name in ["web", "db"] {
        let (status, _) = alice.create(json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = bob.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    acetate::service::metering::sample(&app.state.db, &app.state.runtime, None)
        .await
        .unwrap();

    // Without the name typed again, out of scope, or by the customer itself: nothing.
    let del = |api: &crate::support::Api, path: &str, confirm: &str| {
        let (api, path, confirm) = (api.clone(), path.to_string(), confirm.to_string());
        async move {
            api.call(
                Method::DELETE,
                &format!("{path}?wait=20"),
                Some(json!({"confirm": confirm})),
            )
            .await
        }
    };
    let (status, body) = del(&acme, "/api/v1/customers/alice", "alicia").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("confirm:"));
    let (status, _) = del(&other, "/api/v1/customers/alice", "alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = del(&alice, "/api/v1/customers/alice", "alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.engine.count(), 3);

    let (status, body) = del(&acme, "/api/v1/customers/alice", "alice").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.engine.count(), 1, "alice's two containers are gone");
    let (status, _) = alice.get("/api/v1/containers").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "her tokens went with her");
    let (status, _) = try_login(&app, "alice", PASSWORD).await;
    assert_ne!(status, StatusCode::SEE_OTHER, "she cannot log in");
    let (_, customers) = acme.get("/api/v1/customers").await;
    let names: Vec<_> = customers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("bob")]);
    // The month's invoice still bills her usage up to now.
    let report = app.bill_this_month(&acme).await;
    assert!(report.to_string().contains("alice"), "{report}");
    // Her name is free again: a new alice is a new account, with nothing of the old one's.
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, list) = alice.get("/api/v1/containers").await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE name = 'alice'")
            .await,
        2,
        "the deleted alice's row stays for her invoice"
    );
    let (status, body) = acme
        .post(
            "/api/v1/customers",
            json!({"name": "alice", "password": PASSWORD, "plan": "basic"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a live alice stays unique: {body}"
    );

    // The provider deletes a reseller with its customers and their containers.
    let provider = app.api("admin").await;
    let (status, _) = del(&acme, "/api/v1/resellers/acme", "acme").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = del(&provider, "/api/v1/resellers/acme", "acme").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.engine.count(), 0);
    let (_, resellers) = provider.get("/api/v1/resellers").await;
    let names: Vec<_> = resellers
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, [json!("other")]);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('customer.delete', 'reseller.delete')"
        )
        .await,
        4,
        "alice, bob, the second alice and acme"
    );
}

#[tokio::test]
async fn a_pool_above_what_the_host_has_is_set_with_a_warning() {
    let app = spawn_app().await;
    let provider = app.api("admin").await;
    app.reseller("acme", plan("basic", 5), pool(20)).await;
    app.reseller("other", plan("basic", 5), pool(20)).await;
    // This machine's memory, many times over: set, with the figures in a warning.
    let (status, body) = provider
        .call(
            Method::PUT,
            "/api/v1/resellers/acme/pool",
            Some(json!({"memory": "64T", "cpus": 1, "disk": "1G", "containers": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["memory"],
        64_i64 << 40,
        "the pool's fields as before: {body}"
    );
    let warnings = body["warnings"].to_string();
    assert!(
        warnings.contains("memory: this pool (64T) is more than the host has"),
        "{warnings}"
    );
    // Each pool small enough, all of them together not: over-subscribed.
    let cpus = std::thread::available_parallelism().unwrap().get();
    let (status, body) = provider
        .call(
            Method::PUT,
            "/api/v1/resellers/other/pool",
            Some(json!({"memory": "1G", "cpus": cpus, "disk": "1G", "containers": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["warnings"]
            .to_string()
            .contains("cpus: all pools together"),
        "{body}"
    );
    // Within the host, alone and together: no warning.
    for name in ["acme", "other"] {
        let (status, body) = provider
            .call(
                Method::PUT,
                &format!("/api/v1/resellers/{name}/pool"),
                Some(json!({"memory": "1M", "cpus": 0.01, "disk": "1M", "containers": 1})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if name == "other" {
            assert_eq!(body["warnings"], json!([]), "{body}");
        }
    }
}

#[tokio::test]
async fn the_reseller_page_unlocks_and_resets_a_customers_password() {
    use crate::support::{login, page, try_login, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(20)).await;
    app.customer(&acme, "alice", "basic").await;
    for _ in 0..5 {
        try_login(&app, "alice", "wrong password!").await;
    }
    assert_eq!(
        try_login(&app, "alice", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let cookie = login(&app, "acme", PASSWORD).await;
    let (_, html) = page(&app, &cookie, "/reseller").await;
    let csrf = crate::support::csrf_of(&html);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str| {
        http.post(format!("{}{path}", app.base))
            .header("cookie", cookie.as_str())
            .form(&[("csrf", csrf.as_str())])
            .send()
    };
    let resp = post("/reseller/customers/alice/unlock").await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        try_login(&app, "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    // A new one-time password, on that answer only (not cached), which then logs in.
    let resp = post("/reseller/customers/alice/password-reset")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    let shown = html
        .split("New one-time password for alice: <code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the password on the page")
        .to_string();
    assert_eq!(
        try_login(&app, "alice", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_login(&app, "alice", &shown).await.0,
        StatusCode::SEE_OTHER
    );
    let (_, again) = page(&app, &cookie, "/reseller").await;
    assert!(!again.contains(&shown), "shown once");
    // Not another reseller's customer.
    let resp = post("/reseller/customers/nobody/password-reset")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn accounts_are_deleted_from_the_pages_once_their_name_is_typed() {
    use crate::support::{login, page, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(20)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, _) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form_post = |cookie: String, path: &'static str, confirm: &'static str| {
        let http = http.clone();
        let base = app.base.clone();
        let app = &app;
        async move {
            let (_, html) = page(app, &cookie, "/").await;
            let csrf = crate::support::csrf_of(&html);
            http.post(format!("{base}{path}"))
                .header("cookie", cookie.as_str())
                .form(&[("csrf", csrf.as_str()), ("confirm", confirm)])
                .send()
                .await
                .unwrap()
        }
    };
    let reseller = login(&app, "acme", PASSWORD).await;
    let resp = form_post(
        reseller.clone(),
        "/reseller/customers/alice/delete",
        "alicia",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("type the account"));
    assert_eq!(app.engine.count(), 1, "nothing deleted");
    let resp = form_post(
        reseller.clone(),
        "/reseller/customers/alice/delete",
        "alice",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.engine.count(), 0);
    let (_, list) = acme.get("/api/v1/customers").await;
    assert_eq!(list, json!([]));

    let provider = login(&app, "admin", "provider-password-1").await;
    let resp = form_post(reseller, "/provider/resellers/acme/delete", "acme").await;
    assert!(resp.status().is_client_error(), "only the provider");
    let resp = form_post(provider, "/provider/resellers/acme/delete", "acme").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let admin = app.api("admin").await;
    let (_, resellers) = admin.get("/api/v1/resellers").await;
    assert_eq!(resellers, json!([]));
}

#[tokio::test]
async fn the_provider_page_gives_a_reseller_a_new_password() {
    use crate::support::{login, page, try_login, PASSWORD};
    let app = spawn_app().await;
    app.reseller("acme", plan("basic", 5), pool(20)).await;
    let cookie = login(&app, "admin", "provider-password-1").await;
    let (_, html) = page(&app, &cookie, "/provider").await;
    let csrf = crate::support::csrf_of(&html);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str| {
        http.post(format!("{}{path}", app.base))
            .header("cookie", cookie.as_str())
            .form(&[("csrf", csrf.as_str())])
            .send()
    };
    let resp = post("/provider/resellers/acme/unlock").await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = post("/provider/resellers/acme/password-reset")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    let shown = html
        .split("New one-time password for acme: <code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .expect("the password on the page")
        .to_string();
    assert_eq!(
        try_login(&app, "acme", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_login(&app, "acme", &shown).await.0,
        StatusCode::SEE_OTHER
    );
    let resp = post("/provider/resellers/nobody/password-reset")
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_password_someone_else_chose_is_changed_before_anything_else() {
    use crate::support::{login, page};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(20)).await;
    app.customer(&acme, "alice", "basic").await;
    let (status, body) = acme
        .post("/api/v1/users/alice/password-reset", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let one_time = body["password"].as_str().unwrap().to_string();
    let cookie = login(&app, "alice", &one_time).await;
    // Every page but the account page sends her there first.
    for path in ["/", "/invoices", "/containers/web"] {
        let (status, _) = page(&app, &cookie, path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
    }
    let (status, html) = page(&app, &cookie, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"must-change\""), "{html}");
    let csrf = crate::support::csrf_of(&html);
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/account/password", app.base))
        .header("cookie", cookie.as_str())
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", one_time.as_str()),
            ("new", "her very own long password"),
            ("repeat", "her very own long password"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success() || resp.status().is_redirection(),
        "{}",
        resp.status()
    );
    let (status, _) = page(&app, &cookie, "/").await;
    assert_eq!(status, StatusCode::OK, "free to go on");
    let (_, html) = page(&app, &cookie, "/account").await;
    assert!(!html.contains("id=\"must-change\""));
}

#[tokio::test]
async fn the_first_providers_generated_password_must_be_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = acetate::db::Db::connect(&acetate::db::default_url(dir.path()))
        .await
        .unwrap();
    let plugins = std::sync::Arc::new(
        acetate_plugins::Host::new(None, acetate_plugins::Budget::default()).unwrap(),
    );
    let engine = acetate::runtime::FakeRuntime::new(dir.path().join("uploads"));
    let state = acetate::service::AppState::new(db, std::sync::Arc::new(engine), plugins);
    let first = acetate::app::App::prepare(&state, None)
        .await
        .unwrap()
        .unwrap();
    assert!(first.password.is_some(), "generated and printed once");
    let admin = state.db.user_by_name("admin").await.unwrap().unwrap();
    assert_eq!(admin.must_change_password, 1);
}

#[tokio::test]
async fn a_plan_is_edited_on_its_own_page_and_names_who_is_over() {
    use crate::support::{csrf_of, login, page, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web", "memory": "1G"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cookie = login(&app, "acme", PASSWORD).await;
    let (status, html) = page(&app, &cookie, "/reseller/plans/basic").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("value=\"1G\"") && html.contains("value=\"5.00\""),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let http = reqwest::Client::new();
    let form = |ct_memory: &'static str, egress: bool| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("name", "basic".to_string()),
            ("has_egress", "1".to_string()),
            ("price", "7.50".to_string()),
            ("currency", "EUR".to_string()),
            ("ct_memory", ct_memory.to_string()),
            ("ct_cpus", "2".to_string()),
            ("ct_disk", "1G".to_string()),
            ("ct_procs", "512".to_string()),
            ("containers", "5".to_string()),
            ("memory", "4G".to_string()),
            ("cpus", "4".to_string()),
            ("disk", "4G".to_string()),
            ("templates", "".to_string()),
            ("max_snapshots", "3".to_string()),
            ("backup_every_hours", "0".to_string()),
            ("keep_last", "7".to_string()),
        ];
        if egress {
            f.push(("egress", "1".to_string()));
        }
        f
    };
    let send = |f: Vec<(&'static str, String)>| {
        http.post(format!("{}/reseller/plans/basic", app.base))
            .header("cookie", cookie.clone())
            .form(&f)
            .send()
    };
    // A nonsense value changes nothing and says why.
    let resp = send(form("lots", true)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("Nothing was changed"));
    let (_, plans) = acme.get("/api/v1/plans").await;
    assert_eq!(plans[0]["price_minor"], 500, "{plans}");
    // A smaller container limit is saved and names the customer now over it; egress off.
    let resp = send(form("512M", false)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Plan saved") && html.contains("alice is over"),
        "{html}"
    );
    let (_, plans) = acme.get("/api/v1/plans").await;
    let p = &plans[0];
    assert_eq!(
        (
            p["price_minor"].as_i64(),
            p["ct_memory"].as_i64(),
            p["egress"].as_i64(),
            p["max_snapshots"].as_i64()
        ),
        (Some(750), Some(512 << 20), Some(0), Some(3)),
        "{p}"
    );
    let engine_name = acetate::runtime::Runtime::list(&app.engine).unwrap()[0]
        .name
        .clone();
    assert!(
        !app.engine.egress_of(&engine_name),
        "the change applied to alice's container"
    );
}

#[tokio::test]
async fn a_plan_may_keep_its_containers_on_the_minimal_init() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(20)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web", "memory": "256M"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, ct) = alice.get("/api/v1/containers/web").await;
    assert_eq!(
        ct["init"], "systemd",
        "the host template boots its systemd: {ct}"
    );
    let cookie = login(&app, "alice", PASSWORD).await;
    let (_, html) = page(&app, &cookie, "/containers/web").await;
    assert!(html.contains("host, booting its own systemd"), "{html}");

    // The reseller asks for the minimal init: the plan's containers get it (from their
    // next start) and so do new ones.
    let mut minimal = plan("basic", 5);
    minimal["minimal_init"] = json!(true);
    let (status, body) = acme
        .call(Method::PUT, "/api/v1/plans/basic", Some(minimal))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"]["minimal_init"], 1, "{body}");
    let (_, ct) = alice.get("/api/v1/containers/web").await;
    assert_eq!(ct["init"], "minimal", "{ct}");
    let (status, body) = alice.create(json!({"name": "db", "memory": "256M"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, ct) = alice.get("/api/v1/containers/db").await;
    assert_eq!(ct["init"], "minimal", "{ct}");
    let (_, html) = page(&app, &cookie, "/containers/db").await;
    assert!(
        html.contains("host, with Acetate&#39;s minimal init"),
        "{html}"
    );

    // Moved to a plan without the box (and without egress), her containers follow it.
    let mut open = plan("open", 5);
    open["egress"] = json!(false);
    let (status, body) = acme.post("/api/v1/plans", open).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = acme
        .call(
            Method::PUT,
            "/api/v1/customers/alice/plan",
            Some(json!({"plan": "open"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for name in ["web", "db"] {
        let (_, ct) = alice.get(&format!("/api/v1/containers/{name}")).await;
        assert_eq!(ct["init"], "systemd", "{ct}");
    }
    for c in acetate::runtime::Runtime::list(&app.engine).unwrap() {
        assert!(
            !app.engine.egress_of(&c.name),
            "{}: the plan's egress",
            c.name
        );
    }

    // The plan's page has the box, ticked.
    let reseller = login(&app, "acme", PASSWORD).await;
    let (_, html) = page(&app, &reseller, "/reseller/plans/basic").await;
    assert!(
        html.contains(r#"name="minimal_init" value="1" checked"#),
        "{html}"
    );
}
