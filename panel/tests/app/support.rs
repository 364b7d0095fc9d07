//! An in-process panel for tests: the real router, services and database (SQLite in a
//! temporary directory), the real plugin host, and the in-memory engine. No root needed.

use std::net::SocketAddr;
use std::sync::Arc;

use acetate::app::App;
use acetate::db::Db;
use acetate::domain::{Role, UserName};
use acetate::runtime::FakeRuntime;
use acetate::service::auth::Secret;
use acetate::service::{accounts, sessions, AppState};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "a long enough password";

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub engine: FakeRuntime,
    pub http: Client,
    pub url: String,
    _dir: Arc<tempfile::TempDir>,
}

/// A panel on a new database, serving on a port of its own.
pub async fn spawn_app() -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = acetate::db::default_url(dir.path());
    let engine = FakeRuntime::new(dir.path().join("uploads"));
    spawn_on(&url, dir, engine, |_| {}).await
}

/// An app whose state `configure` adjusts before it serves (the provider's settings).
pub async fn spawn_app_with(configure: impl FnOnce(&mut AppState)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = acetate::db::default_url(dir.path());
    let engine = FakeRuntime::new(dir.path().join("uploads"));
    spawn_on(&url, dir, engine, configure).await
}

/// An app whose panel answers to `hosts` (names no customer may attach).
pub async fn spawn_app_named(hosts: &[&str]) -> TestApp {
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    spawn_app_with(|st| st.front = acetate::service::domains::Front::new(hosts)).await
}

/// Another panel on the same database and host (a second panel process).
pub async fn spawn_beside(app: &TestApp) -> TestApp {
    spawn_on(&app.url, app._dir.clone(), app.engine.clone(), |_| {}).await
}

async fn spawn_on(
    url: &str,
    dir: Arc<tempfile::TempDir>,
    engine: FakeRuntime,
    configure: impl FnOnce(&mut AppState),
) -> TestApp {
    let db = Db::connect(url)
        .await
        .unwrap()
        .seal_with(dir.path())
        .unwrap();
    let plugins =
        Arc::new(acetate_plugins::Host::new(None, acetate_plugins::Budget::default()).unwrap());
    let mut state = AppState::new(db, Arc::new(engine.clone()), plugins);
    configure(&mut state);
    App::prepare(&state, Some(Secret("provider-password-1".into())))
        .await
        .unwrap();
    let base = serve(state.clone()).await;
    TestApp {
        base,
        state,
        engine,
        http: Client::new(),
        url: url.to_string(),
        _dir: dir,
    }
}

async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = App::router(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

impl TestApp {
    /// An API client for an account (made here unless it is `admin`).
    pub async fn user(&self, name: &str, role: Role, reseller: Option<&str>) -> Api {
        if name != "admin" {
            accounts::add_user(
                &self.state.db,
                &UserName::parse(name).unwrap(),
                role,
                reseller,
                None,
                Secret(PASSWORD.into()),
            )
            .await
            .unwrap();
        }
        self.api(name).await
    }

    /// An API client for an existing account.
    pub async fn api(&self, name: &str) -> Api {
        let token = sessions::create_token_for(&self.state.db, name, "test", &Default::default())
            .await
            .unwrap();
        Api {
            http: self.http.clone(),
            base: self.base.clone(),
            token: token.0,
        }
    }

    /// A reseller with `pool` and a plan, and the provider.
    pub async fn reseller(&self, name: &str, plan: Value, pool: Value) -> Api {
        let provider = self.api("admin").await;
        let reseller = self.user(name, Role::Reseller, None).await;
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
        reseller
    }

    /// A customer of `reseller` on its plan `plan`.
    pub async fn customer(&self, reseller: &Api, name: &str, plan: &str) -> Api {
        let (status, body) = reseller
            .post(
                "/api/v1/customers",
                json!({"name": name, "password": PASSWORD, "plan": plan}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.api(name).await
    }

    /// Uploads one of the example plugins for `reseller` as `name` and enables it.
    pub async fn plugin(&self, reseller: &Api, name: &str, example: &str) {
        let wasm = acetate_plugins::example(example).expect("the examples are built");
        let resp = self
            .http
            .post(format!("{}/api/v1/plugins?name={name}", self.base))
            .bearer_auth(&reseller.token)
            .body(wasm)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let (status, body) = reseller
            .call(
                Method::PATCH,
                &format!("/api/v1/plugins/{name}"),
                Some(json!({"enabled": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Takes a metering sample a second on, then bills this month (open) as `reseller`.
    pub async fn bill_this_month(&self, reseller: &Api) -> Value {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        acetate::service::metering::sample(&self.state.db, &self.state.runtime, None)
            .await
            .unwrap();
        let period = acetate::domain::Period::containing(acetate::domain::now()).label;
        let (status, report) = reseller
            .post(
                "/api/v1/billing/run",
                json!({"period": period, "open": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        report
    }

    /// Rows in a table of the panel's database.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

impl TestApp {
    /// Runs one statement on the panel's database (to move time in tests).
    pub async fn exec(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

pub fn plan(name: &str, containers: i64) -> Value {
    json!({"name": name, "price_minor": 500, "currency": "EUR",
           "container": {"memory": "1G", "cpus": 2, "disk": "1G", "procs": 512},
           "customer": {"containers": containers, "memory": "4G", "cpus": 4, "disk": "4G"}})
}

pub fn pool(containers: i64) -> Value {
    json!({"memory": "16G", "cpus": 8, "disk": "32G", "containers": containers})
}

/// An API client with a bearer token.
#[derive(Clone)]
pub struct Api {
    pub http: Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_full(method, path, body).await;
        (status, body)
    }

    /// The status, the `Location` header and the body.
    pub async fn call_full(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        (
            status,
            location,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Creates a container and waits for the operation: the old synchronous answer.
    pub async fn create(&self, body: Value) -> (StatusCode, Value) {
        self.post("/api/v1/containers?wait=30", body).await
    }
}

pub fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
}

/// Logs in through the login form as a browser would; the session cookie.
pub async fn login(app: &TestApp, name: &str, password: &str) -> String {
    let (status, cookie) = try_login(app, name, password).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "log in as {name}");
    cookie.expect("a session cookie")
}

/// Tries to log in through the login form: the status and the session cookie, if any.
pub async fn try_login(app: &TestApp, name: &str, password: &str) -> (StatusCode, Option<String>) {
    let answer = login_answer(app, name, password).await;
    (answer.status, answer.cookie)
}

/// What the login form answers.
pub struct LoginAnswer {
    pub status: StatusCode,
    /// The session cookie, if one was set.
    pub cookie: Option<String>,
    /// Where it sends the browser.
    pub location: Option<String>,
}

/// Logs in through the login form as a fresh browser (its CSRF cookie first).
pub async fn login_answer(app: &TestApp, name: &str, password: &str) -> LoginAnswer {
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    let login_cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = resp.text().await.unwrap();
    let csrf = csrf_of(&html);
    let resp = http
        .post(format!("{}/login", app.base))
        .header("cookie", login_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("password", password),
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
        .find(|v| v.starts_with("acetate_session="))
        .map(|v| v.split(';').next().unwrap().to_string());
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    LoginAnswer {
        status,
        cookie,
        location,
    }
}

/// A page as the browser with `cookie` gets it: status and body.
pub async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// The CSRF token of the first form on a page.
pub fn csrf_of(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[start..].split('"').next().unwrap().to_string()
}
