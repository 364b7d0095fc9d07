//! Limit hits ("faults") from real containers: an OOM, a fork bomb and a CPU hog each
//! leave a record that the API, the container's page and `ct faults` show.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::api::{customer, reseller_with_plan, roomy_plan, roomy_pool, Api};
use crate::support::{state_dir, Server};

#[tokio::test]
async fn an_oom_a_fork_bomb_and_a_cpu_hog_are_recorded_as_faults() {
    let test = "an_oom_a_fork_bomb_and_a_cpu_hog_are_recorded_as_faults";
    let Some(state) = state_dir(test) else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-faults", roomy_plan(), roomy_pool()).await;
    // The reseller's overuse policy gets every limit hit as an event.
    let (status, body) = reseller
        .post_bytes(
            "/api/v1/plugins?name=policy",
            acetate_plugins::example("overuse_policy").unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = reseller
        .call(
            reqwest::Method::PATCH,
            "/api/v1/plugins/policy",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fay = customer(&server, &http, &reseller, "fay-faults").await;
    let (status, body) = fay
        .post(
            "/api/v1/containers",
            json!({"name": "tight", "memory": "64M", "cpus": 0.2, "procs": 48, "disk": "64M"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let run = |script: &'static str| {
        let fay = &fay;
        async move {
            let (status, out) = fay
                .post(
                    "/api/v1/containers/tight/exec",
                    json!({"command": ["sh", "-c", script], "timeout_seconds": 30}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{out}");
            out
        }
    };
    // It knows itself by its owner's name for it, and the host's list says whose it is.
    let out = run("hostname; getent hosts tight").await;
    assert_eq!(out["stdout"], "tight\n127.0.1.1       tight\n", "{out}");
    let list = crate::support::ok(&state, &["ct", "list"]);
    assert!(list.contains("fay-faults/tight"), "{list}");
    // More memory than the limit: the kernel kills it.
    let out = run("python3 -c 'b = bytearray(256 << 20); print(len(b))'").await;
    assert_ne!(out["exit_code"], 0, "{out}");
    // More processes than the limit: forks are refused.
    run("for i in $(seq 80); do sleep 2 & done 2>/dev/null; wait; true").await;
    // (the shell gives up at the first refused fork; its sleeps end on their own)
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // A fifth of a CPU, kept busy for three seconds: the quota holds it back.
    let out = run("timeout 3 sh -c 'while :; do :; done'; echo done").await;
    assert_eq!(out["stdout"], "done\n", "{out}");

    let (_, shown) = fay.get("/api/v1/containers/tight").await;
    let engine_name = crate::support::engine_name_of(&state, "fay-faults");
    let cli: serde_json::Value = serde_json::from_str(&crate::support::ok(
        &state,
        &["ct", "faults", &engine_name, "--json"],
    ))
    .unwrap();
    assert!(cli["oom_kills"].as_u64().unwrap() >= 1, "{cli}");
    assert!(cli["forks_refused"].as_u64().unwrap() >= 1, "{cli}");
    assert!(
        cli["cpu_throttled_seconds"].as_f64().unwrap() >= 1.0,
        "{cli}"
    );

    server.cli(&["meter", "sample"], "");
    let (status, report) = fay.get("/api/v1/containers/tight/faults").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let totals = &report["totals"];
    assert!(
        totals["oom_kill"].as_i64().unwrap_or(0) >= 1,
        "{report} {shown}"
    );
    assert!(
        totals["process_limit"].as_i64().unwrap_or(0) >= 1,
        "{report}"
    );
    assert!(
        totals["cpu_throttled"].as_i64().unwrap_or(0) >= 1000,
        "{report}"
    );
    // The policy had them as one event: its log names each (it logs what it counts).
    // (Events, if the panel's own metering pass came between the hits.)
    let seen = |log: &str| {
        log.contains("killed for lack of memory")
            && log.contains("new process(es) refused")
            && log.contains("CPU held back")
    };
    let mut log = String::new();
    for _ in 0..40 {
        let (_, calls) = reseller.get("/api/v1/plugins/policy/calls").await;
        log = calls
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["event"] == "overuse")
            .map(|c| c["log"].to_string())
            .collect();
        if seen(&log) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(seen(&log), "{log}");
    // The reseller sees them among its customers'; another customer does not.
    let (_, theirs) = reseller.get("/api/v1/faults").await;
    assert!(
        theirs["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["owner"] == "fay-faults" && f["kind"] == "oom_kill"),
        "{theirs}"
    );
    let other = customer(&server, &http, &reseller, "gus-faults").await;
    let (_, none) = other.get("/api/v1/faults").await;
    assert_eq!(none["faults"], json!([]), "{none}");
    // And the container's page says it in words.
    let no_redirects = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut browser = crate::web::logged_in(
        &no_redirects,
        &server.base,
        "fay-faults",
        "a long enough password",
    )
    .await;
    let (status, page) = browser.fetch("/containers/tight").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("killed: out of memory"), "{page}");
    assert!(page.contains("refused: process limit"), "{page}");
    assert!(page.contains("CPU held back"), "{page}");
    // /metrics says the same as the engine (the provider's token).
    let admin = server.cli(&["token", "create", "admin"], "");
    let text = http
        .get(format!("{}/metrics", server.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |metric: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(metric) && l.contains(&format!("container=\"{engine_name}\"")))
            .unwrap_or_else(|| panic!("no {metric} for {engine_name}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("acetate_container_memory_limit_bytes"),
        (64u64 << 20) as f64
    );
    assert_eq!(value("acetate_container_processes_limit"), 48.0);
    assert!(value("acetate_container_oom_kills_total") >= 1.0);
    assert_eq!(
        value("acetate_container_forks_refused_total"),
        cli["forks_refused"].as_f64().unwrap()
    );
    let (status, _) = fay
        .call(reqwest::Method::DELETE, "/api/v1/containers/tight", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop();
}

/// The example overuse policy (WIT 1.2.0) on a real container: three fork bombs, each seen
/// by its own metering sample, give a warning, then half the CPU (the engine's quota
/// changes live), then the account's suspension (the container stops).
#[tokio::test]
async fn the_example_overuse_policy_warns_throttles_and_suspends_a_real_container() {
    let test = "the_example_overuse_policy_warns_throttles_and_suspends_a_real_container";
    let Some(state) = state_dir(test) else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-overuse", roomy_plan(), roomy_pool()).await;
    let (status, body) = reseller
        .post_bytes(
            "/api/v1/plugins?name=policy",
            acetate_plugins::example("overuse_policy").unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = reseller
        .call(
            reqwest::Method::PATCH,
            "/api/v1/plugins/policy",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ivy = customer(&server, &http, &reseller, "ivy-overuse").await;
    let (status, body) = ivy
        .post(
            "/api/v1/containers",
            json!({"name": "busy", "memory": "128M", "cpus": 1, "procs": 40, "disk": "64M"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.cli(&["meter", "sample"], "");
    let count = |n: &Value| n["notices"].as_array().map_or(0, Vec::len);
    let (notices, _) = strike(&server, &ivy, &reseller, |n, _| count(n) >= 1).await;
    assert!(
        notices["notices"][0]["message"]
            .as_str()
            .unwrap()
            .contains("new process(es) refused"),
        "{notices}"
    );
    let (_, shown) = strike(&server, &ivy, &reseller, |_, s| {
        s["limits"]["cpus_milli"] == 500
    })
    .await;
    assert_eq!(shown["state"], "running", "{shown}");
    // The kernel's quota is the new one: 50 ms per 100 ms period.
    let engine_name = crate::support::engine_name_of(&state, "ivy-overuse");
    let engine: Value = serde_json::from_str(&crate::support::ok(
        &state,
        &["ct", "show", &engine_name, "--json"],
    ))
    .unwrap();
    assert_eq!(engine["limits"]["cpus_milli"], 500, "{engine}");
    let (notices, shown) = strike(&server, &ivy, &reseller, |_, s| s["state"] == "stopped").await;
    assert!(
        notices["notices"][0]["message"]
            .as_str()
            .unwrap()
            .contains("3 times within an hour"),
        "{notices}"
    );
    assert_eq!(shown["state"], "stopped");
    let (_, calls) = reseller.get("/api/v1/plugins/policy/calls").await;
    let overuse_calls = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["event"] == "overuse")
        .count();
    assert_eq!(overuse_calls, 3, "{calls}");
    let (status, body) = reseller
        .post("/api/v1/customers/ivy-overuse/unsuspend", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = ivy
        .call(reqwest::Method::DELETE, "/api/v1/containers/busy", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop();
}

/// One strike: forks refused at the process limit, then a metering sample; the panel's job
/// hands it to the policy within seconds. Waits until `done(notices, container)` says the
/// policy acted, and returns both.
async fn strike(
    server: &Server,
    customer: &Api<'_>,
    reseller: &Api<'_>,
    done: impl Fn(&Value, &Value) -> bool,
) -> (Value, Value) {
    let (status, out) = customer
        .post(
            "/api/v1/containers/busy/exec",
            json!({"command": ["sh", "-c",
                "for i in $(seq 60); do sleep 2 & done 2>/dev/null; wait; true"],
                "timeout_seconds": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    server.cli(&["meter", "sample"], "");
    for _ in 0..40 {
        let (_, notices) = reseller.get("/api/v1/notices").await;
        let (_, shown) = reseller
            .get("/api/v1/containers/busy?owner=ivy-overuse")
            .await;
        if done(&notices, &shown) {
            return (notices, shown);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let (_, calls) = reseller.get("/api/v1/plugins/policy/calls").await;
    panic!("the policy did not act in 20 s: {calls}");
}

/// Packets a network rate limit drops and time spent waiting for capped disk I/O are limit
/// hits too; the disk I/O itself is metered.
#[tokio::test]
async fn rate_limit_drops_and_capped_io_waits_are_limit_hits() {
    let test = "rate_limit_drops_and_capped_io_waits_are_limit_hits";
    let Some(state) = state_dir(test) else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_, reseller) =
        reseller_with_plan(&server, &http, "res-io", roomy_plan(), roomy_pool()).await;
    let dee = customer(&server, &http, &reseller, "dee-io").await;
    let (status, body) = dee
        .post(
            "/api/v1/containers",
            json!({"name": "capped", "memory": "128M", "cpus": 1, "procs": 64, "disk": "128M",
                   "io": {"write_bps": "1M"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let gateway = body["network"]["gateway"].as_str().unwrap().to_string();
    let engine_name = crate::support::engine_name_of(&state, "dee-io");
    // The provider limits its network to 1 Mbit/s (live).
    crate::support::ok(
        &state,
        &["ct", "set", &engine_name, "--net-rate", "1000000"],
    );
    server.cli(&["meter", "sample"], "");
    let run = |script: String| {
        let dee = &dee;
        async move {
            let (status, out) = dee
                .post(
                    "/api/v1/containers/capped/exec",
                    json!({"command": ["sh", "-c", script], "timeout_seconds": 60}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{out}");
            assert_eq!(out["exit_code"], 0, "{out}");
            out
        }
    };
    // Four MiB written past the page cache at 1 MiB/s: about four seconds of waiting.
    run("dd if=/dev/zero of=/root/f bs=64k count=64 oflag=direct 2>&1".into()).await;
    // Two seconds of UDP at far more than 1 Mbit/s, to the gateway (this host).
    let flood = format!(
        "python3 -c \"import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         end = time.time() + 2\nwhile time.time() < end:\n    try: s.sendto(b'x' * 1400, \
         ('{gateway}', 9))\n    except OSError: pass\""
    );
    run(flood).await;
    let faults: Value = serde_json::from_str(&crate::support::ok(
        &state,
        &["ct", "faults", &engine_name, "--json"],
    ))
    .unwrap();
    assert!(faults["network_dropped"].as_u64().unwrap() > 0, "{faults}");
    assert!(
        faults["io_wait_seconds"].as_f64().unwrap() >= 2.0,
        "{faults}"
    );
    assert!(
        faults["io_written_bytes"].as_u64().unwrap() >= 4 << 20,
        "{faults}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    server.cli(&["meter", "sample"], "");
    let (_, report) = dee.get("/api/v1/containers/capped/faults").await;
    let totals = &report["totals"];
    assert!(
        totals["network_dropped"].as_i64().unwrap_or(0) > 0,
        "{report}"
    );
    assert!(
        totals["io_throttled"].as_i64().unwrap_or(0) >= 1000,
        "{report}"
    );
    // The disk I/O is in the usage history (and so in the graphs).
    let (_, usage) = dee.get("/api/v1/containers/capped/usage").await;
    let written: i64 = usage["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["io_write"].as_i64().unwrap_or(0))
        .sum();
    assert!(written >= 4 << 20, "{usage}");
    let (status, _) = dee
        .call(reqwest::Method::DELETE, "/api/v1/containers/capped", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop();
}
