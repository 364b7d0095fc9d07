//! Who sees what: anything outside the caller's scope answers 404, like a name that does
//! not exist; suspension stops a customer's containers and keeps them stopped.

use acetate::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, plan, pool, spawn_app};

#[tokio::test]
async fn everything_outside_the_callers_scope_is_not_found() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let other = app.reseller("other", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let bob = app.customer(&other, "bob", "basic").await;
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["state"], "running");
    assert_eq!(body["owner"], "alice");
    let (_, op, _) = alice
        .call_full(Method::POST, "/api/v1/containers/web/stop", None)
        .await;
    let op = op.expect("a Location");

    for (who, api) in [("bob", &bob), ("other reseller", &other)] {
        for (method, path) in [
            (Method::GET, "/api/v1/containers/web?owner=alice"),
            (Method::POST, "/api/v1/containers/web/start?owner=alice"),
            (Method::DELETE, "/api/v1/containers/web?owner=alice"),
            (Method::PATCH, "/api/v1/containers/web?owner=alice"),
            (Method::GET, "/api/v1/containers/web/usage?owner=alice"),
            (Method::POST, "/api/v1/customers/alice/suspend"),
            (Method::GET, op.as_str()),
        ] {
            let body = (method == Method::PATCH).then(|| json!({"memory": "128M"}));
            let (status, resp) = api.call(method.clone(), path, body).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{who}: {method} {path}: {resp}"
            );
            assert_error(&resp, "not_found");
        }
    }
    // Bob's own view: nothing of alice's.
    let (_, list) = bob.get("/api/v1/containers").await;
    assert_eq!(list, json!([]));
    // Alice's reseller and the provider see it.
    let provider = app.api("admin").await;
    for api in [&acme, &provider] {
        let (status, body) = api.get("/api/v1/containers/web?owner=alice").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = api.get(&op).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Role-bound routes: 403 with what is needed.
    let (status, body) = alice.get("/api/v1/resellers").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "forbidden");
    let (status, body) = acme.create(json!({"name": "mine"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn suspension_stops_containers_and_keeps_them_stopped() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let carol = app.customer(&acme, "carol", "basic").await;
    for api in [&alice, &carol] {
        let (status, body) = api.create(json!({"name": "one"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = acme
        .post("/api/v1/customers/alice/suspend", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["suspended"], true);
    let (_, one) = alice.get("/api/v1/containers/one").await;
    assert_eq!(one["state"], "stopped");
    let (_, theirs) = carol.get("/api/v1/containers/one").await;
    assert_eq!(theirs["state"], "running", "other customers are untouched");
    let (status, body) = alice
        .post("/api/v1/containers/one/start?wait=10", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = alice.create(json!({"name": "two"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(app.engine.count(), 2, "nothing was made");
    let (status, _) = acme
        .post("/api/v1/customers/alice/unsuspend", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, one) = alice
        .post("/api/v1/containers/one/start?wait=10", json!({}))
        .await;
    assert_eq!(
        (status, one["state"].as_str()),
        (StatusCode::OK, Some("running"))
    );
    // A customer cannot suspend anyone; a provider can.
    let (status, _) = carol
        .post("/api/v1/customers/alice/suspend", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let provider = app.user("admin", Role::Provider, None).await;
    let (status, _) = provider
        .post("/api/v1/customers/alice/suspend", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(format!("{}/api/v1/health", app.base))
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // A proxy's id is kept, so that its logs and the panel's meet.
    let resp = app
        .http
        .get(format!("{}/api/v1/nothing-here", app.base))
        .header("x-request-id", "proxy-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["x-request-id"], "proxy-42");
}

#[tokio::test]
async fn pages_and_answers_carry_security_headers() {
    let app = spawn_app().await;
    for path in ["/login", "/api/v1/health", "/static/acetate.css"] {
        let resp = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        // Plain HTTP gets no HSTS; behind a TLS proxy on this host every answer has it.
        assert!(h.get("strict-transport-security").is_none(), "{path}");
        let resp = app
            .http
            .get(format!("{}{path}", app.base))
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains",
            "{path}"
        );
    }
}

#[tokio::test]
async fn tokens_do_only_what_their_scopes_allow_until_they_expire() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let token = |scopes: serde_json::Value, days: Option<i64>| {
        let alice = alice.clone();
        async move {
            let (status, body) = alice
                .post(
                    "/api/v1/tokens",
                    json!({"label": "ci", "scopes": scopes, "expires_days": days}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            crate::support::Api {
                token: body["token"].as_str().unwrap().to_string(),
                ..alice.clone()
            }
        }
    };
    let read = token(json!(["read"]), None).await;
    let (status, _) = read.get("/api/v1/containers").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = read.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("scopes (read)"),
        "{body}"
    );
    // A scoped token cannot make itself a broader one.
    let (status, _) = read.post("/api/v1/tokens", json!({"label": "more"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let containers = token(json!(["containers"]), Some(30)).await;
    let (status, body) = containers.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = containers.get("/api/v1/invoices").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = alice
        .post("/api/v1/tokens", json!({"scopes": ["root"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // The list says what each may do and until when.
    let (_, list) = alice.get("/api/v1/tokens").await;
    let scoped: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["scopes"] == "containers")
        .collect();
    assert!(
        scoped[0]["expires_at"].as_i64().unwrap() > acetate::domain::now(),
        "{list}"
    );
    // An expired token is no token.
    let old = token(json!([]), Some(1)).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.url).await.unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = 1 WHERE expires_at IS NOT NULL")
        .execute(&pool)
        .await
        .unwrap();
    let (status, _) = old.get("/api/v1/containers").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_end_when_idle_and_all_at_once_on_request() {
    use crate::support::{login, page, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    app.customer(&acme, "alice", "basic").await;
    let first = login(&app, "alice", PASSWORD).await;
    let second = login(&app, "alice", PASSWORD).await;
    let (status, body) = page(&app, &first, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Log out everywhere"), "{body}");
    assert_eq!(
        body.matches("<tr><td>20").count(),
        2,
        "two sessions listed: {body}"
    );
    // Idle for more than two hours: over.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.url).await.unwrap();
    sqlx::query("UPDATE sessions SET last_seen = $1")
        .bind(acetate::domain::now() - 3 * 3600)
        .execute(&pool)
        .await
        .unwrap();
    let (status, _) = page(&app, &first, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "back to the login page");
    // Log out everywhere ends every session of the account.
    let third = login(&app, "alice", PASSWORD).await;
    let fourth = login(&app, "alice", PASSWORD).await;
    let (_, body) = page(&app, &third, "/account").await;
    let start = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = body[start..].split('"').next().unwrap().to_string();
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/account/sessions/end", app.base))
        .header("cookie", third.as_str())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    for cookie in [&second, &third, &fourth] {
        assert_eq!(page(&app, cookie, "/").await.0, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn resellers_unlock_and_reset_their_customers_passwords() {
    use crate::support::{try_login, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let other = app.reseller("other", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    for _ in 0..5 {
        try_login(&app, "alice", "wrong password!").await;
    }
    let (status, _) = try_login(&app, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "locked");
    for (api, want) in [
        (&other, StatusCode::NOT_FOUND),
        (&alice, StatusCode::NOT_FOUND),
    ] {
        let (status, _) = api.post("/api/v1/users/alice/unlock", json!({})).await;
        assert_eq!(status, want);
    }
    let (status, _) = acme.post("/api/v1/users/alice/unlock", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = try_login(&app, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "unlocked");
    // A new one-time password: the old one and the old sessions are over.
    let (status, body) = acme
        .post("/api/v1/users/alice/password-reset", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh = body["password"].as_str().unwrap().to_string();
    assert_eq!(
        try_login(&app, "alice", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        try_login(&app, "alice", &fresh).await.0,
        StatusCode::SEE_OTHER
    );
    let (status, _) = other
        .post("/api/v1/users/alice/password-reset", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nobody resets the provider's.
    let (status, _) = acme
        .post("/api/v1/users/admin/password-reset", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_provider_and_the_reseller_operate_a_customers_container_from_the_web() {
    use crate::support::{login, page, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    app.reseller("other", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, _) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED);
    // The provider's dashboard links to it; its page opens with the owner in the query.
    let admin = login(&app, "admin", "provider-password-1").await;
    let (_, dash) = page(&app, &admin, "/").await;
    assert!(dash.contains("/containers/web?owner=alice"), "{dash}");
    let (status, body) = page(&app, &admin, "/containers/web?owner=alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("action=\"/containers/web/stop?owner=alice\""),
        "{body}"
    );
    // Alice's reseller may too; another reseller and another customer may not.
    let reseller = login(&app, "acme", PASSWORD).await;
    assert_eq!(
        page(&app, &reseller, "/containers/web?owner=alice").await.0,
        StatusCode::OK
    );
    let stranger = login(&app, "other", PASSWORD).await;
    assert_eq!(
        page(&app, &stranger, "/containers/web?owner=alice").await.0,
        StatusCode::NOT_FOUND
    );
    // The provider stops it from the page: done, and audited as the provider.
    let start = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = body[start..].split('"').next().unwrap().to_string();
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/containers/web/stop?owner=alice", app.base))
        .header("cookie", admin.as_str())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, shown) = alice.get("/api/v1/containers/web").await;
    assert_eq!(shown["state"], "stopped");
    let provider = app.api("admin").await;
    let (_, log) = provider.get("/api/v1/audit").await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "container.stop" && e["actor"] == "admin"),
        "{log}"
    );
}
