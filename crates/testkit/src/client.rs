//! A plain HTTP client for the tests: one fresh connection per request
//! ([`send`], [`try_send`]), a kept-alive [`Client`], HTTP/2 with prior
//! knowledge ([`send_h2c`]), connections to send on by hand
//! ([`http1_sender`], [`http2_sender`]) and TLS connections trusting a
//! fixture CA.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{fixture, PATIENCE};

/// The `[server]` key that makes a gateway listen with TLS, with the
/// certificate `cert` and its key `key` from the fixtures (`localhost.pem`
/// and `localhost.key` are what [`tls_connect`] trusts).
pub fn tls_listener(cert: &str, key: &str) -> String {
    format!(
        "tls = {{ cert = {:?}, key = {:?} }}",
        fixture(cert),
        fixture(key)
    )
}

/// A TLS connection to `addr` (as `localhost`, offering `alpn`) trusting
/// only the CA in fixture `ca`.
pub async fn try_tls_connect(
    addr: SocketAddr,
    alpn: &[u8],
    ca: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let ca = std::fs::read(fixture(ca)).expect("read CA");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(PATIENCE, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
}

/// The same with the fixtures' own CA, which must succeed.
pub async fn tls_connect(
    addr: SocketAddr,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    try_tls_connect(addr, alpn, "ca.pem")
        .await
        .expect("TLS handshake")
}

/// A response as the test client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the reply has `status` and carries CORS headers for `origin`,
    /// so that a script from that origin can read why it failed.
    pub fn assert_readable(&self, status: u16, origin: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("access-control-allow-origin"),
            Some(origin),
            "a {status} must carry CORS headers for an allowed origin"
        );
    }

    /// Every Vary token, lower-cased.
    pub fn vary(&self) -> Vec<String> {
        self.headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

/// One HTTP/1.1 client connection, kept alive between requests. Its
/// failures are returned, for the tests where a request may rightly fail.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Result<Client, String> {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect to {addr} timed out"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        Ok(Client { sender })
    }

    /// Sends one request on this connection and reads the whole response.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, String> {
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection not ready: {e}"))?;
            let request = build_request(
                method,
                path,
                headers,
                Full::new(Bytes::copy_from_slice(body)),
            );
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            try_collect(response)
                .await
                .map_err(|e| format!("{method} {path}: body: {e}"))
        };
        tokio::time::timeout(PATIENCE, exchange)
            .await
            .map_err(|_| format!("{method} {path} timed out"))?
    }
}

/// Sends one HTTP/1.1 request on a fresh connection and reads the whole
/// response; failing to get one is an `Err`.
pub async fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, String> {
    Client::connect(addr)
        .await?
        .send(method, path, headers, body)
        .await
}

/// Sends one HTTP/1.1 request on a fresh connection and reads the whole
/// response; failing to get one fails the test.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    try_send(addr, method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("the gateway must answer: {e}"))
}

/// Sends one request over HTTP/2 with prior knowledge (h2c).
pub async fn send_h2c(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    send_h2c_uri(addr, method, &format!("http://{addr}{path}"), headers).await
}

/// [`send_h2c`] for a whole `uri`, whose authority (`:authority`) need not
/// be `addr`.
pub async fn send_h2c_uri(
    addr: SocketAddr,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut sender = http2_sender(addr).await;
    let mut request = build_request(method, uri, headers, Full::new(Bytes::new()));
    *request.version_mut() = http::Version::HTTP_2;
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("answer in time")
        .expect("send request");
    collect(response).await
}

/// An HTTP/1.1 connection to `addr`, driven by a task of its own, for
/// the tests that hold on to it or send a body in pieces.
pub async fn http1_sender<B>(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect to gateway");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(connection);
    sender
}

/// An HTTP/2 connection to `addr` with prior knowledge (h2c), driven by a
/// task of its own.
pub async fn http2_sender<B>(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect to gateway");
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    sender
}

pub fn build_request<B>(method: &str, path: &str, headers: &[(&str, &str)], body: B) -> Request<B> {
    let mut builder = Request::builder().method(method).uri(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        && !path.starts_with("http")
    {
        builder = builder.header("host", "gateway.test");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).expect("valid test request")
}

pub async fn collect(response: Response<Incoming>) -> Reply {
    try_collect(response).await.expect("read body")
}

async fn try_collect(response: Response<Incoming>) -> Result<Reply, hyper::Error> {
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A preflight from `origin` asking for `method` (and `headers`, comma-separated, when not empty).
pub async fn preflight(
    addr: SocketAddr,
    path: &str,
    origin: &str,
    method: &str,
    request_headers: &str,
) -> Reply {
    preflight_with_authorization(addr, path, origin, method, request_headers, None).await
}

/// A [`preflight`] that also carries `Authorization: authorization` when
/// given, as some clients send one on OPTIONS.
pub async fn preflight_with_authorization(
    addr: SocketAddr,
    path: &str,
    origin: &str,
    method: &str,
    request_headers: &str,
    authorization: Option<&str>,
) -> Reply {
    let mut headers = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if !request_headers.is_empty() {
        headers.push(("access-control-request-headers", request_headers));
    }
    if let Some(authorization) = authorization {
        headers.push(("authorization", authorization));
    }
    send(addr, "OPTIONS", path, &headers, b"").await
}

/// The comma-separated items of a header, trimmed.
pub fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Writes `request` as it is on a fresh connection and returns everything
/// the server wrote until it closed (a reset ends the reading too).
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write request");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("the server answers and closes in time")
}

/// `Bearer <JWT>`: an HS256 token signed with `secret`, carrying
/// `privileges` and valid for ten minutes (`exp` is required by default).
pub fn bearer_jwt(privileges: &[&str], secret: &str) -> String {
    let exp = jsonwebtoken::get_current_timestamp() + 600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "privileges": privileges, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode JWT");
    format!("Bearer {token}")
}
