//! Domains: who may attach which name (one account per name and everything under it, the
//! reseller's suffixes, never the panel's own), from the API and the container page; and
//! the front door without a container behind it: unknown names, stopped containers, and
//! the self-signed certificate served by SNI until one is issued.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, plan, pool, spawn_app_named};

#[tokio::test]
async fn a_domain_and_the_names_under_it_stay_with_one_account() {
    let app = spawn_app_named(&["panel.example.com"]).await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let other = app.reseller("other", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let bob = app.customer(&acme, "bob", "basic").await;
    let zed = app.customer(&other, "zed", "basic").await;
    for (api, name) in [
        (&alice, "web"),
        (&alice, "blog"),
        (&bob, "web"),
        (&zed, "web"),
    ] {
        let (status, body) = api.create(json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let add = |domain: &str, port: i64| json!({"domain": domain, "port": port});

    let (status, list) = alice
        .post(
            "/api/v1/containers/web/domains",
            add("Shop.Example.COM.", 8080),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    assert_eq!(list[0]["domain"], "shop.example.com");
    assert_eq!(list[0]["port"], 8080);
    assert!(list[0]["cert_not_after"].is_null());
    // The same account may use names under its own on another container.
    let (status, body) = alice
        .post(
            "/api/v1/containers/blog/domains",
            json!({"domain": "blog.shop.example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body[0]["port"], 80, "the port is 80 unless given");

    // Nobody else: not the name, not one under it, not one above it, whatever reseller.
    for (api, domain, says) in [
        (&bob, "shop.example.com", "belongs to another account"),
        (&bob, "www.shop.example.com", "is under shop.example.com"),
        (&zed, "example.com", "names below it"),
        (&zed, "panel.example.com", "the panel's own"),
        (&zed, "api.panel.example.com", "the panel's own"),
    ] {
        let (status, body) = api
            .post("/api/v1/containers/web/domains", add(domain, 80))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{domain}: {body}");
        assert!(body.to_string().contains(says), "{domain}: {body}");
    }
    for (domain, port, says) in [
        ("localhost", 80, "full domain name"),
        ("*.example.org", 80, "wildcard"),
        ("203.0.113.7", 80, "address"),
        ("shop example.org", 80, "only letters"),
        ("ok.example.org", 0, "not a port"),
        ("ok.example.org", 70000, "not a port"),
    ] {
        let (status, body) = zed
            .post("/api/v1/containers/web/domains", add(domain, port))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{domain}: {body}");
        assert_error(&body, "invalid");
        assert!(body.to_string().contains(says), "{domain}: {body}");
    }
    let (_, list) = zed.get("/api/v1/containers/web/domains").await;
    assert_eq!(list, json!([]), "a refusal adds nothing");
    // Another tenant's container is not found, nor its domains.
    let (status, _) = bob.get("/api/v1/containers/blog/domains").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The reseller restricts its customers to names under its suffixes; not while they
    // hold names outside, not for another reseller, not by a customer.
    let suffixes = |s: &[&str]| json!({ "suffixes": s });
    let (status, body) = acme
        .call(
            Method::PUT,
            "/api/v1/resellers/acme/domains",
            Some(suffixes(&["acme-sites.net"])),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("shop.example.com"), "{body}");
    for (api, status_wanted) in [
        (&other, StatusCode::NOT_FOUND),
        (&alice, StatusCode::FORBIDDEN),
    ] {
        let (status, body) = api
            .call(
                Method::PUT,
                "/api/v1/resellers/acme/domains",
                Some(suffixes(&["x.org"])),
            )
            .await;
        assert_eq!(status, status_wanted, "{body}");
    }
    let (status, body) = acme
        .call(
            Method::PUT,
            "/api/v1/resellers/acme/domains",
            Some(suffixes(&["acme-sites.net", "Example.com"])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, suffixes(&["acme-sites.net", "example.com"]));
    let (status, body) = bob
        .post("/api/v1/containers/web/domains", add("bob.example.org", 80))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.to_string().contains("acme-sites.net, example.com"),
        "{body}"
    );
    let (status, body) = bob
        .post(
            "/api/v1/containers/web/domains",
            add("bob.acme-sites.net", 80),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let provider = app.api("admin").await;
    let (status, body) = provider.get("/api/v1/resellers/acme/domains").await;
    assert_eq!(
        (status, &body["suffixes"][0]),
        (StatusCode::OK, &json!("acme-sites.net"))
    );

    // Removed, a name is free again; a name not on the container is not found.
    let (status, _) = alice
        .call(
            Method::DELETE,
            "/api/v1/containers/blog/domains/blog.shop.example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = alice
        .call(
            Method::DELETE,
            "/api/v1/containers/blog/domains/blog.shop.example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A destroyed container's names go with it.
    let (status, body) = alice
        .call(Method::DELETE, "/api/v1/containers/web?wait=10", None)
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = zed
        .post("/api/v1/containers/web/domains", add("example.com", 80))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Audited.
    let (_, audit) = provider.get("/api/v1/audit?limit=100").await;
    let text = audit.to_string();
    for what in [
        "container.domain.add",
        "container.domain.remove",
        "reseller.domains",
    ] {
        assert!(text.contains(what), "{what}: {text}");
    }
}

#[tokio::test]
async fn customers_attach_and_remove_domains_on_the_container_page() {
    use crate::support::{csrf_of, login, page, PASSWORD};
    let app = spawn_app_named(&[]).await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = login(&app, "alice", PASSWORD).await;
    let (_, html) = page(&app, &cookie, "/containers/web").await;
    assert!(html.contains("id=\"domains\""), "{html}");
    let csrf = csrf_of(&html);
    let post = |path: &str, form: Vec<(&str, &str)>| {
        http.post(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    let resp = post(
        "/containers/web/domains",
        vec![
            ("csrf", &csrf),
            ("domain", "shop.example.com"),
            ("port", "8080"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &cookie, "/containers/web").await;
    assert!(html.contains("shop.example.com"), "{html}");
    assert!(html.contains("self-signed until issued"), "{html}");
    let resp = post(
        "/containers/web/domains",
        vec![("csrf", &csrf), ("domain", "*.example.com"), ("port", "80")],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("wildcard") && text.contains("Nothing changed"),
        "{text}"
    );
    let resp = post(
        "/containers/web/domains/shop.example.com/delete",
        vec![("csrf", &csrf)],
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, list) = alice.get("/api/v1/containers/web/domains").await;
    assert_eq!(list, json!([]));
}

/// Accepts any certificate and keeps the one it was shown.
#[derive(Debug, Default)]
struct Keep(std::sync::Mutex<Option<Vec<u8>>>);

impl rustls::client::danger::ServerCertVerifier for Keep {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.0.lock().unwrap() = Some(end_entity.to_vec());
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that takes any certificate and keeps it in `keep`.
fn accepting(keep: Arc<Keep>) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(keep)
        .with_no_client_auth()
}

/// A TLS handshake with the front door for `name`: the certificate it showed, or why not.
async fn handshake(addr: std::net::SocketAddr, name: &str) -> Result<Vec<u8>, String> {
    let keep = Arc::new(Keep::default());
    let config = accepting(keep.clone());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let der = keep.0.lock().unwrap().clone();
    Ok(der.expect("a certificate"))
}

#[tokio::test]
async fn the_front_door_routes_by_name_and_serves_a_self_signed_certificate_until_issued() {
    let app = spawn_app_named(&[]).await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = alice
        .post(
            "/api/v1/containers/web/domains",
            json!({"domain": "shop.example.com", "port": 8080}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Stopped, so that nothing is sent to its (fake) address.
    let (status, body) = alice
        .post("/api/v1/containers/web/stop?wait=10", json!({}))
        .await;
    assert!(status.is_success(), "{body}");
    let (_, shown) = alice.get("/api/v1/containers/web").await;
    assert_eq!(shown["state"], "stopped", "{shown}");

    let listeners = acetate::front::Listeners::bind(&acetate::front::FrontSettings {
        http: Some("127.0.0.1:0".into()),
        https: Some("127.0.0.1:0".into()),
    })
    .await
    .unwrap();
    let (http_addr, https_addr) = (
        listeners.http_addr().unwrap(),
        listeners.https_addr().unwrap(),
    );
    acetate::front::serve(listeners, app.state.clone()).unwrap();

    let get = |host: &'static str| {
        let client = reqwest::Client::new();
        async move {
            let resp = client
                .get(format!("http://{http_addr}/"))
                .header("host", host)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let (status, text) = get("nowhere.example.com").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        text.contains("No site is published at nowhere.example.com"),
        "{text}"
    );
    let (status, text) = get("SHOP.example.com:80").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(text.contains("not running"), "{text}");

    // HTTPS by SNI: a self-signed certificate for the name until one is issued; nothing
    // for names no container serves.
    let der = handshake(https_addr, "shop.example.com").await.unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(format!("{:?}", san.value).contains("shop.example.com"));
    assert_eq!(cert.subject(), cert.issuer(), "self-signed");
    assert!(cert.subject().to_string().contains("not yet issued"));
    let again = handshake(https_addr, "shop.example.com").await.unwrap();
    assert_eq!(der, again, "made once, then kept");
    assert!(handshake(https_addr, "nowhere.example.com").await.is_err());

    // Removed, the name leads nowhere.
    let (status, _) = alice
        .call(
            Method::DELETE,
            "/api/v1/containers/web/domains/shop.example.com",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get("shop.example.com").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(handshake(https_addr, "shop.example.com").await.is_err());
}

/// An HTTPS GET through the front door for `name`, as raw HTTP/1.1: the answer's head.
async fn https_head(addr: std::net::SocketAddr, name: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let keep = Arc::new(Keep::default());
    let config = accepting(keep);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// An HTTPS GET through the front door for `name` over HTTP/2 (ALPN h2): the protocol
/// negotiated, the status and the answer's HSTS header.
async fn https_h2(
    addr: std::net::SocketAddr,
    name: &str,
    path: &str,
) -> (Option<Vec<u8>>, u16, Option<String>) {
    let mut config = accepting(Arc::new(Keep::default()));
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .unwrap();
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("https://{name}{path}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let hsts = resp
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (alpn, resp.status().as_u16(), hsts)
}

#[tokio::test]
async fn the_front_door_serves_the_panel_over_https_under_its_hostnames() {
    let app = spawn_app_named(&["panel.example.com"]).await;
    let panel: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let listeners = acetate::front::Listeners::bind(&acetate::front::FrontSettings {
        http: Some("127.0.0.1:0".into()),
        https: Some("127.0.0.1:0".into()),
    })
    .await
    .unwrap();
    let (http_addr, https_addr) = (
        listeners.http_addr().unwrap(),
        listeners.https_addr().unwrap(),
    );
    let mut st = app.state.clone();
    st.front = acetate::service::domains::Front::new(vec!["panel.example.com".into()])
        .serving_panel(panel, None);
    acetate::front::serve(listeners, st).unwrap();

    // Plain HTTP is sent to HTTPS, path and query kept.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://{http_addr}/login?next=%2Fprovider"))
        .header("host", "panel.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        resp.headers()["location"],
        "https://panel.example.com/login?next=%2Fprovider"
    );
    // Over HTTPS (self-signed until ACME issues one), the panel itself answers and knows it
    // is behind TLS (HSTS, its login cookie Secure).
    let der = handshake(https_addr, "panel.example.com").await.unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(format!(
        "{:?}",
        cert.subject_alternative_name().unwrap().unwrap().value
    )
    .contains("panel.example.com"));
    let head = https_head(https_addr, "panel.example.com", "/login").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("strict-transport-security: max-age="),
        "{head}"
    );
    // Over HTTP/2 too (what browsers offer first).
    let (alpn, status, hsts) = https_h2(https_addr, "panel.example.com", "/login").await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(status, 200);
    assert!(hsts.is_some_and(|h| h.starts_with("max-age=")));
    // Other names are not the panel.
    assert!(handshake(https_addr, "other.example.com").await.is_err());
}

#[tokio::test]
async fn certificates_are_due_when_missing_or_expiring_and_a_failure_waits_its_turn() {
    use acetate::service::certs::{due, RENEW_BEFORE, RETRY_AFTER};
    let app = spawn_app_named(&[]).await;
    let acme = app.reseller("acme", plan("basic", 5), pool(10)).await;
    let alice = app.customer(&acme, "alice", "basic").await;
    let (status, body) = alice.create(json!({"name": "web"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for d in ["a.example.com", "b.example.com"] {
        let (status, body) = alice
            .post("/api/v1/containers/web/domains", json!({"domain": d}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let db = &app.state.db;
    let now = acetate::domain::now();
    assert_eq!(
        due(db, now).await.unwrap(),
        ["a.example.com", "b.example.com"]
    );

    // Issued with 60 days left: not due; with less than the renewal window left: due.
    db.store_certificate("a.example.com", "chain", "key", now + 60 * 86400)
        .await
        .unwrap();
    assert_eq!(due(db, now).await.unwrap(), ["b.example.com"]);
    db.store_certificate("a.example.com", "chain", "key", now + RENEW_BEFORE - 86400)
        .await
        .unwrap();
    assert_eq!(
        due(db, now).await.unwrap(),
        ["a.example.com", "b.example.com"]
    );

    // A failure is shown with its reason and tried again only when its turn comes.
    db.certificate_failed(
        "b.example.com",
        "the domain does not point here",
        now + RETRY_AFTER,
    )
    .await
    .unwrap();
    assert_eq!(due(db, now).await.unwrap(), ["a.example.com"]);
    assert_eq!(
        due(db, now + RETRY_AFTER).await.unwrap(),
        ["a.example.com", "b.example.com"]
    );
    let (_, list) = alice.get("/api/v1/containers/web/domains").await;
    assert_eq!(list[1]["cert_error"], "the domain does not point here");
    assert!(list[1]["cert_not_after"].is_null());
}
