//! `/metrics`: the provider's token only, Prometheus's own `promtool` accepts the
//! exposition, and the figures are the containers'.

use acetate::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{plan, pool, spawn_app};

fn promtool() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("promtool"))
            .find(|p| p.exists())
    })
}

#[tokio::test]
async fn metrics_are_for_the_provider_or_a_private_address_and_promtool_accepts_them() {
    let app = spawn_app().await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice
        .create(json!({"name": "web", "memory": "256M", "cpus": 0.5}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let scrape = |token: Option<String>| {
        let http = app.http.clone();
        let url = format!("{}/metrics", app.base);
        async move {
            let mut req = http.get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    assert_eq!(scrape(None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(Some(alice.token.clone())).await.0,
        StatusCode::FORBIDDEN
    );
    let provider = app.user("admin", Role::Provider, None).await;
    let (status, text) = scrape(Some(provider.token.clone())).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(name) && l.contains("owner=\"alice\"") && l.contains("name=\"web\"")
            })
            .unwrap_or_else(|| panic!("no {name} for alice/web in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(
        line("acetate_container_memory_limit_bytes"),
        (256u64 << 20) as f64
    );
    assert_eq!(line("acetate_container_cpu_limit_cores"), 0.5);
    assert_eq!(line("acetate_container_running"), 1.0);
    assert!(
        text.contains("# TYPE acetate_container_oom_kills_total counter"),
        "{text}"
    );
    assert!(
        text.contains("acetate_http_requests_total{code=\"201\",method=\"POST\"}"),
        "{text}"
    );
    assert!(
        text.contains("acetate_sessions_open{kind=\"ssh\"} 0"),
        "{text}"
    );
    // Operation counters are the process's (like Prometheus's default registry), and the
    // app tests share one process: at least this test's create is counted.
    let creates = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "acetate_operations_total{kind=\"container.create\",state=\"succeeded\"} ",
            )
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no create counter in\n{text}"));
    assert!(creates >= 1.0, "{text}");
    // The separate `--metrics-listen` address serves the same figures without a token, and
    // nothing but `/metrics`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = acetate::http::metrics::open_router(app.state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let resp = app
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let open = resp.text().await.unwrap();
    assert!(
        open.lines()
            .any(|l| l.starts_with("acetate_container_memory_limit_bytes")
                && l.contains("owner=\"alice\"")
                && l.contains("name=\"web\"")
                && l.ends_with(&format!(" {}", 256u64 << 20))),
        "{open}"
    );
    let other = app
        .http
        .get(format!("http://{addr}/api/v1/containers"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let Some(promtool) = promtool() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing: scripts/setup installs Debian's prometheus"
        );
        eprintln!("SKIPPED promtool: Debian's prometheus is not installed");
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The example alert rules in the repository are valid too.
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/prometheus/acetate-alerts.yml"
    );
    let out = std::process::Command::new(promtool_path())
        .args(["check", "rules", rules])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn promtool_path() -> std::path::PathBuf {
    promtool().expect("promtool")
}
