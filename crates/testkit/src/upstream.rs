//! Upstreams for the gateway to proxy to: [`TestUpstream`], whose behaviour
//! the request path chooses, one that closes without answering, and an
//! address nothing listens on.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{eventually, try_send, Reply};

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
        let (listener, addr) = loopback_listener().await;
        let state = UpstreamState::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let served = state.clone();
        let task = serve_each(listener, move || {
            accepted.fetch_add(1, Ordering::SeqCst);
            let state = served.clone();
            service_fn(move |request| upstream_answer(state.clone(), request))
        });
        TestUpstream {
            addr,
            seen: state.seen,
            in_flight: state.in_flight,
            connections,
            release: state.release,
            chunks: state.chunks,
            chunk_arrived: state.chunk_arrived,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.seen.lock().expect("seen").len()
    }

    /// Sends a GET of `path` with `headers` to the gateway at `gateway`, in
    /// a task of its own, and returns once this upstream is answering it (a
    /// `/slow/` path keeps it there): the request is in flight. The task
    /// gives its reply, or why there was none.
    pub async fn request_in_flight(
        &self,
        gateway: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> JoinHandle<Result<Reply, String>> {
        let path = path.to_owned();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let request = tokio::spawn(async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            try_send(gateway, "GET", &path, &headers, b"").await
        });
        eventually("the request reaches the upstream", || {
            self.in_flight.load(Ordering::SeqCst) > 0
        })
        .await;
        request
    }

    /// Waits for a request from [`TestUpstream::request_in_flight`] and
    /// asserts it got this upstream's plain answer to `path` (200
    /// `upstream:<path>`), which it returns.
    pub async fn answered(request: JoinHandle<Result<Reply, String>>, path: &str) -> Reply {
        let reply = request
            .await
            .expect("the request's task")
            .unwrap_or_else(|e| panic!("the request in flight got no answer: {e}"));
        assert_eq!(
            (reply.status.as_u16(), reply.text()),
            (200, format!("upstream:{path}"))
        );
        reply
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

/// What [`TestUpstream`]'s answers share with the test, which reads the same
/// `Arc`s through the upstream's fields.
#[derive(Clone, Default)]
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
    let mut headers = PLAIN_ANSWER_HEADERS.to_vec();
    if path.contains("/cors/") {
        headers.extend_from_slice(UPSTREAM_CORS_HEADERS);
    }
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The plain answer's headers: a `Vary` the gateway must merge into, and
/// hop-by-hop headers (one named by `Connection`) it must strip.
const PLAIN_ANSWER_HEADERS: &[(&str, &str)] = &[
    ("content-type", "text/plain"),
    ("vary", "Accept-Encoding"),
    ("connection", "x-upstream-hop"),
    ("x-upstream-hop", "1"),
    ("keep-alive", "timeout=5"),
];

/// The CORS headers of a `/cors/` path, which the gateway's own replace.
const UPSTREAM_CORS_HEADERS: &[(&str, &str)] = &[
    ("access-control-allow-origin", "https://upstream.example"),
    ("access-control-expose-headers", "x-upstream"),
];

/// Serves HTTP/1.1 or HTTP/2 on every connection `listener` accepts, each
/// with the service `service_for` makes when it is accepted, until the
/// returned task is aborted.
pub fn serve_each<F, S, B>(listener: TcpListener, mut service_for: F) -> JoinHandle<()>
where
    F: FnMut() -> S + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = service_for();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A listener on a free loopback port, with its address.
pub async fn loopback_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    (listener, addr)
}

/// An address nothing listens on.
pub async fn absent_upstream() -> SocketAddr {
    let (listener, addr) = loopback_listener().await;
    drop(listener);
    addr
}

/// An upstream that reads the request and closes the connection without answering.
pub async fn closing_upstream() -> (SocketAddr, JoinHandle<()>) {
    let (listener, addr) = loopback_listener().await;
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
