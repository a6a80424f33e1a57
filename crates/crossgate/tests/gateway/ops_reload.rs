//! Hot reload of a running gateway: on SIGHUP, on a change of the config
//! file, refusing invalid files, and under concurrent load.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::process::{config, get, Gateway, ALLOWED_ORIGIN};
use crate::support::{Client, TestUpstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_the_gateway_keeps_serving() {
    let (_upstream, mut gateway) = Gateway::start_with_upstream("v1").await;

    // The file is unchanged, so only the signal can cause this reload.
    gateway.signal("HUP");
    gateway.wait_reloads("ok", 1.0).await;
    assert!(gateway.is_running(), "SIGHUP must not stop the gateway");
    assert_eq!(gateway.reloads("failed").await, 0.0);
    let reply = get(gateway.addr, "/status", &[])
        .await
        .expect("GET /status after SIGHUP");
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "v1"));

    gateway.signal("HUP");
    gateway.wait_reloads("ok", 2.0).await;
    assert!(gateway.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_file_reloads_it_without_a_signal() {
    let (upstream, gateway) = Gateway::start_with_upstream("v1").await;
    assert_eq!(gateway.status_body().await, "v1");

    gateway.write_config(&config(upstream.addr, "v2"));
    let polls = gateway.wait_for_status("v2").await;
    gateway.wait_reloads("ok", 1.0).await;
    // One edit, one reload: the watcher does not keep firing on a settled file.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(gateway.reloads("ok").await, 1.0);
    assert_eq!(gateway.reloads("failed").await, 0.0);
    // The route's counters carry on across the reload instead of restarting.
    let served = gateway
        .metric(
            "crossgate_requests_total",
            &[("route", "/status"), ("code", "200")],
        )
        .await;
    assert_eq!(
        served,
        (1 + polls) as f64,
        "requests before and after the reload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_keeps_the_running_config_and_counts_a_failure() {
    let (upstream, mut gateway) = Gateway::start_with_upstream("v1").await;

    // Would answer "v2" if it were applied, but a route names a missing policy.
    let invalid =
        config(upstream.addr, "v2").replace("policy = \"web\"\n", "policy = \"missing\"\n");
    gateway.write_config(&invalid);
    gateway.wait_reloads("failed", 1.0).await;
    let reply = get(gateway.addr, "/status", &[("origin", ALLOWED_ORIGIN)])
        .await
        .expect("GET /status");
    assert_eq!(
        (reply.status.as_u16(), reply.text().as_str()),
        (200, "v1"),
        "old config still in force"
    );
    assert_eq!(reply.headers["access-control-allow-origin"], ALLOWED_ORIGIN);
    gateway.wait_logged("configuration reload failed").await;
    assert!(gateway.logged("missing"), "the log names the problem");

    // A SIGHUP re-reads the still-invalid file: another failure, still serving.
    gateway.signal("HUP");
    gateway.wait_reloads("failed", 2.0).await;
    assert!(gateway.is_running());
    assert_eq!(gateway.status_body().await, "v1");
    assert_eq!(gateway.reloads("ok").await, 0.0);

    // A syntax error is refused the same way.
    gateway.write_config("[server\nlisten = ");
    gateway.wait_reloads("failed", 3.0).await;
    assert_eq!(gateway.status_body().await, "v1");

    // Fixing the file puts the new config in force.
    gateway.write_config(&config(upstream.addr, "v3"));
    gateway.wait_for_status("v3").await;
    assert_eq!(gateway.reloads("ok").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_finishes_on_the_config_it_started_with() {
    let (upstream, gateway) = Gateway::start_with_upstream("v1").await;

    let slow = gateway
        .allowed_request_in_flight(&upstream, "/api/slow/1500")
        .await;

    // The new config sends /api/ to a port nothing listens on.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    gateway.write_config(&config(closed_port, "v2"));
    gateway.wait_for_status("v2").await;
    let after = get(gateway.addr, "/api/items", &[])
        .await
        .expect("GET after reload");
    assert_eq!(after.status, 502, "new requests use the new upstream");

    let slow = TestUpstream::answered(slow, "/api/slow/1500").await;
    assert_eq!(slow.headers["access-control-allow-origin"], ALLOWED_ORIGIN);
}

/// What one load client saw.
#[derive(Default)]
struct Tally {
    requests: usize,
    failures: Vec<String>,
}

/// Sends GET /status, a preflight and a proxied GET in turn until `stop`
/// (bounded by `MAX_REQUESTS`), checking each answer. `keep_alive` reuses
/// one connection; otherwise every request opens its own.
async fn load_client(
    addr: std::net::SocketAddr,
    keep_alive: bool,
    stop: Arc<AtomicBool>,
    versions: Arc<Mutex<BTreeSet<String>>>,
) -> Tally {
    const MAX_REQUESTS: usize = 20_000;
    let mut tally = Tally::default();
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::SeqCst) && tally.requests < MAX_REQUESTS {
        let (method, path, headers): (&str, &str, &[(&str, &str)]) = match tally.requests % 3 {
            0 => ("GET", "/status", &[("origin", ALLOWED_ORIGIN)]),
            1 => (
                "OPTIONS",
                "/api/items",
                &[
                    ("origin", ALLOWED_ORIGIN),
                    ("access-control-request-method", "PUT"),
                ],
            ),
            _ => ("GET", "/api/items", &[("origin", ALLOWED_ORIGIN)]),
        };
        tally.requests += 1;
        let reply = match (&mut client, keep_alive) {
            (Some(client), true) => client.send(method, path, headers, b"").await,
            _ => match Client::connect(addr).await {
                Ok(mut fresh) => {
                    let reply = fresh.send(method, path, headers, b"").await;
                    if keep_alive {
                        client = Some(fresh);
                    }
                    reply
                }
                Err(error) => Err(error),
            },
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                tally.failures.push(format!("{method} {path}: {error}"));
                client = None;
                continue;
            }
        };
        let expected_status = if method == "OPTIONS" { 204 } else { 200 };
        let cors = reply
            .headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok());
        if reply.status != expected_status || cors != Some(ALLOWED_ORIGIN) {
            tally.failures.push(format!(
                "{method} {path}: status {} (want {expected_status}), ACAO {cors:?}, body {:?}",
                reply.status,
                reply.text()
            ));
        } else if path == "/status" {
            versions.lock().expect("versions lock").insert(reply.text());
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_20_times_under_concurrent_load_fails_no_request() {
    const RELOADS: usize = 20;
    let (upstream, gateway) = Gateway::start_with_upstream("v0").await;
    let stop = Arc::new(AtomicBool::new(false));
    let versions = Arc::new(Mutex::new(BTreeSet::new()));
    let clients: Vec<_> = (0..4)
        .map(|index| {
            tokio::spawn(load_client(
                gateway.addr,
                index % 2 == 0,
                stop.clone(),
                versions.clone(),
            ))
        })
        .collect();

    for reload in 1..=RELOADS {
        gateway.write_config(&config(upstream.addr, &format!("v{reload}")));
        // Half the reloads also get a SIGHUP; file change and signal coalesce into one.
        if reload % 2 == 0 {
            gateway.signal("HUP");
        }
        gateway.wait_reloads("ok", reload as f64).await;
    }
    // Let traffic run on the final config too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);

    let mut requests = 0;
    let mut failures = Vec::new();
    for client in clients {
        let tally = client.await.expect("load client task");
        requests += tally.requests;
        failures.extend(tally.failures);
    }
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {failures:#?}",
        failures.len()
    );
    assert!(
        requests >= 4 * RELOADS,
        "only {requests} requests were sent during the reloads"
    );
    let seen = versions.lock().expect("versions lock").clone();
    assert!(
        seen.len() >= 3,
        "clients saw too few config versions during the reloads: {seen:?}"
    );
    assert_eq!(gateway.status_body().await, format!("v{RELOADS}"));
    assert!(gateway.reloads("ok").await >= RELOADS as f64);
    assert_eq!(gateway.reloads("failed").await, 0.0);
}
