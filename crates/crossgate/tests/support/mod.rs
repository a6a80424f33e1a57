//! Shared helpers for the gateway's integration tests: an in-process gateway
//! on an ephemeral port, small upstream servers with chosen behaviours, and a
//! plain HTTP client (one fresh connection per request, or a kept-alive
//! [`Client`]). The `ops_*` tests use these too, next to `ops_support`.

pub mod process;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossgate::ConfigSource;
use crossgate::DenialLog;
use crossgate::Gateway;
use crossgate::Metrics;
use crossgate::{Drain, Server};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

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

/// Everything a test waits for is bounded by this. Longer than the
/// `shutdown_timeout = 10` of the `ops_*` tests' config, so waiting for a
/// drain to end never races its own timeout.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "crossgate-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of a file under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A gateway running in this process on an ephemeral port.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    pub metrics: Arc<Metrics>,
    pub config_path: PathBuf,
    /// Holds the config file; removed when the gateway is dropped.
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Drain>>,
}

impl TestGateway {
    /// Writes `config` to a temp file and serves it on 127.0.0.1:0.
    pub async fn start(config: &str) -> TestGateway {
        let dir = TempDir::new("gateway");
        let config_path = dir.write("crossgate.toml", config);
        let metrics = Arc::new(Metrics::new());
        let gateway = Gateway::load(
            ConfigSource::File(config_path.clone()),
            Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            metrics.clone(),
            Arc::new(DenialLog::new(DenialLog::DEFAULT_CAPACITY)),
        )
        .unwrap_or_else(|e| panic!("test config must load:\n{e}"));
        let gateway = Arc::new(gateway);
        let server = Server::bind(gateway.clone()).await.expect("bind gateway");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestGateway {
            addr,
            gateway,
            metrics,
            config_path,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Rewrites the config file and reloads it.
    pub fn reload_with(&self, config: &str) -> Result<(), crossgate::LoadError> {
        std::fs::write(&self.config_path, config).expect("rewrite config");
        self.gateway.reload()
    }

    /// Starts shutting down and returns the handle of the draining server.
    pub fn begin_shutdown(&mut self) -> JoinHandle<Drain> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("server task")
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What a test upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: String,
    pub headers: HeaderMap,
}

/// A small upstream whose behaviour is chosen by the request path:
///
/// - a path containing `/slow/`: answers after the number of milliseconds that
///   follows `/slow/` (`/api/slow/1500`), or after 3 s when none does (`/api/slow/x`);
/// - containing `/cors/`: sets its own CORS headers (`Access-Control-Allow-Origin: https://upstream.example`);
/// - ending in `/echo-body`: streams the request body back, recording each chunk in `chunks` as it arrives;
/// - ending in `/slurp`: reads the whole request body, then answers `received N bytes`;
/// - ending in `/drip`: sends `first`, waits for `release`, then sends `second`;
/// - anything else: 200 `upstream:<path>` with hop-by-hop headers and `Vary: Accept-Encoding`.
pub struct TestUpstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Requests received and not yet answered (a streamed answer counts as
    /// answered once its head is sent).
    pub in_flight: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
    pub release: Arc<Notify>,
    pub chunks: Arc<Mutex<Vec<Bytes>>>,
    pub chunk_arrived: Arc<Notify>,
    task: JoinHandle<()>,
}

impl TestUpstream {
    pub async fn start() -> TestUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let chunk_arrived = Arc::new(Notify::new());
        let state = UpstreamState {
            seen: seen.clone(),
            in_flight: in_flight.clone(),
            release: release.clone(),
            chunks: chunks.clone(),
            chunk_arrived: chunk_arrived.clone(),
        };
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                tokio::spawn(async move {
                    let service =
                        service_fn(move |request| upstream_answer(state.clone(), request));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestUpstream {
            addr,
            seen,
            in_flight,
            connections,
            release,
            chunks,
            chunk_arrived,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.seen.lock().expect("seen").len()
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .expect("seen")
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct UpstreamState {
    seen: Arc<Mutex<Vec<Seen>>>,
    in_flight: Arc<AtomicUsize>,
    release: Arc<Notify>,
    chunks: Arc<Mutex<Vec<Bytes>>>,
    chunk_arrived: Arc<Notify>,
}
type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn upstream_answer(
    state: UpstreamState,
    request: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    state.in_flight.fetch_add(1, Ordering::SeqCst);
    let response = upstream_response(&state, request).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(response)
}

async fn upstream_response(
    state: &UpstreamState,
    request: Request<Incoming>,
) -> Response<TestBody> {
    let path = request.uri().path().to_owned();
    state.seen.lock().expect("seen").push(Seen {
        method: request.method().clone(),
        uri: request.uri().to_string(),
        headers: request.headers().clone(),
    });
    if let Some((_, after)) = path.rsplit_once("/slow/") {
        let delay = match after.parse::<u64>() {
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => Duration::from_secs(3),
        };
        tokio::time::sleep(delay).await;
    }
    if path.ends_with("/echo-body") {
        let mut body = request.into_body();
        let (mut tx, channel) = Channel::<Bytes, Infallible>::new(4);
        let (chunks, chunk_arrived) = (state.chunks.clone(), state.chunk_arrived.clone());
        tokio::spawn(async move {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    chunks.lock().expect("chunks").push(data.clone());
                    chunk_arrived.notify_one();
                    if tx.send_data(data).await.is_err() {
                        return;
                    }
                }
            }
        });
        return Response::new(channel.boxed());
    }
    if path.ends_with("/slurp") {
        let received = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(0);
        return Response::new(Full::new(Bytes::from(format!("received {received} bytes"))).boxed());
    }
    if path.ends_with("/drip") {
        let (mut tx, channel) = Channel::<Bytes, Infallible>::new(1);
        let release = state.release.clone();
        tokio::spawn(async move {
            let _ = tx.send_data(Bytes::from_static(b"first")).await;
            release.notified().await;
            let _ = tx.send_data(Bytes::from_static(b"second")).await;
        });
        return Response::new(channel.boxed());
    }
    let mut response = Response::new(Full::new(Bytes::from(format!("upstream:{path}"))).boxed());
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.insert("vary", HeaderValue::from_static("Accept-Encoding"));
    headers.insert("connection", HeaderValue::from_static("x-upstream-hop"));
    headers.insert("x-upstream-hop", HeaderValue::from_static("1"));
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    if path.contains("/cors/") {
        headers.insert(
            "access-control-allow-origin",
            HeaderValue::from_static("https://upstream.example"),
        );
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("x-upstream"),
        );
    }
    response
}

/// An address nothing listens on.
pub async fn absent_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// An upstream that reads the request and closes the connection without answering.
pub async fn closing_upstream() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
                drop(stream);
            });
        }
    });
    (addr, task)
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
    let stream = TcpStream::connect(addr).await.expect("connect to gateway");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let mut request = build_request(
        method,
        &format!("http://{addr}{path}"),
        headers,
        Full::new(Bytes::new()),
    );
    *request.version_mut() = http::Version::HTTP_2;
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("answer in time")
        .expect("send request");
    collect(response).await
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
    let mut headers = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if !request_headers.is_empty() {
        headers.push(("access-control-request-headers", request_headers));
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

/// Polls `condition` every 10 ms until it holds, failing after [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
