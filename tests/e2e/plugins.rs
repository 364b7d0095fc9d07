//! Resellers' WebAssembly plugins through the real panel: hooks that veto and amend real
//! creates, hostile plugins that are stopped while the panel keeps answering, isolation
//! between resellers, garbage uploads; metering and billing from a container that burns
//! CPU to the amount on its invoice.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::api::{customer, reseller_with_plan, roomy_plan, roomy_pool, Api};
use crate::support::{state_dir, Server};

fn example(name: &str) -> Vec<u8> {
    acetate_plugins::example(name).expect("the example plugins are built by the build")
}

async fn upload(reseller: &Api<'_>, name: &str, example_name: &str, enable: bool) {
    let (status, body) = reseller
        .post_bytes(
            &format!("/api/v1/plugins?name={name}"),
            example(example_name),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    if enable {
        let (status, body) = reseller
            .call(
                Method::PATCH,
                &format!("/api/v1/plugins/{name}"),
                Some(json!({"enabled": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["enabled"], true);
    }
}

async fn calls(reseller: &Api<'_>, name: &str) -> Vec<Value> {
    let (status, body) = reseller.get(&format!("/api/v1/plugins/{name}/calls")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

fn small(name: &str, memory: &str) -> Value {
    json!({"name": name, "memory": memory, "cpus": 0.5, "disk": "64M"})
}

#[tokio::test]
async fn hooks_veto_and_amend_real_creates() {
    let Some(state) = state_dir("hooks_veto_and_amend_real_creates") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_provider, reseller) =
        reseller_with_plan(&server, &http, "res-h", roomy_plan(), roomy_pool()).await;
    let (status, body) = reseller
        .post(
            "/api/v1/plans",
            json!({"name": "trial-1", "price_minor": 0, "currency": "EUR",
                   "container": {"memory": "1G", "cpus": 1, "disk": "1G", "procs": 256},
                   "customer": {"containers": 3, "memory": "2G", "cpus": 2, "disk": "2G"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = reseller
        .post(
            "/api/v1/customers",
            json!({"name": "tina", "password": "a long enough password", "plan": "trial-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let tina = Api::new(
        &http,
        &server.base,
        server.cli(&["token", "create", "tina"], ""),
    );
    let carl = customer(&server, &http, &reseller, "carl").await;

    // Garbage is refused with a clear message and leaves no plugin behind.
    let (status, body) = reseller
        .post_bytes("/api/v1/plugins?name=junk", b"MZ not wasm".to_vec())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file"),
        "{body}"
    );
    let mut core = b"\0asm\x01\0\0\0".to_vec();
    core.extend_from_slice(&[0; 4]);
    let (status, body) = reseller.post_bytes("/api/v1/plugins?name=junk", core).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a component"),
        "{body}"
    );
    let (status, body) = reseller
        .post_bytes("/api/v1/plugins?name=bad%20name", example("naming_policy"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, list) = reseller.get("/api/v1/plugins").await;
    assert_eq!(list, json!([]));

    // Uploaded but not enabled: no effect.
    upload(&reseller, "policy", "naming_policy", false).await;
    let (_, shown) = reseller.get("/api/v1/plugins/policy").await;
    assert_eq!(shown["kind"], "hook");
    assert_eq!(shown["on_failure"], "deny");
    let (status, body) = reseller
        .post_bytes("/api/v1/plugins?name=policy", example("naming_policy"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = carl
        .post("/api/v1/containers", small("admin", "128M"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, _) = reseller
        .call(
            Method::PATCH,
            "/api/v1/plugins/policy",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Veto: a reserved name; nothing is created.
    let (status, body) = carl.post("/api/v1/containers", small("www", "128M")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "denied_by_policy");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reserved"),
        "{body}"
    );
    let (status, _) = carl.get("/api/v1/containers/www").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Amend: a trial container gets 256 MiB whatever it asked for, in the kernel too.
    let (status, body) = tina
        .post("/api/v1/containers", small("trial-box", "768M"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["limits"]["memory"], 256u64 << 20, "{body}");
    let (status, body) = tina
        .post("/api/v1/containers", small("second", "128M"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("trial"),
        "{body}"
    );

    // Resizes go through the hook as well.
    let (status, body) = tina
        .call(
            Method::PATCH,
            "/api/v1/containers/trial-box",
            Some(json!({"memory": "512M"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["limits"]["memory"], 256u64 << 20, "{body}");

    // The owner sees every decision and the plugin's log.
    let seen = calls(&reseller, "policy").await;
    let outcomes: Vec<&str> = seen
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"deny") && outcomes.contains(&"amend"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|c| c["log"].to_string().contains("capped at 256 MiB")),
        "{seen:?}"
    );

    // Dry run against a recorded event: same decision, no effect on the store.
    let (_, events) = reseller.get("/api/v1/hook-events").await;
    let www = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["requested"]["name"] == "www")
        .expect("the refused create was recorded")
        .clone();
    let (status, body) = reseller
        .post(
            "/api/v1/plugins/policy/dry-run",
            json!({"event_id": www["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"]["decision"], "deny", "{body}");
    assert!(body["fuel_used"].as_u64().unwrap() > 0);

    // Disabled again: the hook no longer decides.
    let (status, _) = reseller
        .call(
            Method::PATCH,
            "/api/v1/plugins/policy",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = carl.post("/api/v1/containers", small("www", "128M")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (api, name) in [(&carl, "admin"), (&carl, "www"), (&tina, "trial-box")] {
        let (status, _) = api
            .call(Method::DELETE, &format!("/api/v1/containers/{name}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    server.stop();
}

#[tokio::test]
async fn hostile_plugins_are_stopped_and_the_panel_keeps_serving() {
    let Some(state) = state_dir("hostile_plugins_are_stopped_and_the_panel_keeps_serving") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_provider, evil) =
        reseller_with_plan(&server, &http, "res-evil", roomy_plan(), roomy_pool()).await;
    let (_, good) =
        reseller_with_plan(&server, &http, "res-good", roomy_plan(), roomy_pool()).await;
    let victim = customer(&server, &http, &evil, "vic").await;
    let bystander = customer(&server, &http, &good, "bys").await;
    upload(&good, "policy", "naming_policy", true).await;

    for (name, example_name, failure) in [
        ("spin", "hostile_loop", "ran out of fuel"),
        ("hog", "hostile_memory", "memory limit"),
        ("crash", "hostile_trap", "trapped"),
    ] {
        upload(&evil, name, example_name, true).await;
        let (status, body) = victim
            .post("/api/v1/containers", small("web", "128M"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(name) && message.contains("failed"),
            "{message}"
        );
        // The panel answers everyone meanwhile, and the other reseller's hooks still work.
        let (status, _) = bystander.get("/api/v1/containers").await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = bystander
            .post("/api/v1/containers", small("www", "128M"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reserved"));
        // The owner sees the failure.
        let seen = calls(&evil, name).await;
        assert_eq!(seen[0]["outcome"], "failure", "{seen:?}");
        assert!(
            seen[0]["detail"].as_str().unwrap().contains(failure),
            "{seen:?}"
        );
        let (_, shown) = evil.get(&format!("/api/v1/plugins/{name}")).await;
        assert_eq!(shown["failures"], 1, "{shown}");
        // A failing hook may be set to let requests through.
        let (status, _) = evil
            .call(
                Method::PATCH,
                &format!("/api/v1/plugins/{name}"),
                Some(json!({"on_failure": "allow"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = victim
            .post("/api/v1/containers", small("web", "128M"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        let (status, _) = victim
            .call(Method::DELETE, "/api/v1/containers/web", None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = evil
            .call(Method::DELETE, &format!("/api/v1/plugins/{name}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    // The snoop finds nothing of the host (and, refusing everything, shows that destroy and
    // suspend go through the hooks too).
    let (status, body) = victim
        .post("/api/v1/containers", small("keep", "128M"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    upload(&evil, "snoop", "hostile_snoop", true).await;
    let (status, body) = victim
        .call(Method::DELETE, "/api/v1/containers/keep", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "denied_by_policy");
    let (status, _) = victim.get("/api/v1/containers/keep").await;
    assert_eq!(status, StatusCode::OK, "a refused destroy changes nothing");
    let (status, body) = evil.post("/api/v1/customers/vic/suspend", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, events) = evil.get("/api/v1/hook-events").await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"destroy") && kinds.contains(&"suspend"),
        "{kinds:?}"
    );
    let (status, body) = victim
        .post("/api/v1/containers", small("web", "128M"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("nothing"),
        "{body}"
    );
    let (status, _) = evil
        .call(
            Method::PATCH,
            "/api/v1/plugins/snoop",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = victim
        .call(Method::DELETE, "/api/v1/containers/keep", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = evil.get("/api/v1/health").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop();
}

#[tokio::test]
async fn a_plugin_sees_only_its_resellers_events() {
    let Some(state) = state_dir("a_plugin_sees_only_its_resellers_events") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_provider, alpha) =
        reseller_with_plan(&server, &http, "res-alpha", roomy_plan(), roomy_pool()).await;
    let (_, beta) =
        reseller_with_plan(&server, &http, "res-beta", roomy_plan(), roomy_pool()).await;
    let ann = customer(&server, &http, &alpha, "ann").await;
    let ben = customer(&server, &http, &beta, "ben").await;
    upload(&alpha, "policy", "naming_policy", true).await;

    // Beta's customer is not subject to alpha's policy, and alpha's plugin never hears of it.
    let (status, body) = ben.post("/api/v1/containers", small("www", "128M")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = ann.post("/api/v1/containers", small("www", "128M")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, events) = alpha.get("/api/v1/hook-events").await;
    let text = events.to_string();
    assert!(
        text.contains("\"ann\"") && !text.contains("\"ben\"") && !text.contains("res-beta"),
        "{text}"
    );
    assert_eq!(calls(&alpha, "policy").await.len(), 1);
    let (_, events) = beta.get("/api/v1/hook-events").await;
    assert!(!events.to_string().contains("\"ann\""), "{events}");

    // Nobody else reaches alpha's plugin.
    let (status, _) = beta.get("/api/v1/plugins/policy").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = beta
        .post("/api/v1/plugins/policy/dry-run", json!({"event": {"kind": "destroy", "at": 0, "tenant": {"reseller": "x", "customer": "y"}}}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = ann.get("/api/v1/plugins").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A reseller cannot dry-run a billing rule on another reseller's customer.
    upload(&beta, "rule", "pay_as_you_go", true).await;
    let (status, body) = beta
        .post(
            "/api/v1/plugins/rule/dry-run",
            json!({"customer": "ann", "period": "2026-11"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = ben
        .call(Method::DELETE, "/api/v1/containers/www", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Each reseller's plugin storage is bounded (16 plugins); beta's being full does not
    // touch alpha's.
    for i in 1..16 {
        upload(&beta, &format!("extra{i}"), "legacy_hook", false).await;
    }
    let (status, body) = beta
        .post_bytes("/api/v1/plugins?name=one-too-many", example("legacy_hook"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("plugin storage is full: 16 plugins"),
        "{body}"
    );
    let (status, _) = beta.get("/api/v1/plugins/one-too-many").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
    upload(&alpha, "another", "legacy_hook", false).await;
    server.stop();
}

/// CPU time the kernel counted for a container, in nanoseconds.
async fn cpu_ns(api: &Api<'_>, name: &str) -> u64 {
    let (_, body) = api.get(&format!("/api/v1/containers/{name}")).await;
    body["usage"]["cgroup"]["cpu_ns"]
        .as_u64()
        .unwrap_or_else(|| panic!("no cpu counter: {body}"))
}

#[tokio::test]
async fn metered_cpu_shows_up_in_the_invoice() {
    let Some(state) = state_dir("metered_cpu_shows_up_in_the_invoice") else {
        return;
    };
    let server = Server::with_sqlite(&state);
    metered_cpu_in_the_invoice(server).await;
}

#[tokio::test]
async fn plugins_metering_and_billing_work_on_postgresql() {
    let Some(state) = state_dir("plugins_metering_and_billing_work_on_postgresql") else {
        return;
    };
    let Some(pg) =
        crate::support::Postgres::start("plugins_metering_and_billing_work_on_postgresql")
    else {
        return;
    };
    let server = Server::start(&state, &pg.url);
    metered_cpu_in_the_invoice(server).await;
}

/// A hook and a billing rule of a reseller, a container burning CPU across a restart, a
/// billing run: the CPU line of the invoice is what the kernel counted.
async fn metered_cpu_in_the_invoice(server: Server) {
    let http = Client::new();
    let (provider, reseller) =
        reseller_with_plan(&server, &http, "res-m", roomy_plan(), roomy_pool()).await;
    let meg = customer(&server, &http, &reseller, "meg").await;
    let other = customer(&server, &http, &reseller, "otto").await;
    upload(&reseller, "payg", "pay_as_you_go", true).await;
    upload(&reseller, "policy", "naming_policy", true).await;
    let (status, _) = meg.post("/api/v1/containers", small("www", "128M")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the hook runs here too");

    let (status, body) = meg
        .post("/api/v1/containers", small("burner", "128M"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let burn = json!({"command": ["timeout", "1.5", "sh", "-c", "while :; do :; done"]});
    let (status, body) = meg
        .post("/api/v1/containers/burner/exec", burn.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["exit_code"], 124, "{body}");
    // The restart resets the kernel's counters: what was used before must still be billed.
    let before_restart = cpu_ns(&meg, "burner").await;
    let (status, body) = meg
        .post("/api/v1/containers/burner/restart", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = meg.post("/api/v1/containers/burner/exec", burn).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after_restart = cpu_ns(&meg, "burner").await;
    // The container has a network interface: what it receives is metered too (the host
    // reaches it; it does not reach the host's services).
    let (_, shown) = meg.get("/api/v1/containers/burner").await;
    let address = shown["network"]["address"]
        .as_str()
        .expect("an address on the bridge")
        .to_string();
    let listen = "python3 -c 'import socket; s=socket.socket(); s.bind((\"0.0.0.0\", 7373)); s.listen(); c, _ = s.accept(); n = 0\nwhile True:\n  d = c.recv(65536)\n  if not d: break\n  n += len(d)\nopen(\"/tmp/got\", \"w\").write(str(n))' >/dev/null 2>&1 &";
    let (status, body) = meg
        .post(
            "/api/v1/containers/burner/exec",
            json!({"command": ["sh", "-c", listen]}),
        )
        .await;
    assert_eq!(
        (status, body["exit_code"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{body}"
    );
    let mut conn = None;
    for _ in 0..50 {
        if let Ok(c) = std::net::TcpStream::connect((address.as_str(), 7373)) {
            conn = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    {
        use std::io::Write;
        let mut conn = conn.expect("the host reaches the container");
        conn.write_all(&vec![b'x'; 300_000]).unwrap();
    }
    let mut got = String::new();
    for _ in 0..50 {
        let (_, body) = meg
            .post(
                "/api/v1/containers/burner/exec",
                json!({"command": ["cat", "/tmp/got"]}),
            )
            .await;
        got = body["stdout"].as_str().unwrap_or("").to_string();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(got, "300000");
    server.cli(&["meter", "sample"], "");
    // A second pass right away adds nothing (no double count).
    server.cli(&["meter", "sample"], "");
    let used_ms = (before_restart + after_restart) / 1_000_000;
    assert!(
        used_ms >= 1_200,
        "two 1.5 s burns at 0.5 CPU used only {used_ms} ms"
    );

    let period = crate::support::current_period();
    // The month has not ended: refused unless asked for explicitly.
    let (status, body) = provider
        .post("/api/v1/billing/run", json!({"period": period}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let report = server.cli(
        &["--json", "bill", "run", "--period", &period, "--open"],
        "",
    );
    let report: Value = serde_json::from_str(&report).unwrap();
    let meg_outcome = report["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["customer"] == "meg")
        .unwrap()
        .clone();
    assert_eq!(meg_outcome["status"], "invoiced", "{report}");

    let (status, invoices) = meg.get("/api/v1/invoices").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(invoices.as_array().unwrap().len(), 1, "{invoices}");
    let id = invoices[0]["id"].as_i64().unwrap();
    let (_, invoice) = meg.get(&format!("/api/v1/invoices/{id}")).await;
    let cpu = invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["unit"] == "CPU-second")
        .unwrap()
        .clone();
    let billed_ms = cpu["quantity_millis"].as_u64().unwrap();
    // Metered = what the kernel counted (the idle container adds a few ms at most).
    assert!(
        billed_ms + 1 >= used_ms && billed_ms <= used_ms + 100,
        "billed {billed_ms} ms, kernel {used_ms} ms"
    );
    assert_eq!(
        cpu["amount"].as_i64().unwrap(),
        ((billed_ms + 500) / 1000) as i64,
        "{cpu}"
    );
    let total: i64 = invoice["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(invoice["total"].as_i64().unwrap(), total);
    assert_eq!(invoice["rule"], "payg");

    // Running the period again changes nothing.
    let again = server.cli(
        &["--json", "bill", "run", "--period", &period, "--open"],
        "",
    );
    assert!(again.contains("already_invoiced"), "{again}");
    let (_, invoices_after) = meg.get("/api/v1/invoices").await;
    assert_eq!(invoices_after, invoices);

    // CSV for its owner, 404 for anyone else's customer.
    let (status, csv) = meg.get_text(&format!("/api/v1/invoices/{id}/csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.starts_with("invoice,period,customer,description"),
        "{csv}"
    );
    assert!(csv.contains("\"burner: CPU\""), "{csv}");
    let (status, _) = other.get(&format!("/api/v1/invoices/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, revenue) = reseller.get("/api/v1/revenue").await;
    assert_eq!(revenue[0]["period"], period.as_str(), "{revenue}");
    assert_eq!(revenue[0]["total"].as_i64().unwrap(), total, "{revenue}");

    // Raw samples older than two days are dropped by the next pass; their hours stay.
    // Straight to the database the panel uses (its pool is private to the panel).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.database).await.unwrap();
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 3 * 86_400;
    sqlx::query("INSERT INTO usage_samples (container_id, at, seconds, running, cpu_us, memory, memory_peak, disk, inodes, procs) VALUES (-1, $1, 60, 60, 5, 1, 1, 1, 1, 1)")
        .bind(old)
        .execute(&pool)
        .await
        .unwrap();
    let hours_before: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    server.cli(&["meter", "sample"], "");
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_samples WHERE at < $1")
        .bind(old + 60)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "old raw samples are pruned");
    let hours_after: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM usage_hourly")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(hours_after.0 >= hours_before.0, "the roll-up stays");

    // Usage history for the graphs.
    let (status, series) = meg.get("/api/v1/containers/burner/usage?range=hour").await;
    assert_eq!(status, StatusCode::OK);
    let cpu_us: i64 = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cpu_us"].as_i64().unwrap())
        .sum();
    let received: i64 = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["net_rx"].as_i64().unwrap())
        .sum();
    assert!(
        (300_000..400_000).contains(&received),
        "metered {received} bytes received"
    );
    assert_eq!(cpu_us / 1000, billed_ms as i64, "{series}");
    let (status, _) = meg
        .call(Method::DELETE, "/api/v1/containers/burner", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Limit hits reach the reseller's overuse policy on this database too: forks refused
    // at a small process limit, a sample, and the policy's notice within seconds.
    upload(&reseller, "overuse", "overuse_policy", true).await;
    let (status, body) = meg
        .post(
            "/api/v1/containers",
            json!({"name": "tight", "memory": "64M", "cpus": 0.5, "procs": 16, "disk": "64M"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let bomb = json!({"command": ["sh", "-c",
        "for i in $(seq 40); do sleep 2 & done 2>/dev/null; wait; true"]});
    let (status, body) = meg.post("/api/v1/containers/tight/exec", bomb).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    server.cli(&["meter", "sample"], "");
    let mut notices = Value::Null;
    for _ in 0..40 {
        notices = meg.get("/api/v1/containers/tight/notices").await.1;
        if notices["notices"].as_array().is_some_and(|n| !n.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        notices["notices"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("new process(es) refused"),
        "{notices}"
    );
    let (status, _) = meg
        .call(Method::DELETE, "/api/v1/containers/tight", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop();
}
