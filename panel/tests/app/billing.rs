//! Billing runs are idempotent, and money is written in each currency's own decimals.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{assert_error, pool, spawn_app};

fn priced(name: &str, price_minor: i64, currency: &str) -> serde_json::Value {
    json!({"name": name, "price_minor": price_minor, "currency": currency,
           "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
           "customer": {"containers": 3, "memory": "2G", "cpus": 2, "disk": "2G"}})
}

#[tokio::test]
async fn a_period_is_billed_once_in_the_plans_currency() {
    let app = spawn_app().await;
    let acme = app
        .reseller("acme", priced("yen", 3_000_000_000, "JPY"), pool(10))
        .await;
    for (name, price, currency) in [("dinar", 12_345, "KWD"), ("euro", 1250, "EUR")] {
        let (status, body) = acme
            .post("/api/v1/plans", priced(name, price, currency))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = acme.post("/api/v1/plans", priced("bad", 1, "XYZ")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error(&body, "invalid");
    let yuki = app.customer(&acme, "yuki", "yen").await;
    let (status, body) = yuki.create(json!({"name": "shop"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    acetate::service::metering::sample(&app.state.db, &app.state.runtime, None)
        .await
        .unwrap();
    let period = acetate::domain::Period::containing(acetate::domain::now()).label;
    let run = json!({"period": period, "open": true});
    let (status, first) = acme.post("/api/v1/billing/run", run.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let outcome = &first["customers"][0];
    assert_eq!(outcome["status"], "invoiced", "{first}");
    assert_eq!(outcome["currency"], "JPY");
    let (status, again) = acme.post("/api/v1/billing/run", run).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["customers"][0]["status"], "already_invoiced",
        "{again}"
    );
    assert_eq!(again["customers"][0]["invoice"], outcome["invoice"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM invoices").await, 1);
    // Yen have no decimals in the CSV.
    let id = outcome["invoice"].as_i64().unwrap();
    let csv = app
        .http
        .get(format!("{}/api/v1/invoices/{id}/csv", app.base))
        .bearer_auth(&yuki.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let total = outcome["total"].as_i64().unwrap();
    assert!(total > 0, "{first}");
    assert!(csv.contains(&format!(",{total},JPY\r\n")), "{csv}");
    assert!(!csv.contains(&format!("{total}.")), "{csv}");
}
