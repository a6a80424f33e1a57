//! Proxying and CORS decoration over real sockets: preflights answered at the
//! gateway, actual requests forwarded with streaming bodies and decorated by
//! the engine, forwarded and hop-by-hop headers, request ids, pooling, HTTP/2
//! and TLS.

use crate::support::{
    list, preflight, send_h2c, tls_connect, tls_listener, try_tls_connect, TestGateway,
    TestUpstream, PATIENCE,
};
use bytes::Bytes;
use http_body_util::channel::Channel;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

const APP: &str = "https://app.example.com";

fn config(upstream: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[policies.web]
origins = ["{APP}"]
methods = ["PUT", "DELETE"]
request_headers = ["content-type", "x-custom"]
expose_headers = ["x-request-id"]
max_age = 600

[policies.defer]
origins = ["{APP}"]
upstream_headers = "defer"

[[routes]]
path = "/api/"
upstream = "{upstream}"
policy = "web"

[[routes]]
path = "/plain/"
upstream = "{upstream}"

[[routes]]
path = "/overridden/"
upstream = "{upstream}/cors"
policy = "web"

[[routes]]
path = "/deferred/"
upstream = "{upstream}/cors"
policy = "defer"

[[routes]]
path = "/"
mock = {{ status = 200, body = "root" }}
policy = "web"

[[routes]]
path = "/mock/"
mock = {{ status = 201, headers = {{ "content-type" = "application/json" }}, body = '{{"mock":true}}' }}
policy = "web"

[[routes]]
path = "/mock/deeper/"
mock = {{ status = 200, body = "deeper" }}
policy = "web"
"#
    )
}

async fn setup() -> (TestUpstream, TestGateway) {
    let upstream = TestUpstream::start().await;
    let gateway = TestGateway::start(&config(&upstream.url())).await;
    (upstream, gateway)
}

#[tokio::test]
async fn preflight_is_answered_at_the_gateway_and_never_forwarded() {
    let (upstream, gateway) = setup().await;
    let reply = preflight(gateway.addr, "/api/items", APP, "PUT", "content-type").await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        list(reply.header("access-control-allow-methods")),
        ["PUT", "DELETE"]
    );
    assert!(list(reply.header("access-control-allow-headers")).contains(&"content-type".to_owned()));
    assert_eq!(reply.header("access-control-max-age"), Some("600"));

    let denied = preflight(
        gateway.addr,
        "/api/items",
        "https://evil.example",
        "PUT",
        "",
    )
    .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("access-control-allow-origin"), None);
    let wrong_method = preflight(gateway.addr, "/api/items", APP, "PATCH", "").await;
    assert_eq!(wrong_method.status, 403);

    assert_eq!(upstream.hits(), 0, "no preflight may reach the upstream");
}

#[tokio::test]
async fn preflight_on_a_route_without_policy_goes_upstream_undecorated() {
    let (upstream, gateway) = setup().await;
    let reply = preflight(gateway.addr, "/plain/x", APP, "PUT", "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "upstream:/plain/x");
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(upstream.hits(), 1);
    assert_eq!(upstream.last().method, "OPTIONS");
}

#[tokio::test]
async fn actual_request_is_proxied_and_decorated() {
    let (upstream, gateway) = setup().await;
    let reply = gateway.get("/api/items?page=2", &[("origin", APP)]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "upstream:/api/items");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    let vary = reply.vary();
    assert!(
        vary.contains(&"accept-encoding".to_owned()) && vary.contains(&"origin".to_owned()),
        "{vary:?}"
    );
    assert_eq!(upstream.last().uri, "/api/items?page=2");

    let disallowed = gateway
        .get("/api/items", &[("origin", "https://evil.example")])
        .await;
    assert_eq!(
        disallowed.status, 200,
        "without block_disallowed the upstream answers"
    );
    assert_eq!(disallowed.header("access-control-allow-origin"), None);
    assert!(disallowed.vary().contains(&"origin".to_owned()));
}

/// A GET of `path` from `APP`, which must succeed: every
/// Access-Control-Allow-Origin it carries, and its Access-Control-Expose-Headers.
async fn allow_origins_and_expose(path: &str) -> (Vec<String>, Option<String>) {
    let (_upstream, gateway) = setup().await;
    let reply = gateway.get(path, &[("origin", APP)]).await;
    assert_eq!(reply.status, 200);
    let origins = reply
        .headers
        .get_all("access-control-allow-origin")
        .iter()
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .collect();
    let expose = reply
        .header("access-control-expose-headers")
        .map(str::to_owned);
    (origins, expose)
}

#[tokio::test]
async fn upstream_cors_headers_are_replaced_under_override() {
    let (origins, expose) = allow_origins_and_expose("/overridden/x").await;
    assert_eq!(
        origins,
        [APP],
        "exactly one Access-Control-Allow-Origin, the gateway's"
    );
    assert_eq!(expose.as_deref(), Some("x-request-id"));
}

#[tokio::test]
async fn upstream_cors_headers_are_kept_under_defer() {
    let (origins, expose) = allow_origins_and_expose("/deferred/x").await;
    assert_eq!(
        origins,
        ["https://upstream.example"],
        "the upstream's header wins"
    );
    assert_eq!(expose.as_deref(), Some("x-upstream"));
}

#[tokio::test]
async fn forwarded_headers_describe_the_client() {
    let (upstream, gateway) = setup().await;
    gateway
        .get(
            "/api/fwd",
            &[
                ("host", "api.example.com"),
                ("x-forwarded-for", "203.0.113.7"),
            ],
        )
        .await;
    let seen = upstream.last();
    // The gateway is the edge: a client's own X-Forwarded-For is replaced
    // (tests/security_proxy.rs covers `trusted_proxies`).
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "api.example.com");
    assert_eq!(
        seen.headers["host"],
        upstream.addr.to_string(),
        "Host names the upstream"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let (upstream, gateway) = setup().await;
    let reply = gateway
        .get(
            "/api/hop",
            &[
                ("connection", "x-client-hop"),
                ("x-client-hop", "1"),
                ("proxy-authorization", "Basic eDp5"),
                ("te", "trailers"),
                ("x-end-to-end", "kept"),
            ],
        )
        .await;
    let seen = upstream.last();
    for name in ["x-client-hop", "proxy-authorization", "te"] {
        assert!(
            !seen.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
    assert_eq!(seen.headers["x-end-to-end"], "kept");
    for name in ["x-upstream-hop", "keep-alive"] {
        assert!(
            !reply.headers.contains_key(name),
            "{name} reached the client"
        );
    }
}

#[tokio::test]
async fn request_id_is_generated_passed_upstream_and_returned() {
    let (upstream, gateway) = setup().await;
    let reply = gateway.get("/api/id", &[]).await;
    let id = reply
        .header("x-request-id")
        .expect("a request id")
        .to_owned();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(upstream.last().headers["x-request-id"], id.as_str());

    let reply = gateway
        .get("/api/id", &[("x-request-id", "client-chosen-42")])
        .await;
    assert_eq!(reply.header("x-request-id"), Some("client-chosen-42"));
    assert_eq!(upstream.last().headers["x-request-id"], "client-chosen-42");

    let mock = gateway.get("/mock/", &[]).await;
    assert!(
        mock.header("x-request-id").is_some(),
        "gateway-made answers carry one too"
    );
}

#[tokio::test]
async fn request_body_is_streamed_to_the_upstream() {
    let (upstream, gateway) = setup().await;
    let mut sender = crate::support::http1_sender(gateway.addr).await;
    let (mut body, channel) = Channel::<Bytes>::new(1);
    let request = crate::support::build_request("POST", "/api/echo-body", &[], channel);
    let response = tokio::spawn(async move { sender.send_request(request).await });
    body.send_data(Bytes::from_static(b"part one"))
        .await
        .expect("send first chunk");
    // The upstream must see the first chunk while the client still holds the rest.
    tokio::time::timeout(PATIENCE, upstream.chunk_arrived.notified())
        .await
        .expect("the first chunk reached the upstream before the body was complete");
    assert_eq!(upstream.chunks.lock().expect("chunks")[0], "part one");
    body.send_data(Bytes::from_static(b" and two"))
        .await
        .expect("send second chunk");
    drop(body);
    let response = response.await.expect("task").expect("response");
    let echoed = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(echoed, "part one and two");
}

#[tokio::test]
async fn response_body_is_streamed_to_the_client() {
    let (upstream, gateway) = setup().await;
    let mut sender = crate::support::http1_sender(gateway.addr).await;
    let request = crate::support::build_request(
        "GET",
        "/api/drip",
        &[],
        http_body_util::Empty::<Bytes>::new(),
    );
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("head in time")
        .expect("response");
    let mut body = response.into_body();
    // The upstream sends its second chunk only after we release it, so the
    // first can only arrive here if the gateway does not buffer.
    let first = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .expect("first chunk before the upstream finished")
        .expect("a frame")
        .expect("no error");
    assert_eq!(first.into_data().expect("data"), "first");
    upstream.release.notify_one();
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(rest, "second");
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    let (upstream, gateway) = setup().await;
    for _ in 0..10 {
        let reply = gateway.get("/api/pool", &[]).await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(upstream.hits(), 10);
    // A connection goes back to the pool just after its response ends, so a
    // request racing that may open a second one; without pooling there would be ten.
    let connections = upstream
        .connections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        connections <= 2,
        "ten sequential requests opened {connections} upstream connections"
    );
}

#[tokio::test]
async fn http2_clients_are_served() {
    let (upstream, gateway) = setup().await;
    let reply = preflight_h2(&gateway).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    let reply = send_h2c(gateway.addr, "GET", "/api/h2", &[("origin", APP)]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "upstream:/api/h2");
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        upstream.last().headers["x-forwarded-host"],
        gateway.addr.to_string()
    );
}

async fn preflight_h2(gateway: &TestGateway) -> crate::support::Reply {
    send_h2c(
        gateway.addr,
        "OPTIONS",
        "/api/h2",
        &[("origin", APP), ("access-control-request-method", "DELETE")],
    )
    .await
}

#[tokio::test]
async fn longest_prefix_wins_and_mocks_answer() {
    let (upstream, gateway) = setup().await;
    let root = gateway.get("/anything", &[]).await;
    assert_eq!(root.text(), "root");
    let mock = gateway.get("/mock/x", &[("origin", APP)]).await;
    assert_eq!(mock.status, 201);
    assert_eq!(mock.text(), r#"{"mock":true}"#);
    assert_eq!(mock.header("content-type"), Some("application/json"));
    assert_eq!(
        mock.header("access-control-allow-origin"),
        Some(APP),
        "mock answers are decorated"
    );
    let deeper = gateway.get("/mock/deeper/x", &[]).await;
    assert_eq!(deeper.text(), "deeper");
    let head = gateway.send("HEAD", "/mock/x", &[], b"").await;
    assert_eq!(head.status, 201);
    assert!(head.body.is_empty());
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn tls_listener_serves_http1_and_http2() {
    let upstream = TestUpstream::start().await;
    let config = config(&upstream.url()).replacen(
        "listen = \"127.0.0.1:0\"",
        &format!(
            "listen = \"127.0.0.1:0\"\n{}",
            tls_listener("localhost.pem", "localhost.key")
        ),
        1,
    );
    let gateway = TestGateway::start(&config).await;
    for alpn in [b"http/1.1".to_vec(), b"h2".to_vec()] {
        let tls = tls_connect(gateway.addr, &alpn).await;
        let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        assert_eq!(negotiated, Some(alpn.clone()));
        let request = crate::support::build_request(
            "GET",
            &format!("https://localhost:{}/api/tls", gateway.addr.port()),
            &[("origin", APP)],
            http_body_util::Empty::<Bytes>::new(),
        );
        let response = if alpn == b"h2" {
            let (mut sender, connection) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                TokioIo::new(tls),
            )
            .await
            .expect("h2 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("h2 request")
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .expect("h1 handshake");
            tokio::spawn(connection);
            sender.send_request(request).await.expect("h1 request")
        };
        let reply = crate::support::collect(response).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
        assert_eq!(upstream.last().headers["x-forwarded-proto"], "https");
    }
}

#[tokio::test]
async fn tls_certificates_are_read_again_on_reload() {
    let upstream = TestUpstream::start().await;
    let with_cert = |cert: &str, key: &str| {
        config(&upstream.url()).replacen(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:0\"\n{}", tls_listener(cert, key)),
            1,
        )
    };
    let gateway = TestGateway::start(&with_cert("localhost.pem", "localhost.key")).await;
    let alpn = b"http/1.1".to_vec();
    assert!(try_tls_connect(gateway.addr, &alpn, "other-ca.pem")
        .await
        .is_err());
    gateway
        .reload_with(&with_cert("other-localhost.pem", "other-localhost.key"))
        .expect("valid reload");
    assert!(try_tls_connect(gateway.addr, &alpn, "other-ca.pem")
        .await
        .is_ok());
    assert!(try_tls_connect(gateway.addr, &alpn, "ca.pem")
        .await
        .is_err());
}
