//! The audit page: the provider sees everything, a reseller its own and its customers'
//! actions, a customer nothing; older entries a page at a time.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{login, page, plan, pool, spawn_app, PASSWORD};

#[tokio::test]
async fn the_audit_page_shows_each_their_part_a_page_at_a_time() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 200), pool(200)).await;
    let other = app.reseller("other", plan("basic", 5), pool(5)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    app.customer(&other, "zed", "basic").await;
    let (status, _) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED);
    // Enough entries for more than one page: each snapshot taken and deleted is two.
    for n in 0..55 {
        let (status, _) = alice
            .post(
                "/api/v1/containers/web/snapshots?wait=10",
                json!({"name": format!("s{n}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let path = format!("/api/v1/containers/web/snapshots/s{n}");
        let (status, _) = alice.call(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    let admin = login(&app, "admin", "provider-password-1").await;
    let (status, html) = page(&app, &admin, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("container.snapshot_delete"), "newest first");
    let older = html
        .split("href=\"/audit?before=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a link to older entries")
        .to_string();
    let (_, html2) = page(&app, &admin, &format!("/audit?before={older}")).await;
    assert!(
        html2.contains("customer.create") && html2.contains("zed"),
        "older ones, every reseller's"
    );
    assert_ne!(html, html2);

    let reseller = login(&app, "acme", PASSWORD).await;
    let (status, html) = page(&app, &reseller, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("container.snapshot"),
        "its customer's actions"
    );
    assert!(!html.contains("zed"), "not another reseller's");

    let customer = login(&app, "alice", PASSWORD).await;
    let (status, _) = page(&app, &customer, "/audit").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_audit_log_is_narrowed_by_who_what_on_and_when() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let other = app.reseller("other", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let zed = app.customer(&other, "zed", "basic").await;
    for api in [&alice, &zed] {
        let (status, _) = api.create(json!({"name": "web"})).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = alice.create(json!({"name": "db"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let provider = app.api("admin").await;
    let rows = |v: serde_json::Value| -> Vec<(String, String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["actor"].as_str().unwrap().to_string(),
                    r["action"].as_str().unwrap().to_string(),
                    r["target"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };

    let (status, body) = provider
        .get("/api/v1/audit?who=alice&what=container.")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = rows(body);
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|(who, what, _)| who == "alice" && what.starts_with("container.")),
        "{got:?}"
    );
    let (_, body) = provider.get("/api/v1/audit?on=alice/web").await;
    let got = rows(body);
    assert!(
        !got.is_empty() && got.iter().all(|(_, _, on)| on == "alice/web"),
        "{got:?}"
    );
    // An account with its containers.
    let (_, body) = provider.get("/api/v1/audit?on=alice").await;
    let got = rows(body);
    assert!(got.iter().any(|(_, _, on)| on == "alice/db"), "{got:?}");
    assert!(
        got.iter()
            .all(|(_, _, on)| on == "alice" || on.starts_with("alice/")),
        "{got:?}"
    );
    // A wildcard typed into the filter does not widen it.
    let (_, body) = provider.get("/api/v1/audit?on=%25").await;
    assert_eq!(body, json!([]));
    // Days: today holds everything, tomorrow nothing; a bad date says so.
    let today = acetate::domain::period::human(acetate::domain::now())[..10].to_string();
    let (_, body) = provider
        .get(&format!(
            "/api/v1/audit?since={today}&until={today}&who=zed"
        ))
        .await;
    assert!(!rows(body).is_empty());
    let tomorrow =
        acetate::domain::period::human(acetate::domain::now() + 86_400)[..10].to_string();
    let (_, body) = provider
        .get(&format!("/api/v1/audit?since={tomorrow}"))
        .await;
    assert_eq!(body, json!([]));
    let (status, body) = provider.get("/api/v1/audit?since=2026-13-01").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("since"), "{body}");
    // A reseller's filter stays within its part.
    let (_, body) = acme.get("/api/v1/audit?who=zed").await;
    assert_eq!(body, json!([]));
    let (_, body) = other.get("/api/v1/audit?on=zed").await;
    assert!(!rows(body).is_empty());

    // The page: the form keeps what was typed, the rows follow it.
    let admin = login(&app, "admin", "provider-password-1").await;
    let (status, html) = page(&app, &admin, "/audit?who=zed&on=zed%2Fweb").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"audit-filter\""), "{html}");
    assert!(html.contains("value=\"zed/web\""), "{html}");
    assert!(html.contains("<td>zed/web</td>"), "{html}");
    assert!(!html.contains("<td>alice/web</td>"), "{html}");
    let (status, html) = page(&app, &admin, "/audit?since=yesterday").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("is not a date"), "{html}");
}
