//! The second factor through the pages, as a browser and an authenticator app would use
//! it (codes computed here from the key the page shows): set up, log in with a code, a
//! code used twice refused, recovery codes once each, turned off, and removed by the
//! reseller for a customer who lost the phone. Passwords alone no longer open the account
//! anywhere (the SSH gateway's password logins).

use reqwest::{Client, Method, StatusCode};
use serde_json::json;

use crate::support::{csrf_of, login, page, plan, pool, spawn_app, spawn_app_with, PASSWORD};

/// The code an authenticator app shows for `secret`, `ahead` steps from now.
fn code(secret: &str, ahead: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    let t = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    t.generate((now / 30 + ahead) * 30)
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in {html}"))
        + start.len();
    html[i..].split(end).next().unwrap()
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The password step of a login as `name`: the client, its login cookie, the form's CSRF
/// token and the challenge the code page carries.
async fn password_step(base: &str, name: &str) -> (Client, String, String, String) {
    let http = client();
    let resp = http.get(format!("{base}/login")).send().await.unwrap();
    let login_cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = csrf_of(&resp.text().await.unwrap());
    let resp = http
        .post(format!("{base}/login"))
        .header("cookie", &login_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the password step");
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "no session before the code"
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("Second factor"), "{html}");
    let challenge = between(&html, "name=\"challenge\" value=\"", "\"").to_string();
    (http, login_cookie, csrf, challenge)
}

/// The code step: the status, the session cookie if one came, and the page.
async fn code_step(
    base: &str,
    (http, login_cookie, csrf, challenge): &(Client, String, String, String),
    code: &str,
) -> (StatusCode, Option<String>, String) {
    let resp = http
        .post(format!("{base}/login/code"))
        .header("cookie", login_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("challenge", challenge.as_str()),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("acetate_session=") && !v.starts_with("acetate_session=;"))
        .map(|v| v.split(';').next().unwrap().to_string());
    (status, cookie, resp.text().await.unwrap())
}

/// Logs in with the password, then `code` on the second page.
async fn login_with_code(
    base: &str,
    name: &str,
    code: &str,
) -> (StatusCode, Option<String>, String) {
    let step = password_step(base, name).await;
    code_step(base, &step, code).await
}

async fn post(base: &str, cookie: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let resp = client()
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_second_factor_guards_the_pages_with_codes_and_recovery_codes() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let _alice = app.customer(&acme, "alice", "basic").await;
    let base = app.base.clone();

    // Set up: a key and its QR code; a wrong code is refused and the same key kept.
    let cookie = login(&app, "alice", PASSWORD).await;
    let (_, html) = page(&app, &cookie, "/account").await;
    assert!(html.contains("href=\"/account/totp\""), "{html}");
    let (_, html) = page(&app, &cookie, "/account/totp").await;
    let csrf = csrf_of(&html);
    let (status, html) = post(&base, &cookie, "/account/totp/setup", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<svg"), "a QR code: {html}");
    let secret = between(&html, "<code id=\"totp-secret\">", "<").to_string();
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    let wrong = if code(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, html) = post(
        &base,
        &cookie,
        "/account/totp/confirm",
        &[("csrf", &csrf), ("code", wrong)],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("not the code your app shows"), "{html}");
    assert!(html.contains(&secret), "the key is kept: {html}");
    // Sealed in the database with the state dir's key: a copy of the database alone does
    // not give it away.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM totp WHERE secret LIKE 'sealed1:%' AND secret NOT LIKE '%{secret}%'"
        ))
        .await,
        1
    );
    let (status, html) = post(
        &base,
        &cookie,
        "/account/totp/confirm",
        &[("csrf", &csrf), ("code", &code(&secret, 0))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let list = between(&html, "<ul class=\"codes\" id=\"recovery-codes\">", "</ul>");
    let recovery: Vec<String> = list
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10, "{list}");
    let (_, html) = page(&app, &cookie, "/account/totp").await;
    assert!(html.contains("10 recovery code(s) left"), "{html}");
    assert!(!html.contains("id=\"recovery-codes\""), "shown once only");

    // The password alone opens nothing now, here or on the SSH gateway.
    let refused = acetate::service::sessions::check_password(
        &app.state,
        "alice",
        acetate::service::auth::Secret(PASSWORD.into()),
        "192.0.2.9",
    )
    .await;
    assert!(refused.is_err());

    // A code of the next step (apps run a little ahead) logs in; the same code again
    // does not.
    let next = code(&secret, 1);
    let (status, session, html) = login_with_code(&base, "alice", &next).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let session = session.expect("a session");
    let (status, _) = page(&app, &session, "/").await;
    assert_eq!(status, StatusCode::OK);
    let (status, session_again, html) = login_with_code(&base, "alice", &next).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    assert!(session_again.is_none());
    assert!(html.contains("not right (or was used already)"), "{html}");

    // A recovery code, typed as people type, works once.
    let typed = recovery[0].to_uppercase().replace('-', " ");
    let (status, rescued, _) = login_with_code(&base, "alice", &typed).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let rescued = rescued.expect("a session");
    let (status, _, _) = login_with_code(&base, "alice", &recovery[0]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, html) = page(&app, &rescued, "/account/totp").await;
    assert!(html.contains("9 recovery code(s) left"), "{html}");

    // Turning it off takes the password and a code; then the password alone logs in.
    let csrf = csrf_of(&html);
    let (status, html) = post(
        &base,
        &rescued,
        "/account/totp/disable",
        &[
            ("csrf", &csrf),
            ("password", "not it"),
            ("code", &recovery[1]),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let (status, html) = post(
        &base,
        &rescued,
        "/account/totp/disable",
        &[
            ("csrf", &csrf),
            ("password", PASSWORD),
            ("code", &recovery[1]),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("The second factor is off"), "{html}");
    let plain = login(&app, "alice", PASSWORD).await;

    // On again; the phone is lost: the reseller removes it, which ends alice's sessions.
    let (_, html) = page(&app, &plain, "/account/totp").await;
    let csrf = csrf_of(&html);
    let (_, html) = post(&base, &plain, "/account/totp/setup", &[("csrf", &csrf)]).await;
    let secret = between(&html, "<code id=\"totp-secret\">", "<").to_string();
    let (status, _) = post(
        &base,
        &plain,
        "/account/totp/confirm",
        &[("csrf", &csrf), ("code", &code(&secret, 0))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = acme
        .call(
            Method::POST,
            "/api/v1/users/alice/totp-reset",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = page(&app, &plain, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "sessions ended");
    login(&app, "alice", PASSWORD).await;

    let provider = app.api("admin").await;
    let (_, audit) = provider.get("/api/v1/audit?limit=200").await;
    let text = audit.to_string();
    for what in [
        "totp.enable",
        "totp.recovery-code",
        "totp.disable",
        "totp.reset",
        "failed: wrong code",
    ] {
        assert!(text.contains(what), "{what}: {text}");
    }
}

#[tokio::test]
async fn an_account_whose_role_requires_a_second_factor_sets_one_up_first() {
    let app = spawn_app_with(|st| {
        st.second_factor_roles = std::sync::Arc::new(vec![acetate::domain::Role::Reseller]);
    })
    .await;
    let _acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let cookie = login(&app, "acme", PASSWORD).await;
    for path in ["/", "/reseller", "/account"] {
        let (status, body) = page(&app, &cookie, path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}: {body}");
    }
    let (status, html) = page(&app, &cookie, "/account/totp").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&html);
    let (_, html) = post(
        &app.base,
        &cookie,
        "/account/totp/setup",
        &[("csrf", &csrf)],
    )
    .await;
    let secret = between(&html, "<code id=\"totp-secret\">", "<").to_string();
    let (status, _) = post(
        &app.base,
        &cookie,
        "/account/totp/confirm",
        &[("csrf", &csrf), ("code", &code(&secret, 0))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = page(&app, &cookie, "/reseller").await;
    assert_eq!(status, StatusCode::OK, "in, once set up");
    // Other roles are not asked.
    let (status, _) = page(
        &app,
        &login(&app, "admin", "provider-password-1").await,
        "/provider",
    )
    .await;
    assert_ne!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_second_factor_is_managed_through_the_api_too() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.get("/api/v1/account/totp").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"enabled": false, "recovery_codes_left": 0}));
    let (status, key) = alice.post("/api/v1/account/totp", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap().to_string();
    assert!(key["uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Acetate%3Aalice?secret="));
    let (status, body) = alice
        .post("/api/v1/account/totp/confirm", json!({"code": "12"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = alice
        .post(
            "/api/v1/account/totp/confirm",
            json!({"code": code(&secret, 0)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);
    let (_, body) = alice.get("/api/v1/account/totp").await;
    assert_eq!(body, json!({"enabled": true, "recovery_codes_left": 10}));
    let (status, _) = alice.post("/api/v1/account/totp", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "already on");
    let (status, fresh) = alice
        .post(
            "/api/v1/account/totp/recovery-codes",
            json!({"code": code(&secret, 1)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let one = fresh["recovery_codes"][0].as_str().unwrap().to_string();
    let (status, body) = alice
        .call(
            Method::DELETE,
            "/api/v1/account/totp",
            Some(json!({"password": PASSWORD, "code": one})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = alice.get("/api/v1/account/totp").await;
    assert_eq!(body["enabled"], false);
}

#[tokio::test]
async fn a_login_waiting_for_its_code_takes_five_codes_at_most() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (_, key) = alice.post("/api/v1/account/totp", json!({})).await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let (status, _) = alice
        .post(
            "/api/v1/account/totp/confirm",
            json!({"code": code(&secret, 0)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let step = password_step(&app.base, "alice").await;
    let right = code(&secret, 1);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for n in 1..=5 {
        let (status, session, _) = code_step(&app.base, &step, wrong).await;
        assert!(session.is_none(), "attempt {n}");
        assert!(status.is_client_error(), "attempt {n}: {status}");
    }
    // The sixth, even right, finds the login over: the password is asked again.
    let (status, session, html) = code_step(&app.base, &step, &right).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    assert!(session.is_none());
    assert!(html.contains("took too many codes"), "{html}");
}
