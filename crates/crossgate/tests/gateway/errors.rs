//! Answers the gateway makes itself — 404, 405, 413, 431, 502, 504 and 403
//! blocked — carry the CORS headers for an allowed origin, so a browser script
//! can read the real status; and the upstream is never called for them.

use std::time::{Duration, Instant};

use crate::support::config::{single_route, Config};
use crate::support::{absent_upstream, closing_upstream, TestGateway, TestUpstream};
use bytes::Bytes;
use http_body_util::channel::Channel;
use tokio::net::TcpStream;

const APP: &str = "https://app.example.com";

async fn setup() -> (TestUpstream, TestGateway) {
    let upstream = TestUpstream::start().await;
    let absent = absent_upstream().await;
    let (closing, closing_task) = closing_upstream().await;
    // The closing upstream lives as long as the test binary; its task is detached.
    drop(closing_task);
    let up = upstream.url();
    let config = Config::server(&[
        "response_timeout = 0.5",
        "max_header_bytes = 2048",
        r#"fallback_policy = "web""#,
    ])
    .policy(
        "web",
        &[APP],
        &[
            r#"methods = ["PUT"]"#,
            r#"expose_headers = ["x-request-id"]"#,
        ],
    )
    .policy("strict", &[APP], &["block_disallowed = true"])
    .proxy(
        "/api/",
        &up,
        "web",
        &[r#"methods = ["GET", "POST"]"#, "max_body_bytes = 16"],
    )
    .proxy("/absent/", &format!("http://{absent}"), "web", &[])
    .proxy("/closing/", &format!("http://{closing}"), "web", &[])
    .proxy("/strict/", &up, "strict", &[])
    .render();
    let gateway = TestGateway::start(&config).await;
    (upstream, gateway)
}

fn assert_readable(reply: &crate::support::Reply, status: u16) {
    reply.assert_readable(status, APP);
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn no_route_is_a_readable_404() {
    let (_upstream, gateway) = setup().await;
    let reply = gateway.get("/nowhere", &[("origin", APP)]).await;
    assert_readable(&reply, 404);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let other = gateway
        .get("/nowhere", &[("origin", "https://evil.example")])
        .await;
    assert_eq!(other.status, 404);
    assert_eq!(
        other.header("access-control-allow-origin"),
        None,
        "only allowed origins may read it"
    );
}

#[tokio::test]
async fn undeclared_method_is_a_readable_405_with_allow() {
    let (upstream, gateway) = setup().await;
    let reply = gateway
        .send("DELETE", "/api/x", &[("origin", APP)], b"")
        .await;
    assert_readable(&reply, 405);
    assert_eq!(
        crate::support::list(reply.header("allow")),
        ["GET", "POST", "HEAD"]
    );
    let head = gateway.send("HEAD", "/api/x", &[], b"").await;
    assert_eq!(head.status, 200, "HEAD comes with GET");
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn declared_body_over_the_limit_is_a_readable_413() {
    let (upstream, gateway) = setup().await;
    let reply = gateway
        .send("POST", "/api/upload", &[("origin", APP)], &[b'x'; 17])
        .await;
    assert_readable(&reply, 413);
    assert_eq!(upstream.hits(), 0, "the upstream is not called");
    let fits = gateway
        .send("POST", "/api/upload", &[("origin", APP)], &[b'x'; 16])
        .await;
    assert_eq!(fits.status, 200);
}

#[tokio::test]
async fn streamed_body_over_the_limit_is_a_413() {
    let (_upstream, gateway) = setup().await;
    let mut sender = crate::support::http1_sender(gateway.addr).await;
    let (mut body, channel) = Channel::<Bytes>::new(4);
    let request = crate::support::build_request("POST", "/api/slurp", &[("origin", APP)], channel);
    let response = tokio::spawn(async move { sender.send_request(request).await });
    body.send_data(Bytes::from_static(b"0123456789"))
        .await
        .expect("chunk");
    body.send_data(Bytes::from_static(b"0123456789"))
        .await
        .expect("chunk");
    drop(body);
    let response = tokio::time::timeout(crate::support::PATIENCE, response)
        .await
        .expect("in time")
        .expect("task")
        .expect("response");
    let reply = crate::support::collect(response).await;
    assert_readable(&reply, 413);
}

#[tokio::test]
async fn oversized_headers_are_a_readable_431() {
    let (upstream, gateway) = setup().await;
    let big = "a".repeat(3000);
    let reply = gateway
        .get("/api/x", &[("origin", APP), ("x-big", &big)])
        .await;
    assert_readable(&reply, 431);
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn unreachable_upstream_is_a_readable_502() {
    let (_upstream, gateway) = setup().await;
    let reply = gateway.get("/absent/x", &[("origin", APP)]).await;
    assert_readable(&reply, 502);
}

#[tokio::test]
async fn upstream_closing_the_connection_is_a_readable_502() {
    let (_upstream, gateway) = setup().await;
    let reply = gateway.get("/closing/x", &[("origin", APP)]).await;
    assert_readable(&reply, 502);
}

#[tokio::test]
async fn slow_upstream_is_a_readable_504() {
    let (_upstream, gateway) = setup().await;
    assert_504_within(
        &gateway,
        "/api/slow/x",
        Duration::from_secs(2),
        "answered at the 0.5 s response timeout",
    )
    .await;
}

/// GETs `path` from the app and asserts that a readable 504 came in less
/// than `within`; `why` names the timeout that should have answered.
async fn assert_504_within(gateway: &TestGateway, path: &str, within: Duration, why: &str) {
    let started = Instant::now();
    let reply = gateway.get(path, &[("origin", APP)]).await;
    assert_readable(&reply, 504);
    assert!(started.elapsed() < within, "{why}");
}

#[tokio::test]
async fn blocked_origin_gets_403_and_never_reaches_the_upstream() {
    let (upstream, gateway) = setup().await;
    let reply = gateway
        .get("/strict/x", &[("origin", "https://evil.example")])
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(upstream.hits(), 0);
    let allowed = gateway.get("/strict/x", &[("origin", APP)]).await;
    assert_readable(&allowed, 200);
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn dot_segments_are_refused_before_routing() {
    let (upstream, gateway) = setup().await;
    for path in [
        "/api/../strict/x",
        "/api/%2e%2e/strict/x",
        "/api/..%2Fstrict/x",
    ] {
        let reply = gateway.get(path, &[("origin", APP)]).await;
        assert_readable(&reply, 400);
    }
    assert_eq!(upstream.hits(), 0);
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a
/// connect to it hangs until the connector gives up.
async fn saturated_listener() -> (
    std::net::SocketAddr,
    Vec<TcpStream>,
    tokio::net::TcpListener,
) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    (addr, fillers, listener)
}

#[tokio::test]
async fn upstream_connect_timeout_is_a_readable_504() {
    let (addr, _fillers, _listener) = saturated_listener().await;
    let config = single_route(
        "connect_timeout = 0.3\nresponse_timeout = 5",
        APP,
        "/",
        &format!("upstream = \"http://{addr}\""),
    );
    let gateway = TestGateway::start(&config).await;
    assert_504_within(
        &gateway,
        "/x",
        Duration::from_secs(3),
        "answered at the 0.3 s connect timeout, not the 5 s response timeout",
    )
    .await;
}
