//! The front door (`acetate serve`, ports 80 and 443 by default; `off` when the provider
//! runs its own proxy): HTTP and HTTPS for the domains customers attached, sent by Host
//! (and SNI) to their containers' ports. It answers ACME HTTP-01 challenges itself, serves
//! each domain's issued certificate (self-signed until then), passes WebSockets and
//! streamed bodies through, and tells the container who asked (X-Forwarded-For, -Proto,
//! -Host). HTTP/1.1 and HTTP/2 (over TLS) to clients, HTTP/1.1 to containers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

use crate::service::domains::Front;
use crate::service::AppState;

mod proxy;
use proxy::{forward, Peer};

type Body = BoxBody<Bytes, hyper::Error>;

/// Where the front door listens (`None`: not at all).
#[derive(Debug, Clone, Default)]
pub struct FrontSettings {
    pub http: Option<String>,
    pub https: Option<String>,
}

/// The front door's bound sockets.
#[derive(Debug, Default)]
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(settings: &FrontSettings) -> anyhow::Result<Listeners> {
        async fn one(addr: &Option<String>, what: &str) -> anyhow::Result<Option<TcpListener>> {
            match addr {
                Some(a) => Ok(Some(listen(a).await.map_err(|e| {
                    anyhow::anyhow!(
                        "front door: listen for {what} on {a}: {e} (another web server? \
                         set --front-{what} off, or another address)"
                    )
                })?)),
                None => Ok(None),
            }
        }
        Ok(Listeners {
            http: one(&settings.http, "http").await?,
            https: one(&settings.https, "https").await?,
        })
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// Listens on `addr`. `[::]:PORT` (the default) takes both IPv4 and IPv6 whatever the
/// host's `net.ipv6.bindv6only` says, and falls back to `0.0.0.0:PORT` on a host without
/// IPv6; any other address is bound as it is.
pub async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let Ok(sa) = addr.parse::<SocketAddr>() else {
        return TcpListener::bind(addr).await;
    };
    if sa != SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, sa.port())) {
        return TcpListener::bind(sa).await;
    }
    let dual = || -> std::io::Result<std::net::TcpListener> {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
        s.set_only_v6(false)?;
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        s.bind(&sa.into())?;
        s.listen(1024)?;
        Ok(s.into())
    };
    match dual() {
        Ok(l) => TcpListener::from_std(l),
        Err(e) if e.raw_os_error() == Some(nix::libc::EAFNOSUPPORT) => {
            tracing::info!(addr, "no IPv6 on this host: listening on IPv4 only");
            TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, sa.port())).await
        }
        Err(e) => Err(e),
    }
}

/// Picks the certificate by SNI.
#[derive(Debug)]
struct BySni(Front);

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        self.0.certificate(&name)
    }
}

struct Door {
    st: AppState,
    /// Whether HTTPS is served too (the panel's names are then redirected to it).
    https: bool,
    client: Client<HttpConnector, Incoming>,
}

/// Serves the bound listeners until the process ends, on a thread of its own with its own
/// single-threaded runtime: a request and its upstream exchange never hop between threads
/// (measured with `scripts/bench-front`: cross-thread wake-ups cost more than the proxying).
pub fn serve(listeners: Listeners, st: AppState) -> anyhow::Result<()> {
    let mut tls = None;
    if listeners.https.is_some() {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni(st.front.clone())));
        // HTTP/2 where the client offers it (browsers do), HTTP/1.1 otherwise (and for
        // WebSockets, which browsers open over HTTP/1.1 unless the server offers extended
        // CONNECT).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tls = Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)));
    }
    let https_on = listeners.https.is_some();
    let http = listeners.http.map(|l| l.into_std()).transpose()?;
    let https = listeners.https.map(|l| l.into_std()).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("front-door".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(Duration::from_secs(5)));
                connector.set_nodelay(true);
                let client = Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(connector);
                let door = Arc::new(Door {
                    st,
                    https: https_on,
                    client,
                });
                let mut tasks = Vec::new();
                for (listener, tls) in [(http, None), (https, tls)] {
                    let Some(l) = listener else { continue };
                    match TcpListener::from_std(l) {
                        Ok(l) => tasks.push(tokio::spawn(accept(l, door.clone(), tls))),
                        Err(e) => tracing::error!(error = %e, "front door: listener"),
                    }
                }
                for t in tasks {
                    let _ = t.await;
                }
            })
        })?;
    Ok(())
}

async fn accept(listener: TcpListener, door: Arc<Door>, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "front door: accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // On a dual-stack socket ([::]) an IPv4 client shows as ::ffff:a.b.c.d.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let _ = stream.set_nodelay(true);
        let door = door.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, peer, door, false).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(s)) if s.get_ref().1.alpn_protocol() == Some(b"h2") => {
                            connection_h2(s, peer, door).await
                        }
                        Ok(Ok(s)) => connection(s, peer, door, true).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "front door: TLS"),
                        Err(_) => tracing::debug!(%peer, "front door: TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn connection<S>(stream: S, peer: SocketAddr, door: Arc<Door>, tls: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let client = Arc::new(Peer::new(peer, tls));
    let svc = hyper::service::service_fn(move |req| {
        let (door, client) = (door.clone(), client.clone());
        async move { Ok::<_, Infallible>(handle(&door, req, &client).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "front door: connection");
    }
}

/// An HTTP/2 connection (over TLS only): each stream a request, proxied like HTTP/1.1
/// ones (upstream in HTTP/1.1), WebSockets included.
async fn connection_h2<S>(stream: S, peer: SocketAddr, door: Arc<Door>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let client = Arc::new(Peer::new(peer, true));
    let svc = hyper::service::service_fn(move |req| {
        let (door, client) = (door.clone(), client.clone());
        async move { Ok::<_, Infallible>(handle(&door, req, &client).await) }
    });
    // Extended CONNECT (RFC 8441) carries WebSockets over HTTP/2 streams.
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .serve_connection(TokioIo::new(stream), svc);
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "front door: HTTP/2 connection");
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The name asked for: the absolute URI's host, else the Host header's, lower case and
/// without its port.
fn host_of(req: &Request<Incoming>) -> Option<String> {
    let raw = match req.uri().host() {
        Some(h) => h.to_string(),
        None => {
            let h = req.headers().get(header::HOST)?.to_str().ok()?;
            match h.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => h,
            }
            .to_string()
        }
    };
    Some(raw.trim_end_matches('.').to_ascii_lowercase())
}

async fn handle(door: &Door, req: Request<Incoming>, peer: &Peer) -> Response<Body> {
    let tls = peer.tls;
    let Some(host) = host_of(&req) else {
        return text(StatusCode::BAD_REQUEST, "no Host header\n".into());
    };
    if let Some(token) = req
        .uri()
        .path()
        .strip_prefix("/.well-known/acme-challenge/")
    {
        if let Some(answer) = door.st.front.challenge(token) {
            return text(StatusCode::OK, answer);
        }
    }
    if let Some(panel) = door.st.front.panel_backend(&host) {
        if !tls && door.https {
            return to_https(&host, &req);
        }
        return match forward(door, req, panel, &host, peer).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::warn!(error = %e, "front door: the panel did not answer");
                text(
                    StatusCode::BAD_GATEWAY,
                    "The panel did not answer.\n".into(),
                )
            }
        };
    }
    let Some(route) = door.st.front.route(&host) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("No site is published at {host} on this host.\n"),
        );
    };
    if route.https_only && !tls && door.https {
        return to_https(&host, &req);
    }
    let address = door
        .st
        .snapshot
        .get(&route.engine_name)
        .filter(|i| i.state == acetate_engine::State::Running)
        .and_then(|i| i.network.as_ref().map(|n| n.address));
    let Some(address) = address else {
        return text(
            StatusCode::BAD_GATEWAY,
            format!("The container serving {host} is not running.\n"),
        );
    };
    let backend = SocketAddr::from((address, route.port));
    match forward(door, req, backend, &host, peer).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::debug!(%host, %backend, error = %e, "front door: upstream");
            text(
                StatusCode::BAD_GATEWAY,
                format!(
                    "The container serving {host} did not answer on port {}.\n",
                    route.port
                ),
            )
        }
    }
}

/// A permanent redirect to the same path and query over HTTPS.
fn to_https(host: &str, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let to = format!("https://{host}{path}");
    let mut resp = text(StatusCode::PERMANENT_REDIRECT, format!("{to}\n"));
    if let Ok(v) = HeaderValue::from_str(&to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_default_address_takes_ipv4_and_ipv6_on_one_socket() {
        let l = super::listen("[::]:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            for _ in 0..2 {
                l.accept().await.unwrap();
            }
        });
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        tokio::net::TcpStream::connect(("::1", port)).await.unwrap();
        accept.await.unwrap();
        // Another address is bound as it is.
        let v4 = super::listen("127.0.0.1:0").await.unwrap();
        assert!(v4.local_addr().unwrap().is_ipv4());
    }
}
