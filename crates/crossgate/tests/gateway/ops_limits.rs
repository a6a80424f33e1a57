//! The gateway's protective limits over real sockets: header size (431),
//! per-route body size (413), header read timeout (slowloris) and
//! max_connections. Errors the gateway makes carry CORS headers for an
//! allowed origin, so a browser script can read them.

use std::time::{Duration, Instant};

use crate::support::process::{get, Gateway, ALLOWED_ORIGIN, DENIED_ORIGIN};
use crate::support::{raw_exchange, Client, Reply, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `header_read_timeout` is short only where the test needs it: it also
/// bounds how long an idle keep-alive connection keeps its slot.
fn limits_config(header_read_timeout_secs: u32) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin = "127.0.0.1:0"
max_header_bytes = 1024
header_read_timeout = {header_read_timeout_secs}
max_connections = 2

[policies.web]
origins = ["{ALLOWED_ORIGIN}"]

[[routes]]
path = "/upload"
mock = {{ status = 200, body = "stored" }}
policy = "web"
max_body_bytes = 16

[[routes]]
path = "/status"
mock = {{ status = 200, body = "ok" }}
policy = "web"
"#
    )
}

fn status_of(response: &str) -> u16 {
    response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A GET of `/status` from `origin` whose head is over `max_header_bytes`.
async fn get_with_a_big_header(gateway: &Gateway, origin: &str) -> Reply {
    let big = "b".repeat(2000);
    get(
        gateway.addr,
        "/status",
        &[("origin", origin), ("x-big", &big)],
    )
    .await
    .expect("GET with a big header")
}

/// The status of a GET of `/status` on a kept-alive connection.
async fn status_on(client: &mut Client, which: &str) -> u16 {
    client
        .send("GET", "/status", &[], b"")
        .await
        .unwrap_or_else(|e| panic!("GET on {which}: {e}"))
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431_with_cors_headers() {
    let gateway = Gateway::start(&limits_config(10)).await;
    let reply = get_with_a_big_header(&gateway, ALLOWED_ORIGIN).await;
    assert_eq!(reply.status, 431, "{}", reply.text());
    assert_eq!(reply.headers["access-control-allow-origin"], ALLOWED_ORIGIN);
    assert!(
        reply.text().contains("request_header_fields_too_large"),
        "{}",
        reply.text()
    );

    let small = get(
        gateway.addr,
        "/status",
        &[("origin", ALLOWED_ORIGIN), ("x-small", "s")],
    )
    .await
    .expect("GET with small headers");
    assert_eq!(small.status, 200);
}

/// A head over the limit is refused as such: it is a 431, not a CORS
/// denial, so it neither counts as one nor enters the denial record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_from_a_denied_origin_is_a_431_and_not_a_cors_denial() {
    let gateway = Gateway::start(&limits_config(10)).await;
    let reply = get_with_a_big_header(&gateway, DENIED_ORIGIN).await;
    assert_eq!(reply.status, 431, "{}", reply.text());
    let denied = [("route", "/status"), ("reason", "origin_not_allowed")];
    assert_eq!(
        gateway
            .metric("crossgate_actual_denied_total", &denied)
            .await,
        0.0
    );
    assert_eq!(
        gateway
            .metric(
                "crossgate_requests_total",
                &[("route", "/status"), ("code", "431")]
            )
            .await,
        1.0
    );

    // The same request within the limit is a denial, counted once.
    let small = get(gateway.addr, "/status", &[("origin", DENIED_ORIGIN)])
        .await
        .expect("GET with small headers");
    assert_eq!(small.status, 200);
    assert_eq!(
        gateway
            .metric("crossgate_actual_denied_total", &denied)
            .await,
        1.0
    );
    let decisions = get(gateway.admin, "/decisions", &[])
        .await
        .expect("GET /decisions");
    assert_eq!(
        decisions.text().matches(DENIED_ORIGIN).count(),
        1,
        "{}",
        decisions.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_with_cors_headers() {
    let gateway = Gateway::start(&limits_config(10)).await;
    let body = "x".repeat(100);
    let request = format!(
        "POST /upload HTTP/1.1\r\nhost: gateway.test\r\norigin: {ALLOWED_ORIGIN}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = raw_exchange(gateway.addr, request.as_bytes()).await;
    assert_eq!(status_of(&response), 413, "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(
        lower.contains(&format!("access-control-allow-origin: {ALLOWED_ORIGIN}")),
        "{response}"
    );

    let request = format!(
        "POST /upload HTTP/1.1\r\nhost: gateway.test\r\norigin: {ALLOWED_ORIGIN}\r\ncontent-length: 5\r\nconnection: close\r\n\r\nsmall"
    );
    let response = raw_exchange(gateway.addr, request.as_bytes()).await;
    assert_eq!(status_of(&response), 200, "{response}");
    assert!(response.ends_with("stored"), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let gateway = Gateway::start(&limits_config(1)).await;
    let mut slow = TcpStream::connect(gateway.addr).await.expect("connect");
    let started = Instant::now();
    slow.write_all(b"GET /status HTTP/1.1\r\nhost: gateway.test\r\nx-drip: ")
        .await
        .expect("send partial head");

    // Meanwhile a well-behaved client is served.
    assert_eq!(
        get(gateway.addr, "/status", &[]).await.expect("GET").status,
        200
    );

    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest)).await;
    let took = started.elapsed();
    assert!(
        closed.is_ok(),
        "the half-sent request held its connection for {took:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before header_read_timeout = 1 s"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains(" 200 "),
        "a request whose head never completed must not be served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_wait_for_a_free_slot() {
    let gateway = Gateway::start(&limits_config(10)).await;
    let mut first = Client::connect(gateway.addr).await.expect("connect 1");
    let mut second = Client::connect(gateway.addr).await.expect("connect 2");
    assert_eq!(status_on(&mut first, "1").await, 200);
    assert_eq!(status_on(&mut second, "2").await, 200);

    // The third connection is not served while both slots are taken.
    let addr = gateway.addr;
    let third = tokio::spawn(async move {
        raw_exchange(
            addr,
            b"GET /status HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\r\n",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served with max_connections = 2"
    );
    // Keep-alive connections are still served meanwhile.
    assert_eq!(status_on(&mut first, "1").await, 200);

    drop(second);
    let response = tokio::time::timeout(PATIENCE, third)
        .await
        .expect("the third connection is served once a slot frees")
        .expect("third connection task");
    assert_eq!(status_of(&response), 200, "{response}");
}
