//! Pages people can work in: every page of a logged-in account carries the sections its
//! role has, its account and a way to log out, with the current section marked; a login
//! lands on the role's own page.

use reqwest::StatusCode;

use crate::support::{login, login_answer, page, plan, pool, spawn_app, PASSWORD};

/// The hrefs of the page's navigation, in order.
fn nav_links(html: &str) -> Vec<String> {
    let nav = html
        .split("<nav aria-label=\"Sections\">")
        .nth(1)
        .and_then(|n| n.split("</nav>").next())
        .unwrap_or_else(|| panic!("no navigation in {html}"));
    nav.split("<a href=\"")
        .skip(1)
        .map(|a| a.split('"').next().unwrap().to_string())
        .collect()
}

/// (name, password, where a login lands, the navigation's links, pages to look at)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

#[tokio::test]
async fn every_page_carries_the_roles_sections_and_log_out() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(serde_json::json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let cases: [Case; 3] = [
        (
            "alice",
            PASSWORD,
            "/",
            &["/", "/invoices", "/access", "/account"],
            &[
                "/",
                "/containers/web",
                "/invoices",
                "/access",
                "/account",
                "/account/totp",
            ],
        ),
        (
            "acme",
            PASSWORD,
            "/reseller",
            &[
                "/reseller",
                "/",
                "/plugins",
                "/invoices",
                "/audit",
                "/access",
                "/account",
            ],
            &[
                "/reseller",
                "/",
                "/plugins",
                "/invoices",
                "/audit",
                "/access",
                "/account",
            ],
        ),
        (
            "admin",
            "provider-password-1",
            "/provider",
            &[
                "/provider",
                "/",
                "/invoices",
                "/audit",
                "/access",
                "/account",
            ],
            &[
                "/provider",
                "/",
                "/invoices",
                "/audit",
                "/access",
                "/account",
            ],
        ),
    ];
    for (name, password, landing, links, pages) in cases {
        let cookie = login(&app, name, password).await;
        let landed = login_answer(&app, name, password)
            .await
            .location
            .unwrap_or_default();
        assert_eq!(landed, landing, "{name} lands on its own page");
        for path in pages {
            let (status, html) = page(&app, &cookie, path).await;
            assert_eq!(status, StatusCode::OK, "{name} {path}");
            assert_eq!(nav_links(&html), links.to_vec(), "{name} {path}");
            assert!(
                html.contains("action=\"/logout\""),
                "{name} {path}: a way to log out"
            );
            let here = if path.starts_with("/containers") {
                "/".to_string()
            } else if path.starts_with("/account") {
                "/account".to_string()
            } else {
                path.to_string()
            };
            assert!(
                html.contains(&format!("<a href=\"{here}\" aria-current=\"page\">")),
                "{name} {path}: the current section is marked"
            );
        }
    }
}
