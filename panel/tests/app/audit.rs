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
