//! A real browser: headless Chromium driven through ChromeDriver's WebDriver protocol
//! (plain HTTP and JSON) logs in as a customer, creates a container with the form, sees
//! it running, runs a command in it and uses its terminal.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, Method};
use serde_json::{json, Value};

use crate::api::{customer, reseller_with_plan, roomy_plan, roomy_pool};
use crate::support::{state_dir, Server};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    http: Client,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start(test: &str) -> Option<Driver> {
        if !std::path::Path::new("/usr/bin/chromedriver").exists() {
            if acetate_engine::testing::in_ci() {
                panic!("{test} needs chromium and chromium-driver: scripts/setup installs them");
            }
            eprintln!("SKIPPED {test}: chromium-driver is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own process group, so that dropping the driver also ends every Chromium
        // process it started, even when the test fails half-way.
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", format!("--user-data-dir={}", profile.path().display())]
        }}}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_string();
        Some(Driver {
            child,
            http,
            base,
            session,
            _profile: profile,
        })
    }

    async fn cmd(&self, method: Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method.clone(), url);
        if method == Method::POST {
            req = req.json(&body);
        }
        let resp: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(resp["value"].get("error").is_none(), "{path}: {resp}");
        resp["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.cmd(Method::POST, "/url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            Method::POST,
            &format!("/element/{el}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd(Method::POST, &format!("/element/{el}/click"), json!({}))
            .await;
    }

    async fn script(&self, js: &str) -> Value {
        self.cmd(
            Method::POST,
            "/execute/sync",
            json!({"script": js, "args": []}),
        )
        .await
    }

    /// Waits (up to 20 s) until the browser terminal's screen shows `text`; returns it.
    async fn wait_terminal(&self, text: &str) -> String {
        let read = "const b = window.acetateTerminal.buffer.active; const out = []; \
                    for (let i = 0; i < b.length; i++) { out.push(b.getLine(i).translateToString(true)); } \
                    return out.join('\\n');";
        let mut screen = String::new();
        for _ in 0..200 {
            screen = self.script(read).await.as_str().unwrap_or("").to_string();
            if screen.contains(text) {
                return screen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the terminal never showed {text:?}:\n{screen}");
    }

    /// Waits (up to 20 s) until the page's HTML contains every one of `texts`.
    async fn wait_for(&self, texts: &[&str]) -> String {
        let mut source = String::new();
        for _ in 0..200 {
            source = self
                .cmd(Method::GET, "/source", Value::Null)
                .await
                .as_str()
                .unwrap()
                .to_string();
            if texts.iter().all(|t| source.contains(t)) {
                return source;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never showed {texts:?}:\n{source}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group we created.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_customer_uses_the_panel_in_headless_chromium() {
    let test = "a_customer_uses_the_panel_in_headless_chromium";
    let Some(state) = state_dir(test) else {
        return;
    };
    let Some(driver) = Driver::start(test).await else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-b", roomy_plan(), roomy_pool()).await;
    let hana = customer(&server, &http, &reseller, "hana").await;

    driver.go(&format!("{}/", server.base)).await;
    driver.wait_for(&["Log in"]).await;
    driver.type_into("input[name=name]", "hana").await;
    driver
        .type_into("input[name=password]", "a long enough password")
        .await;
    driver.click("form[action='/login'] button").await;
    driver
        .wait_for(&["Your containers", "No containers yet"])
        .await;

    driver
        .type_into("form[action='/containers'] input[name=name]", "web")
        .await;
    driver
        .type_into("form[action='/containers'] input[name=memory]", "128M")
        .await;
    driver
        .type_into("form[action='/containers'] input[name=disk]", "64M")
        .await;
    driver.click("form[action='/containers'] button").await;
    driver.wait_for(&["id=\"ct-web\"", "state running"]).await;

    driver.click("a[href='/containers/web']").await;
    driver.wait_for(&["Run a command"]).await;
    driver
        .type_into(
            "input[name=command]",
            "echo hello-from-$(hostname | cut -c1-3)",
        )
        .await;
    driver
        .click("form[action='/containers/web/exec'] button")
        .await;
    // The container knows itself by its owner's name for it.
    driver.wait_for(&["Exit code 0", "hello-from-web"]).await;

    // The terminal: a login shell in the page, typed into, resized with the window.
    driver.click("#open-terminal").await;
    driver.wait_for(&["data-state=\"open\""]).await;
    driver
        .type_into(
            ".xterm-helper-textarea",
            "echo term-$((6*7)); stty size; echo sz-$((2+3))\u{E007}",
        )
        .await;
    let screen = driver.wait_terminal("sz-5").await;
    assert!(screen.contains("term-42"), "{screen}");
    let size_of = |screen: &str| -> (u32, u32) {
        let line = screen
            .lines()
            .rev()
            .find(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() == 2 && f.iter().all(|x| x.parse::<u32>().is_ok())
            })
            .unwrap_or_else(|| panic!("no `stty size` answer in {screen}"))
            .to_string();
        let mut f = line.split_whitespace().map(|x| x.parse().unwrap());
        (f.next().unwrap(), f.next().unwrap())
    };
    let (rows, cols) = size_of(&screen);
    assert!(rows > 5 && cols > 20, "{rows}x{cols}");
    driver
        .cmd(
            Method::POST,
            "/window/rect",
            json!({"width": 1200, "height": 900}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    driver
        .type_into(
            ".xterm-helper-textarea",
            "clear; stty size; echo re$((1+1))sized\u{E007}",
        )
        .await;
    let screen = driver.wait_terminal("re2sized").await;
    let (rows2, cols2) = size_of(&screen);
    assert!(
        cols2 > cols && rows2 > rows,
        "{rows}x{cols} then {rows2}x{cols2}"
    );

    let _ = driver.cmd(Method::DELETE, "", Value::Null).await;
    let (status, _) = hana
        .call(Method::DELETE, "/api/v1/containers/web", None)
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
}

/// A reseller with more customers than a page holds: the customers' table filters as one
/// types, sorts on a header's click (twice: the other way) and pages by 50.
#[tokio::test]
async fn long_tables_filter_sort_and_page_in_chromium() {
    let test = "long_tables_filter_sort_and_page_in_chromium";
    let Some(state) = state_dir(test) else {
        return;
    };
    let Some(driver) = Driver::start(test).await else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-t", roomy_plan(), roomy_pool()).await;
    for i in 0..55 {
        let (status, body) = reseller
            .post(
                "/api/v1/customers",
                json!({"name": format!("cust-{i:02}"), "password": "a long enough password",
                       "plan": "basic"}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    }
    driver.go(&format!("{}/", server.base)).await;
    driver.wait_for(&["Log in"]).await;
    driver.type_into("input[name=name]", "res-t").await;
    driver
        .type_into("input[name=password]", "a long enough password")
        .await;
    driver.click("form[action='/login'] button").await;
    driver.wait_for(&["55 rows, page 1 of 2"]).await;
    let visible = "return Array.from(document.querySelectorAll('table[data-table] tbody tr'))\
                   .filter(r => !r.hidden && r.id.startsWith('customer-')).map(r => r.id);";
    let rows = driver.script(visible).await;
    assert_eq!(rows.as_array().unwrap().len(), 50, "{rows}");
    assert_eq!(rows[0], "customer-cust-00");
    // Sorted by name, the other way on a second click.
    let name_header = "(() => { const t = document.querySelector('tr#customer-cust-00').closest('table'); \
                       t.querySelector('thead th').click(); t.querySelector('thead th').click(); })()";
    driver.script(name_header).await;
    let rows = driver.script(visible).await;
    assert_eq!(rows[0], "customer-cust-54", "{rows}");
    // The next page holds the rest.
    driver
        .script(
            "document.querySelector('tr#customer-cust-00').closest('table')\
             .previousElementSibling.querySelectorAll('button')[1].click()",
        )
        .await;
    let rows = driver.script(visible).await;
    assert_eq!(rows.as_array().unwrap().len(), 5, "{rows}");
    assert_eq!(rows[4], "customer-cust-00", "{rows}");
    // A filter narrows to the rows holding every word typed, from the first page.
    driver
        .type_into(
            "input[type=search][aria-label='Filter the rows']",
            "cust-07",
        )
        .await;
    driver.wait_for(&["1 of 55 rows"]).await;
    let rows = driver.script(visible).await;
    assert_eq!(rows, json!(["customer-cust-07"]));
    let _ = driver.cmd(Method::DELETE, "", Value::Null).await;
}
