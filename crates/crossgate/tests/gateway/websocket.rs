//! WebSocket through the gateway, with a real client and upstream
//! (tokio-tungstenite) over loopback: the echo, the origin check that stops
//! cross-site hijacking before the upstream is contacted, the route keys,
//! `[auth]`, the upstream's answers, and the tunnel's timeouts, connection
//! slot and shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{try_send, TestGateway, PATIENCE};

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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
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
                    let record = |request: &Request, response: Response| {
                        seen.lock().expect("heads").push(request.headers().clone());
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
/// (`websocket = false`), `/nopolicy/` and `/private/`, all to `upstream`.
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
"#
    )
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

/// The status a refused handshake got, with its response.
fn refused(result: Result<Socket, WsError>) -> http::Response<Option<Vec<u8>>> {
    match result {
        Err(WsError::Http(response)) => *response,
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the handshake must be refused"),
    }
}

async fn echo(socket: &mut Socket, message: Message) {
    socket.send(message.clone()).await.expect("send");
    let answer = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .expect("echo in time")
        .expect("an answer")
        .expect("a message");
    assert_eq!(answer, message);
}

fn metric(gateway: &TestGateway, line_start: &str) -> Option<f64> {
    gateway
        .metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn an_allowed_origin_echoes_text_and_binary_both_ways_and_closes_cleanly() {
    let upstream = EchoUpstream::start().await;
    // Only the close, not the idle timeout, can end this tunnel in time.
    let gateway = TestGateway::start(&config(upstream.addr, "idle_timeout = 60")).await;
    let mut socket = connect(gateway.addr, "/ws/echo", &[("origin", APP)])
        .await
        .expect("an allowed origin connects");
    for round in 0..5 {
        echo(&mut socket, Message::text(format!("hello {round}"))).await;
        echo(&mut socket, Message::binary(vec![round, 0, 255, round])).await;
    }
    let large = Message::binary(vec![7u8; 200_000]);
    echo(&mut socket, large).await;
    socket.close(None).await.expect("close");
    let after_close = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_close() {
                return true;
            }
        }
        false
    })
    .await
    .expect("close answered in time");
    assert!(after_close, "the upstream's close frame reaches the client");

    let heads = upstream.heads.lock().expect("heads").clone();
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0]["origin"], APP);
    assert_eq!(heads[0]["upgrade"], "websocket");
    assert!(
        heads[0].contains_key("x-forwarded-for"),
        "forwarded like any request"
    );
    assert_eq!(
        metric(
            &gateway,
            "crossgate_websocket_upgrades_total{route=\"/ws/\"}"
        ),
        Some(1.0)
    );
    crate::support::eventually("the tunnel is no longer open", || {
        metric(&gateway, "crossgate_websocket_tunnels_open{route=\"/ws/\"}") == Some(0.0)
    })
    .await;
}

#[tokio::test]
async fn a_disallowed_origin_gets_403_before_the_upstream_is_contacted() {
    let upstream = EchoUpstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, "")).await;
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

    let reason = "reason=\"websocket_origin_not_allowed\"";
    for route in ["/ws/", "/nopolicy/", "/private/"] {
        assert_eq!(
            metric(
                &gateway,
                &format!("crossgate_actual_denied_total{{route=\"{route}\",{reason}}}")
            ),
            Some(1.0),
            "{route}"
        );
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
    let upstream = EchoUpstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, "")).await;
    for path in ["/ws/echo", "/nopolicy/echo"] {
        let mut socket = connect(gateway.addr, path, &[])
            .await
            .unwrap_or_else(|e| panic!("{path}: a non-browser client connects: {e}"));
        echo(&mut socket, Message::text("no origin")).await;
    }
    let accepted = upstream.accepted();
    let response = refused(connect(gateway.addr, "/strict/echo", &[]).await);
    assert_eq!(response.status(), 403);
    assert_eq!(upstream.accepted(), accepted, "refused before the upstream");
    let mut socket = connect(gateway.addr, "/strict/echo", &[("origin", APP)])
        .await
        .expect("an allowed origin still connects");
    echo(&mut socket, Message::text("with origin")).await;
}

#[tokio::test]
async fn websocket_false_refuses_the_handshake_with_cors_headers() {
    let upstream = EchoUpstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, "")).await;
    let response = refused(connect(gateway.addr, "/off/echo", &[("origin", APP)]).await);
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
    let body = String::from_utf8(response.body().clone().unwrap_or_default()).expect("utf-8");
    assert!(body.contains("websocket_disabled"), "{body}");
    assert_eq!(upstream.accepted(), 0);
}

#[tokio::test]
async fn a_private_route_needs_a_token_for_the_handshake() {
    let upstream = EchoUpstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, "")).await;
    let response = refused(connect(gateway.addr, "/private/echo", &[("origin", APP)]).await);
    assert_eq!(response.status(), 401);
    assert_eq!(upstream.accepted(), 0);
    let bearer = format!("Bearer {TOKEN}");
    let mut socket = connect(
        gateway.addr,
        "/private/echo",
        &[("origin", APP), ("authorization", &bearer)],
    )
    .await
    .expect("a token opens it");
    echo(&mut socket, Message::text("private")).await;
}

#[tokio::test]
async fn malformed_handshakes_and_other_versions_are_refused() {
    let upstream = EchoUpstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, "")).await;
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

/// An upstream that answers every request with `answer`, counting them.
async fn raw_upstream(answer: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
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
    let (other, _) = raw_upstream(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n",
    )
    .await;
    let gateway = TestGateway::start(&config(other, "")).await;
    let response = refused(connect(gateway.addr, "/ws/echo", &[("origin", APP)]).await);
    assert_eq!(response.status(), 502, "a 101 to another protocol");

    let (plain, hits) =
        raw_upstream(b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nno socket").await;
    let gateway = TestGateway::start(&config(plain, "")).await;
    let response = refused(connect(gateway.addr, "/ws/echo", &[("origin", APP)]).await);
    assert_eq!(response.status(), 404, "a non-101 answer is forwarded");
    assert_eq!(response.body().as_deref(), Some(&b"no socket"[..]));
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn other_upgrade_tokens_are_not_forwarded() {
    let (addr, _) = raw_upstream(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n",
    )
    .await;
    let gateway = TestGateway::start(&config(addr, "")).await;
    // The gateway strips `Upgrade: h2c`, so the upstream's 101 was not asked for.
    let reply = gateway
        .get("/ws/echo", &[("upgrade", "h2c"), ("connection", "upgrade")])
        .await;
    assert_eq!(reply.status, 502);
}

#[tokio::test]
async fn a_silent_tunnel_is_closed_after_idle_timeout_and_traffic_keeps_it_open() {
    let upstream = EchoUpstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, "")).await;
    let mut busy = connect(gateway.addr, "/ws/echo", &[("origin", APP)])
        .await
        .expect("connect");
    let mut silent = connect(gateway.addr, "/ws/echo", &[("origin", APP)])
        .await
        .expect("connect");
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
    let upstream = EchoUpstream::start().await;
    let gateway = TestGateway::start(&config(upstream.addr, "max_connections = 1")).await;
    let mut socket = connect(gateway.addr, "/ws/echo", &[("origin", APP)])
        .await
        .expect("connect");
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

#[tokio::test]
async fn shutdown_closes_an_open_tunnel_after_shutdown_timeout() {
    let upstream = EchoUpstream::start().await;
    let mut gateway = TestGateway::start(&config(
        upstream.addr,
        "shutdown_timeout = 1\nidle_timeout = 30",
    ))
    .await;
    let mut socket = connect(gateway.addr, "/ws/echo", &[("origin", APP)])
        .await
        .expect("connect");
    let started = Instant::now();
    let drain = gateway.begin_shutdown();
    echo(&mut socket, Message::text("during the drain")).await;
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

#[tokio::test]
async fn wss_through_the_tls_listener_echoes() {
    let upstream = EchoUpstream::start().await;
    let tls = format!(
        "tls = {{ cert = {:?}, key = {:?} }}",
        crate::support::fixture("localhost.pem"),
        crate::support::fixture("localhost.key")
    );
    let gateway = TestGateway::start(&config(upstream.addr, &tls)).await;
    let stream = crate::support::tls_connect(gateway.addr, b"http/1.1").await;
    let mut request = format!("wss://localhost:{}/ws/echo", gateway.addr.port())
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", APP.parse().expect("value"));
    let (mut socket, _) =
        tokio::time::timeout(PATIENCE, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("handshake in time")
            .expect("wss connects");
    socket.send(Message::text("over TLS")).await.expect("send");
    let answer = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .expect("echo in time")
        .expect("an answer")
        .expect("a message");
    assert_eq!(answer, Message::text("over TLS"));
    let evil = crate::support::tls_connect(gateway.addr, b"http/1.1").await;
    let mut refused_request = format!("wss://localhost:{}/ws/echo", gateway.addr.port())
        .into_client_request()
        .expect("request");
    refused_request
        .headers_mut()
        .insert("origin", EVIL.parse().expect("value"));
    match tokio_tungstenite::client_async(refused_request, evil).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert_eq!(upstream.accepted(), 1);
}
