//! The front door end to end, in a network namespace the test makes (the panel's ports 80
//! and 443 are that namespace's): a customer's container serves HTTP; its domain gets a
//! certificate from a real ACME server (acme2certifier from PyPI, with the test's own CA,
//! over HTTPS on loopback) that checks HTTP-01 through the front door, after asking a DNS
//! server the test runs; the host reaches the site over HTTPS with that certificate and
//! over HTTP, with the forwarding headers, a streamed body and a protocol upgrade passed
//! through; other tenants cannot take the name, a name above or below it, or the panel's,
//! which the front door serves over HTTPS in front of the panel with its own certificate.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::api::{customer, reseller_with_plan, roomy_plan, roomy_pool};
use crate::support::{state_dir, Server};

const TOOLS: &str = "/var/tmp/acetate-tools/venv/bin/python";

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/front")
}

fn must(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace this thread lives in from `enter` on (processes it starts too),
/// with an "uplink" holding the host's public address 203.0.113.1; deleted when dropped.
struct Netns {
    name: String,
    children: Vec<Child>,
    /// The state dir of the engine whose network is made here: torn down before the
    /// namespace goes (`net teardown`), so that nothing of it is left on the host (the
    /// engine's marks under /run outlive the namespace otherwise).
    engine: Option<PathBuf>,
}

impl Netns {
    fn new(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        let sh = |c: &str| must(Command::new("sh").args(["-c", c]));
        sh(&format!("ip netns add {name}"));
        sh(&format!(
            "ip -n {name} link set lo up && \
             ip -n {name} link add up0 type veth peer name up1 && \
             ip -n {name} addr add 203.0.113.1/24 dev up0 && \
             ip -n {name} link set up0 up && ip -n {name} link set up1 up && \
             ip -n {name} route add default via 203.0.113.2"
        ));
        Netns {
            name: name.to_string(),
            children: Vec::new(),
            engine: None,
        }
    }

    /// Moves this thread into the namespace (the mount namespace, and so /sys and the
    /// cgroup hierarchies, stay the host's).
    fn enter(&self) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    }

    /// Starts a helper and waits for its "ready" line.
    fn helper(&mut self, args: &[&str], log: &Path) {
        let mut child = Command::new(TOOLS)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "{args:?}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        self.children.push(child);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(state) = &self.engine {
            let _ = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{}", self.name))
                .arg(env!("CARGO_BIN_EXE_acetate"))
                .arg("--state-dir")
                .arg(state)
                .args(["net", "teardown"])
                .output();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// `curl` to the front door on this host (the name resolved to loopback), trusting `ca`.
fn curl(url: &str, ca: &Path) -> (String, String) {
    let host = url.split('/').nth(2).unwrap();
    let port = if url.starts_with("https") { 443 } else { 80 };
    let out = Command::new("curl")
        .args(["-sS", "-m", "20", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1"), url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "curl {url}: {out:?}");
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.to_string(), body.to_string())
}

/// `curl`'s status code for `https://{host}{path}`, the name resolved to `address` (a
/// bracketed IPv6 one too), trusting `ca`, giving up after `secs`.
fn https_status(host: &str, address: &str, path: &str, ca: &Path, secs: u32) -> Output {
    Command::new("curl")
        .args([
            "-sS",
            "-m",
            &secs.to_string(),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(ca)
        .args(["--resolve", &format!("{host}:443:{address}")])
        .arg(format!("https://{host}{path}"))
        .output()
        .unwrap()
}

fn need_tools(test: &str) -> bool {
    let ok = Path::new(TOOLS).exists()
        && Command::new(TOOLS)
            .args(["-c", "import acme2certifier"])
            .output()
            .is_ok_and(|o| o.status.success())
        && ["curl", "openssl"]
            .iter()
            .all(|t| Command::new(t).arg("--version").output().is_ok());
    if ok {
        return true;
    }
    if acetate_engine::testing::in_ci() {
        panic!("{test} needs acme2certifier, curl and openssl: scripts/setup installs them");
    }
    eprintln!("SKIPPED {test}: run scripts/setup for acme2certifier, curl and openssl");
    false
}

#[test]
fn a_domain_gets_a_certificate_from_a_real_acme_server_and_reaches_the_container() {
    let test = "a_domain_gets_a_certificate_from_a_real_acme_server_and_reaches_the_container";
    let Some(state) = state_dir(test) else { return };
    if !need_tools(test) {
        return;
    }
    let mut ns = Netns::new(&acetate_engine::testing::unique_name("acfd"));
    ns.engine = Some(state.clone());
    ns.enter();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    must(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
            .args(["-subj", "/CN=Acetate test ACME CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(d.join("ca.key"))
            .arg("-out")
            .arg(d.join("ca.pem")),
    );
    let ca = d.join("ca.pem");
    let front = scripts();
    ns.helper(
        &[
            front.join("dns_server.py").to_str().unwrap(),
            "127.0.0.1",
            "example.test",
            "203.0.113.1",
        ],
        &d.join("dns.log"),
    );
    ns.helper(
        &[
            front.join("a2c_server.py").to_str().unwrap(),
            d.to_str().unwrap(),
            "14000",
            "127.0.0.1",
        ],
        &d.join("a2c.log"),
    );
    let db = format!("sqlite://{}/panel.db?mode=rwc", d.display());
    let server = Server::start_with(
        &state,
        &db,
        "127.0.0.1:0",
        &[
            // The front door on its defaults (support turns it off): [::]:80 and [::]:443,
            // each one socket for IPv4 and IPv6 clients.
            ("ACETATE_FRONT_HTTP", "[::]:80"),
            ("ACETATE_FRONT_HTTPS", "[::]:443"),
            (
                "ACETATE_ACME_DIRECTORY",
                "https://127.0.0.1:14000/directory",
            ),
            ("ACETATE_ACME_CA_ROOT", ca.to_str().unwrap()),
            ("ACETATE_ACME_EMAIL", "hostmaster@example.test"),
            ("ACETATE_PANEL_HOSTS", "panel.example.test"),
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = Client::new();
        let (provider, reseller) =
            reseller_with_plan(&server, &http, "fd-res", roomy_plan(), roomy_pool()).await;
        let alice = customer(&server, &http, &reseller, "fd-alice").await;
        let bob = customer(&server, &http, &reseller, "fd-bob").await;
        for api in [&alice, &bob] {
            let (status, body) = api.post("/api/v1/containers", json!({"name": "web"})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let list: Value = serde_json::from_str(&server.cli(&["--json", "ct", "list"], "")).unwrap();
        let engine = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["owner"] == "panel:fd-alice")
            .map(|c| c["name"].as_str().unwrap().to_string())
            .unwrap();
        let _cleanup = Cleanup(&server);
        let site = std::fs::read_to_string(front.join("site.py")).unwrap();
        let mut site_proc = Command::new(env!("CARGO_BIN_EXE_acetate"))
            .arg("--state-dir")
            .arg(&state)
            .args(["ct", "exec", &engine, "--", "python3", "-c", &site])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();

        // Attached, the name is alice's; nobody else takes it, a name above or below it,
        // or the panel's own.
        let add = json!({"domain": "Shop.Example.test", "port": 8080});
        let (status, body) = alice.post("/api/v1/containers/web/domains", add).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body[0]["domain"], "shop.example.test");
        for (name, code) in [
            ("shop.example.test", StatusCode::CONFLICT),
            ("www.shop.example.test", StatusCode::CONFLICT),
            ("example.test", StatusCode::CONFLICT),
            ("panel.example.test", StatusCode::CONFLICT),
            ("not a name", StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            let (status, body) = bob
                .post(
                    "/api/v1/containers/web/domains",
                    json!({"domain": name, "port": 80}),
                )
                .await;
            assert_eq!(status, code, "{name}: {body}");
        }

        // The front door answers the authority's HTTP-01 check; the certificate follows.
        let deadline = Instant::now() + Duration::from_secs(90);
        let issued = loop {
            let (_, list) = alice.get("/api/v1/containers/web/domains").await;
            if !list[0]["cert_not_after"].is_null() {
                break list;
            }
            assert!(
                Instant::now() < deadline,
                "no certificate: {list}\n{}",
                std::fs::read_to_string(d.join("a2c.log"))
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert!(issued[0]["cert_error"].is_null(), "{issued}");

        // HTTPS with the issued certificate (curl checks it against the test's CA), and
        // plain HTTP; the site learns who asked and how.
        let deadline = Instant::now() + Duration::from_secs(20);
        let (code, body) = loop {
            let out = https_status("shop.example.test", "127.0.0.1", "/headers", &ca, 5);
            if out.status.success() && out.stdout == b"200" {
                break curl("https://shop.example.test/headers", &ca);
            }
            assert!(
                Instant::now() < deadline,
                "the site did not answer: {out:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(code, "200", "{body}");
        let seen: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(seen["host"], "shop.example.test", "{seen}");
        assert_eq!(seen["for"], "127.0.0.1", "{seen}");
        assert_eq!(seen["proto"], "https", "{seen}");
        assert_eq!(seen["forwarded_host"], "shop.example.test", "{seen}");
        // Its private key is sealed in the database (the key is the state dir's).
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db).await.unwrap();
        let (key,): (String,) =
            sqlx::query_as("SELECT cert_key FROM domains WHERE domain = 'shop.example.test'")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        assert!(
            key.starts_with("sealed1:") && !key.contains("PRIVATE KEY"),
            "{key}"
        );
        // Over HTTP/2 as well (ALPN h2), to the container in HTTP/1.1, with the same
        // forwarded headers on each of a connection's streams.
        let out = Command::new("curl")
            .args([
                "-sS",
                "-m",
                "20",
                "--http2",
                "-w",
                "\n%{http_version} %{http_code}\n",
                "--cacert",
            ])
            .arg(&ca)
            .args(["--resolve", "shop.example.test:443:127.0.0.1"])
            .args([
                "https://shop.example.test/headers",
                "https://shop.example.test/headers",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{out:?}");
        for pair in lines.chunks(2) {
            assert_eq!(pair[1], "2 200", "{out:?}");
            let seen: Value = serde_json::from_str(pair[0]).unwrap();
            assert_eq!(seen["for"], "127.0.0.1", "{seen}");
            assert_eq!(seen["proto"], "https", "{seen}");
            assert_eq!(seen["host"], "shop.example.test", "{seen}");
        }
        // Over IPv6 too.
        let out = https_status("shop.example.test", "[::1]", "/headers", &ca, 20);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
        let (code, body) = curl("http://shop.example.test/headers", &ca);
        assert_eq!(code, "200");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["proto"],
            "http"
        );
        // "Force HTTPS" sends plain HTTP there.
        let (status, body) = alice
            .call(
                Method::PATCH,
                "/api/v1/containers/web/domains/shop.example.test",
                Some(json!({"https_only": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let out = must(
            Command::new("curl")
                .args([
                    "-sS",
                    "-m",
                    "5",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{redirect_url}",
                ])
                .args(["--resolve", "shop.example.test:80:127.0.0.1"])
                .arg("http://shop.example.test/headers?x=1"),
        );
        assert_eq!(out, "308 https://shop.example.test/headers?x=1");
        // Plain HTTP over IPv6 too.
        let out = must(
            Command::new("curl")
                .args(["-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(["--resolve", "shop.example.test:80:[::1]"])
                .arg("http://shop.example.test/headers"),
        );
        assert_eq!(out, "308");
        let (code, body) = curl("http://nowhere.example.test/", &ca);
        assert_eq!(code, "404");
        assert!(
            body.contains("No site is published at nowhere.example.test"),
            "{body}"
        );

        // The panel itself under its hostname: HTTPS with a certificate from the same
        // authority (HSTS from the panel behind it), plain HTTP sent there.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new("curl")
                .args(["-sS", "-m", "5", "-D", "-", "-o", "/dev/null", "--cacert"])
                .arg(&ca)
                .args(["--resolve", "panel.example.test:443:127.0.0.1"])
                .arg("https://panel.example.test/login")
                .output()
                .unwrap();
            let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
            if out.status.success() {
                // curl offers HTTP/2 first, and gets it.
                assert!(head.starts_with("http/2 200"), "{head}");
                assert!(head.contains("strict-transport-security"), "{head}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the panel has no certificate: {out:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let out = must(
            Command::new("curl")
                .args([
                    "-sS",
                    "-m",
                    "5",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{redirect_url}",
                ])
                .args(["--resolve", "panel.example.test:80:127.0.0.1"])
                .arg("http://panel.example.test/login"),
        );
        assert_eq!(out, "308 https://panel.example.test/login");

        // The host's root sees and manages domains from the CLI, under the same rules; the
        // running front door picks its changes up.
        let listed = server.cli(&["ct", "domain", "list", "fd-alice/web"], "");
        assert!(
            listed.contains("shop.example.test") && listed.contains("valid until"),
            "{listed}"
        );
        let out = crate::support::with_database(
            &server.state,
            &server.database,
            &["ct", "domain", "add", "fd-bob/web", "www.shop.example.test"],
            "",
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("under shop.example.test"), "{err}");
        server.cli(
            &[
                "ct",
                "domain",
                "add",
                "fd-bob/web",
                "bob.example.test",
                "--port",
                "8081",
            ],
            "",
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, body) = curl("http://bob.example.test/", &ca);
            if code == "502" {
                assert!(body.contains("did not answer on port 8081"), "{body}");
                break;
            }
            assert!(Instant::now() < deadline, "still {code}: {body}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        // A streamed body comes as it is written: the first line arrives while the site
        // still waits to write the second.
        let mut stream = Command::new("python3")
            .arg(front.join("client.py"))
            .args(["stream", "shop.example.test", "127.0.0.1"])
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(stream.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "one");
        server.cli(&["ct", "exec", &engine, "--", "touch", "/tmp/go"], "");
        stream.stdin.take().unwrap().write_all(b"\n").unwrap();
        assert_eq!(lines.next().unwrap().unwrap(), "two");
        assert!(stream.wait().unwrap().success());

        // A protocol upgrade (WebSocket) joins both sides.
        let upgrade = must(
            Command::new("python3")
                .arg(front.join("client.py"))
                .args(["upgrade", "shop.example.test", "127.0.0.1"])
                .arg(&ca),
        );
        assert_eq!(
            upgrade.lines().collect::<Vec<_>>(),
            ["HTTP/1.1 101 Switching Protocols", "ping"]
        );

        // Over HTTP/2 too (extended CONNECT, RFC 8441), as browsers open WebSockets on a
        // connection they already hold; the site sees the HTTP/1.1 handshake it knows.
        let (status, echoed) = websocket_over_h2("shop.example.test", "/ws", &ca).await;
        assert_eq!((status, echoed.as_slice()), (200, &b"ping"[..]));
        // A page that serves no WebSocket answers 200 to the handshake: never passed on as
        // an open WebSocket.
        let (status, _) = websocket_over_h2("shop.example.test", "/headers", &ca).await;
        assert_eq!(status, 502);

        // Audited: the attachment by alice, the certificate by the panel.
        let (_, audit) = provider.get("/api/v1/audit?limit=200").await;
        let text = audit.to_string();
        assert!(text.contains("container.domain.add"), "{text}");
        assert!(text.contains("issued, valid until"), "{text}");

        // Stopped, the container's name answers 502 saying so; removed, nothing.
        let (status, body) = alice
            .call(Method::POST, "/api/v1/containers/web/stop", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let _ = site_proc.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, body) = curl("https://shop.example.test/headers", &ca);
            if code == "502" {
                assert!(body.contains("not running"), "{body}");
                break;
            }
            assert!(Instant::now() < deadline, "still {code}: {body}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (status, body) = alice
            .call(
                Method::DELETE,
                "/api/v1/containers/web/domains/shop.example.test",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (code, _) = curl("http://shop.example.test/headers", &ca);
        assert_eq!(code, "404");
    });
}

/// Destroys the test's containers (inside the namespace, before it goes).
struct Cleanup<'a>(&'a Server);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let list = crate::support::acetate(&self.0.state, &["--json", "ct", "list"]);
        if let Ok(list) = serde_json::from_slice::<Value>(&list.stdout) {
            for c in list.as_array().into_iter().flatten() {
                let owner = c["owner"].as_str().unwrap_or("");
                if owner == "panel:fd-alice" || owner == "panel:fd-bob" {
                    let name = c["name"].as_str().unwrap_or("");
                    let _ = crate::support::acetate(&self.0.state, &["ct", "destroy", name]);
                }
            }
        }
    }
}

/// A WebSocket over HTTP/2 to `path` of `host` through the front door on 127.0.0.1:443
/// (TLS checked against `ca`): the status of the extended CONNECT, then what comes back
/// for "ping".
async fn websocket_over_h2(host: &str, path: &str, ca: &Path) -> (u16, Vec<u8>) {
    use http_body_util::Empty;
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect("127.0.0.1:443")
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    // A first request, answered only after the server's settings (which allow extended
    // CONNECT) have arrived.
    let first = hyper::Request::get(format!("https://{host}/"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    sender.send_request(first).await.unwrap();
    let mut req = hyper::Request::builder()
        .method(hyper::Method::CONNECT)
        .uri(format!("https://{host}{path}"))
        .header("sec-websocket-version", "13")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    if status != 200 {
        return (status, Vec::new());
    }
    let stream = hyper::upgrade::on(&mut resp).await.unwrap();
    let mut io = hyper_util::rt::TokioIo::new(stream);
    io.write_all(b"ping").await.unwrap();
    let mut echoed = vec![0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), io.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    (status, echoed)
}
