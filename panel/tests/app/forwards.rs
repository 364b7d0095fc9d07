//! Public port forwards: the provider's ranges per reseller (never overlapping), customers'
//! forwards within their reseller's range, one public port once, scope, removal with the
//! container.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, plan, pool, spawn_app};

#[tokio::test]
async fn forwards_stay_in_the_resellers_range_and_take_a_port_once() {
    let app = spawn_app().await;
    let provider = app.api("admin").await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let other = app.reseller("other", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let bob = app.customer(&acme, "bob", "basic").await;
    let zed = app.customer(&other, "zed", "basic").await;
    for api in [&alice, &bob, &zed] {
        let (status, body) = api.create(json!({"name": "web"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let forward =
        |public: i64, private: i64| json!({"public_port": public, "private_port": private});

    // Before the provider gives ports, there are none to forward.
    let (status, body) = alice
        .post("/api/v1/containers/web/forwards", forward(20001, 22))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("no public ports"), "{body}");

    let range = |a: i64, b: i64| json!({"first_port": a, "last_port": b, "address": ""});
    let (status, body) = provider
        .call(
            Method::PUT,
            "/api/v1/resellers/acme/ports",
            Some(range(20000, 20099)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = provider
        .call(
            Method::PUT,
            "/api/v1/resellers/other/ports",
            Some(range(20050, 20150)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("acme"), "{body}");
    for bad in [range(30000, 29000), range(0, 10), range(60000, 70000)] {
        let (status, body) = provider
            .call(
                Method::PUT,
                "/api/v1/resellers/other/ports",
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = acme
        .call(
            Method::PUT,
            "/api/v1/resellers/acme/ports",
            Some(range(1, 65535)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, mine) = acme.get("/api/v1/resellers/acme/ports").await;
    assert_eq!((status, mine), (StatusCode::OK, range(20000, 20099)));
    let (status, _) = other.get("/api/v1/resellers/acme/ports").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, list) = alice
        .post("/api/v1/containers/web/forwards", forward(20001, 22))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    assert_eq!(list[0]["public_port"], 20001);
    assert_eq!(list[0]["private_port"], 22);
    assert_eq!(list[0]["proto"], "tcp");
    // The same port cannot be given twice, to another customer or the same one.
    let (status, body) = bob
        .post("/api/v1/containers/web/forwards", forward(20001, 80))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "conflict");
    // UDP is another port.
    let udp = json!({"public_port": 20001, "private_port": 53, "proto": "udp"});
    let (status, body) = bob.post("/api/v1/containers/web/forwards", udp).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (bad, why) in [
        (forward(20100, 22), "outside the range"),
        (forward(20002, 0), "not a port"),
        (forward(20002, 70000), "not a port"),
        (
            json!({"public_port": 20002, "private_port": 22, "proto": "sctp"}),
            "tcp nor udp",
        ),
    ] {
        let (status, body) = alice
            .post("/api/v1/containers/web/forwards", bad.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body.to_string().contains(why), "{bad}: {body}");
    }
    // Another reseller's customer gets nothing from acme's range.
    let (status, body) = zed
        .post("/api/v1/containers/web/forwards", forward(20003, 22))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Scope: bob sees and removes none of alice's; her reseller does.
    let (status, _) = bob.get("/api/v1/containers/web/forwards?owner=alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = acme
        .get("/api/v1/containers/web/forwards?owner=alice")
        .await;
    assert_eq!(
        (status, list.as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (status, _) = bob
        .call(
            Method::DELETE,
            "/api/v1/containers/web/forwards/tcp/20001?owner=alice",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A range that would leave a forward outside is refused, naming the port.
    let (status, body) = provider
        .call(
            Method::PUT,
            "/api/v1/resellers/acme/ports",
            Some(range(20050, 20099)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("20001"), "{body}");

    // Removed, the port is free again; the container's destruction frees its ports too.
    let (status, _) = alice
        .call(
            Method::DELETE,
            "/api/v1/containers/web/forwards/tcp/20001",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = alice
        .call(
            Method::DELETE,
            "/api/v1/containers/web/forwards/tcp/20001",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = bob
        .post("/api/v1/containers/web/forwards", forward(20001, 80))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = bob
        .call(Method::DELETE, "/api/v1/containers/web", None)
        .await;
    assert!(status.is_success(), "{status}");
    let mut freed = false;
    for _ in 0..50 {
        let (status, _) = alice
            .post("/api/v1/containers/web/forwards", forward(20001, 22))
            .await;
        if status == StatusCode::CREATED {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(freed, "a destroyed container kept its public port");

    let (_, audit) = provider.get("/api/v1/audit?limit=1000").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "reseller.ports",
        "container.forward.add",
        "container.forward.remove",
    ] {
        assert!(actions.contains(&a), "{a}: {audit}");
    }
}

#[tokio::test]
async fn ranges_and_forwards_are_per_address_of_the_host() {
    let app = spawn_app().await;
    let provider = app.api("admin").await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let other = app.reseller("other", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let zed = app.customer(&other, "zed", "basic").await;
    for api in [&alice, &zed] {
        let (status, body) = api.create(json!({"name": "web"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let range = |a: i64, b: i64, at: &str| json!({"first_port": a, "last_port": b, "address": at});
    let put = |who: &'static str, body: serde_json::Value| {
        let provider = &provider;
        async move {
            provider
                .call(
                    Method::PUT,
                    &format!("/api/v1/resellers/{who}/ports"),
                    Some(body),
                )
                .await
        }
    };
    // The same ports on two addresses go to two resellers; on every address they clash.
    for (who, body) in [
        ("acme", range(20000, 20099, "")),
        ("acme", range(30000, 30099, "203.0.113.5")),
        ("other", range(30000, 30099, "203.0.113.6")),
    ] {
        let (status, answer) = put(who, body.clone()).await;
        assert_eq!((status, answer), (StatusCode::OK, body));
    }
    let (status, body) = put("other", range(30050, 30060, "")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("203.0.113.5"), "{body}");
    let (status, body) = put("other", range(20050, 20060, "203.0.113.6")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = put("other", range(40000, 40010, "host.example")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, list) = acme.get("/api/v1/resellers/acme/port-ranges").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list,
        json!([range(20000, 20099, ""), range(30000, 30099, "203.0.113.5")])
    );
    let (status, one) = acme
        .get("/api/v1/resellers/acme/ports?address=203.0.113.5")
        .await;
    assert_eq!(
        (status, one),
        (StatusCode::OK, range(30000, 30099, "203.0.113.5"))
    );

    // Customers publish on their reseller's addresses only; one port on two addresses is
    // two forwards.
    let forward = |port: i64, at: &str| json!({"public_port": port, "private_port": 80, "public_address": at});
    let (status, list) = alice
        .post(
            "/api/v1/containers/web/forwards",
            forward(30001, "203.0.113.5"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    assert_eq!(list[0]["public_address"], "203.0.113.5");
    let (status, body) = zed
        .post(
            "/api/v1/containers/web/forwards",
            forward(30001, "203.0.113.6"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (bad, why) in [
        (forward(30001, ""), "outside the ranges"),
        (forward(30002, "203.0.113.6"), "outside the ranges"),
        (forward(30002, "somewhere"), "not an IP address"),
    ] {
        let (status, body) = alice
            .post("/api/v1/containers/web/forwards", bad.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body.to_string().contains(why), "{bad}: {body}");
    }
    // IPv6 addresses of the host too, kept in their canonical form, with or without
    // brackets.
    let (status, answer) = put("acme", range(40000, 40099, "2001:DB8::05")).await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, range(40000, 40099, "2001:db8::5"))
    );
    let (status, list) = alice
        .post(
            "/api/v1/containers/web/forwards",
            forward(40001, "[2001:db8::5]"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    assert!(list.to_string().contains("\"2001:db8::5\""), "{list}");
    let (status, _) = alice
        .call(
            Method::DELETE,
            "/api/v1/containers/web/forwards/tcp/40001?address=2001:db8::5",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = provider
        .call(
            Method::DELETE,
            "/api/v1/resellers/acme/ports?address=2001:db8::5",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A range change that would strand the forward is refused; removal names the address.
    let (status, body) = put("acme", range(30050, 30099, "203.0.113.5")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let path = "/api/v1/containers/web/forwards/tcp/30001";
    let (status, _) = alice.call(Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = alice
        .call(Method::DELETE, &format!("{path}?address=203.0.113.5"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = alice.get("/api/v1/containers/web/forwards").await;
    assert_eq!(list, json!([]));
    // A range is taken away only when nothing is forwarded from it.
    let other_range = "/api/v1/resellers/other/ports?address=203.0.113.6";
    let (status, body) = provider.call(Method::DELETE, other_range, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("30001"), "{body}");
    let (status, _) = acme.call(Method::DELETE, other_range, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mine = "/api/v1/resellers/acme/ports?address=203.0.113.5";
    let (status, _) = provider.call(Method::DELETE, mine, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = provider.call(Method::DELETE, mine, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = acme.get("/api/v1/resellers/acme/port-ranges").await;
    assert_eq!(list, json!([range(20000, 20099, "")]));
    let (_, audit) = provider.get("/api/v1/audit?limit=1000").await;
    assert!(
        audit.to_string().contains("30000-30099 on 203.0.113.5"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_plan_without_egress_closes_its_containers_and_a_change_applies_live() {
    use acetate::runtime::Runtime;
    let app = spawn_app().await;
    let mut closed = plan("closed", 5);
    closed["egress"] = json!(false);
    let acme = app.reseller("acme", closed.clone(), pool(10)).await;
    let alice = app.customer(&acme, "alice", "closed").await;
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let engine_name = app.engine.list().unwrap()[0].name.clone();
    assert!(
        !app.engine.egress_of(&engine_name),
        "made with the plan's egress off"
    );
    let (_, plans) = acme.get("/api/v1/plans").await;
    assert_eq!(plans[0]["egress"], 0, "{plans}");
    // Opening the plan opens its customers' containers at once.
    closed["egress"] = json!(true);
    let (status, body) = acme
        .call(Method::PUT, "/api/v1/plans/closed", Some(closed.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(app.engine.egress_of(&engine_name));
    closed["egress"] = json!("maybe");
    let (status, _) = acme
        .call(Method::PUT, "/api/v1/plans/closed", Some(closed))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        app.engine.egress_of(&engine_name),
        "a refused change changes nothing"
    );
}

#[tokio::test]
async fn the_provider_sets_port_ranges_and_customers_forward_from_the_pages() {
    use crate::support::{csrf_of, login, page, PASSWORD};
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin = login(&app, "admin", "provider-password-1").await;
    let (_, html) = page(&app, &admin, "/account").await;
    // The first provider's password was chosen for it: change it first.
    let csrf = csrf_of(&html);
    let resp = http
        .post(format!("{}/account/password", app.base))
        .header("cookie", &admin)
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", "provider-password-1"),
            ("new", "a brand new password"),
            ("repeat", "a brand new password"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success() || resp.status().is_redirection(),
        "{}",
        resp.status()
    );
    let admin = login(&app, "admin", "a brand new password").await;
    let (status, html) = page(&app, &admin, "/provider").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("action=\"/resellers/acme/ports\""), "{html}");
    let csrf = csrf_of(&html);
    let post = |cookie: &str, path: &str, form: Vec<(&str, &str)>| {
        http.post(format!("{}{path}", app.base))
            .header("cookie", cookie.to_string())
            .form(&form)
            .send()
    };
    let resp = post(
        &admin,
        "/resellers/acme/ports",
        vec![
            ("csrf", &csrf),
            ("first_port", "20000"),
            ("last_port", "nope"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = post(
        &admin,
        "/resellers/acme/ports",
        vec![
            ("csrf", &csrf),
            ("first_port", "20000"),
            ("last_port", "20099"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &admin, "/provider").await;
    assert!(html.contains("value=\"20099\""), "{html}");
    // A range on one address of the host, then taken away, from the page.
    let on_address = vec![
        ("csrf", csrf.as_str()),
        ("first_port", "30000"),
        ("last_port", "30009"),
        ("address", "203.0.113.7"),
    ];
    let resp = post(&admin, "/resellers/acme/ports", on_address)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &admin, "/provider").await;
    assert!(html.contains("Public ports on 203.0.113.7"), "{html}");
    let gone = vec![("csrf", csrf.as_str()), ("address", "203.0.113.7")];
    let resp = post(&admin, "/resellers/acme/ports/delete", gone)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &admin, "/provider").await;
    assert!(!html.contains("203.0.113.7"), "{html}");

    let cookie = login(&app, "alice", PASSWORD).await;
    let (_, html) = page(&app, &cookie, "/containers/web").await;
    let csrf = csrf_of(&html);
    assert!(html.contains("id=\"forwards\""), "{html}");
    let resp = post(
        &cookie,
        "/containers/web/forwards",
        vec![
            ("csrf", &csrf),
            ("public_port", "20080"),
            ("private_port", "80"),
            ("proto", "tcp"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &cookie, "/containers/web").await;
    assert!(
        html.contains("/containers/web/forwards/tcp/20080/delete"),
        "{html}"
    );
    let resp = post(
        &cookie,
        "/containers/web/forwards",
        vec![
            ("csrf", &csrf),
            ("public_port", "30000"),
            ("private_port", "80"),
            ("proto", "tcp"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("outside the range"));
    let resp = post(
        &cookie,
        "/containers/web/forwards/tcp/20080/delete",
        vec![("csrf", &csrf)],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, list) = alice.get("/api/v1/containers/web/forwards").await;
    assert_eq!(list, json!([]));
}
