//! Reloads under load, requests finishing on the configuration they started
//! with, graceful shutdown, and the connection limits (header read timeout,
//! max connections).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::config::{single_route, Config};
use crate::support::{listener_closed, send, Reply, TestGateway, TestUpstream, PATIENCE};
use bytes::Bytes;
use crossgate::Drain;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const APP: &str = "https://app.example.com";

fn mock_config(body: &str, server_extra: &str) -> String {
    single_route(
        server_extra,
        APP,
        "/",
        &format!("mock = {{ status = 200, body = \"{body}\" }}"),
    )
}

/// A path the test upstream holds for seconds before answering.
const SLOW: &str = "/api/slow/x";

/// A gateway with `server_extra` proxying `/api/` to a fresh upstream, and
/// a GET of [`SLOW`] in flight through it.
async fn slow_request_in_flight(
    server_extra: &str,
) -> (TestUpstream, TestGateway, JoinHandle<Result<Reply, String>>) {
    let upstream = TestUpstream::start().await;
    let config = Config::server(&[server_extra])
        .route("/api/", &[&format!("upstream = \"{}\"", upstream.url())])
        .render();
    let gateway = TestGateway::start(&config).await;
    let in_flight = upstream.request_in_flight(gateway.addr, SLOW, &[]).await;
    (upstream, gateway, in_flight)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_concurrent_load_fails_no_request() {
    let gateway = TestGateway::start(&mock_config("v1", "")).await;
    let addr = gateway.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, done) = (stop.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            // Bounded: at most 5000 requests per client; the test stops them sooner.
            for _ in 0..5000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let reply = send(addr, "GET", "/x", &[("origin", APP)], b"").await;
                done.fetch_add(1, Ordering::SeqCst);
                answers.push((
                    reply.status,
                    reply.text(),
                    reply
                        .header("access-control-allow-origin")
                        .map(str::to_owned),
                ));
            }
            answers
        }));
    }
    let deadline = Instant::now() + PATIENCE;
    for round in 0..11 {
        // Every reload happens while requests keep flowing.
        let before = done.load(Ordering::SeqCst);
        while done.load(Ordering::SeqCst) < before + 5 {
            assert!(Instant::now() < deadline, "the clients stalled");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let body = if round % 2 == 0 { "v2" } else { "v1" };
        gateway
            .reload_with(&mock_config(body, ""))
            .expect("valid reload");
    }
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for client in clients {
        for (status, body, origin) in client.await.expect("client task") {
            total += 1;
            assert_eq!(status, 200, "a request failed during a reload");
            assert!(body == "v1" || body == "v2", "unexpected body {body:?}");
            assert_eq!(origin.as_deref(), Some(APP));
        }
    }
    assert!(total >= 55, "{total} requests");
    assert_eq!(send(addr, "GET", "/x", &[], b"").await.text(), "v2");
}

#[tokio::test]
async fn invalid_reload_keeps_the_running_configuration() {
    let gateway = TestGateway::start(&mock_config("v1", "")).await;
    let invalid = Config::server(&[])
        .route("/", &[r#"policy = "missing""#])
        .render();
    let error = gateway
        .reload_with(&invalid)
        .expect_err("an invalid file must be refused");
    let message = error.to_string();
    assert!(message.contains("routes[0].policy"), "{message}");
    assert!(
        message.contains("routes[0]: the route has neither"),
        "{message}"
    );
    let reply = gateway.get("/x", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "v1");
}

#[tokio::test]
async fn in_flight_request_finishes_on_the_configuration_it_started_with() {
    let (_upstream, gateway, in_flight) = slow_request_in_flight("response_timeout = 10").await;
    // The new configuration replaces the upstream by a mock and would time out in 0.5 s.
    let mocked = Config::server(&["response_timeout = 0.5"])
        .route("/api/", &[r#"mock = { body = "new" }"#])
        .render();
    gateway.reload_with(&mocked).expect("valid reload");
    assert_eq!(gateway.get(SLOW, &[]).await.text(), "new");
    TestUpstream::answered(in_flight, SLOW).await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let (_upstream, mut gateway, in_flight) = slow_request_in_flight("shutdown_timeout = 10").await;
    let addr = gateway.addr;
    let server = gateway.begin_shutdown();
    listener_closed(addr).await;
    assert!(
        !in_flight.is_finished(),
        "the listener closed while the request was still in flight"
    );
    TestUpstream::answered(in_flight, SLOW).await;
    let drain = tokio::time::timeout(PATIENCE, server)
        .await
        .expect("drained in time")
        .expect("task");
    assert_eq!(drain, Drain::Complete);
}

#[tokio::test]
async fn shutdown_gives_up_after_its_timeout() {
    let (_upstream, mut gateway, _in_flight) =
        slow_request_in_flight("shutdown_timeout = 0.3").await;
    let started = Instant::now();
    let drain = tokio::time::timeout(PATIENCE, gateway.begin_shutdown())
        .await
        .expect("returned in time")
        .expect("task");
    assert_eq!(drain, Drain::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up at the 0.3 s timeout"
    );
}

#[tokio::test]
async fn slow_header_senders_are_disconnected() {
    let gateway = TestGateway::start(&mock_config("ok", "header_read_timeout = 0.5")).await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("partial head");
    let started = Instant::now();
    let mut buffer = Vec::new();
    // The connection must end (possibly after a 408) without the head ever completing.
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buffer)).await;
    assert!(
        read.is_ok(),
        "the connection stayed open past the header read timeout"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "closed too early: {elapsed:?}"
    );
    assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));
}

#[tokio::test]
async fn extra_connections_wait_until_one_closes() {
    let gateway = TestGateway::start(&mock_config(
        "ok",
        "max_connections = 2\nheader_read_timeout = 20",
    ))
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream = TcpStream::connect(gateway.addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        let connection = tokio::spawn(connection);
        let request =
            crate::support::build_request("GET", "/", &[], http_body_util::Empty::<Bytes>::new());
        let reply =
            crate::support::collect(sender.send_request(request).await.expect("request")).await;
        assert_eq!(reply.status, 200);
        held.push((sender, connection));
    }
    let addr = gateway.addr;
    let third = tokio::spawn(async move { send(addr, "GET", "/", &[], b"").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served beyond max_connections = 2"
    );
    let (sender, connection) = held.pop().expect("a held connection");
    drop(sender);
    connection.abort();
    let reply = tokio::time::timeout(PATIENCE, third)
        .await
        .expect("served once a slot freed")
        .expect("task");
    assert_eq!(reply.status, 200);
}
