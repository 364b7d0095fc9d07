//! The JSON API of `acetate serve`, from the outside: tenant isolation, scoping, bad
//! input, and a restart with containers running.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{state_dir, Server};

pub(crate) struct Api<'a> {
    http: Client,
    base: &'a str,
    token: String,
}

impl<'a> Api<'a> {
    /// The bearer token this client sends.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    pub(crate) fn new(http: &Client, base: &'a str, token: String) -> Api<'a> {
        Api {
            http: http.clone(),
            base,
            token,
        }
    }

    /// Calls the API as a script that relies on synchronous answers: every change waits
    /// for its operation (`?wait=`), and gets the answer the action gives when done.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let path = if method == Method::GET {
            path.to_string()
        } else {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}wait=600")
        };
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    /// POSTs raw bytes (uploads); answers the status and the body as JSON or as text.
    pub(crate) async fn post_bytes(&self, path: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    /// GETs a text body.
    pub(crate) async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }
}

/// A reseller with a pool and a plan "basic", and the provider's API.
pub(crate) async fn reseller_with_plan<'a>(
    server: &'a Server,
    http: &Client,
    name: &str,
    plan: Value,
    pool: Value,
) -> (Api<'a>, Api<'a>) {
    let provider = Api {
        http: http.clone(),
        base: &server.base,
        token: server.cli(&["token", "create", "admin"], ""),
    };
    let reseller = Api {
        http: http.clone(),
        base: &server.base,
        token: server.user_with_token(name, "reseller", None),
    };
    let (status, body) = provider
        .call(
            Method::PUT,
            &format!("/api/v1/resellers/{name}/pool"),
            Some(pool),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = reseller.post("/api/v1/plans", plan).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (provider, reseller)
}

/// A customer of `reseller` on plan "basic", with its API.
pub(crate) async fn customer<'a>(
    server: &'a Server,
    http: &Client,
    reseller: &Api<'_>,
    name: &str,
) -> Api<'a> {
    let (status, body) = reseller
        .post(
            "/api/v1/customers",
            json!({"name": name, "password": "a long enough password", "plan": "basic"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Api {
        http: http.clone(),
        base: &server.base,
        token: server.cli(&["token", "create", name], ""),
    }
}

pub(crate) fn roomy_plan() -> Value {
    json!({"name": "basic", "price_minor": 500, "currency": "EUR",
           "container": {"memory": "1G", "cpus": 2, "disk": "1G", "procs": 512},
           "customer": {"containers": 5, "memory": "4G", "cpus": 4, "disk": "4G"}})
}

pub(crate) fn roomy_pool() -> Value {
    json!({"memory": "16G", "cpus": 8, "disk": "32G", "containers": 50})
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["owner"].as_str().unwrap_or("-"),
                c["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn tenants_see_and_touch_only_their_own_containers() {
    let Some(state) = state_dir("tenants_see_and_touch_only_their_own_containers") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let api = |token: String| Api {
        http: http.clone(),
        base: &server.base,
        token,
    };
    let (provider, reseller) =
        reseller_with_plan(&server, &http, "res-a", roomy_plan(), roomy_pool()).await;
    let alice = customer(&server, &http, &reseller, "alice").await;
    let bob = customer(&server, &http, &reseller, "bob").await;

    // Names are per customer: both may call theirs "web".
    let spec = json!({"name": "web", "memory": "128M", "disk": "64M", "cpus": 0.5});
    let (status, a_web) = alice.post("/api/v1/containers", spec.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{a_web}");
    assert_eq!(
        (a_web["state"].as_str(), a_web["owner"].as_str()),
        (Some("running"), Some("alice"))
    );
    let (status, _) = bob.post("/api/v1/containers", spec.clone()).await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, list) = alice.get("/api/v1/containers").await;
    assert_eq!(names(&list), vec!["alice/web"]);
    let (_, list) = reseller.get("/api/v1/containers").await;
    assert_eq!(names(&list), vec!["alice/web", "bob/web"]);
    let (_, list) = provider.get("/api/v1/containers").await;
    let all = names(&list);
    assert!(
        all.contains(&"alice/web".into()) && all.contains(&"bob/web".into()),
        "{all:?}"
    );

    // The engine's network and ranges, to the provider only.
    let (status, net) = provider.get("/api/v1/host/network").await;
    assert_eq!(status, StatusCode::OK, "{net}");
    assert!(
        net["bridge"].is_string() && net["subnet"].is_string() && net["id_base"].is_u64(),
        "{net}"
    );
    let (status, _) = alice.get("/api/v1/host/network").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The same name reaches each customer's own container.
    let (_, a) = alice
        .post(
            "/api/v1/containers/web/exec",
            json!({"command": ["sh", "-c", "echo a > /who; cat /who"]}),
        )
        .await;
    assert_eq!(a["stdout"], "a\n");
    let (_, b) = bob
        .post(
            "/api/v1/containers/web/exec",
            json!({"command": ["cat", "/who"]}),
        )
        .await;
    assert_ne!(
        b["exit_code"], 0,
        "bob's container does not have alice's file: {b}"
    );

    // Outside one's scope is indistinguishable from nonexistent: 404 everywhere.
    for (method, path) in [
        (Method::GET, "/api/v1/containers/web?owner=bob"),
        (Method::POST, "/api/v1/containers/web/stop?owner=bob"),
        (Method::DELETE, "/api/v1/containers/web?owner=bob"),
        (Method::GET, "/api/v1/containers/web?owner=nobody"),
        (Method::GET, "/api/v1/containers/nothing"),
        (Method::POST, "/api/v1/containers/nothing/start"),
    ] {
        let (status, body) = alice.call(method.clone(), path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_error(&body, "not_found");
    }
    let (_, b_web) = bob.get("/api/v1/containers/web").await;
    assert_eq!(b_web["state"], "running", "bob's container was not touched");
    // The reseller reaches its customers' containers by owner.
    let (status, _) = reseller
        .post("/api/v1/containers/web/stop?owner=bob", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, b_web) = bob.get("/api/v1/containers/web").await;
    assert_eq!(b_web["state"], "stopped");
    // Lists come from the snapshot, which every change refreshes at once.
    let (_, list) = reseller.get("/api/v1/containers").await;
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["running", "stopped"], "{list}");

    // Bad input: clear error, nothing created.
    let cases = [
        (json!({"name": "web"}), StatusCode::CONFLICT, "conflict"),
        (
            json!({"name": "Bad Name"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "memory": "12X"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "memory": "1M"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "template": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "x", "colour": "blue"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"nom": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
    ];
    for (body, want, code) in cases {
        let (status, resp) = alice.post("/api/v1/containers", body.clone()).await;
        assert_eq!(status, want, "{body}: {resp}");
        assert_error(&resp, code);
    }
    let raw = |body: &'static str, ctype: &'static str| {
        http.post(format!("{}/api/v1/containers", server.base))
            .bearer_auth(&alice.token)
            .header("content-type", ctype)
            .body(body)
    };
    let resp = raw("{not json", "application/json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_error(&resp.json().await.unwrap(), "bad_request");
    let huge: &'static str =
        Box::leak(format!("{{\"name\":\"{}\"}}", "x".repeat(100_000)).into_boxed_str());
    let resp = raw(huge, "application/json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (_, list) = alice.get("/api/v1/containers").await;
    assert_eq!(names(&list), vec!["alice/web"], "bad input created nothing");

    // No token, a wrong token: 401.
    let resp = http
        .get(format!("{}/api/v1/containers", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = api("act_0000".into()).get("/api/v1/containers").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Containers belong to customers.
    let (status, _) = reseller
        .post("/api/v1/containers", json!({"name": "mine"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    for who in [&alice, &bob] {
        let (status, _) = who
            .call(Method::DELETE, "/api/v1/containers/web", None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (_, list) = reseller.get("/api/v1/containers").await;
    assert_eq!(names(&list), Vec::<String>::new());
}

#[tokio::test]
async fn restarting_the_server_never_stops_a_tenant_container() {
    let Some(state) = state_dir("restarting_the_server_never_stops_a_tenant_container") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-r", roomy_plan(), roomy_pool()).await;
    let token = customer(&server, &http, &reseller, "carol").await.token;
    let http = Client::new();
    let api = Api {
        http: http.clone(),
        base: &server.base,
        token: token.clone(),
    };
    let (status, created) = api
        .post("/api/v1/containers", json!({"name": "db", "disk": "64M"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, shown) = api.get("/api/v1/containers/db").await;
    assert_eq!(shown["state"], "running");
    let (_, out) = api
        .post(
            "/api/v1/containers/db/exec",
            json!({"command": ["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo started"]}),
        )
        .await;
    assert_eq!(out["stdout"], "started\n");

    let server = server.restart();
    let api = Api {
        http,
        base: &server.base,
        token,
    };
    let (_, shown) = api.get("/api/v1/containers/db").await;
    assert_eq!(shown["state"], "running", "{shown}");
    let (_, out) = api
        .post(
            "/api/v1/containers/db/exec",
            json!({"command": ["sh", "-c", "grep -l '^sleep' /proc/[0-9]*/cmdline"]}),
        )
        .await;
    assert_eq!(
        out["exit_code"], 0,
        "the tenant's sleep survived the restart: {out}"
    );
    let (status, _) = api
        .call(Method::DELETE, "/api/v1/containers/db", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn plans_pools_resizes_and_suspension_are_enforced() {
    let Some(state) = state_dir("plans_pools_resizes_and_suspension_are_enforced") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let plan = json!({"name": "basic", "price_minor": 900, "currency": "EUR",
        "container": {"memory": "256M", "cpus": 1, "disk": "128M", "procs": 128},
        "customer": {"containers": 2, "memory": "384M", "cpus": 1.5, "disk": "256M"}});
    let pool = json!({"memory": "512M", "cpus": 2, "disk": "512M", "containers": 3});
    let (provider, reseller) = reseller_with_plan(&server, &http, "res-p", plan, pool).await;
    let alice = customer(&server, &http, &reseller, "alice-p").await;
    let bob = customer(&server, &http, &reseller, "bob-p").await;
    let quota = |status: StatusCode, body: &Value| {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_error(body, "quota_exceeded");
        body["error"]["message"].as_str().unwrap().to_string()
    };

    let ct = |name: &str, memory: &str| json!({"name": name, "memory": memory, "cpus": 0.5, "disk": "64M"});
    let (status, body) = alice.post("/api/v1/containers", ct("one", "256M")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Per container: over the plan's 256M.
    let (status, body) = alice.post("/api/v1/containers", ct("big", "512M")).await;
    assert!(quota(status, &body).contains("per container"));
    // Per customer: 256M + 256M is over the plan's 384M in total.
    let (status, body) = alice.post("/api/v1/containers", ct("two", "256M")).await;
    assert!(quota(status, &body).contains("of memory"));
    let (status, body) = alice.post("/api/v1/containers", ct("two", "128M")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = alice.post("/api/v1/containers", ct("three", "16M")).await;
    assert!(quota(status, &body).contains("allows 2 containers"));
    // The reseller's pool: 256M + 128M + 128M fills its 512M; nothing more fits.
    let (status, body) = bob.post("/api/v1/containers", ct("one", "128M")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = bob.post("/api/v1/containers", ct("two", "64M")).await;
    assert!(quota(status, &body).contains("capacity is used up"));

    // Resize goes through the same checks, and applies live.
    let (status, body) = alice
        .call(
            Method::PATCH,
            "/api/v1/containers/one",
            Some(json!({"memory": "512M"})),
        )
        .await;
    assert!(quota(status, &body).contains("per container"));
    let (status, body) = alice
        .call(
            Method::PATCH,
            "/api/v1/containers/two",
            Some(json!({"memory": "64M", "cpus": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["limits"]["memory"], 64 << 20);
    let (status, body) = alice
        .call(
            Method::PATCH,
            "/api/v1/containers/two",
            Some(json!({"cpus": 1.5})),
        )
        .await;
    assert!(quota(status, &body).contains("CPUs"), "{body}");
    let (_, list) = reseller.get("/api/v1/customers").await;
    let used = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "alice-p")
        .unwrap()["used"]
        .clone();
    assert_eq!(
        used,
        json!({"containers": 2, "memory": 320 << 20, "cpus_milli": 1500, "disk": 128 << 20})
    );

    // Suspension stops the customer's containers and keeps them stopped.
    let (status, body) = reseller
        .post("/api/v1/customers/alice-p/suspend", json!({}))
        .await;
    assert_eq!(
        (status, body["suspended"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{body}"
    );
    let (_, one) = alice.get("/api/v1/containers/one").await;
    assert_eq!(one["state"], "stopped");
    let (status, _) = alice.post("/api/v1/containers/one/start", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = alice.post("/api/v1/containers", ct("new", "16M")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, bobs) = bob.get("/api/v1/containers/one").await;
    assert_eq!(bobs["state"], "running", "other customers are untouched");
    let (status, _) = reseller
        .post("/api/v1/customers/alice-p/unsuspend", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, one) = alice.post("/api/v1/containers/one/start", json!({})).await;
    assert_eq!(
        (status, one["state"].as_str()),
        (StatusCode::OK, Some("running"))
    );
    let (status, one) = alice
        .post("/api/v1/containers/one/restart", json!({}))
        .await;
    assert_eq!(
        (status, one["state"].as_str()),
        (StatusCode::OK, Some("running")),
        "{one}"
    );

    // Scope: customers manage no accounts; another reseller's customers are 404.
    let (status, _) = alice.get("/api/v1/customers").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = Api {
        http: http.clone(),
        base: &server.base,
        token: server.user_with_token("res-other", "reseller", None),
    };
    let (status, _) = other
        .post("/api/v1/customers/alice-p/suspend", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, resellers) = provider.get("/api/v1/resellers").await;
    let mine = resellers
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "res-p")
        .unwrap()
        .clone();
    assert_eq!(mine["used"]["memory"], (320 + 128) << 20);

    for (who, name) in [(&alice, "one"), (&alice, "two"), (&bob, "one")] {
        let (status, _) = who
            .call(Method::DELETE, &format!("/api/v1/containers/{name}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn tokens_are_revocable_and_the_audit_log_is_scoped() {
    let Some(state) = state_dir("tokens_are_revocable_and_the_audit_log_is_scoped") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (provider, reseller) =
        reseller_with_plan(&server, &http, "res-t", roomy_plan(), roomy_pool()).await;
    let dave = customer(&server, &http, &reseller, "dave").await;
    let (_, other_reseller) =
        reseller_with_plan(&server, &http, "res-u", roomy_plan(), roomy_pool()).await;

    let (status, new) = dave.post("/api/v1/tokens", json!({"label": "ci"})).await;
    assert_eq!(status, StatusCode::CREATED, "{new}");
    let ci = Api {
        http: http.clone(),
        base: &server.base,
        token: new["token"].as_str().unwrap().into(),
    };
    assert_eq!(ci.get("/api/v1/containers").await.0, StatusCode::OK);
    let (_, tokens) = dave.get("/api/v1/tokens").await;
    let tokens = tokens.as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(tokens
        .iter()
        .all(|t| t.get("token").is_none() && t.get("token_hash").is_none()));

    let id = new["id"].as_i64().unwrap();
    // Nobody else can revoke it, and it looks like a token that does not exist.
    let (status, _) = reseller
        .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(ci.get("/api/v1/containers").await.0, StatusCode::OK);
    let (status, _) = dave
        .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = ci.get("/api/v1/containers").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token is refused"
    );
    assert_error(&body, "unauthorized");
    let (status, _) = dave
        .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The audit log: the reseller sees its own and its customers' actions only.
    let actions = |log: &Value| -> Vec<String> {
        log.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["actor"].as_str().unwrap(),
                    e["action"].as_str().unwrap(),
                    e["result"].as_str().unwrap()
                )
            })
            .collect()
    };
    let (_, log) = reseller.get("/api/v1/audit").await;
    let log = actions(&log);
    assert!(
        log.contains(&"res-t customer.create ok".to_string()),
        "{log:?}"
    );
    assert!(log.contains(&"dave token.revoke ok".to_string()), "{log:?}");
    assert!(log.iter().all(|e| !e.starts_with("res-u")), "{log:?}");
    let (_, log) = other_reseller.get("/api/v1/audit").await;
    assert!(actions(&log).iter().all(|e| !e.contains("dave")), "{log}");
    let (_, log) = provider.get("/api/v1/audit").await;
    let log = actions(&log);
    assert!(
        log.contains(&"admin reseller.pool ok".to_string())
            && log.iter().any(|e| e.starts_with("dave")),
        "{log:?}"
    );
    assert_eq!(dave.get("/api/v1/audit").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_api_behaves_the_same_on_postgresql() {
    let Some(state) = state_dir("the_api_behaves_the_same_on_postgresql") else {
        return;
    };
    let Some(pg) = crate::support::Postgres::start("the_api_behaves_the_same_on_postgresql") else {
        return;
    };
    let server = Server::start(&state, &pg.url);
    let http = Client::new();
    let erin_token = {
        let plan = json!({"name": "basic", "price_minor": 900, "currency": "EUR",
        "container": {"memory": "256M", "cpus": 1, "disk": "128M", "procs": 128},
        "customer": {"containers": 2, "memory": "384M", "cpus": 1.5, "disk": "256M"}});
        let (provider, reseller) =
            reseller_with_plan(&server, &http, "res-pg", plan, roomy_pool()).await;
        let erin = customer(&server, &http, &reseller, "erin").await;
        let (status, body) = erin
            .post(
                "/api/v1/containers",
                json!({"name": "web", "memory": "256M", "disk": "64M"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = erin
            .post(
                "/api/v1/containers",
                json!({"name": "big", "memory": "256M", "disk": "64M"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_error(&body, "quota_exceeded");
        let (status, body) = erin
            .post("/api/v1/containers", json!({"name": "web"}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, body) = erin
            .call(
                Method::PATCH,
                "/api/v1/containers/web",
                Some(json!({"memory": "128M"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, list) = reseller.get("/api/v1/customers").await;
        assert_eq!(list[0]["used"]["memory"], 128 << 20, "{list}");
        let (_, log) = provider.get("/api/v1/audit").await;
        assert!(
            log.as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "container.resize"),
            "{log}"
        );
        // Failed logins are counted in PostgreSQL too, and lock.
        let browser = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for _ in 0..5 {
            let status =
                crate::web::login_status(&browser, &server.base, "erin", "not her password").await;
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
                "{status}"
            );
        }
        let status =
            crate::web::login_status(&browser, &server.base, "erin", "a long enough password")
                .await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "locked after five failures"
        );
        let (status, _) = reseller.post("/api/v1/users/erin/unlock", json!({})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        erin.token.clone()
    };

    // A second start on the same database: migrations already applied, state intact.
    let server = server.restart();
    let erin = Api {
        http: http.clone(),
        base: &server.base,
        token: erin_token,
    };
    let (_, list) = erin.get("/api/v1/containers").await;
    assert_eq!(names(&list), vec!["erin/web"]);
    assert_eq!(list[0]["state"], "running");
    let (status, _) = erin
        .call(Method::DELETE, "/api/v1/containers/web", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn reinstall_gives_a_fresh_layer_in_scope_only() {
    let Some(state) = state_dir("reinstall_gives_a_fresh_layer_in_scope_only") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-ri", roomy_plan(), roomy_pool()).await;
    let kim = customer(&server, &http, &reseller, "kim").await;
    let lou = customer(&server, &http, &reseller, "lou").await;
    let (status, body) = kim
        .post(
            "/api/v1/containers",
            json!({"name": "app", "memory": "128M", "disk": "64M"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let exec = |cmd: &str| json!({"command": ["sh", "-c", cmd]});
    let (_, out) = kim
        .post("/api/v1/containers/app/exec", exec("echo data > /root/f"))
        .await;
    assert_eq!(out["exit_code"], 0);

    let (status, body) = kim
        .post(
            "/api/v1/containers/app/reinstall",
            json!({"template": "no-such"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, out) = kim
        .post("/api/v1/containers/app/exec", exec("cat /root/f"))
        .await;
    assert_eq!(
        out["stdout"], "data\n",
        "a refused reinstall changes nothing"
    );
    let (status, _) = lou
        .post("/api/v1/containers/app/reinstall", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = kim
        .post("/api/v1/containers/app/reinstall", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "running");
    assert_eq!(body["limits"]["memory"], 128u64 << 20);
    let (_, out) = kim
        .post(
            "/api/v1/containers/app/exec",
            exec("test -e /root/f; echo $?"),
        )
        .await;
    assert_eq!(out["stdout"], "1\n");
    let (_, audit) = reseller.get("/api/v1/audit").await;
    assert!(audit.to_string().contains("container.reinstall"), "{audit}");
    let (status, _) = kim
        .call(Method::DELETE, "/api/v1/containers/app", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop();
}

#[tokio::test]
async fn a_test_panel_leaves_no_container_behind_in_the_shared_state_dir() {
    let test = "a_test_panel_leaves_no_container_behind_in_the_shared_state_dir";
    let Some(state) = state_dir(test) else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-left", roomy_plan(), roomy_pool()).await;
    let leaver = customer(&server, &http, &reseller, "leaver").await;
    for name in ["one", "two"] {
        let (status, body) = leaver
            .post(
                "/api/v1/containers",
                json!({"name": name, "memory": "128M", "disk": "64M"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let names = crate::support::engine_names_of(&state, "leaver");
    assert_eq!(names.len(), 2, "{names:?}");
    // The shared state dir outlives the run: a panel that stops destroys what it made.
    server.stop();
    let listed = crate::support::ok(&state, &["ct", "list", "--json"]);
    for name in &names {
        assert!(!listed.contains(name.as_str()), "{name} is left: {listed}");
    }
}
