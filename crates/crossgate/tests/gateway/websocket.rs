//! WebSocket through the gateway, with a real client and upstream
//! (tokio-tungstenite) over loopback: the echo, the origin check that stops
//! cross-site hijacking before the upstream is contacted, the route keys,
//! `[auth]`, the upstream's answers, and the tunnel's timeouts, connection
//! slot and shutdown; then the same WebSocket over HTTP/2 (RFC 8441's
//! extended CONNECT, as Chromium and Firefox send it over HTTPS), with
//! hyper's HTTP/2 client, carried to the same HTTP/1.1 upstream.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::h2_frames::{
    frame, read_frame, ACK, CANCEL, DATA, END_HEADERS, END_STREAM, HEADERS, REFUSED_STREAM,
    RST_STREAM, SETTINGS,
};
use crate::support::process::sample;
use crate::support::upstream::loopback_listener;
use crate::support::{tls_listener, try_send, TestGateway, PATIENCE};

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example.net";
const TOKEN: &str = "reader-token-0123456789";
/// Slack on top of a timeout for a busy machine.
const MARGIN: Duration = Duration::from_millis(1500);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket echo server counting the TCP connections it accepted, with
/// the handshake heads it saw.
struct EchoUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<http::HeaderMap>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EchoUpstream {
    async fn start() -> EchoUpstream {
        let (listener, addr) = loopback_listener().await;
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads: Arc<Mutex<Vec<http::HeaderMap>>> = Arc::default();
        let (count, seen) = (accepted.clone(), heads.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                tokio::spawn(async move {
                    // The error type is tungstenite's callback contract.
                    #[allow(clippy::result_large_err)]
                    let record = |request: &Request, mut response: Response| {
                        seen.lock().expect("heads").push(request.headers().clone());
                        // The first subprotocol offered is chosen.
                        let offered = request.headers().get("sec-websocket-protocol");
                        let chosen = offered
                            .and_then(|value| value.to_str().ok())
                            .and_then(|value| value.split(',').next())
                            .and_then(|first| http::HeaderValue::from_str(first.trim()).ok());
                        if let Some(chosen) = chosen {
                            response
                                .headers_mut()
                                .insert("sec-websocket-protocol", chosen);
                        }
                        Ok(response)
                    };
                    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, record).await
                    else {
                        return;
                    };
                    // tungstenite answers pings and the close itself.
                    while let Some(Ok(message)) = socket.next().await {
                        if matches!(message, Message::Text(_) | Message::Binary(_))
                            && socket.send(message).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        EchoUpstream {
            addr,
            accepted,
            heads,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `[server]` with 1 s timeouts (`idle_timeout` too unless `server_extra`
/// sets it), `[auth]`, a policy for [`APP`], and routes
/// `/ws/` (plain), `/strict/` (`websocket_require_origin`), `/off/`
/// (`websocket = false`), `/nopolicy/` and `/private/`, all to `upstream`,
/// and `/mock/`, a mock answering 204.
fn config(upstream: SocketAddr, server_extra: &str) -> String {
    let idle = if server_extra.contains("idle_timeout") {
        ""
    } else {
        "idle_timeout = 1"
    };
    format!(
        r#"[server]
listen = "127.0.0.1:0"
header_read_timeout = 1
send_timeout = 1
{idle}
{server_extra}

[auth]
[[auth.tokens]]
token = "{TOKEN}"
privileges = ["read"]

[policies.app]
origins = ["{APP}"]

[[routes]]
path = "/ws/"
upstream = "http://{upstream}"
policy = "app"

[[routes]]
path = "/strict/"
upstream = "http://{upstream}"
policy = "app"
websocket_require_origin = true

[[routes]]
path = "/off/"
upstream = "http://{upstream}"
policy = "app"
websocket = false

[[routes]]
path = "/nopolicy/"
upstream = "http://{upstream}"

[[routes]]
path = "/private/"
upstream = "http://{upstream}"
policy = "app"
access = "private"

[[routes]]
path = "/mock/"
mock = {{ status = 204 }}
policy = "app"
"#
    )
}

/// An [`EchoUpstream`] and a gateway in front of it with [`config`].
async fn echo_gateway(server_extra: &str) -> (EchoUpstream, TestGateway) {
    let upstream = EchoUpstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, server_extra)).await;
    (upstream, gateway)
}

/// Opens a WebSocket to `path` on the gateway with these extra headers.
async fn connect(
    gateway: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Socket, WsError> {
    let mut request = format!("ws://{gateway}{path}")
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_str(value).expect("value"),
        );
    }
    let (socket, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")?;
    Ok(socket)
}

/// A WebSocket to the echo on `/ws/`, from the allowed origin.
async fn open_echo(gateway: SocketAddr) -> Socket {
    connect(gateway, "/ws/echo", &[("origin", APP)])
        .await
        .expect("an allowed origin connects")
}

/// Opens a WebSocket to `path` with these headers, which must pass, and
/// echoes a message through it.
async fn passes_and_echoes(gateway: SocketAddr, path: &str, headers: &[(&str, &str)]) {
    let mut socket = connect(gateway, path, headers)
        .await
        .unwrap_or_else(|e| panic!("{path} with {headers:?} must connect: {e}"));
    echo(&mut socket, Message::text(format!("through {path}"))).await;
}

/// The status a refused handshake got, with its response.
fn refused(result: Result<Socket, WsError>) -> http::Response<Option<Vec<u8>>> {
    match result {
        Err(WsError::Http(response)) => *response,
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the handshake must be refused"),
    }
}

async fn echo<S>(socket: &mut WebSocketStream<S>, message: Message)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    socket.send(message.clone()).await.expect("send");
    let answer = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .expect("echo in time")
        .expect("an answer")
        .expect("a message");
    assert_eq!(answer, message);
}

/// Begins a shutdown with `shutdown_timeout = 1` and checks that the open
/// tunnel on `socket` still carries traffic, is closed after that second
/// (and not before), and that the drain then ends.
async fn closes_after_shutdown_timeout<S>(
    gateway: &mut TestGateway,
    socket: &mut WebSocketStream<S>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let drain = gateway.begin_shutdown();
    echo(socket, Message::text("during the drain")).await;
    let end = tokio::time::timeout(Duration::from_secs(1) + MARGIN, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => continue,
                other => return other.map(|r| r.is_ok()),
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the tunnel is closed within shutdown_timeout");
    assert!(started.elapsed() >= Duration::from_millis(900));
    tokio::time::timeout(PATIENCE, drain)
        .await
        .expect("drain ends")
        .expect("server task");
}

/// Checks `/metrics` counted `http1` and `http2` upgrades on `/ws/`, and
/// waits until none of its tunnels is open.
async fn upgrades_counted_and_tunnels_closed(gateway: &TestGateway, http1: f64, http2: f64) {
    for (handshake, count) in [("http1", http1), ("http2", http2)] {
        let labels = [("route", "/ws/"), ("handshake", handshake)];
        let upgrades = metric(gateway, "crossgate_websocket_upgrades_total", &labels);
        assert_eq!(upgrades, Some(count), "{handshake}");
    }
    crate::support::eventually("the tunnels are no longer open", || {
        metric(
            gateway,
            "crossgate_websocket_tunnels_open",
            &[("route", "/ws/")],
        ) == Some(0.0)
    })
    .await;
}

/// The gateway's sample of `name` with exactly these `labels`.
fn metric(gateway: &TestGateway, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(&gateway.metrics.render(), name, labels)
}

/// The gateway's count of actual requests to `route` it denied because the
/// WebSocket's origin is not allowed.
fn origin_denials(gateway: &TestGateway, route: &str) -> Option<f64> {
    let labels = [("route", route), ("reason", "websocket_origin_not_allowed")];
    metric(gateway, "crossgate_actual_denied_total", &labels)
}

#[tokio::test]
async fn an_allowed_origin_echoes_text_and_binary_both_ways_and_closes_cleanly() {
    // Only the close, not the idle timeout, can end this tunnel in time.
    let (upstream, gateway) = echo_gateway("idle_timeout = 60").await;
    let mut socket = open_echo(gateway.addr).await;
    for round in 0..5 {
        echo(&mut socket, Message::text(format!("hello {round}"))).await;
        echo(&mut socket, Message::binary(vec![round, 0, 255, round])).await;
    }
    let large = Message::binary(vec![7u8; 200_000]);
    echo(&mut socket, large).await;
    close_cleanly(&mut socket).await;

    let heads = upstream.heads.lock().expect("heads").clone();
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0]["origin"], APP);
    assert_eq!(heads[0]["upgrade"], "websocket");
    assert!(
        heads[0].contains_key("x-forwarded-for"),
        "forwarded like any request"
    );
    upgrades_counted_and_tunnels_closed(&gateway, 1.0, 0.0).await;
}

#[tokio::test]
async fn a_disallowed_origin_gets_403_before_the_upstream_is_contacted() {
    let (upstream, gateway) = echo_gateway("").await;
    for path in ["/ws/echo", "/nopolicy/echo", "/private/echo"] {
        let response = refused(connect(gateway.addr, path, &[("origin", EVIL)]).await);
        assert_eq!(response.status(), 403, "{path}");
    }
    // Several Origin lines are refused too, whichever is allowed.
    let mut twice = format!("ws://{}/ws/echo", gateway.addr)
        .into_client_request()
        .expect("request");
    twice
        .headers_mut()
        .append("origin", APP.parse().expect("value"));
    twice
        .headers_mut()
        .append("origin", EVIL.parse().expect("value"));
    let response = refused(
        tokio_tungstenite::connect_async(twice)
            .await
            .map(|(s, _)| s),
    );
    assert_eq!(response.status(), 403);
    assert_eq!(upstream.accepted(), 0, "the upstream was never contacted");

    for route in ["/ws/", "/nopolicy/", "/private/"] {
        assert_eq!(origin_denials(&gateway, route), Some(1.0), "{route}");
    }
    let denials = gateway.gateway.denials().entries();
    let websocket: Vec<_> = denials
        .iter()
        .filter(|entry| entry.reason == "websocket_origin_not_allowed")
        .collect();
    assert_eq!(websocket.len(), 3, "{denials:?}");
    assert!(websocket.iter().all(|entry| entry.origin == EVIL));
    assert!(websocket.iter().any(|entry| entry.route == "/nopolicy/"));
}

#[tokio::test]
async fn without_origin_a_handshake_passes_unless_the_route_requires_one() {
    let (upstream, gateway) = echo_gateway("").await;
    // A non-browser client sends none.
    for path in ["/ws/echo", "/nopolicy/echo"] {
        passes_and_echoes(gateway.addr, path, &[]).await;
    }
    let accepted = upstream.accepted();
    let response = refused(connect(gateway.addr, "/strict/echo", &[]).await);
    assert_eq!(response.status(), 403);
    assert_eq!(upstream.accepted(), accepted, "refused before the upstream");
    passes_and_echoes(gateway.addr, "/strict/echo", &[("origin", APP)]).await;
}

#[tokio::test]
async fn websocket_false_refuses_the_handshake_with_cors_headers() {
    let (upstream, gateway) = echo_gateway("").await;
    let response = refused(connect(gateway.addr, "/off/echo", &[("origin", APP)]).await);
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
    let body = String::from_utf8(response.body().clone().unwrap_or_default()).expect("utf-8");
    assert!(body.contains("websocket_disabled"), "{body}");
    assert_eq!(upstream.accepted(), 0);
}

#[tokio::test]
async fn a_private_route_needs_a_token_for_the_handshake() {
    let (upstream, gateway) = echo_gateway("").await;
    let response = refused(connect(gateway.addr, "/private/echo", &[("origin", APP)]).await);
    assert_eq!(response.status(), 401);
    assert_eq!(upstream.accepted(), 0);
    let bearer = format!("Bearer {TOKEN}");
    let with_token = [("origin", APP), ("authorization", &bearer)];
    passes_and_echoes(gateway.addr, "/private/echo", &with_token).await;
}

#[tokio::test]
async fn malformed_handshakes_and_other_versions_are_refused() {
    let (upstream, gateway) = echo_gateway("").await;
    let handshake = |version: &'static str| {
        vec![
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", version),
        ]
    };
    let old = gateway.get("/ws/echo", &handshake("8")).await;
    assert_eq!(old.status, 426);
    assert_eq!(old.header("sec-websocket-version"), Some("13"));
    let post = gateway
        .send("POST", "/ws/echo", &handshake("13"), b"")
        .await;
    assert_eq!(post.status, 400, "{}", post.text());
    assert_eq!(upstream.accepted(), 0);
}

/// A 101 to another protocol than the WebSocket asked for.
const SWITCHING_TO_H2C: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n";
/// A plain answer to a handshake, which the gateway forwards as it is.
const NOT_FOUND_NO_SOCKET: &[u8] = b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nno socket";

/// A gateway with [`config`] in front of an upstream that answers every
/// request with `answer`, and the count of the requests it got.
async fn gateway_to_raw_upstream(answer: &'static [u8]) -> (TestGateway, Arc<AtomicUsize>) {
    let (upstream, hits) = raw_upstream(answer).await;
    (TestGateway::start(&config(upstream, "")).await, hits)
}

/// An upstream that answers every request with `answer`, counting them.
async fn raw_upstream(answer: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let (listener, addr) = loopback_listener().await;
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let _ = stream.write_all(answer).await;
                let _ = stream.read(&mut byte).await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn the_upstream_must_switch_to_websocket_or_answer_plainly() {
    let (gateway, _) = gateway_to_raw_upstream(SWITCHING_TO_H2C).await;
    let response = refused(connect(gateway.addr, "/ws/echo", &[("origin", APP)]).await);
    assert_eq!(response.status(), 502, "a 101 to another protocol");

    let (gateway, hits) = gateway_to_raw_upstream(NOT_FOUND_NO_SOCKET).await;
    let response = refused(connect(gateway.addr, "/ws/echo", &[("origin", APP)]).await);
    assert_eq!(response.status(), 404, "a non-101 answer is forwarded");
    assert_eq!(response.body().as_deref(), Some(&b"no socket"[..]));
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn other_upgrade_tokens_are_not_forwarded() {
    let (gateway, _) = gateway_to_raw_upstream(SWITCHING_TO_H2C).await;
    // The gateway strips `Upgrade: h2c`, so the upstream's 101 was not asked for.
    let reply = gateway
        .get("/ws/echo", &[("upgrade", "h2c"), ("connection", "upgrade")])
        .await;
    assert_eq!(reply.status, 502);
}

#[tokio::test]
async fn a_silent_tunnel_is_closed_after_idle_timeout_and_traffic_keeps_it_open() {
    let (_upstream, gateway) = echo_gateway("").await;
    let mut busy = open_echo(gateway.addr).await;
    let mut silent = open_echo(gateway.addr).await;
    let opened = Instant::now();
    let silent_end = tokio::spawn(async move {
        let end = tokio::time::timeout(Duration::from_secs(1) + MARGIN, silent.next()).await;
        (opened.elapsed(), end)
    });
    // Traffic every 300 ms for three idle timeouts.
    for round in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        echo(&mut busy, Message::text(format!("keep {round}"))).await;
    }
    let (after, end) = silent_end.await.expect("silent task");
    let end = end.expect("the silent tunnel is closed within idle_timeout");
    assert!(
        !matches!(end, Some(Ok(Message::Text(_) | Message::Binary(_)))),
        "{end:?}"
    );
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_tunnel_holds_its_connection_slot_until_it_closes() {
    let (_upstream, gateway) = echo_gateway("max_connections = 1").await;
    let mut socket = open_echo(gateway.addr).await;
    let waiting = tokio::time::timeout(
        Duration::from_millis(500),
        try_send(gateway.addr, "GET", "/ws/plain", &[], b""),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a second connection waits while the tunnel holds the only slot"
    );
    echo(&mut socket, Message::text("still here")).await;
    socket.close(None).await.expect("close");
    drop(socket);
    let reply = tokio::time::timeout(
        PATIENCE,
        try_send(gateway.addr, "GET", "/ws/plain", &[], b""),
    )
    .await
    .expect("served once the tunnel closed");
    assert!(reply.is_ok(), "{reply:?}");
}

/// Retries a handshake until the gateway accepts it: a closed tunnel gives
/// its `max_upstream_requests` slot back when its task ends, just after the
/// close frames.
async fn connect_once_a_slot_is_free(gateway: SocketAddr) -> Socket {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match connect(gateway, "/ws/echo", &[("origin", APP)]).await {
            Ok(socket) => return socket,
            Err(WsError::Http(response)) if response.status() == 503 => {
                assert!(Instant::now() < deadline, "the slot is never given back");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("expected 503 or a socket, got {other}"),
        }
    }
}

#[tokio::test]
async fn an_open_tunnel_holds_its_upstream_request_slot() {
    let (upstream, gateway) = echo_gateway("max_upstream_requests = 1").await;
    let mut socket = open_echo(gateway.addr).await;
    echo(&mut socket, Message::text("open")).await;
    let busy = refused(connect(gateway.addr, "/ws/echo", &[("origin", APP)]).await);
    assert_eq!(busy.status(), 503, "the open tunnel holds the only slot");
    assert_eq!(
        upstream.accepted(),
        1,
        "the refused handshake never reached the upstream"
    );
    socket.close(None).await.expect("close");
    drop(socket);
    let mut next = connect_once_a_slot_is_free(gateway.addr).await;
    echo(&mut next, Message::text("after the first closed")).await;
}

#[tokio::test]
async fn an_open_http2_tunnel_holds_its_upstream_request_slot() {
    let (upstream, gateway) = echo_gateway("max_upstream_requests = 1\nidle_timeout = 30").await;
    let (mut sender, base) = h2c_sender(gateway.addr).await;
    let mut socket = h2_echo(&mut sender, &base).await;
    echo(&mut socket, Message::text("open")).await;
    // Another stream on the same connection: without the bound, one
    // connection could open a tunnel, and an upstream socket, per stream.
    let busy = h2_handshake(&mut sender, &base, "/ws/echo", &[("origin", APP)]).await;
    assert_eq!(busy.status(), 503, "the open tunnel holds the only slot");
    assert_eq!(
        upstream.accepted(),
        1,
        "the refused handshake never reached the upstream"
    );
    close_cleanly(&mut socket).await;
    drop(socket);
    let mut next = connect_once_a_slot_is_free(gateway.addr).await;
    echo(&mut next, Message::text("after the first closed")).await;
}

#[tokio::test]
async fn shutdown_closes_an_open_tunnel_after_shutdown_timeout() {
    let (_upstream, mut gateway) = echo_gateway("shutdown_timeout = 1\nidle_timeout = 30").await;
    let mut socket = open_echo(gateway.addr).await;
    closes_after_shutdown_timeout(&mut gateway, &mut socket).await;
}

/// Opens a WebSocket from `origin` to the echo on `/ws/`, over HTTP/1.1 and
/// TLS.
async fn wss_connect(
    gateway: SocketAddr,
    origin: &str,
) -> Result<WebSocketStream<TlsStream<TcpStream>>, WsError> {
    let stream = crate::support::tls_connect(gateway, b"http/1.1").await;
    let mut request = format!("wss://localhost:{}/ws/echo", gateway.port())
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", origin.parse().expect("value"));
    let (socket, _) =
        tokio::time::timeout(PATIENCE, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("handshake in time")?;
    Ok(socket)
}

#[tokio::test]
async fn wss_through_the_tls_listener_echoes() {
    let tls = tls_listener("localhost.pem", "localhost.key");
    let (upstream, gateway) = echo_gateway(&tls).await;
    let mut socket = wss_connect(gateway.addr, APP).await.expect("wss connects");
    echo(&mut socket, Message::text("over TLS")).await;
    match wss_connect(gateway.addr, EVIL).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert_eq!(upstream.accepted(), 1);
}

type H2Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// An HTTP/2 connection over `io` to the gateway at `base`, once the
/// gateway's SETTINGS have arrived (a first answer proves it): hyper's client
/// sends an extended CONNECT only to a server that advertised
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
async fn h2_sender<I>(io: I, base: &str) -> SendRequest<Empty<Bytes>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let first = http::Request::get(format!("{base}/unrouted"))
        .version(http::Version::HTTP_2)
        .body(Empty::new())
        .expect("request");
    let answer = tokio::time::timeout(PATIENCE, sender.send_request(first))
        .await
        .expect("answer in time")
        .expect("first request");
    assert_eq!(answer.status(), 404);
    sender
}

async fn h2c_sender(gateway: SocketAddr) -> (SendRequest<Empty<Bytes>>, String) {
    let base = format!("http://{gateway}");
    let stream = TcpStream::connect(gateway).await.expect("connect");
    (h2_sender(stream, &base).await, base)
}

/// A CONNECT to `base` + `path` with `:protocol` (an extended CONNECT)
/// when `protocol` is set.
async fn h2_connect(
    sender: &mut SendRequest<Empty<Bytes>>,
    uri: &str,
    protocol: Option<&'static str>,
    headers: &[(&str, &str)],
) -> Result<http::Response<Incoming>, hyper::Error> {
    let mut builder = http::Request::builder()
        .method(http::Method::CONNECT)
        .version(http::Version::HTTP_2)
        .uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(Empty::new()).expect("request");
    if let Some(protocol) = protocol {
        request
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static(protocol));
    }
    tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("answer in time")
}

/// An extended CONNECT for `protocol` to the echo on `/ws/` from the allowed
/// origin, without `sec-websocket-version`.
async fn h2_bare_extended_connect(
    sender: &mut SendRequest<Empty<Bytes>>,
    base: &str,
    protocol: &'static str,
) -> http::Response<Incoming> {
    let uri = format!("{base}/ws/echo");
    h2_connect(sender, &uri, Some(protocol), &[("origin", APP)])
        .await
        .expect("answered")
}

/// A WebSocket handshake over HTTP/2 (RFC 8441 §5) to `base` + `path`.
async fn h2_handshake(
    sender: &mut SendRequest<Empty<Bytes>>,
    base: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Response<Incoming> {
    let mut all = vec![("sec-websocket-version", "13")];
    all.extend_from_slice(headers);
    h2_connect(sender, &format!("{base}{path}"), Some("websocket"), &all)
        .await
        .expect("the gateway accepts extended CONNECT")
}

/// An HTTP/2 WebSocket to the echo on `/ws/`, from the allowed origin.
async fn h2_echo(sender: &mut SendRequest<Empty<Bytes>>, base: &str) -> H2Socket {
    h2_open(h2_handshake(sender, base, "/ws/echo", &[("origin", APP)]).await).await
}

/// The WebSocket on the stream a `200` opened.
async fn h2_open(response: http::Response<Incoming>) -> H2Socket {
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    let upgraded = tokio::time::timeout(PATIENCE, hyper::upgrade::on(response))
        .await
        .expect("stream in time")
        .expect("the stream is opened");
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await
}

async fn body_text(response: http::Response<Incoming>) -> String {
    let body = tokio::time::timeout(PATIENCE, response.into_body().collect())
        .await
        .expect("body in time")
        .expect("body");
    String::from_utf8_lossy(&body.to_bytes()).into_owned()
}

/// Closes `socket` and waits for the upstream's close frame.
async fn close_cleanly<S>(socket: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    socket.close(None).await.expect("close");
    let closed = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                return true;
            }
        }
        false
    })
    .await
    .expect("close answered in time");
    assert!(closed, "the upstream's close frame reaches the client");
}

#[tokio::test]
async fn an_http2_extended_connect_is_carried_to_an_http11_upstream() {
    let (upstream, gateway) = echo_gateway("idle_timeout = 60").await;
    let (mut sender, base) = h2c_sender(gateway.addr).await;
    let offer = [
        ("origin", APP),
        ("sec-websocket-protocol", "chat, superchat"),
    ];
    let response = h2_handshake(&mut sender, &base, "/ws/echo", &offer).await;
    assert_eq!(response.status(), 200, "RFC 8441 §5: 200, not 101");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    for hop in ["sec-websocket-accept", "upgrade", "connection"] {
        assert!(!response.headers().contains_key(hop), "{hop}");
    }
    let mut socket = h2_open(response).await;
    // A second WebSocket beside it on the same connection.
    let second = h2_handshake(&mut sender, &base, "/ws/other", &[("origin", APP)]).await;
    let mut other = h2_open(second).await;
    for round in 0..5 {
        echo(&mut socket, Message::text(format!("hello {round}"))).await;
        echo(&mut other, Message::binary(vec![round, 0, 255, round])).await;
    }
    echo(&mut socket, Message::binary(vec![7u8; 200_000])).await;
    close_cleanly(&mut socket).await;
    echo(&mut other, Message::text("still open")).await;
    close_cleanly(&mut other).await;

    let heads = upstream.heads.lock().expect("heads").clone();
    assert_eq!(heads.len(), 2);
    for head in &heads {
        assert_eq!(head["origin"], APP);
        assert_eq!(head["upgrade"], "websocket");
        assert!(
            head["connection"]
                .to_str()
                .is_ok_and(|value| value.eq_ignore_ascii_case("upgrade")),
            "{head:?}"
        );
        assert_eq!(head["sec-websocket-version"], "13");
        assert_eq!(head["sec-websocket-key"].len(), 24, "16 bytes in base64");
    }
    assert_ne!(
        heads[0]["sec-websocket-key"], heads[1]["sec-websocket-key"],
        "a fresh key per handshake"
    );
    assert_eq!(heads[0]["sec-websocket-protocol"], "chat, superchat");
    upgrades_counted_and_tunnels_closed(&gateway, 0.0, 2.0).await;
}

#[tokio::test]
async fn an_http2_handshake_gets_the_route_checks_before_the_upstream_is_contacted() {
    let (upstream, gateway) = echo_gateway("").await;
    let (mut sender, base) = h2c_sender(gateway.addr).await;
    for (path, origin, status, error) in [
        // The policy denies it, as it denies any request from there.
        ("/ws/echo", Some(EVIL), 403, ""),
        (
            "/nopolicy/echo",
            Some(APP),
            403,
            "websocket_origin_not_allowed",
        ),
        ("/strict/echo", None, 403, ""),
        ("/off/echo", Some(APP), 403, "websocket_disabled"),
        ("/private/echo", Some(APP), 401, ""),
    ] {
        let headers: Vec<_> = origin
            .map(|origin| ("origin", origin))
            .into_iter()
            .collect();
        let response = h2_handshake(&mut sender, &base, path, &headers).await;
        assert_eq!(response.status(), status, "{path}");
        assert!(body_text(response).await.contains(error), "{path}");
    }
    let no_version = h2_bare_extended_connect(&mut sender, &base, "websocket").await;
    assert_eq!(no_version.status(), 426);
    assert_eq!(upstream.accepted(), 0, "the upstream was never contacted");
    assert_eq!(origin_denials(&gateway, "/ws/"), Some(1.0));
    let denials = gateway.gateway.denials().entries();
    assert!(
        denials
            .iter()
            .any(|entry| entry.reason == "websocket_origin_not_allowed" && entry.origin == EVIL),
        "{denials:?}"
    );
    // The allowed origin, and a token on the private route, pass.
    let bearer = format!("Bearer {TOKEN}");
    let private = [("origin", APP), ("authorization", bearer.as_str())];
    for (path, headers) in [("/strict/echo", &private[..1]), ("/private/echo", &private)] {
        let mut socket = h2_open(h2_handshake(&mut sender, &base, path, headers).await).await;
        echo(&mut socket, Message::text(path)).await;
    }
}

#[tokio::test]
async fn plain_connect_over_http2_is_still_refused() {
    let (upstream, gateway) = echo_gateway("").await;
    let (mut sender, base) = h2c_sender(gateway.addr).await;
    let plain = h2_connect(&mut sender, &upstream.addr.to_string(), None, &[])
        .await
        .expect("answered");
    assert_eq!(plain.status(), 405);
    let other = h2_bare_extended_connect(&mut sender, &base, "connect-udp").await;
    assert_eq!(other.status(), 405, "only :protocol = websocket is carried");
    assert_eq!(upstream.accepted(), 0);
}

#[tokio::test]
async fn the_upstream_must_answer_the_gateways_key() {
    for (answer, status) in [
        (
            &b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
               sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"[..],
            502,
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            502,
        ),
        // A 200 would open the client's stream with nothing behind it.
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", 502),
        (NOT_FOUND_NO_SOCKET, 404),
    ] {
        let (gateway, hits) = gateway_to_raw_upstream(answer).await;
        let (mut sender, base) = h2c_sender(gateway.addr).await;
        let response = h2_handshake(&mut sender, &base, "/ws/echo", &[("origin", APP)]).await;
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["access-control-allow-origin"], APP);
        if status == 404 {
            assert_eq!(body_text(response).await, "no socket", "forwarded as it is");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn an_http2_tunnel_keeps_its_connection_while_traffic_flows_and_closes_when_idle() {
    // idle_timeout = 1: the connection has no request in flight but the tunnel.
    let (_upstream, gateway) = echo_gateway("").await;
    let (mut sender, base) = h2c_sender(gateway.addr).await;
    let mut socket = h2_echo(&mut sender, &base).await;
    for round in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        echo(&mut socket, Message::text(format!("keep {round}"))).await;
    }
    let silent = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(1) + MARGIN, socket.next())
        .await
        .expect("the silent tunnel is closed within idle_timeout");
    assert!(
        !matches!(end, Some(Ok(Message::Text(_) | Message::Binary(_)))),
        "{end:?}"
    );
    assert!(silent.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn an_http2_websocket_over_tls_echoes() {
    let tls = tls_listener("localhost.pem", "localhost.key");
    let (upstream, gateway) = echo_gateway(&tls).await;
    let base = format!("https://localhost:{}", gateway.addr.port());
    let stream = crate::support::tls_connect(gateway.addr, b"h2").await;
    let mut sender = h2_sender(stream, &base).await;
    let mut socket = h2_echo(&mut sender, &base).await;
    echo(&mut socket, Message::text("h2 over TLS")).await;
    let refused = h2_handshake(&mut sender, &base, "/ws/echo", &[("origin", EVIL)]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(upstream.accepted(), 1);
}

#[tokio::test]
async fn a_mock_route_does_not_open_an_http2_websocket() {
    let (upstream, gateway) = echo_gateway("").await;
    let (mut sender, base) = h2c_sender(gateway.addr).await;
    // A 2xx accepts an extended CONNECT (RFC 8441 §5): the mock's 204 would
    // open the client's stream with no WebSocket behind it.
    let response = h2_handshake(&mut sender, &base, "/mock/socket", &[("origin", APP)]).await;
    assert_eq!(response.status(), 403);
    assert!(body_text(response).await.contains("websocket_disabled"));
    // Over HTTP/1.1 the mock answers as it is: a 204 is no 101, so the
    // client's handshake fails.
    let plain = connect(gateway.addr, "/mock/socket", &[("origin", APP)]).await;
    assert_eq!(refused(plain).status(), 204);
    assert_eq!(upstream.accepted(), 0);
}

#[tokio::test]
async fn an_http2_tunnel_holds_its_connection_slot_until_it_closes() {
    // idle_timeout = 1: past it the tunnel is all that keeps the connection.
    let (_upstream, gateway) = echo_gateway("max_connections = 1").await;
    let (mut sender, base) = h2c_sender(gateway.addr).await;
    let mut socket = h2_echo(&mut sender, &base).await;
    // The client gives up the connection but not the tunnel on it.
    drop(sender);
    let addr = gateway.addr;
    let second = tokio::spawn(async move { try_send(addr, "GET", "/ws/plain", &[], b"").await });
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        echo(&mut socket, Message::text(format!("keep {round}"))).await;
    }
    assert!(
        !second.is_finished(),
        "a second connection waits while the tunnel's connection holds the only slot"
    );
    close_cleanly(&mut socket).await;
    drop(socket);
    let reply = tokio::time::timeout(PATIENCE, second)
        .await
        .expect("served once the tunnel closed")
        .expect("task");
    assert!(reply.is_ok(), "{reply:?}");
}

#[tokio::test]
async fn shutdown_closes_an_open_http2_tunnel_after_shutdown_timeout() {
    let (_upstream, mut gateway) = echo_gateway("shutdown_timeout = 1\nidle_timeout = 30").await;
    let (mut sender, base) = h2c_sender(gateway.addr).await;
    let mut socket = h2_echo(&mut sender, &base).await;
    closes_after_shutdown_timeout(&mut gateway, &mut socket).await;
}

// ---- raw HTTP/2 frames: a client that does not count its own streams ----

/// HEADERS (END_HEADERS, the stream left open) for a WebSocket's extended
/// CONNECT to `/ws/echo`, in HPACK literals without the dynamic table.
fn extended_connect_headers(stream: u32) -> Vec<u8> {
    let mut block = vec![0x86]; // :scheme http
    let mut literal = |name: Result<u8, &str>, value: &str| {
        match name {
            // Literal without indexing, name from the static table.
            Ok(index) => block.push(index),
            Err(name) => {
                block.push(0);
                block.push(u8::try_from(name.len()).expect("short name"));
                block.extend_from_slice(name.as_bytes());
            }
        }
        block.push(u8::try_from(value.len()).expect("short value"));
        block.extend_from_slice(value.as_bytes());
    };
    literal(Ok(2), "CONNECT");
    literal(Err(":protocol"), "websocket");
    literal(Ok(4), "/ws/echo");
    literal(Ok(1), "gateway.test");
    literal(Err("sec-websocket-version"), "13");
    literal(Err("origin"), APP);
    frame(HEADERS, END_HEADERS, stream, &block)
}

/// The next frame that is not SETTINGS, as (type, flags, stream, payload);
/// the gateway's SETTINGS are acknowledged on the way.
async fn next_frame(stream: &mut TcpStream) -> (u8, u8, u32, Vec<u8>) {
    loop {
        let next = tokio::time::timeout(PATIENCE, read_frame(stream))
            .await
            .expect("a frame in time")
            .expect("a frame");
        if next.0 == SETTINGS {
            if next.1 & ACK == 0 {
                let ack = frame(SETTINGS, ACK, 0, &[]);
                stream.write_all(&ack).await.expect("settings ack");
            }
            continue;
        }
        return next;
    }
}

#[tokio::test]
async fn http2_tunnels_count_against_http2_max_concurrent_streams() {
    let (upstream, gateway) =
        echo_gateway("http2_max_concurrent_streams = 2\nidle_timeout = 30").await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    hello.extend(extended_connect_headers(1));
    hello.extend(extended_connect_headers(3));
    stream.write_all(&hello).await.expect("send");
    let mut opened = Vec::new();
    while opened.len() < 2 {
        let (kind, _, id, _) = next_frame(&mut stream).await;
        assert_ne!(kind, RST_STREAM, "stream {id} reset");
        if kind == HEADERS {
            opened.push(id);
        }
    }
    opened.sort_unstable();
    assert_eq!(opened, [1, 3], "both tunnels open");
    // A third, while both are open, is refused by the stream limit.
    stream
        .write_all(&extended_connect_headers(5))
        .await
        .expect("send");
    let (kind, _, id, payload) = next_frame(&mut stream).await;
    assert_eq!((kind, id), (RST_STREAM, 5));
    assert_eq!(payload, REFUSED_STREAM.to_be_bytes());
    assert_eq!(upstream.accepted(), 2);
    // Once a tunnel ends its stream no longer counts.
    let mut cancel_and_retry = frame(RST_STREAM, 0, 1, &CANCEL.to_be_bytes());
    cancel_and_retry.extend(extended_connect_headers(7));
    stream.write_all(&cancel_and_retry).await.expect("send");
    loop {
        let (kind, _, id, _) = next_frame(&mut stream).await;
        assert!(id != 7 || kind != RST_STREAM, "stream 7 refused");
        if (kind, id) == (HEADERS, 7) {
            break;
        }
    }
    assert_eq!(upstream.accepted(), 3);
}

#[tokio::test]
async fn an_http2_tunnel_the_upstream_closed_ends_its_stream_without_a_reset() {
    let (_upstream, gateway) = echo_gateway("idle_timeout = 30").await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    hello.extend(extended_connect_headers(1));
    stream.write_all(&hello).await.expect("send");
    loop {
        let (kind, _, id, _) = next_frame(&mut stream).await;
        assert_ne!(kind, RST_STREAM, "stream {id} reset");
        if (kind, id) == (HEADERS, 1) {
            break;
        }
    }
    // A masked close frame, code 1000; the upstream answers it and closes.
    let close = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8];
    let close_frame = frame(DATA, 0, 1, &close);
    stream.write_all(&close_frame).await.expect("send");
    let mut carried = Vec::new();
    loop {
        let (kind, flags, id, payload) = next_frame(&mut stream).await;
        assert_ne!((kind, id), (RST_STREAM, 1), "reset before END_STREAM");
        if (kind, id) == (DATA, 1) {
            carried.extend(payload);
            if flags & END_STREAM != 0 {
                break;
            }
        }
    }
    assert_eq!(
        carried,
        [0x88, 0x02, 0x03, 0xe8],
        "the upstream's close, then END_STREAM"
    );
    // The client has not closed its half: the gateway must leave it open
    // for the client to end (RFC 8441 §4: a clean close is END_STREAM both
    // ways), not reset it.
    let late = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            let (kind, _, id, payload) = next_frame(&mut stream).await;
            if (kind, id) == (RST_STREAM, 1) {
                return payload;
            }
        }
    })
    .await;
    assert!(late.is_err(), "stream reset: {late:?}");
    let end = frame(DATA, END_STREAM, 1, &[]);
    stream.write_all(&end).await.expect("send");
}
