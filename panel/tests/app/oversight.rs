//! One account overseen: the provider sees any reseller or customer, a reseller its own
//! customers, through `GET /api/v1/accounts/{name}` and `/accounts/{name}`; nobody else.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{login, page, plan, pool, spawn_app, PASSWORD};

#[tokio::test]
async fn the_provider_and_resellers_oversee_the_accounts_below_them() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 3), pool(10)).await;
    let beta = app.reseller("beta", plan("small", 3), pool(10)).await;
    let kim = app.customer(&acme, "kim", "basic").await;
    let _lou = app.customer(&beta, "lou", "small").await;
    let (status, body) = kim.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.bill_this_month(&acme).await;
    let admin = app.api("admin").await;

    let (status, r) = admin.get("/api/v1/accounts/acme").await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["role"], "reseller");
    assert_eq!(r["customers"][0]["name"], "kim", "{r}");
    assert_eq!(r["plans"][0]["name"], "basic", "{r}");
    assert_eq!(r["used"]["containers"], 1, "{r}");
    assert_eq!(r["pool"]["containers"], 10, "{r}");
    assert_eq!(r["invoices"].as_array().unwrap().len(), 1, "{r}");
    let (status, c) = admin.get("/api/v1/accounts/kim").await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(
        (c["role"].clone(), c["reseller"].clone(), c["plan"].clone()),
        (json!("customer"), json!("acme"), json!("basic")),
        "{c}"
    );
    assert_eq!(c["containers"][0]["name"], "web", "{c}");
    assert_eq!(c["invoices"][0]["customer"], "kim", "{c}");

    // A reseller sees its own customers only; nobody sees themselves or the provider here.
    let (status, _) = acme.get("/api/v1/accounts/kim").await;
    assert_eq!(status, StatusCode::OK);
    for (who, name) in [
        (&acme, "lou"),
        (&acme, "beta"),
        (&acme, "acme"),
        (&kim, "kim"),
        (&kim, "acme"),
        (&admin, "admin"),
        (&admin, "nobody"),
    ] {
        let (status, body) = who.get(&format!("/api/v1/accounts/{name}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {body}");
    }

    // The pages link down: provider → reseller → customer → container.
    let cookie = login(&app, "admin", "provider-password-1").await;
    let (_, html) = page(&app, &cookie, "/provider").await;
    assert!(html.contains("href=\"/accounts/acme\""), "{html}");
    let (status, html) = page(&app, &cookie, "/accounts/acme").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("href=\"/accounts/kim\"") && html.contains("Pool"),
        "{html}"
    );
    let (_, html) = page(&app, &cookie, "/accounts/kim").await;
    assert!(
        html.contains("href=\"/containers/web?owner=kim\"") && html.contains("/invoices/"),
        "{html}"
    );
    let cookie = login(&app, "acme", PASSWORD).await;
    let (_, html) = page(&app, &cookie, "/reseller").await;
    assert!(html.contains("href=\"/accounts/kim\""), "{html}");
    let (status, _) = page(&app, &cookie, "/accounts/lou").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
