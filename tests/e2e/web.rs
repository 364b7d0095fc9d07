//! The browser pages over plain HTTP, as a browser without JavaScript uses them.

use reqwest::redirect::Policy;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

use crate::api::{customer, reseller_with_plan, roomy_plan, roomy_pool};
use crate::support::{state_dir, Server};

/// A browser: follows no redirects, keeps its cookies by hand.
pub(crate) struct Browser<'a> {
    http: Client,
    base: &'a str,
    cookies: Vec<(String, String)>,
}

pub(crate) struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser<'_> {
    /// A page's status and HTML.
    pub(crate) async fn fetch(&mut self, path: &str) -> (StatusCode, String) {
        let page = self.get(path).await;
        (page.status, page.body)
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", cookie);
        if let Some(f) = form {
            req = req.form(f);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for sc in &set_cookies {
            let (kv, _) = sc.split_once(';').unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        let body = resp.text().await.unwrap();
        // Every page is well-formed enough to have a plain-text title.
        if let Some(start) = body.find("<title>") {
            let title = &body[start + 7
                ..body[start..]
                    .find("</title>")
                    .map_or(start + 7, |e| start + e)];
            assert!(
                !title.contains('<') && !title.is_empty(),
                "bad <title> on {path}: {title:?}"
            );
        }
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }
    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }
    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }
    /// Posts a multipart form with one file field, as a browser's upload form does.
    async fn upload(&mut self, path: &str, fields: &[(&str, &str)], file: (&str, Vec<u8>)) -> Page {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        form = form.part(
            file.0.to_string(),
            reqwest::multipart::Part::bytes(file.1).file_name("plugin.wasm"),
        );
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .multipart(form)
            .send()
            .await
            .unwrap();
        Page {
            status: resp.status(),
            location: resp
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            set_cookies: Vec::new(),
            body: resp.text().await.unwrap(),
        }
    }
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
    async fn login(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = csrf(&form.body);
        self.post(
            "/login",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
    }
}

/// The status of one login attempt through the form (a fresh browser).
pub(crate) async fn login_status(
    http: &Client,
    base: &str,
    name: &str,
    password: &str,
) -> StatusCode {
    let mut b = Browser {
        http: http.clone(),
        base,
        cookies: Vec::new(),
    };
    b.login(name, password).await.status
}

/// A browser logged in as `name`.
pub(crate) async fn logged_in<'a>(
    http: &Client,
    base: &'a str,
    name: &str,
    password: &str,
) -> Browser<'a> {
    let mut b = Browser {
        http: http.clone(),
        base,
        cookies: Vec::new(),
    };
    let page = b.login(name, password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "log in as {name}");
    b
}

pub(crate) fn csrf(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn a_customer_logs_in_and_manages_containers_without_javascript() {
    let Some(state) = state_dir("a_customer_logs_in_and_manages_containers_without_javascript")
    else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-w", roomy_plan(), roomy_pool()).await;
    let frank = customer(&server, &http, &reseller, "frank").await;
    customer(&server, &http, &reseller, "grace").await;
    let new_browser = || Browser {
        http: http.clone(),
        base: &server.base,
        cookies: Vec::new(),
    };

    // Anonymous: to the login page.
    let mut b = new_browser();
    let page = b.get("/").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );

    // Lockout: five wrong passwords lock the account, even for the right one.
    let mut attacker = new_browser();
    for _ in 0..4 {
        let page = attacker.login("grace", "wrong password").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.body.contains("Wrong name or password"));
    }
    let page = attacker.login("grace", "wrong password").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let page = attacker.login("grace", "a long enough password").await;
    assert_eq!(
        page.status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    assert!(page.body.contains("locked"));
    // A login form posted without its own CSRF cookie is refused.
    let page = new_browser()
        .post(
            "/login",
            &[
                ("csrf", "x"),
                ("name", "frank"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    // Login: a session cookie that scripts cannot read and other sites cannot send.
    let page = b.login("frank", "a long enough password").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/"))
    );
    let session_header = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("acetate_session="))
        .unwrap();
    assert!(
        session_header.contains("HttpOnly") && session_header.contains("SameSite=Strict"),
        "{session_header}"
    );
    let first_session = b.cookie("acetate_session").unwrap();
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your containers") && page.body.contains("No containers yet"));
    let token = csrf(&page.body);

    // CSRF: a form without the session's token changes nothing.
    let page = b
        .post("/containers", &[("csrf", "forged"), ("name", "web")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let (_, list) = frank.get("/api/v1/containers").await;
    assert_eq!(list, Value::Array(vec![]));

    // Create, see it running, stop it.
    let page = b
        .post(
            "/containers",
            &[
                ("csrf", &token),
                ("name", "web"),
                ("memory", "128M"),
                ("cpus", "0.5"),
                ("disk", "64M"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = b.get("/").await;
    assert!(
        page.body.contains("id=\"ct-web\"") && page.body.contains("state running"),
        "{}",
        page.body
    );
    let page = b.post("/containers/web/stop", &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(b.get("/").await.body.contains("state stopped"));
    let page = b.post("/containers/web/start", &[("csrf", "forged")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = b.post("/containers/nope/start", &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    // Bad input: the page says what is wrong; nothing is created.
    let page = b
        .post("/containers", &[("csrf", &token), ("name", "Bad Name")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("Could not create") && page.body.contains("invalid name"),
        "{}",
        page.body
    );
    let (_, list) = frank.get("/api/v1/containers").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The container's page: run a command (output escaped), destroy only when confirmed.
    let page = b.get("/containers/web").await;
    assert_eq!(page.status, StatusCode::OK);
    let page = b.post("/containers/web/start", &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = b
        .post(
            "/containers/web/exec",
            &[
                ("csrf", &token),
                (
                    "command",
                    "echo hi from $(hostname); echo '<script>x</script>'; echo oops >&2; exit 3",
                ),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Exit code 3")
            // The container knows itself by its owner's name for it.
            && page.body.contains("hi from web")
            && page.body.contains("oops"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<script>x") && page.body.contains("script&#62;x"),
        "output is escaped: {}",
        page.body
    );
    let page = b
        .post(
            "/containers/web/destroy",
            &[("csrf", &token), ("confirm", "wrong")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("nothing was destroyed"));
    assert_eq!(
        frank
            .get("/api/v1/containers")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Other customers' containers do not exist for this session.
    let grace = customer(&server, &http, &reseller, "grace2").await;
    let (status, _) = grace
        .post(
            "/api/v1/containers",
            serde_json::json!({"name": "secret", "disk": "64M"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        b.get("/containers/secret").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.post(
            "/containers/secret/destroy",
            &[("csrf", &token), ("confirm", "secret")]
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let (status, _) = grace
        .call(Method::DELETE, "/api/v1/containers/secret", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A new login rotates the session; the old one is dead.
    let page = b.login("frank", "a long enough password").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_ne!(b.cookie("acetate_session").unwrap(), first_session);
    let mut stale = new_browser();
    stale
        .cookies
        .push(("acetate_session".into(), first_session));
    assert_eq!(stale.get("/").await.status, StatusCode::SEE_OTHER);
    // Logout ends the session.
    let token = csrf(&b.get("/").await.body);
    let kept = b.cookie("acetate_session").unwrap();
    let page = b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(page.location.as_deref(), Some("/login"));
    let mut after = new_browser();
    after.cookies.push(("acetate_session".into(), kept));
    assert_eq!(after.get("/").await.status, StatusCode::SEE_OTHER);

    let (status, _) = frank
        .call(Method::DELETE, "/api/v1/containers/web", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn customers_change_their_password_and_manage_tokens_in_the_browser() {
    let Some(state) = state_dir("customers_change_their_password_and_manage_tokens_in_the_browser")
    else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-acct", roomy_plan(), roomy_pool()).await;
    customer(&server, &http, &reseller, "ivy").await;
    let new_browser = || Browser {
        http: http.clone(),
        base: &server.base,
        cookies: Vec::new(),
    };
    let mut b = new_browser();
    let mut other = new_browser();
    assert_eq!(
        b.login("ivy", "a long enough password").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        other.login("ivy", "a long enough password").await.status,
        StatusCode::SEE_OTHER
    );
    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("API tokens"));
    let token = csrf(&page.body);

    let change = |current: &'static str, new: &'static str, repeat: &'static str| {
        [
            ("csrf", token.clone()),
            ("current", current.into()),
            ("new", new.into()),
            ("repeat", repeat.into()),
        ]
    };
    for (form, expected) in [
        (
            change(
                "wrong password!",
                "a brand new password",
                "a brand new password",
            ),
            "current password is wrong",
        ),
        (
            change(
                "a long enough password",
                "a brand new password",
                "a different one!!",
            ),
            "differ",
        ),
        (
            change("a long enough password", "short", "short"),
            "at least 10",
        ),
    ] {
        let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = b.post("/account/password", &f).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.body.contains(expected), "{expected}: {}", page.body);
    }
    assert_eq!(
        new_browser()
            .login("ivy", "a long enough password")
            .await
            .status,
        StatusCode::SEE_OTHER,
        "unchanged"
    );
    let form = change(
        "a long enough password",
        "a brand new password",
        "a brand new password",
    );
    let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = b.post("/account/password", &f).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Password changed"));
    assert_eq!(
        other.get("/").await.status,
        StatusCode::SEE_OTHER,
        "other sessions ended"
    );
    assert_eq!(
        b.get("/").await.status,
        StatusCode::OK,
        "this session lives on"
    );
    assert_eq!(
        new_browser()
            .login("ivy", "a long enough password")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        new_browser()
            .login("ivy", "a brand new password")
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    // API tokens: shown once, usable, revocable from the page.
    let page = b
        .post("/account/tokens", &[("csrf", &token), ("label", "laptop")])
        .await;
    let marker = "<code id=\"new-token\">";
    let start = page.body.find(marker).expect("the new token is shown") + marker.len();
    let api_token = page.body[start..].split('<').next().unwrap().to_string();
    assert!(api_token.starts_with("act_"));
    let api = |t: &str| {
        http.get(format!("{}/api/v1/containers", server.base))
            .bearer_auth(t.to_string())
            .send()
    };
    assert_eq!(api(&api_token).await.unwrap().status(), StatusCode::OK);
    assert!(
        !b.get("/account").await.body.contains(&api_token),
        "shown only once"
    );
    let id = http
        .get(format!("{}/api/v1/tokens", server.base))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "laptop")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let page = b
        .post(&format!("/account/tokens/{id}/revoke"), &[("csrf", &token)])
        .await;
    assert_eq!(page.location.as_deref(), Some("/account"));
    assert_eq!(
        api(&api_token).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn resellers_see_their_pool_plans_and_suspend_customers_in_the_browser() {
    let Some(state) =
        state_dir("resellers_see_their_pool_plans_and_suspend_customers_in_the_browser")
    else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-page", roomy_plan(), roomy_pool()).await;
    let (_, other) =
        reseller_with_plan(&server, &http, "res-else", roomy_plan(), roomy_pool()).await;
    let jane = customer(&server, &http, &reseller, "jane").await;
    customer(&server, &http, &other, "kim").await;
    let (status, _) = jane
        .post(
            "/api/v1/containers",
            serde_json::json!({"name": "site", "memory": "128M", "disk": "64M"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let new_browser = || Browser {
        http: http.clone(),
        base: &server.base,
        cookies: Vec::new(),
    };

    let mut b = new_browser();
    assert_eq!(
        b.login("res-page", "a long enough password").await.status,
        StatusCode::SEE_OTHER
    );
    assert!(b.get("/").await.body.contains("href=\"/reseller\""));
    let page = b.get("/reseller").await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "Your pool",
        "id=\"customer-jane\"",
        "basic",
        "5.00 EUR",
        "128M",
        "16G",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    assert!(
        !page.body.contains("kim"),
        "another reseller's customer is not shown"
    );
    let token = csrf(&page.body);

    assert_eq!(
        b.post("/customers/jane/suspend", &[("csrf", "forged")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        jane.get("/api/v1/containers/site").await.1["state"],
        "running"
    );
    let page = b.post("/customers/jane/suspend", &[("csrf", &token)]).await;
    assert_eq!(page.location.as_deref(), Some("/reseller"));
    assert!(b.get("/reseller").await.body.contains("suspended"));
    assert_eq!(
        jane.get("/api/v1/containers/site").await.1["state"],
        "stopped"
    );
    assert_eq!(
        b.post("/customers/kim/suspend", &[("csrf", &token)])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let page = b
        .post("/customers/jane/unsuspend", &[("csrf", &token)])
        .await;
    assert_eq!(page.location.as_deref(), Some("/reseller"));
    assert!(!b.get("/reseller").await.body.contains(">suspended<"));

    let mut c = new_browser();
    assert_eq!(
        c.login("jane", "a long enough password").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(c.get("/reseller").await.status, StatusCode::NOT_FOUND);
    let (status, _) = jane
        .call(Method::DELETE, "/api/v1/containers/site", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn plugins_usage_graphs_and_invoices_in_the_browser() {
    let Some(state) = state_dir("plugins_usage_graphs_and_invoices_in_the_browser") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-pw", roomy_plan(), roomy_pool()).await;
    let hana = customer(&server, &http, &reseller, "hana").await;
    let (status, body) = hana
        .post(
            "/api/v1/containers",
            serde_json::json!({"name": "site", "memory": "128M", "cpus": 0.5, "disk": "64M"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The reseller uploads a hook through the form; it starts disabled.
    let mut r = logged_in(&http, &server.base, "res-pw", "a long enough password").await;
    let page = r.get("/plugins").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No plugins yet"));
    let token = csrf(&page.body);
    let policy = acetate_plugins::example("naming_policy").unwrap();
    let page = r
        .upload(
            "/plugins",
            &[("csrf", "forged"), ("name", "policy")],
            ("file", policy.clone()),
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "a forged upload is refused"
    );
    let page = r
        .upload(
            "/plugins",
            &[("csrf", &token), ("name", "junk")],
            ("file", b"not wasm".to_vec()),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("not a WebAssembly file"),
        "{}",
        page.body
    );
    let page = r
        .upload(
            "/plugins",
            &[("csrf", &token), ("name", "policy")],
            ("file", policy),
        )
        .await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/plugins/policy"))
    );
    let page = r.get("/plugins").await;
    assert!(
        page.body.contains("id=\"plugin-policy\"") && page.body.contains("disabled"),
        "{}",
        page.body
    );
    let page = r.post("/plugins/policy/enable", &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    // A customer's refused create becomes a recorded event the reseller dry-runs.
    let (status, _) = hana
        .post(
            "/api/v1/containers",
            serde_json::json!({"name": "www", "memory": "128M", "cpus": 0.5, "disk": "64M"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let page = r.get("/plugins/policy").await;
    assert!(
        page.body.contains("reserved"),
        "the refusal is in the call list: {}",
        page.body
    );
    let start = page
        .body
        .find("<option value=\"")
        .expect("a recorded event")
        + 15;
    let event_id = page.body[start..].split('"').next().unwrap().to_string();
    let page = r
        .post(
            "/plugins/policy/dry-run",
            &[("csrf", &token), ("event_id", &event_id)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("id=\"dry-run-result\">deny: the name &#34;www&#34; is reserved")
            || page
                .body
                .contains("id=\"dry-run-result\">deny: the name &quot;www&quot; is reserved"),
        "{}",
        page.body
    );
    let page = r.post("/plugins/policy/delete", &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(r.get("/plugins").await.body.contains("No plugins yet"));

    // The customer sees usage graphs once the container was sampled, then its invoice.
    server.cli(&["meter", "sample"], "");
    let mut h = logged_in(&http, &server.base, "hana", "a long enough password").await;
    let page = h.get("/containers/site").await;
    assert_eq!(page.status, StatusCode::OK);
    // CPU, memory, network and disk I/O, over the last hour and the last 30 days (and a
    // ninth, of limit hits, when its half CPU throttled its boot).
    for what in [
        "CPU",
        "Memory",
        "Network in and out",
        "Disk reads and writes",
    ] {
        for when in ["last hour", "last 30 days"] {
            assert!(
                page.body.contains(&format!("<figcaption>{what}, {when}")),
                "{what}, {when}: {}",
                page.body
            );
        }
    }
    let graphs = page.body.matches("<svg class=\"graph\"").count();
    let hits = page.body.contains("<figcaption>Limit hits per day");
    assert_eq!(graphs, 8 + usize::from(hits), "{}", page.body);
    let address = crate::support::engine_address(&state, "hana");
    assert!(
        page.body
            .contains(&format!("<th>Address</th><td>{address} (")),
        "{address}: {}",
        page.body
    );
    assert!(page.body.contains("Memory, last hour"));
    let page = h.get("/plugins").await;
    assert_eq!(
        page.status,
        StatusCode::NOT_FOUND,
        "customers have no plugins page"
    );
    let page = h.get("/invoices").await;
    assert!(page.body.contains("No invoices yet"));

    let period = crate::support::current_period();
    let report = server.cli(
        &["--json", "bill", "run", "--period", &period, "--open"],
        "",
    );
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["customers"][0]["status"], "invoiced", "{report}");
    let page = h.get("/invoices").await;
    assert!(page.body.contains(&period), "{}", page.body);
    let start = page.body.find("href=\"/invoices/").unwrap() + 16;
    let id = page.body[start..].split('"').next().unwrap().to_string();
    let page = h.get(&format!("/invoices/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("site on plan basic"),
        "the default rule bills the plan: {}",
        page.body
    );
    let page = h.get(&format!("/invoices/{id}/csv")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("\"site on plan basic\""),
        "{}",
        page.body
    );
    let page = r.get("/invoices").await;
    assert!(
        page.body.contains("Revenue") && page.body.contains("hana"),
        "{}",
        page.body
    );
    let (status, _) = hana
        .call(Method::DELETE, "/api/v1/containers/site", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop();
}

#[tokio::test]
async fn accounts_pools_resize_and_reinstall_from_the_browser() {
    let Some(state) = state_dir("accounts_pools_resize_and_reinstall_from_the_browser") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    server.user_with_token("res-b", "reseller", None);

    // The provider sees the host and gives the reseller a pool from the page.
    let mut p = logged_in(&http, &server.base, "admin", "provider-password-1").await;
    let token = csrf(&p.get("/provider").await.body);
    let made = p
        .post(
            "/provider/resellers",
            &[
                ("csrf", &token),
                ("name", "res-new"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    let dup = p
        .post(
            "/provider/resellers",
            &[
                ("csrf", &token),
                ("name", "res-new"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    let page = p.get("/provider").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("This host") && page.body.contains("id=\"reseller-res-b\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Disk quotas") && page.body.contains("over-commit ratio 1;"),
        "the host's disk promises are shown: {}",
        page.body
    );
    assert!(
        page.body.contains("<th>Network</th><td>bridge ") && page.body.contains("host ids from "),
        "the engine's network and ranges are shown: {}",
        page.body
    );
    assert!(
        page.body.contains("<td>host</td>"),
        "the host template is listed: {}",
        page.body
    );
    let token = csrf(&page.body);
    let pool = |memory: &'static str| {
        [
            ("csrf", token.clone()),
            ("memory", memory.to_string()),
            ("cpus", "4".into()),
            ("disk", "8G".into()),
            ("containers", "5".into()),
        ]
    };
    let form = pool("lots");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = p.post("/resellers/res-b/pool", &form).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad size refused"
    );
    let form = pool("4G");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = p.post("/resellers/res-b/pool", &form).await;
    // Set; with a notice when the pools promise more than this host has.
    assert!(
        page.status == StatusCode::SEE_OTHER
            || (page.status == StatusCode::OK && page.body.contains("Warning")),
        "{}",
        page.status
    );
    assert!(
        p.get("/provider").await.body.contains("value=\"4 GiB\"")
            || p.get("/provider").await.body.contains("value=\"4G\"")
    );

    // The reseller makes a plan and a customer from its page.
    let mut r = logged_in(&http, &server.base, "res-b", "a long enough password").await;
    let page = r.get("/reseller").await;
    let token = csrf(&page.body);
    assert!(page.body.contains("Create a plan first"));
    assert!(
        page.body.contains("<title>Customers · Acetate</title>"),
        "{}",
        page.body
    );
    assert_eq!(
        page.body.matches("<h2>New plan</h2>").count(),
        1,
        "{}",
        page.body
    );
    let plan = |price: &'static str| {
        vec![
            ("csrf", token.clone()),
            ("name", "small".to_string()),
            ("price", price.to_string()),
            ("currency", "eur".into()),
            ("ct_memory", "256M".into()),
            ("ct_cpus", "1".into()),
            ("ct_disk", "128M".into()),
            ("ct_procs", "128".into()),
            ("containers", "2".into()),
            ("memory", "512M".into()),
            ("cpus", "2".into()),
            ("disk", "256M".into()),
        ]
    };
    let form = plan("twelve");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        r.post("/reseller/plans", &form).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let form = plan("12.5");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        r.post("/reseller/plans", &form).await.status,
        StatusCode::SEE_OTHER
    );
    let page = r.get("/reseller").await;
    assert!(page.body.contains("12.50 EUR"), "{}", page.body);
    let page = r
        .post(
            "/reseller/customers",
            &[
                ("csrf", &token),
                ("name", "ivy"),
                ("password", "short"),
                ("plan", "small"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = r
        .post(
            "/reseller/customers",
            &[
                ("csrf", &token),
                ("name", "ivy"),
                ("password", "ivy's long password"),
                ("plan", "small"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(r
        .get("/reseller")
        .await
        .body
        .contains("id=\"customer-ivy\""));

    // The customer creates, resizes within the plan, and reinstalls.
    let mut c = logged_in(&http, &server.base, "ivy", "ivy's long password").await;
    let token = csrf(&c.get("/").await.body);
    let page = c
        .post(
            "/containers",
            &[
                ("csrf", &token),
                ("name", "box"),
                ("memory", "128M"),
                ("cpus", "0.5"),
                ("disk", "64M"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = c
        .post(
            "/containers/box/resize",
            &[("csrf", &token), ("memory", "1G")],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "over the plan"
    );
    assert!(page.body.contains("Could not resize"), "{}", page.body);
    let page = c
        .post(
            "/containers/box/resize",
            &[("csrf", &token), ("memory", "192M"), ("procs", "")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = c.get("/containers/box").await;
    assert!(
        page.body.contains("192 MiB memory") || page.body.contains("192M memory"),
        "{}",
        page.body
    );
    let page = c
        .post(
            "/containers/box/exec",
            &[("csrf", &token), ("command", "echo mine > /root/file")],
        )
        .await;
    assert!(page.body.contains("Exit code 0"));
    let page = c
        .post(
            "/containers/box/reinstall",
            &[("csrf", &token), ("confirm", "wrong")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = c
        .post(
            "/containers/box/exec",
            &[("csrf", &token), ("command", "cat /root/file")],
        )
        .await;
    assert!(
        page.body.contains("mine"),
        "nothing reinstalled without confirmation"
    );
    let page = c
        .post(
            "/containers/box/reinstall",
            &[("csrf", &token), ("confirm", "box")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = c
        .post(
            "/containers/box/exec",
            &[
                ("csrf", &token),
                ("command", "test -e /root/file; echo gone=$?"),
            ],
        )
        .await;
    assert!(page.body.contains("gone=1"), "{}", page.body);
    let page = c.get("/containers/box").await;
    assert!(
        page.body.contains("192 MiB memory") || page.body.contains("192M memory"),
        "limits kept: {}",
        page.body
    );
    let page = c
        .post(
            "/containers/box/destroy",
            &[("csrf", &token), ("confirm", "box")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    server.stop();
}

#[tokio::test]
async fn logins_are_limited_per_address_and_cookies_are_secure_behind_tls() {
    let Some(state) = state_dir("logins_are_limited_per_address_and_cookies_are_secure_behind_tls")
    else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    server.user_with_token("res-ip", "reseller", None);
    // A login form: its double-submit CSRF cookie and field.
    let form = || async {
        let resp = http
            .get(format!("{}/login", server.base))
            .send()
            .await
            .unwrap();
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let body = resp.text().await.unwrap();
        (cookie, csrf(&body))
    };
    let attempt =
        |from: &'static str, name: String, password: &'static str, proto: &'static str| {
            let http = http.clone();
            let base = server.base.clone();
            async move {
                let (cookie, token) = form().await;
                http.post(format!("{base}/login"))
                    .header("cookie", cookie)
                    .header("x-forwarded-for", from)
                    .header("x-forwarded-proto", proto)
                    .form(&[
                        ("csrf", token.as_str()),
                        ("name", name.as_str()),
                        ("password", password),
                    ])
                    .send()
                    .await
                    .unwrap()
            }
        };

    // Behind TLS (a proxy on this host says so), the session cookie is Secure.
    let resp = attempt(
        "198.51.100.1",
        "res-ip".into(),
        "a long enough password",
        "https",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("acetate_session="))
        .unwrap();
    assert!(
        session.contains("; Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Strict"),
        "{session}"
    );
    let resp = attempt(
        "198.51.100.1",
        "res-ip".into(),
        "a long enough password",
        "http",
    )
    .await;
    let plain = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("acetate_session="))
        .unwrap();
    assert!(!plain.contains("Secure"), "{plain}");

    // One address guessing many accounts is locked out, for every account; others are not.
    for i in 0..30 {
        let resp = attempt(
            "203.0.113.7",
            format!("guess{i}"),
            "wrong password!",
            "http",
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let resp = attempt(
        "203.0.113.7",
        "res-ip".into(),
        "a long enough password",
        "http",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.text().await.unwrap().contains("from your address"));
    let resp = attempt(
        "203.0.113.8",
        "res-ip".into(),
        "a long enough password",
        "http",
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "another address logs in"
    );
    server.stop();
}

#[tokio::test]
async fn the_provider_imports_a_template_as_a_background_job() {
    let Some(state) = state_dir("the_provider_imports_a_template_as_a_background_job") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    // A tiny root filesystem with the bones of systemd and SysV init, as a tarball.
    let src = tempfile::tempdir().unwrap();
    for dir in [
        "etc",
        "bin",
        "var",
        "usr/lib/systemd/system",
        "usr/lib/systemd/system-generators",
        "usr/lib/systemd/system-shutdown",
    ] {
        std::fs::create_dir_all(src.path().join(dir)).unwrap();
    }
    for (file, text) in [
        ("etc/os-release", "ID=tiny\n"),
        ("etc/inittab", "1:2345:respawn:/sbin/getty 38400 tty1\n"),
        ("usr/lib/systemd/systemd", ""),
        ("usr/lib/systemd/systemd-shutdown", ""),
        ("usr/lib/systemd/system/systemd-udevd.service", "[Unit]\n"),
        (
            "usr/lib/systemd/system-generators/systemd-fstab-generator",
            "",
        ),
    ] {
        std::fs::write(src.path().join(file), text).unwrap();
    }
    let tarball = src.path().join("../tiny.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(src.path())
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&tarball).unwrap();
    std::fs::remove_file(&tarball).unwrap();
    let name = acetate_engine::testing::unique_name("tiny");
    // The name carries this process's id, which an earlier run in the shared state dir may
    // have had too (ids are reused): its template goes first.
    let _ = crate::support::acetate(&state, &["template", "delete", &name]);

    let mut p = logged_in(&http, &server.base, "admin", "provider-password-1").await;
    let token = csrf(&p.get("/provider").await.body);
    let cookies = p.cookies.clone();
    let wait = |path: String| {
        let mut b = Browser {
            http: http.clone(),
            base: &server.base,
            cookies: cookies.clone(),
        };
        async move {
            for _ in 0..100 {
                let page = b.get(&path).await;
                assert_eq!(page.status, StatusCode::OK);
                if page.body.contains("id=\"job-result\"") {
                    return page.body;
                }
                assert!(
                    page.body.contains("http-equiv=\"refresh\""),
                    "a running job's page refreshes itself"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            panic!("the job did not finish");
        }
    };

    let page = p
        .upload(
            "/provider/templates",
            &[("csrf", &token), ("name", &name)],
            ("file", bytes.clone()),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let job = page.location.unwrap();
    assert!(job.starts_with("/jobs/"));
    let result = wait(job).await;
    assert!(result.contains("Done: template"), "{result}");
    assert!(p
        .get("/provider")
        .await
        .body
        .contains(&format!("<td>{name}</td>")));
    // Imported as it is unless asked: a provider's tree is theirs.
    let fitted = |name: &str| {
        let rootfs = state.join("templates").join(name).join("rootfs");
        let masked = std::fs::read_link(rootfs.join("etc/systemd/system/systemd-udevd.service"))
            .is_ok_and(|l| l == std::path::Path::new("/dev/null"));
        let parts = [
            masked,
            rootfs
                .join("etc/systemd/system-generators/systemd-fstab-generator")
                .is_symlink(),
            rootfs
                .join("usr/lib/systemd/system-shutdown/acetate-halt")
                .is_file(),
            rootfs.join("etc/.updated").is_file(),
            std::fs::read_to_string(rootfs.join("etc/inittab"))
                .unwrap()
                .contains("#1:2345:respawn"),
        ];
        assert!(parts.iter().all(|p| *p == parts[0]), "{name}: {parts:?}");
        parts[0]
    };
    assert!(!fitted(&name));
    // The page's box fits it for containers.
    let boxed = acetate_engine::testing::unique_name("fitted");
    let _ = crate::support::acetate(&state, &["template", "delete", &boxed]);
    let page = p
        .upload(
            "/provider/templates",
            &[("csrf", &token), ("name", &boxed), ("fit", "on")],
            ("file", bytes.clone()),
        )
        .await;
    assert!(wait(page.location.unwrap())
        .await
        .contains("Done: template"));
    assert!(fitted(&boxed));
    crate::support::ok(&state, &["template", "delete", &boxed]);
    // The same name again is refused at once; garbage fails in its job, with the reason.
    let page = p
        .upload(
            "/provider/templates",
            &[("csrf", &token), ("name", &name)],
            ("file", bytes.clone()),
        )
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    let other = acetate_engine::testing::unique_name("junk");
    let page = p
        .upload(
            "/provider/templates",
            &[("csrf", &token), ("name", &other)],
            ("file", b"not a tarball".to_vec()),
        )
        .await;
    let result = wait(page.location.unwrap()).await;
    assert!(
        result.contains("Failed: ") && result.contains("tarball"),
        "{result}"
    );
    assert!(!p
        .get("/provider")
        .await
        .body
        .contains(&format!("<td>{other}</td>")));
    let uploads = state.join("uploads");
    let left = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "uploads are removed once imported or refused");

    // The API: 202 with the job; others may not import.
    let admin = server.cli(&["token", "create", "admin"], "");
    let resp = http
        .post(format!("{}/api/v1/templates?name=Bad_Name", server.base))
        .bearer_auth(&admin)
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let reseller = server.user_with_token("res-tpl", "reseller", None);
    let resp = http
        .post(format!("{}/api/v1/templates?name=x", server.base))
        .bearer_auth(&reseller)
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // `?fit=true` fits it; so does `template import --fit` (a directory here).
    let by_api = acetate_engine::testing::unique_name("fitapi");
    let by_cli = acetate_engine::testing::unique_name("fitcli");
    for n in [&by_api, &by_cli] {
        let _ = crate::support::acetate(&state, &["template", "delete", n]);
    }
    let resp = http
        .post(format!(
            "{}/api/v1/templates?name={by_api}&fit=true&wait=60",
            server.base
        ))
        .bearer_auth(&admin)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(fitted(&by_api));
    let dir = src.path().to_str().unwrap();
    crate::support::ok(&state, &["template", "import", &by_cli, dir, "--fit"]);
    assert!(fitted(&by_cli));
    for n in [&name, &by_api, &by_cli] {
        crate::support::ok(&state, &["template", "delete", n]);
    }
    server.stop();
}

/// The code an authenticator app shows for `secret`, `ahead` steps from now.
fn totp_code(secret: &str, ahead: u64) -> String {
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

fn between<'h>(html: &'h str, start: &str, end: &str) -> &'h str {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in {html}"))
        + start.len();
    html[i..].split(end).next().unwrap()
}

#[tokio::test]
async fn a_customer_turns_on_a_second_factor_and_logs_in_with_a_code() {
    let Some(state) = state_dir("a_customer_turns_on_a_second_factor_and_logs_in_with_a_code")
    else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-2fa", roomy_plan(), roomy_pool()).await;
    customer(&server, &http, &reseller, "tess").await;

    // Set up from the page, with the code an app computes from the key shown.
    let mut b = logged_in(&http, &server.base, "tess", "a long enough password").await;
    let token = csrf(&b.get("/account/totp").await.body);
    let page = b.post("/account/totp/setup", &[("csrf", &token)]).await;
    assert_eq!(page.status, StatusCode::OK);
    let secret = between(&page.body, "<code id=\"totp-secret\">", "<").to_string();
    let code = totp_code(&secret, 0);
    let page = b
        .post(
            "/account/totp/confirm",
            &[("csrf", &token), ("code", &code)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"recovery-codes\""), "{}", page.body);
    let page = b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(page.location.as_deref(), Some("/login"));

    // The password opens nothing by itself; the code does.
    let mut fresh = Browser {
        http: http.clone(),
        base: &server.base,
        cookies: Vec::new(),
    };
    let page = fresh.login("tess", "a long enough password").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        fresh.cookie("acetate_session").is_none(),
        "no session before the code"
    );
    let challenge = between(&page.body, "name=\"challenge\" value=\"", "\"").to_string();
    let form_token = csrf(&page.body);
    let next = totp_code(&secret, 1);
    let page = fresh
        .post(
            "/login/code",
            &[
                ("csrf", &form_token),
                ("challenge", &challenge),
                ("code", &next),
            ],
        )
        .await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/")),
        "{}",
        page.body
    );
    let page = fresh.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your containers"), "{}", page.body);
    server.stop();
}
