//! Proxying one request to its backend: hop-by-hop headers dropped, X-Forwarded-* added,
//! pooled HTTP/1.1 upstream; a protocol upgrade (WebSocket over HTTP/1.1) or an extended
//! CONNECT (WebSocket over HTTP/2, RFC 8441) on a connection of its own, joined byte for
//! byte once the container switched protocols.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{Body, Door};

/// Headers that belong to one connection, not the request (names made once: a name
/// given as text is parsed at every lookup).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Who is on the other end of a client connection, as the front door tells containers.
pub(super) struct Peer {
    /// The client's IP address as an X-Forwarded-For value (made once per connection).
    forwarded_for: HeaderValue,
    pub tls: bool,
}

impl Peer {
    pub fn new(addr: SocketAddr, tls: bool) -> Peer {
        let forwarded_for =
            HeaderValue::from_str(&addr.ip().to_string()).expect("an IP address is a header value");
        Peer { forwarded_for, tls }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !(keep_upgrade && n == header::UPGRADE))
        .collect();
    for n in named {
        headers.remove(n);
    }
    for h in &HOP_BY_HOP {
        headers.remove(h);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

pub(super) async fn forward(
    door: &Door,
    mut req: Request<Incoming>,
    backend: SocketAddr,
    host: &str,
    peer: &Peer,
) -> anyhow::Result<Response<Body>> {
    let upgrade = wants_upgrade(req.headers());
    let host_value = HeaderValue::from_str(host)?;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers, upgrade);
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, host_value.clone());
    }
    headers.insert(X_FORWARDED_FOR, peer.forwarded_for.clone());
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if peer.tls { "https" } else { "http" }),
    );
    headers.insert(X_FORWARDED_HOST, host_value);
    let path = req.uri().path_and_query().cloned();
    if is_websocket_connect(&req) {
        let path = path.map_or_else(|| "/".to_string(), |p| p.to_string());
        return websocket_over_h2(req, backend, path).await;
    }
    let mut uri = hyper::http::uri::Parts::default();
    uri.path_and_query = Some(path.unwrap_or_else(|| PathAndQuery::from_static("/")));
    if upgrade {
        // A connection of its own takes the origin form (`/path?query`).
        *req.uri_mut() = hyper::Uri::from_parts(uri)?;
        return forward_upgrade(req, backend).await;
    }
    // The pooled client takes the absolute form, and connects where it says; it speaks
    // HTTP/1.1 to containers whatever the client spoke.
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(Authority::try_from(backend.to_string())?);
    *req.uri_mut() = hyper::Uri::from_parts(uri)?;
    *req.version_mut() = hyper::Version::HTTP_11;
    let mut resp = door.client.request(req).await?;
    strip_hop_by_hop(resp.headers_mut(), false);
    Ok(resp.map(|b| b.boxed()))
}

/// A request that asks to switch protocols (WebSocket) gets a connection of its own; on
/// `101` both sides are joined byte for byte until either closes.
async fn forward_upgrade(
    mut req: Request<Incoming>,
    backend: SocketAddr,
) -> anyhow::Result<Response<Body>> {
    let client_side = hyper::upgrade::on(&mut req);
    let mut resp = upstream(backend).await?.send_request(req).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        join(client_side, hyper::upgrade::on(&mut resp));
    } else {
        strip_hop_by_hop(resp.headers_mut(), false);
    }
    Ok(resp.map(|b| b.boxed()))
}

/// Whether `req` opens a WebSocket on an HTTP/2 stream (extended CONNECT, RFC 8441).
fn is_websocket_connect(req: &Request<Incoming>) -> bool {
    req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}

/// A WebSocket on an HTTP/2 stream reaches the container as the HTTP/1.1 handshake it
/// knows (a GET with `Upgrade: websocket` and a key of the front door's); once it switches
/// protocols, the stream is answered `200` with the subprotocol and extensions it chose,
/// and both sides are joined. A refusal goes back as it is; a success that is no switch
/// (a page where no WebSocket is served) is a 502, never a 2xx the client would take for
/// an open WebSocket.
async fn websocket_over_h2(
    mut req: Request<Incoming>,
    backend: SocketAddr,
    path: String,
) -> anyhow::Result<Response<Body>> {
    use base64::Engine as _;
    let client_side = hyper::upgrade::on(&mut req);
    let mut handshake = Request::get(path).body(Empty::<Bytes>::new())?;
    *handshake.headers_mut() = std::mem::take(req.headers_mut());
    let h = handshake.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_str(&key)?);
    h.entry(header::SEC_WEBSOCKET_VERSION)
        .or_insert(HeaderValue::from_static("13"));
    let mut resp = upstream(backend).await?.send_request(handshake).await?;
    if resp.status().is_success() {
        // A 2xx would tell the client its WebSocket is open: it is not.
        return Ok(super::text(
            StatusCode::BAD_GATEWAY,
            format!(
                "The container answered {} instead of switching to WebSocket.\n",
                resp.status()
            ),
        ));
    }
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        strip_hop_by_hop(resp.headers_mut(), false);
        return Ok(resp.map(|b| b.boxed()));
    }
    join(client_side, hyper::upgrade::on(&mut resp));
    let mut ok = Response::new(Empty::<Bytes>::new().map_err(|e| match e {}).boxed());
    for name in [
        header::SEC_WEBSOCKET_PROTOCOL,
        header::SEC_WEBSOCKET_EXTENSIONS,
    ] {
        if let Some(v) = resp.headers().get(&name) {
            ok.headers_mut().insert(name, v.clone());
        }
    }
    Ok(ok)
}

/// A connection of its own to `backend` (an upgrade keeps it), in HTTP/1.1.
async fn upstream<B>(
    backend: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(backend))
        .await
        .map_err(|_| anyhow::anyhow!("connect: timed out"))??;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "front door: upgraded upstream");
        }
    });
    Ok(sender)
}

/// Joins both sides of a switched connection byte for byte until either closes.
fn join(client: hyper::upgrade::OnUpgrade, backend: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (Ok(a), Ok(b)) = tokio::join!(client, backend) else {
            return;
        };
        let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
}
