//! Billing runs are idempotent, and money is written in each currency's own decimals.

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
    let first = app.bill_this_month(&acme).await;
    let outcome = &first["customers"][0];
    assert_eq!(outcome["status"], "invoiced", "{first}");
    assert_eq!(outcome["currency"], "JPY");
    let again = app.bill_this_month(&acme).await;
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

#[tokio::test]
async fn a_billing_rules_store_is_kept_from_one_invoice_to_the_next() {
    let app = spawn_app().await;
    let acme = app
        .reseller("acme", priced("basic", 100_000, "EUR"), pool(10))
        .await;
    app.plugin(&acme, "numbers", "numbered_invoices").await;
    for name in ["ann", "ben"] {
        let api = app.customer(&acme, name, "basic").await;
        let (status, body) = api.create(json!({"name": "site"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let report = app.bill_this_month(&acme).await;
    let mut numbers = Vec::new();
    for outcome in report["customers"].as_array().unwrap() {
        assert_eq!(outcome["status"], "invoiced", "{report}");
        let id = outcome["invoice"].as_i64().unwrap();
        let (_, invoice) = acme.get(&format!("/api/v1/invoices/{id}")).await;
        numbers.push(
            invoice["lines"][0]["description"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    numbers.sort();
    assert_eq!(numbers, ["invoice acme-000001", "invoice acme-000002"]);
}

/// A customer deleted during the month pays for the seconds its containers existed, not
/// for the month: the bundled rule prorates, and the deletion's last sample ends the
/// count (the seconds after it are never billed).
#[tokio::test]
async fn a_customer_deleted_in_the_month_pays_pro_rata() {
    let app = spawn_app().await;
    // A price large enough that a few seconds are worth whole cents: 2,592,000 yen a
    // month is one yen a second.
    let acme = app
        .reseller("acme", priced("second", 2_592_000, "JPY"), pool(10))
        .await;
    let (status, body) = acme
        .post("/api/v1/plans", priced("second", 2_592_000, "JPY"))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the reseller has it already: {body}"
    );
    let kai = app.customer(&acme, "kai", "second").await;
    let (status, body) = kai.create(json!({"name": "shop"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created = acetate::domain::now();
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, body) = acme
        .call(
            reqwest::Method::DELETE,
            "/api/v1/customers/kai?wait=20",
            Some(json!({"confirm": "kai"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let deleted = acetate::domain::now();
    // Seconds go by after the deletion: they are not billed.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let report = app.bill_this_month(&acme).await;
    let outcome = report["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["customer"] == "kai")
        .unwrap_or_else(|| panic!("kai is billed: {report}"))
        .clone();
    assert_eq!(outcome["status"], "invoiced", "{report}");
    let total = outcome["total"].as_i64().unwrap();
    let existed = deleted - created;
    // The prorated yen: at least the 3 seconds slept, at most the seconds from create to
    // deletion (rounded), never the 2,592,000 of the whole month.
    assert!(
        (3..=existed + 1).contains(&total),
        "billed {total} yen for {existed} s of existence"
    );
}
