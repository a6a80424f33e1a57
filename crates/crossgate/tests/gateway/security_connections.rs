//! The connection layer under attack: idle and half-open sockets in every
//! protocol state, clients that stop reading, HTTP/2 stream floods and
//! resets, shutdown with idle clients, heads beyond the parser's limits.
//! Every attack runs over real sockets against an upstream written here,
//! with timeouts of about a second.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::config::single_route;
use crate::support::h2_frames::{
    self, frame, read_frame, ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, PREFACE,
    RST_STREAM, SETTINGS,
};
use crate::support::upstream::loopback_listener;
use crate::support::{
    build_request, collect, http2_sender, serve_each, tls_connect, tls_listener, try_send,
    TestGateway, PATIENCE,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const APP: &str = "https://app.example.com";
/// Slack on top of a timeout for a busy CI machine.
const MARGIN: Duration = Duration::from_millis(1500);
const SECOND: Duration = Duration::from_secs(1);

/// An upstream that answers `/slow/MS` after MS milliseconds (counting how
/// many such requests it holds at once), `/big` with 32 MiB, anything else
/// at once.
struct Upstream {
    addr: SocketAddr,
    slow_now: Arc<AtomicUsize>,
    slow_peak: Arc<AtomicUsize>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Upstream {
        let (listener, addr) = loopback_listener().await;
        let slow_now = Arc::new(AtomicUsize::new(0));
        let slow_peak = Arc::new(AtomicUsize::new(0));
        let hits = Arc::new(AtomicUsize::new(0));
        let big = Bytes::from(vec![b'x'; 32 << 20]);
        let (now, peak, count) = (slow_now.clone(), slow_peak.clone(), hits.clone());
        let task = serve_each(listener, move || {
            let (now, peak, count, big) = (now.clone(), peak.clone(), count.clone(), big.clone());
            service_fn(move |request: Request<Incoming>| {
                let (now, peak, count, big) =
                    (now.clone(), peak.clone(), count.clone(), big.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    let path = request.uri().path().to_owned();
                    if let Some(ms) = path.strip_prefix("/slow/") {
                        let held = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(held, Ordering::SeqCst);
                        let ms = ms.parse().unwrap_or(1000);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                    let body = if path == "/big" {
                        big
                    } else {
                        Bytes::from(format!("upstream:{path}"))
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(body)))
                }
            })
        });
        Upstream {
            addr,
            slow_now,
            slow_peak,
            hits,
            task,
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One catch-all route to `upstream`, 1 s timeouts, 8 connections, and `extra`
/// `[server]` lines.
fn config(upstream: SocketAddr, extra: &str) -> String {
    single_route(
        &format!(
            "max_connections = 8\nheader_read_timeout = 1\nidle_timeout = 1\nsend_timeout = 1\n{extra}"
        ),
        APP,
        "/",
        &format!("upstream = \"http://{upstream}\""),
    )
}

/// The test upstream and an in-process gateway in front of it, with
/// [`config`]'s `extra` lines.
async fn start(extra: &str) -> (Upstream, TestGateway) {
    let upstream = Upstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, extra)).await;
    (upstream, gateway)
}

/// [`start`] with some of [`config`]'s own lines replaced, as (line, by).
async fn start_replacing(lines: &[(&str, &str)]) -> (Upstream, TestGateway) {
    let upstream = Upstream::start().await;
    let config = lines
        .iter()
        .fold(config(upstream.addr, ""), |config, (line, by)| {
            config.replace(line, by)
        });
    let gateway = TestGateway::start(&config).await;
    (upstream, gateway)
}

// ---- raw HTTP/2 frames, for what a well-behaved client library will not do ----

/// HEADERS (END_STREAM | END_HEADERS) for `GET path`, in HPACK without the
/// dynamic table.
fn get_headers(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    for (index, value) in [(4u8, path), (1, "gateway.test")] {
        block.push(index); // literal without indexing, indexed name (:path, :authority)
        block.push(u8::try_from(value.len()).expect("short value"));
        block.extend_from_slice(value.as_bytes());
    }
    frame(HEADERS, END_STREAM | END_HEADERS, stream, &block)
}

/// Reads (and discards) until the peer closes; how long that took, or `None`
/// when it was still open after `within`.
async fn closed_within(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = vec![0u8; 64 * 1024];
    let drained = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    drained.await.ok().map(|()| started.elapsed())
}

/// How one idle socket is held.
#[derive(Debug, Clone, Copy)]
enum IdleState {
    /// TCP connected, nothing sent.
    Silent,
    /// Half of the HTTP/2 preface, so protocol detection cannot decide.
    PartialPreface,
    /// A complete h2c handshake (preface, SETTINGS exchanged), no stream.
    H2cHandshake,
    /// TLS listener, nothing sent (no ClientHello).
    TlsSilent,
    /// TLS handshake done, no request.
    TlsHandshake,
}

/// Holds `count` sockets in `state`; each is returned with what it needs to stay open.
async fn hold(
    addr: SocketAddr,
    state: IdleState,
    count: usize,
) -> Vec<Box<dyn AsyncRead + Unpin + Send>> {
    let mut held: Vec<Box<dyn AsyncRead + Unpin + Send>> = Vec::new();
    for _ in 0..count {
        match state {
            IdleState::Silent | IdleState::TlsSilent => {
                held.push(Box::new(TcpStream::connect(addr).await.expect("connect")));
            }
            IdleState::PartialPreface => {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                stream.write_all(&PREFACE[..12]).await.expect("send");
                held.push(Box::new(stream));
            }
            IdleState::H2cHandshake => {
                let stream = h2_frames::connect(addr).await;
                held.push(Box::new(stream));
            }
            IdleState::TlsHandshake => {
                // Connections beyond `max_connections` wait in the backlog, so
                // their handshake only completes once a slot frees: do it in
                // the background, the socket stays held either way.
                let (client, server) = tokio::io::duplex(64);
                tokio::spawn(async move {
                    let tls = tls_connect(addr, b"http/1.1").await;
                    let _keep = (tls, server);
                    std::future::pending::<()>().await;
                });
                held.push(Box::new(client));
            }
        }
    }
    held
}

/// Holds more idle sockets than `max_connections` (8) in `state`, then shows
/// that a legitimate client is still served within `header_read_timeout`
/// (1 s) plus a margin, and that the idle sockets were closed.
async fn idle_sockets_cannot_starve(state: IdleState) {
    let tls = matches!(state, IdleState::TlsSilent | IdleState::TlsHandshake);
    let (_upstream, gateway) = start(&if tls {
        tls_listener("localhost.pem", "localhost.key")
    } else {
        String::new()
    })
    .await;
    let mut idle = hold(gateway.addr, state, 12).await;
    // Let the first eight be accepted, so the legitimate client queues behind them.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let legit = async {
        if tls {
            let stream = tls_connect(gateway.addr, b"http/1.1").await;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            let request = build_request("GET", "/hello", &[("origin", APP)], Empty::<Bytes>::new());
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            Ok(collect(response).await)
        } else {
            try_send(gateway.addr, "GET", "/hello", &[("origin", APP)], b"").await
        }
    };
    let reply = tokio::time::timeout(SECOND + MARGIN, legit)
        .await
        .unwrap_or_else(|_| {
            panic!("{state:?}: the legitimate client waited past header_read_timeout + margin")
        })
        .unwrap_or_else(|e| panic!("{state:?}: the legitimate client failed: {e}"));
    assert_eq!(reply.status, 200, "{state:?}");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    let waited = started.elapsed();
    if !matches!(state, IdleState::TlsHandshake) {
        let first = idle.first_mut().expect("held sockets");
        assert!(
            closed_within(first, SECOND + MARGIN).await.is_some(),
            "{state:?}: the first idle socket was never closed"
        );
    }
    eprintln!("{state:?}: legitimate client served after {waited:?}");
}

/// A test of its own for each [`IdleState`], so that each holds its own
/// gateway and their seconds of waiting overlap.
macro_rules! idle_sockets_cannot_starve_tests {
    ($($test:ident: $state:ident,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            idle_sockets_cannot_starve(IdleState::$state).await;
        }
    )*};
}

idle_sockets_cannot_starve_tests! {
    silent_tcp_sockets_cannot_starve_a_client: Silent,
    partial_http2_prefaces_cannot_starve_a_client: PartialPreface,
    idle_h2c_connections_cannot_starve_a_client: H2cHandshake,
    silent_tls_sockets_cannot_starve_a_client: TlsSilent,
    idle_tls_connections_cannot_starve_a_client: TlsHandshake,
}

/// Sends one HTTP/1.1 request on `stream` and reads its response (the test
/// upstream's replies have a Content-Length).
async fn h1_exchange(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nhost: gateway.test\r\norigin: {APP}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed before the response");
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .expect("content-length");
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connections_close_after_idle_timeout_not_header_read_timeout() {
    // header_read_timeout is long here: the pause between requests is timed
    // by idle_timeout (1 s) alone, and a pause shorter than it is allowed.
    let (_upstream, gateway) = start_replacing(&[
        ("header_read_timeout = 1", "header_read_timeout = 5"),
        ("idle_timeout = 1", "idle_timeout = 2"),
    ])
    .await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    assert!(h1_exchange(&mut stream, "/one")
        .await
        .starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        h1_exchange(&mut stream, "/two")
            .await
            .starts_with("HTTP/1.1 200"),
        "a pause shorter than idle_timeout keeps the connection"
    );
    let closed = closed_within(&mut stream, 2 * SECOND + MARGIN)
        .await
        .expect("the idle keep-alive connection is closed after idle_timeout");
    assert!(
        closed >= Duration::from_millis(1800),
        "closed early: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_begun_on_a_kept_alive_connection_must_end_within_header_read_timeout() {
    let (_upstream, gateway) = start_replacing(&[("idle_timeout = 1", "idle_timeout = 10")]).await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    assert!(h1_exchange(&mut stream, "/one")
        .await
        .starts_with("HTTP/1.1 200"));
    // A slowloris on the second request: the long idle_timeout does not apply.
    stream
        .write_all(b"GET /two HTTP/1.1\r\nhost: gat")
        .await
        .expect("send part of a head");
    closed_within(&mut stream, SECOND + MARGIN)
        .await
        .expect("the unfinished head is cut off after header_read_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_get_goaway_after_idle_timeout_despite_pings() {
    let (_upstream, gateway) = start("").await;
    let stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    // hyper's client answers the gateway's PINGs: a live but idle peer.
    let connection = tokio::spawn(connection);
    let mut request = build_request(
        "GET",
        &format!("http://{}/hello", gateway.addr),
        &[],
        Empty::<Bytes>::new(),
    );
    *request.version_mut() = http::Version::HTTP_2;
    let response = sender.send_request(request).await.expect("h2 request");
    assert_eq!(collect(response).await.status, 200);
    let idle_from = Instant::now();
    tokio::time::timeout(SECOND + MARGIN, connection)
        .await
        .expect("the idle HTTP/2 connection is closed after idle_timeout")
        .expect("connection task")
        .expect("closed cleanly, by GOAWAY");
    assert!(idle_from.elapsed() >= Duration::from_millis(800));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_peers_that_do_not_ack_pings_are_closed_even_with_streams_open() {
    let (_upstream, gateway) = start("response_timeout = 30").await;
    let mut stream = h2_frames::connect(gateway.addr).await;
    stream
        .write_all(&[frame(SETTINGS, ACK, 0, &[]), get_headers(1, "/slow/20000")].concat())
        .await
        .expect("send request");
    // The open stream keeps idle_timeout out of play; only the unanswered
    // PING (every idle_timeout of silence, ack within header_read_timeout) can end it.
    let started = Instant::now();
    let mut pinged = false;
    let outcome = tokio::time::timeout(2 * SECOND + 2 * MARGIN, async {
        while let Some((kind, flags, _, _)) = read_frame(&mut stream).await {
            if kind == PING && flags & ACK == 0 {
                pinged = true;
            }
        }
    })
    .await;
    assert!(pinged, "the gateway sent a keep-alive PING");
    assert!(
        outcome.is_ok(),
        "a peer that never acks PINGs is closed, not kept for its slow stream"
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_slot_after_send_timeout() {
    let (_upstream, gateway) =
        start_replacing(&[("max_connections = 8", "max_connections = 1")]).await;
    let mut stuck = TcpStream::connect(gateway.addr).await.expect("connect");
    stuck
        .write_all(b"GET /big HTTP/1.1\r\nhost: gateway.test\r\n\r\n")
        .await
        .expect("send");
    // It never reads: 32 MiB fill every buffer on the way and the gateway's
    // writes stop making progress.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let reply = tokio::time::timeout(
        SECOND + 3 * MARGIN,
        try_send(gateway.addr, "GET", "/hello", &[], b""),
    )
    .await
    .expect("the only slot is freed after send_timeout")
    .expect("the legitimate client is served");
    assert_eq!(reply.status, 200);
    eprintln!("served after {:?}", started.elapsed());
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_closes_silent_and_idle_connections() {
    let upstream = Upstream::start().await;
    let config = crate::support::process::config(upstream.addr, "ok").replacen(
        "shutdown_timeout = 10\n",
        "shutdown_timeout = 10\nheader_read_timeout = 1\nidle_timeout = 1\n",
        1,
    );
    let gateway = crate::support::process::Gateway::start(&config).await;
    let mut silent = TcpStream::connect(gateway.admin)
        .await
        .expect("connect admin");
    let mut kept = TcpStream::connect(gateway.admin)
        .await
        .expect("connect admin");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: admin\r\n\r\n")
        .await
        .expect("send");
    assert!(
        closed_within(&mut silent, SECOND + MARGIN).await.is_some(),
        "a silent admin connection is closed after header_read_timeout"
    );
    assert!(
        closed_within(&mut kept, SECOND + MARGIN).await.is_some(),
        "an idle admin keep-alive connection is closed after idle_timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_idle_http1_and_http2_connections_and_exits_0() {
    let upstream = Upstream::start().await;
    // shutdown_timeout is 10 s; idle clients must not make the drain wait for it.
    let mut gateway = crate::support::process::Gateway::start(&crate::support::process::config(
        upstream.addr,
        "ok",
    ))
    .await;
    let mut h1 = TcpStream::connect(gateway.addr).await.expect("connect");
    assert!(h1_exchange(&mut h1, "/status")
        .await
        .starts_with("HTTP/1.1 200"));
    // An HTTP/2 client that got its answer and then sits there: it never
    // closes by itself and never acks the PING of hyper's graceful shutdown.
    let mut h2 = h2_frames::connect(gateway.addr).await;
    h2.write_all(&[frame(SETTINGS, ACK, 0, &[]), get_headers(1, "/status")].concat())
        .await
        .expect("send request");
    loop {
        let (kind, flags, _, _) = read_frame(&mut h2).await.expect("response frames");
        if kind == DATA && flags & END_STREAM != 0 {
            break;
        }
    }

    let (status, took) = gateway.terminate().await;
    assert!(
        status.success(),
        "nothing was cut off, so exit 0; got {status}"
    );
    assert!(
        took < Duration::from_secs(3),
        "shutdown waited {took:?} for idle clients"
    );
    let mut saw_goaway = false;
    while let Some((kind, _, _, _)) = read_frame(&mut h2).await {
        saw_goaway |= kind == GOAWAY;
    }
    assert!(saw_goaway, "the idle HTTP/2 client was sent GOAWAY");
    assert!(closed_within(&mut h1, SECOND).await.is_some());
    eprintln!("SIGTERM with idle h1 and h2 clients: exit 0 after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_far_beyond_max_header_bytes_get_the_gateways_431_with_cors_headers() {
    let (upstream, gateway) = start("max_header_bytes = 1024").await;
    // 40 times the limit: before, hyper cut this off with its own bare 431.
    let big = "a".repeat(40 * 1024);
    let headers = [("origin", APP), ("x-big", big.as_str())];
    let reply = try_send(gateway.addr, "GET", "/hello", &headers, b"")
        .await
        .expect("HTTP/1.1 answer");
    assert_eq!(reply.status, 431);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));

    let mut sender = http2_sender(gateway.addr).await;
    let mut request = build_request(
        "GET",
        &format!("http://{}/hello", gateway.addr),
        &headers,
        Empty::<Bytes>::new(),
    );
    *request.version_mut() = http::Version::HTTP_2;
    let response = sender.send_request(request).await.expect("h2 answer");
    let reply = collect(response).await;
    assert_eq!(reply.status, 431);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_from_one_http2_client_cannot_starve_other_clients() {
    let (upstream, gateway) =
        start("http2_max_concurrent_streams = 4\nresponse_timeout = 30").await;
    let sender = http2_sender(gateway.addr).await;
    let addr = gateway.addr;
    // One request first, so the client has the gateway's SETTINGS (with its
    // stream limit) before it floods; streams sent before that are refused.
    let mut warm_up = build_request(
        "GET",
        &format!("http://{addr}/hello"),
        &[],
        Empty::<Bytes>::new(),
    );
    *warm_up.version_mut() = http::Version::HTTP_2;
    let response = sender.clone().send_request(warm_up).await.expect("warm-up");
    assert_eq!(collect(response).await.status, 200);
    let flood: Vec<_> = (0..32)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let mut request = build_request(
                    "GET",
                    &format!("http://{addr}/slow/250"),
                    &[],
                    Empty::<Bytes>::new(),
                );
                *request.version_mut() = http::Version::HTTP_2;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(collect(response).await.status)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Other clients, on HTTP/1.1 and on their own HTTP/2 connection, are
    // served at once while the flood is queued on its connection.
    let started = Instant::now();
    let other = try_send(gateway.addr, "GET", "/hello", &[], b"")
        .await
        .expect("h1 client served");
    assert_eq!(other.status, 200);
    let other_h2 = crate::support::send_h2c(gateway.addr, "GET", "/hello", &[]).await;
    assert_eq!(other_h2.status, 200);
    assert!(
        started.elapsed() < SECOND,
        "other clients waited {:?}",
        started.elapsed()
    );
    for request in flood {
        let status = request.await.expect("task").expect("flood stream answered");
        assert_eq!(status, 200);
    }
    let peak = upstream.slow_peak.load(Ordering::SeqCst);
    assert!(
        peak <= 4,
        "one connection held {peak} upstream requests at once"
    );
    assert_eq!(upstream.slow_now.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_reset_after_acceptance_get_goaway() {
    let (upstream, gateway) = start("response_timeout = 30").await;
    let mut stream = h2_frames::connect(gateway.addr).await;
    stream
        .write_all(&frame(SETTINGS, ACK, 0, &[]))
        .await
        .expect("ack settings");
    let (mut reader, mut writer) = stream.into_split();
    let goaway = tokio::spawn(async move {
        let mut head = [0u8; 9];
        loop {
            if reader.read_exact(&mut head).await.is_err() {
                return false;
            }
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0; len];
            if reader.read_exact(&mut payload).await.is_err() {
                return false;
            }
            if head[3] == GOAWAY {
                return true;
            }
        }
    });
    let mut sent = 0;
    for n in 0..300u32 {
        let id = 2 * n + 1;
        let before = upstream.hits.load(Ordering::SeqCst);
        if writer
            .write_all(&get_headers(id, "/slow/5000"))
            .await
            .is_err()
        {
            break;
        }
        // Reset only once the request reached the upstream: accepted, working.
        let deadline = Instant::now() + SECOND;
        while upstream.hits.load(Ordering::SeqCst) == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if writer
            .write_all(&frame(RST_STREAM, 0, id, &8u32.to_be_bytes()))
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
        if goaway.is_finished() {
            break;
        }
    }
    let saw_goaway = tokio::time::timeout(SECOND + MARGIN, goaway)
        .await
        .expect("the connection ends")
        .expect("reader task");
    assert!(
        saw_goaway,
        "GOAWAY after {sent} streams reset after acceptance"
    );
    assert!(sent < 150, "{sent} accepted streams reset before GOAWAY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_reset_before_acceptance_get_goaway_from_h2s_guard() {
    let (_upstream, gateway) = start("").await;
    let mut stream = h2_frames::connect(gateway.addr).await;
    // HEADERS and RST_STREAM in one write: the reset arrives before the
    // gateway accepts the stream (the CVE-2023-44487 "rapid reset" pattern).
    let mut burst = frame(SETTINGS, ACK, 0, &[]);
    for n in 0..200u32 {
        burst.extend(get_headers(2 * n + 1, "/slow/5000"));
        burst.extend(frame(RST_STREAM, 0, 2 * n + 1, &8u32.to_be_bytes()));
    }
    stream.write_all(&burst).await.expect("send burst");
    let mut goaway = None;
    let _ = tokio::time::timeout(PATIENCE, async {
        while let Some((kind, _, _, payload)) = read_frame(&mut stream).await {
            if kind == GOAWAY {
                goaway = Some(u32::from_be_bytes(payload[4..8].try_into().expect("code")));
                return;
            }
        }
    })
    .await;
    assert_eq!(goaway, Some(0xb), "GOAWAY with ENHANCE_YOUR_CALM");
}

/// CPU seconds (user + system) the process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesized command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').expect("stat format").1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_backs_off_instead_of_spinning_when_out_of_file_descriptors() {
    let upstream = Upstream::start().await;
    let gateway = crate::support::process::Gateway::start(&crate::support::process::config(
        upstream.addr,
        "ok",
    ))
    .await;
    let pid = gateway.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list fds")
        .count();
    let limit = open + 4;
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("this test needs prlimit (util-linux) to lower the gateway's descriptor limit");
    assert!(status.success(), "prlimit failed");
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(TcpStream::connect(gateway.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_seconds(pid) - before;
    let warnings = gateway
        .logs()
        .iter()
        .filter(|line| line.contains("accept failed"))
        .count();
    assert!(
        gateway.logged("Too many open files"),
        "the test must exhaust descriptors:\n{}",
        gateway.logs().join("\n")
    );
    assert!(
        used < 0.5,
        "the accept loop used {used} s of CPU in 2 s out of descriptors"
    );
    assert_eq!(
        warnings, 1,
        "one warning per interval, not one per failed accept"
    );
    drop(held);
    let reply = crate::support::process::get(gateway.addr, "/status", &[])
        .await
        .expect("served once descriptors are free again");
    assert_eq!(reply.status, 200);
    eprintln!("out of descriptors for 2 s: {used} s CPU, {warnings} warning line(s)");
}

#[test]
fn invalid_connection_limits_are_refused_with_their_key_and_a_fix() {
    let dir = crate::support::TempDir::new("limits");
    let path = dir.write(
        "crossgate.toml",
        &config("127.0.0.1:9".parse().expect("addr"), "")
            .replace("idle_timeout = 1", "idle_timeout = 0")
            .replace(
                "send_timeout = 1",
                "send_timeout = -5\nhttp2_max_concurrent_streams = 0",
            ),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_crossgate"))
        .arg("validate")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run crossgate validate");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    for expected in [
        "server.idle_timeout: 0 is not a number of seconds",
        "use e.g. idle_timeout = 60",
        "server.send_timeout: -5 is not a number of seconds",
        "use e.g. send_timeout = 60",
        "server.http2_max_concurrent_streams: 0 is outside 1..=1000",
        "use e.g. http2_max_concurrent_streams = 128",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
