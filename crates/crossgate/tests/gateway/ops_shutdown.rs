//! Graceful shutdown of a running gateway on SIGTERM/SIGINT: in-flight
//! requests finish, new connections are refused, the drain is bounded.

use std::time::{Duration, Instant};

use crate::support::listener_closed;
use crate::support::process::{config, get, Gateway, ALLOWED_ORIGIN};
use crate::support::{Client, TestUpstream, PATIENCE};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_in_flight_request_and_refuses_new_connections() {
    let (upstream, mut gateway) = Gateway::start_with_upstream("v1").await;
    let slow = gateway
        .allowed_request_in_flight(&upstream, "/api/slow/2500")
        .await;

    gateway.signal("TERM");

    // Readiness flips to 503 on the admin listener, which stays up during the drain.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ready = get(gateway.admin, "/readyz", &[])
            .await
            .expect("admin up while draining");
        if ready.status == 503 {
            assert_eq!(ready.text(), "draining\n");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never reported draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // New connections are refused while the old request is still running.
    listener_closed(gateway.addr).await;
    assert!(
        !slow.is_finished(),
        "the refusal must be observed during the drain"
    );
    assert!(
        gateway.is_running(),
        "the process waits for the in-flight request"
    );

    let slow = TestUpstream::answered(slow, "/api/slow/2500").await;
    assert_eq!(slow.headers["access-control-allow-origin"], ALLOWED_ORIGIN);

    let status = gateway
        .wait_exit(PATIENCE)
        .await
        .expect("gateway exits after draining");
    assert!(status.success(), "a complete drain exits 0, got {status}");
    assert!(
        TcpStream::connect(gateway.admin).await.is_err(),
        "admin listener closed at exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_do_not_delay_shutdown() {
    let (_upstream, mut gateway) = Gateway::start_with_upstream("v1").await;
    let mut idle = Client::connect(gateway.addr).await.expect("connect");
    let reply = idle
        .send("GET", "/status", &[], b"")
        .await
        .expect("GET /status");
    assert_eq!(reply.status, 200);

    let started = Instant::now();
    gateway.signal("TERM");
    let status = gateway.wait_exit(PATIENCE).await.expect("gateway exits");
    assert!(status.success(), "exit status {status}");
    // shutdown_timeout is 10 s: exiting well before it means the idle
    // connection was closed rather than waited for.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_shuts_down_like_sigterm() {
    let (_upstream, mut gateway) = Gateway::start_with_upstream("v1").await;
    assert_eq!(
        get(gateway.addr, "/status", &[]).await.expect("GET").status,
        200
    );
    gateway.signal("INT");
    let status = gateway
        .wait_exit(PATIENCE)
        .await
        .expect("gateway exits on SIGINT");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_gives_up_after_shutdown_timeout() {
    let upstream = TestUpstream::start().await;
    let config =
        config(upstream.addr, "v1").replace("shutdown_timeout = 10", "shutdown_timeout = 1");
    let mut gateway = Gateway::start(&config).await;
    let stuck = upstream
        .request_in_flight(gateway.addr, "/api/slow/12000", &[])
        .await;

    let (status, took) = gateway.terminate().await;
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "exit after {took:?} with shutdown_timeout = 1 s"
    );
    assert!(
        !status.success(),
        "an incomplete drain is reported by the exit status, got {status}"
    );
    let stuck = stuck.await.expect("stuck request task");
    assert!(
        stuck.is_err(),
        "the abandoned request cannot have completed: {stuck:?}"
    );
}
