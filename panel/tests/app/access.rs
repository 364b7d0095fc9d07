//! SSH keys and open sessions through the API and the "SSH and sessions" page: what a key
//! must be, that it belongs to one account, who may remove it, what a scoped token may do.
//! (The gateway itself, with real containers and OpenSSH, is in tests/e2e/access.rs.)

use reqwest::{Client, Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, csrf_of, login, page, plan, pool, spawn_app, PASSWORD};

/// Made with `ssh-keygen -t ed25519 -C test-key`; its fingerprint as `ssh-keygen -l` prints it.
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKD1luupJy1EUMQF4Ox/C69WozrvP4QC/H0xJPvax35q test-key";
const FINGERPRINT: &str = "SHA256:ihu8S/vnQgyTD8r+7Yp7Oh02a6/6NitOav6+RivGlWc";
/// `ssh-keygen -t rsa -b 1024`: too weak.
const WEAK_RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCypTVD9XjnAju4QO3zsemivPqQoqOfEOUis28OO2j/l4tr9MTUqG6ciFNwR+lHZkXdhe2cA2hZjEgTvus0AtAExfOFU/0srzKXYGxCYNYRvfvnNWf9qA4Le5xPw24/wiG4Z78YXmog0Ug4wMofDHpFAV2y4tw0l9cwI2MIEFgrDw== weak";

#[tokio::test]
async fn keys_are_checked_belong_to_one_account_and_to_their_holder() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let bob = app.customer(&acme, "bob", "basic").await;

    let (status, key) = alice
        .post("/api/v1/ssh-keys", json!({"public_key": KEY}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(key["fingerprint"], FINGERPRINT);
    assert_eq!(key["algorithm"], "ssh-ed25519");
    assert_eq!(key["name"], "test-key", "the comment names it by default");
    assert!(key["last_used_at"].is_null());

    let (status, body) = bob
        .post("/api/v1/ssh-keys", json!({"public_key": KEY}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains(FINGERPRINT), "{body}");
    for (bad, why) in [
        ("", "paste one public key"),
        ("ssh-ed25519 AAAAnotbase64", "not an OpenSSH public key"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----",
            "private key",
        ),
        (WEAK_RSA, "too weak"),
    ] {
        let (status, body) = bob
            .post("/api/v1/ssh-keys", json!({"public_key": bad}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_error(&body, "invalid");
        assert!(body.to_string().contains(why), "{bad}: {body}");
    }
    let (_, list) = bob.get("/api/v1/ssh-keys").await;
    assert_eq!(list, json!([]), "nothing was added by a refusal");

    // Only its holder lists and removes a key.
    let id = key["id"].as_i64().unwrap();
    let (status, _) = bob
        .call(Method::DELETE, &format!("/api/v1/ssh-keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = acme
        .call(Method::DELETE, &format!("/api/v1/ssh-keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = alice.get("/api/v1/ssh-keys").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // A read-only token lists but cannot add a key that would log in as its owner.
    let (_, t) = alice
        .post("/api/v1/tokens", json!({"label": "ro", "scopes": ["read"]}))
        .await;
    let ro = crate::support::Api {
        token: t["token"].as_str().unwrap().to_string(),
        ..alice.clone()
    };
    let (status, _) = ro.get("/api/v1/ssh-keys").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ro
        .post("/api/v1/ssh-keys", json!({"public_key": KEY}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = alice
        .call(Method::DELETE, &format!("/api/v1/ssh-keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Once removed, another account may register it.
    let (status, _) = bob
        .post("/api/v1/ssh-keys", json!({"public_key": KEY}))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, audit) = app.api("admin").await.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"account.ssh_key.add"), "{audit}");
    assert!(actions.contains(&"account.ssh_key.remove"), "{audit}");

    // No sessions are open; ending one that is not there (or not one's own) is 404.
    let (status, list) = alice.get("/api/v1/shells").await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let (status, _) = alice.call(Method::DELETE, "/api/v1/shells/42", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_access_page_adds_and_removes_keys() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    app.customer(&acme, "alice", "basic").await;
    let cookie = login(&app, "alice", PASSWORD).await;
    let (status, html) = page(&app, &cookie, "/access").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("SSH keys") && html.contains("Open sessions"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, form: Vec<(&str, &str)>| {
        http.post(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    let resp = post(
        "/access/keys",
        vec![("csrf", &csrf), ("public_key", "nonsense"), ("name", "")],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("not an OpenSSH public key"));
    let resp = post(
        "/access/keys",
        vec![("csrf", "forged"), ("public_key", KEY), ("name", "")],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post(
        "/access/keys",
        vec![("csrf", &csrf), ("public_key", KEY), ("name", "laptop")],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(FINGERPRINT) && html.contains("laptop"),
        "{html}"
    );
    let start = html.find("/access/keys/").unwrap() + "/access/keys/".len();
    let id = html[start..].split('/').next().unwrap().to_string();
    let resp = post(&format!("/access/keys/{id}/delete"), vec![("csrf", &csrf)])
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &cookie, "/access").await;
    assert!(!html.contains(FINGERPRINT), "{html}");
}

#[tokio::test]
async fn the_terminal_socket_opens_only_from_the_panels_pages() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cookie = login(&app, "alice", PASSWORD).await;
    let (status, html) = page(&app, &cookie, "/containers/web/terminal").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("/static/vendor/xterm/xterm.js"), "{html}");
    assert!(
        html.contains("data-ws=\"/containers/web/terminal/ws\""),
        "{html}"
    );
    let host = app.base.trim_start_matches("http://").to_string();
    let upgrade = |origin: Option<String>, cookie: Option<&str>| {
        let mut req = Client::new()
            .get(format!("{}/containers/web/terminal/ws", app.base))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(c) = cookie {
            req = req.header("cookie", c.to_string());
        }
        req.send()
    };
    // Another site's page cannot open it with the customer's cookie, nor can no page.
    for origin in [Some("http://evil.example".to_string()), None] {
        let resp = upgrade(origin.clone(), Some(&cookie)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin:?}");
    }
    // Without a login there is no terminal at all.
    let resp = upgrade(Some(format!("http://{host}")), None).await.unwrap();
    assert_ne!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    // From the panel's own page it reaches the engine (the fake one has no processes).
    let resp = upgrade(Some(format!("http://{host}")), Some(&cookie))
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_ne!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("real engine"), "{status}: {text}");
}
