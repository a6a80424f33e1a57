//! The admin listener of a running gateway: probes, metrics that move with
//! traffic, and the denial log.

use crate::support::preflight;
use crate::support::process::{get, sample, Gateway, ALLOWED_ORIGIN, DENIED_ORIGIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_and_unknown_paths_are_404() {
    let (_upstream, gateway) = Gateway::start_with_upstream("v1").await;

    let health = gateway.admin_get("/healthz").await;
    assert_eq!(health.status, 200);
    // "ready" is set right after the listeners are bound; allow for that instant.
    let mut ready = gateway.admin_get("/readyz").await;
    for _ in 0..50 {
        if ready.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ready = gateway.admin_get("/readyz").await;
    }
    assert_eq!(ready.status, 200, "readyz once serving: {}", ready.text());

    let metrics = gateway.admin_get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let content_type = metrics.headers["content-type"]
        .to_str()
        .expect("ascii content-type");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(metrics
        .text()
        .contains("# TYPE crossgate_requests_total counter"));

    let decisions = gateway.admin_get("/decisions").await;
    assert_eq!(decisions.status, 200);
    assert_eq!(decisions.headers["content-type"], "application/json");

    // `/` serves the dashboard; its neighbours do not exist.
    for path in ["/index.html", "/metric", "/healthz/x", "/api/"] {
        let reply = gateway.admin_get(path).await;
        assert_eq!(reply.status, 404, "admin {path}");
    }
}

/// A sample a test expects in the exposition: its family, its labels and
/// its value (`None`: no such sample).
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<f64>);

/// Checks each expected sample of the exposition `text`.
#[track_caller]
fn assert_samples(text: &str, expected: &[Expected]) {
    for (name, labels, want) in expected {
        assert_eq!(sample(text, name, labels), *want, "{name} {labels:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_preflights_denials_and_latency() {
    let (_upstream, gateway) = Gateway::start_with_upstream("v1").await;
    let before = gateway.metrics().await;
    assert_eq!(
        sample(
            &before,
            "crossgate_requests_total",
            &[("route", "/status"), ("code", "200")]
        ),
        None,
        "no traffic yet"
    );

    for _ in 0..3 {
        let reply = get(gateway.addr, "/status", &[("origin", ALLOWED_ORIGIN)])
            .await
            .expect("GET /status");
        assert_eq!(reply.status, 200);
    }
    let proxied = get(gateway.addr, "/api/items", &[])
        .await
        .expect("GET /api/items");
    assert_eq!(
        (proxied.status.as_u16(), proxied.text().as_str()),
        (200, "upstream:/api/items")
    );
    let missing = get(gateway.addr, "/nowhere", &[])
        .await
        .expect("GET /nowhere");
    assert_eq!(missing.status, 404);

    // Allowed, then refused for its origin, then for its method.
    for (origin, method, status) in [
        (ALLOWED_ORIGIN, "PUT", 204),
        (DENIED_ORIGIN, "PUT", 403),
        (ALLOWED_ORIGIN, "PATCH", 403),
    ] {
        let reply = preflight(gateway.addr, "/api/items", origin, method, "").await;
        assert_eq!(reply.status, status, "preflight from {origin} for {method}");
    }
    let denied_actual = get(gateway.addr, "/status", &[("origin", DENIED_ORIGIN)])
        .await
        .expect("GET");
    assert_eq!(denied_actual.status, 200, "not blocked: only undecorated");

    let requests = "crossgate_requests_total";
    let denied = "crossgate_preflights_denied_total";
    let latency_count = "crossgate_upstream_latency_seconds_count";
    assert_samples(
        &gateway.metrics().await,
        &[
            (
                requests,
                &[("route", "/status"), ("code", "200")],
                Some(4.0),
            ),
            (requests, &[("route", "/api/"), ("code", "200")], Some(1.0)),
            (requests, &[("route", "/api/"), ("code", "204")], Some(1.0)),
            (requests, &[("route", "/api/"), ("code", "403")], Some(2.0)),
            (requests, &[("route", "none"), ("code", "404")], Some(1.0)),
            (
                "crossgate_preflights_allowed_total",
                &[("route", "/api/")],
                Some(1.0),
            ),
            (
                denied,
                &[("route", "/api/"), ("reason", "origin_not_allowed")],
                Some(1.0),
            ),
            (
                denied,
                &[("route", "/api/"), ("reason", "method_not_allowed")],
                Some(1.0),
            ),
            (
                "crossgate_actual_denied_total",
                &[("route", "/status"), ("reason", "origin_not_allowed")],
                Some(1.0),
            ),
            // One proxied request timed.
            (latency_count, &[("route", "/api/")], Some(1.0)),
            (
                "crossgate_upstream_latency_seconds_bucket",
                &[("route", "/api/"), ("le", "+Inf")],
                Some(1.0),
            ),
            // Mock routes have no upstream latency.
            (latency_count, &[("route", "/status")], None),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_list_recent_denials_newest_first() {
    let (_upstream, gateway) = Gateway::start_with_upstream("v1").await;

    let empty = gateway.admin_get("/decisions").await;
    let json: serde_json::Value = serde_json::from_slice(&empty.body).expect("JSON");
    assert_eq!(json["denials"], serde_json::json!([]));

    let denied = preflight(gateway.addr, "/api/items", DENIED_ORIGIN, "PUT", "").await;
    assert_eq!(denied.status, 403);
    let huge_origin = format!("https://{}.example.net", "x".repeat(4000));
    let denied = get(gateway.addr, "/status", &[("origin", &huge_origin)])
        .await
        .expect("GET");
    assert_eq!(denied.status, 200);
    // Allowed traffic is not logged as a denial.
    let allowed = preflight(gateway.addr, "/api/items", ALLOWED_ORIGIN, "PUT", "").await;
    assert_eq!(allowed.status, 204);

    let reply = gateway.admin_get("/decisions").await;
    let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    let denials = json["denials"].as_array().expect("denials array");
    assert_eq!(denials.len(), 2, "{json}");

    let newest = &denials[0];
    assert_eq!(newest["route"], "/status");
    assert_eq!(newest["method"], "GET");
    assert_eq!(newest["reason"], "origin_not_allowed");
    let origin = newest["origin"].as_str().expect("origin");
    assert!(
        origin.starts_with("https://xxx") && origin.len() < 1000,
        "truncated origin, {} bytes",
        origin.len()
    );

    let oldest = &denials[1];
    assert_eq!(oldest["origin"], DENIED_ORIGIN);
    assert_eq!(oldest["route"], "/api/");
    assert_eq!(oldest["method"], "OPTIONS");
    assert_eq!(oldest["reason"], "origin_not_allowed");
    assert!(oldest["message"].as_str().is_some_and(|m| !m.is_empty()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let time = oldest["time"].as_u64().expect("unix time");
    assert!(time <= now && now - time < 120, "time {time}, now {now}");
}
