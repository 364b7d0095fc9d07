//! A tenant cannot take the panel down or fill the host through it: commands are bounded
//! in output, time and number, and nothing they start holds the panel's descriptors.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::api::{customer, reseller_with_plan, roomy_plan, roomy_pool, Api};
use crate::support::{state_dir, Server};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn commands_are_bounded_and_a_tenant_cannot_hold_the_panel() {
    let Some(state) = state_dir("commands_are_bounded_and_a_tenant_cannot_hold_the_panel") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("panel.db");
    let db = format!("sqlite://{}?mode=rwc", db_path.display());
    let listen = format!("127.0.0.1:{}", free_port());
    let base: &'static str = Box::leak(format!("http://{listen}").into_boxed_str());
    let server = Server::start_on(&state, &db, &listen);
    // The database holds password hashes: root alone reads it.
    let mode = std::fs::metadata(&db_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "database file mode {mode:o}");

    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-hard", roomy_plan(), roomy_pool()).await;
    customer(&server, &http, &reseller, "kimh").await;
    customer(&server, &http, &reseller, "louh").await;
    let kim = Api::new(&http, base, server.cli(&["token", "create", "kimh"], ""));
    let lou = Api::new(&http, base, server.cli(&["token", "create", "louh"], ""));
    for who in [&kim, &lou] {
        let (status, body) = who
            .post(
                "/api/v1/containers",
                json!({"name": "box", "memory": "128M", "disk": "64M"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let exec = |cmd: &str, timeout: Option<u64>| {
        let mut body = json!({"command": ["sh", "-c", cmd]});
        if let Some(t) = timeout {
            body["timeout_seconds"] = json!(t);
        }
        body
    };
    let path = "/api/v1/containers/box/exec";

    // Endless output is cut at the bound while it is read; the command's pipe closes.
    let (status, out) = kim.post(path, exec("yes", Some(30))).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["truncated"], true);
    assert_eq!(out["timed_out"], false);
    assert_eq!(out["stdout"].as_str().unwrap().len(), 1 << 20);

    // A command that never ends is killed at its timeout.
    let started = Instant::now();
    let (status, out) = kim.post(path, exec("sleep infinity", Some(1))).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["exit_code"], 137);
    assert!(started.elapsed() < Duration::from_secs(20));
    let (status, out) = kim.post(path, exec("true", Some(100_000))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{out}");
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .contains("timeout_seconds"));

    // One customer's commands are bounded in number; another customer is not held up.
    let mut running = Vec::new();
    for _ in 0..4 {
        let kim = Api::new(&http, base, kim_token(&server));
        running.push(tokio::spawn(async move {
            kim.post(
                "/api/v1/containers/box/exec",
                json!({"command": ["sleep", "3"]}),
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, out) = kim.post(path, exec("true", None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{out}");
    assert_eq!(out["error"]["code"], "busy");
    let started = Instant::now();
    let (status, out) = lou.post(path, exec("echo fine", None)).await;
    assert_eq!(
        (status, out["stdout"].as_str()),
        (StatusCode::OK, Some("fine\n"))
    );
    assert!(started.elapsed() < Duration::from_secs(5), "held up");
    // Logging in is not held up by another customer's commands either.
    let browser = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = Instant::now();
    crate::web::logged_in(&browser, base, "louh", "a long enough password").await;
    assert!(started.elapsed() < Duration::from_secs(5), "login held up");
    for r in running {
        let (status, out) = r.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{out}");
    }

    // The panel dies (kill -9) while a tenant's command runs: the command does not keep
    // its listening socket, so it starts again on the same address, and the command is
    // gone with the panel.
    let hold = {
        let kim = Api::new(&http, base, kim_token(&server));
        tokio::spawn(async move {
            let _ = kim
                .post(
                    "/api/v1/containers/box/exec",
                    json!({"command": ["sleep", "120"]}),
                )
                .await;
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = hold.await;
    let server = Server::start_on(&state, &db, &listen);
    let (status, out) = kim
        .post(
            path,
            exec(
                "for i in $(seq 50); do pgrep -x sleep >/dev/null || { echo none; exit; }; \
                 sleep 0.1; done; ps -eo pid,stat,comm",
                None,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["stdout"], "none\n", "the command outlived the panel");
    for who in [&kim, &lou] {
        let (status, _) = who
            .call(reqwest::Method::DELETE, "/api/v1/containers/box", None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    server.stop();
}

fn kim_token(server: &Server) -> String {
    server.cli(&["token", "create", "kimh"], "")
}
