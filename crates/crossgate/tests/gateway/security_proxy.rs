//! The proxy's defences against smuggling and abuse (issue 9, items 3, 4, 6
//! and 7), over real sockets: upstreams written here send malformed framing
//! byte by byte, and raw clients send what well-behaved ones cannot.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::support::config::single_route;
use crate::support::process::sample;
use crate::support::upstream::loopback_listener;
use crate::support::{eventually, raw_exchange, send, TestGateway, TestUpstream, PATIENCE};
use bytes::Bytes;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const APP: &str = "https://app.example.com";

/// One request as a [`RawUpstream`] saw it: the number of the connection it
/// came on and its head, byte for byte.
#[derive(Debug, Clone)]
struct RawRequest {
    connection: usize,
    head: String,
}

impl RawRequest {
    fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    /// The values of every `name` line, in order.
    fn lines(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_owned())
            .collect()
    }
}

/// An upstream that answers each request with the exact bytes `answer`
/// returns for its path, keeping the connection open for the next one.
struct RawUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<RawRequest>>>,
    task: JoinHandle<()>,
}

impl RawUpstream {
    async fn start(answer: Answer) -> RawUpstream {
        let (listener, addr) = loopback_listener().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            for connection in 0.. {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let recorded = recorded.clone();
                tokio::spawn(serve_raw(stream, connection, answer, recorded));
            }
        });
        RawUpstream { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<RawRequest> {
        self.seen.lock().expect("seen").clone()
    }

    fn request_for(&self, path: &str) -> RawRequest {
        self.requests()
            .into_iter()
            .rev()
            .find(|r| r.path() == path)
            .unwrap_or_else(|| panic!("the upstream saw no request for {path}"))
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The raw answer to a request for a path, given whether the request came on
/// a connection that carried one before; empty: close the connection
/// without answering.
type Answer = fn(&str, bool) -> &'static [u8];

/// Reads request heads (and `Content-Length` bodies) off one connection and
/// answers each; heads are bounded to 64 KiB, bodies to 1 KiB.
async fn serve_raw(
    mut stream: TcpStream,
    connection: usize,
    answer: Answer,
    seen: Arc<Mutex<Vec<RawRequest>>>,
) {
    let mut buffer = Vec::new();
    for answered in 0usize.. {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            if buffer.len() > 64 * 1024 {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let request = RawRequest { connection, head };
        let body_length: usize = request
            .lines("content-length")
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
            .min(1024);
        while buffer.len() < body_length {
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..body_length);
        let reply = answer(request.path(), answered > 0);
        seen.lock().expect("seen").push(request);
        if reply.is_empty() || stream.write_all(reply).await.is_err() {
            return;
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

fn hostile_answers(path: &str, reused: bool) -> &'static [u8] {
    match path {
        // An upstream ending a kept-alive connection as a request arrives.
        "/api/closed-when-reused" | "/api/processing-when-resent" if reused => b"",
        "/api/processing-when-resent" => {
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        }
        "/api/length-and-chunked" => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        }
        "/api/differing-lengths" => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok"
        }
        "/api/invalid-length" => b"HTTP/1.1 200 OK\r\ncontent-length: 2x\r\n\r\nok",
        "/api/equal-lengths" => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 02\r\n\r\nok"
        }
        "/api/processing" => {
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        }
        // Refused with its answer complete: the connection would be ready
        // for the next request at once.
        "/api/processing-empty" => {
            b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        }
        "/api/closing" => b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        "/api/early-hints" => {
            b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        }
        "/api/switching" => {
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
        }
        _ => OK,
    }
}

fn config(upstream: &str, server_extra: &str) -> String {
    single_route(
        &format!("response_timeout = 5\n{server_extra}"),
        APP,
        "/api/",
        &format!("upstream = \"{upstream}\""),
    )
}

fn assert_readable(reply: &crate::support::Reply, status: u16) {
    reply.assert_readable(status, APP);
}

/// The gateway's count of upstream errors on `/api/` for `reason`, blamed
/// on `fault`.
fn upstream_errors(gateway: &TestGateway, reason: &str, fault: &str) -> Option<f64> {
    let labels = [("route", "/api/"), ("reason", reason), ("fault", fault)];
    sample(
        &gateway.metrics.render(),
        "crossgate_upstream_errors_total",
        &labels,
    )
}

/// `path` is refused as a readable 502, counted as the upstream's bad
/// framing, and the next request reaches the upstream on a fresh connection:
/// the one the refused answer came on is never reused.
async fn refused_as_bad_gateway(path: &str) {
    let upstream = RawUpstream::start(hostile_answers).await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    // Warm the pool so that reuse would be visible.
    let first = gateway.get("/api/ok", &[("origin", APP)]).await;
    assert_eq!(first.status, 200);
    let reply = gateway.get(path, &[("origin", APP)]).await;
    assert_readable(&reply, 502);
    assert!(
        upstream_errors(&gateway, "upstream_bad_framing", "upstream") == Some(1.0),
        "{}",
        gateway.metrics.render()
    );
    let after = gateway.get("/api/after", &[("origin", APP)]).await;
    assert_eq!(after.status, 200, "{}", after.text());
    let refused_on = upstream.request_for(path).connection;
    assert_ne!(
        upstream.request_for("/api/after").connection,
        refused_on,
        "the connection of a refused answer must not be reused: {:?}",
        upstream.requests()
    );
}

#[tokio::test]
async fn upstream_length_and_chunked_is_refused_and_its_connection_dropped() {
    refused_as_bad_gateway("/api/length-and-chunked").await;
}

#[tokio::test]
async fn upstream_differing_lengths_are_refused_and_the_connection_dropped() {
    refused_as_bad_gateway("/api/differing-lengths").await;
}

#[tokio::test]
async fn upstream_invalid_length_is_refused_and_the_connection_dropped() {
    refused_as_bad_gateway("/api/invalid-length").await;
}

/// GETs `first`, then `second`, each answered 200, and gives the numbers of
/// the upstream connections they came on, with every request it saw.
async fn connections_of(first: &str, second: &str) -> (usize, usize, Vec<RawRequest>) {
    let upstream = RawUpstream::start(hostile_answers).await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    for path in [first, second] {
        let reply = send(gateway.addr, "GET", path, &[("origin", APP)], b"").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    (
        upstream.request_for(first).connection,
        upstream.request_for(second).connection,
        upstream.requests(),
    )
}

/// The upstream said it closes the connection (and here does not): a request
/// sent on it again would hang or fail.
#[tokio::test]
async fn an_upstream_connection_answered_with_connection_close_is_not_reused() {
    let (closing, after, requests) = connections_of("/api/closing", "/api/after-closing").await;
    assert_ne!(closing, after, "{requests:?}");
}

#[tokio::test]
async fn upstream_unexpected_informational_is_refused_and_the_connection_dropped() {
    refused_as_bad_gateway("/api/processing").await;
    refused_as_bad_gateway("/api/processing-empty").await;
}

/// Without reuse, `refused_as_bad_gateway` would prove nothing.
#[tokio::test]
async fn upstream_connections_are_reused_once_the_answer_has_ended() {
    let (one, two, requests) = connections_of("/api/one", "/api/two").await;
    assert_eq!(one, two, "{requests:?}");
}

/// The upstream closes a kept-alive connection, unanswered, as the next
/// request arrives on it: a GET goes once more, on a new connection (what
/// nginx does), and is answered; a POST may have had its effect, so it is
/// not sent again and gets a 502 the page can read.
#[tokio::test]
async fn a_request_the_upstream_closes_a_reused_connection_on_is_resent_only_when_idempotent() {
    let upstream = RawUpstream::start(hostile_answers).await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    let origin = [("origin", APP)];
    let path = "/api/closed-when-reused";
    let first = send(gateway.addr, "GET", "/api/one", &origin, b"").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let get = send(gateway.addr, "GET", path, &origin, b"").await;
    assert_eq!(get.status, 200, "{}", get.text());
    let gets: Vec<usize> = upstream
        .requests()
        .iter()
        .filter(|request| request.path() == path)
        .map(|request| request.connection)
        .collect();
    let one = upstream.request_for("/api/one").connection;
    assert_eq!(gets.len(), 2, "{:?}", upstream.requests());
    assert_eq!(
        gets[0], one,
        "the first GET came on the kept-alive connection"
    );
    assert_ne!(gets[1], one, "the resent GET came on a new one");

    let post = send(gateway.addr, "POST", path, &origin, b"").await;
    assert_readable(&post, 502);
    let posts = upstream
        .requests()
        .iter()
        .filter(|r| r.head.starts_with("POST "))
        .count();
    assert_eq!(posts, 1, "{:?}", upstream.requests());

    // A resent request's answer is held to the same framing rules. (The
    // POST's connection is closed: a GET first leaves a new one idle.)
    let again = send(gateway.addr, "GET", "/api/one", &origin, b"").await;
    assert_eq!(again.status, 200, "{}", again.text());
    let resent = "/api/processing-when-resent";
    assert_readable(&send(gateway.addr, "GET", resent, &origin, b"").await, 502);
    let seen = upstream
        .requests()
        .iter()
        .filter(|r| r.path() == resent)
        .count();
    assert_eq!(seen, 2, "sent, then resent: {:?}", upstream.requests());
}

#[tokio::test]
async fn upstream_unasked_switching_protocols_is_refused_and_the_connection_dropped() {
    refused_as_bad_gateway("/api/switching").await;
}

#[tokio::test]
async fn early_hints_before_the_answer_are_accepted() {
    let upstream = RawUpstream::start(hostile_answers).await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    let reply = gateway.get("/api/early-hints", &[("origin", APP)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "ok");
}

fn header_lines<'a>(response: &'a str, name: &str) -> Vec<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .filter(|line| {
            line.split_once(':')
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .collect()
}

#[tokio::test]
async fn upstream_equal_lengths_reach_the_client_as_one_line() {
    let upstream = RawUpstream::start(hostile_answers).await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    let response = raw_exchange(
        gateway.addr,
        b"GET /api/equal-lengths HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(
        header_lines(&response, "content-length"),
        ["content-length: 2"],
        "{response}"
    );
    let over_h2 = crate::support::send_h2c(gateway.addr, "GET", "/api/equal-lengths", &[]).await;
    assert_eq!(over_h2.status, 200);
    let lengths: Vec<_> = over_h2.headers.get_all("content-length").iter().collect();
    assert_eq!(lengths, ["2"], "one content-length over HTTP/2 too");
}

/// Sends a POST over HTTP/2 (h2c) with the given `content-length` lines and body.
async fn h2_post(
    addr: SocketAddr,
    lengths: &[&str],
    body: &'static [u8],
) -> Result<crate::support::Reply, hyper::Error> {
    let mut sender = crate::support::http2_sender(addr).await;
    let mut builder = http::Request::post(format!("http://{addr}/api/upload"))
        .version(http::Version::HTTP_2)
        .header("origin", APP);
    for length in lengths {
        builder = builder.header("content-length", *length);
    }
    let request = builder
        .body(Full::new(Bytes::from_static(body)))
        .expect("request");
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .expect("answer in time")?;
    Ok(crate::support::collect(response).await)
}

#[tokio::test]
async fn h2_repeated_content_length_is_forwarded_as_one_line_or_refused() {
    let upstream = RawUpstream::start(hostile_answers).await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    let reply = h2_post(gateway.addr, &["1", "01"], b"x")
        .await
        .expect("equal lengths are a valid request");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        upstream.request_for("/api/upload").lines("content-length"),
        ["1"],
        "equal lengths are forwarded as one canonical line"
    );

    // Differing lengths are a malformed HTTP/2 request (RFC 9113 §8.1.1):
    // the h2 crate resets the stream before the gateway sees it.
    let before = upstream.requests().len();
    let refused = h2_post(gateway.addr, &["1", "2"], b"x").await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        upstream.requests().len(),
        before,
        "differing lengths never reach the upstream"
    );
}

#[tokio::test]
async fn max_upstream_requests_answers_503_while_slots_are_held_then_recovers() {
    let upstream = TestUpstream::start().await;
    let gateway = TestGateway::start(&config(&upstream.url(), "max_upstream_requests = 2")).await;
    let addr = gateway.addr;
    let slow: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(async move {
                send(addr, "GET", "/api/slow/1500", &[("origin", APP)], b"").await
            })
        })
        .collect();
    let in_flight = upstream.in_flight.clone();
    eventually("both slow requests reach the upstream", || {
        in_flight.load(std::sync::atomic::Ordering::SeqCst) == 2
    })
    .await;

    let refused = send(addr, "GET", "/api/fast", &[("origin", APP)], b"").await;
    assert_readable(&refused, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        upstream.hits(),
        2,
        "a refused request never reaches the upstream"
    );
    assert_eq!(
        upstream_errors(&gateway, "upstream_busy", "gateway"),
        Some(1.0)
    );

    for request in slow {
        assert_eq!(request.await.expect("slow request").status, 200);
    }
    let recovered = send(addr, "GET", "/api/fast", &[("origin", APP)], b"").await;
    assert_eq!(recovered.status, 200, "{}", recovered.text());
}

#[tokio::test]
async fn malformed_request_bodies_are_the_clients_400_not_an_upstream_failure() {
    let upstream = TestUpstream::start().await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    let bad_chunk = raw_exchange(
        gateway.addr,
        format!("POST /api/slurp HTTP/1.1\r\nhost: gateway.test\r\norigin: {APP}\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n").as_bytes(),
    )
    .await;
    assert!(bad_chunk.starts_with("HTTP/1.1 400"), "{bad_chunk}");
    assert!(
        header_lines(&bad_chunk, "access-control-allow-origin")
            .contains(&format!("access-control-allow-origin: {APP}").as_str()),
        "{bad_chunk}"
    );

    // A body shorter than its Content-Length: the client half-closes.
    let short = async {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        stream
            .write_all(format!("POST /api/slurp HTTP/1.1\r\nhost: gateway.test\r\norigin: {APP}\r\ncontent-length: 10\r\n\r\nabc").as_bytes())
            .await
            .expect("write");
        stream.shutdown().await.expect("half-close");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    };
    let short = tokio::time::timeout(PATIENCE, short)
        .await
        .expect("in time");
    assert!(short.starts_with("HTTP/1.1 400"), "{short}");

    let metrics = gateway.metrics.render();
    assert!(
        metrics.contains("crossgate_upstream_errors_total{route=\"/api/\",reason=\"malformed_request_body\",fault=\"client\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains("upstream_unreachable"), "{metrics}");
}

const CLIENT_CLAIMS: [(&str, &str); 6] = [
    ("x-forwarded-for", "203.0.113.9"),
    ("forwarded", "for=203.0.113.9;proto=https"),
    ("x-forwarded-host", "admin.internal"),
    ("x-forwarded-proto", "https"),
    ("x-real-ip", "203.0.113.9"),
    ("true-client-ip", "203.0.113.9"),
];

fn sent_with_claims() -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![("origin", APP)];
    headers.extend(CLIENT_CLAIMS);
    headers
}

#[tokio::test]
async fn client_forwarding_headers_are_replaced_at_the_edge() {
    let upstream = TestUpstream::start().await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    let reply = gateway.get("/api/x", &sent_with_claims()).await;
    assert_eq!(reply.status, 200);
    let seen = upstream.last().headers;
    let all = |name: &str| -> Vec<&str> {
        seen.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    assert_eq!(all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(all("forwarded"), ["for=127.0.0.1;proto=http"]);
    assert_eq!(all("x-forwarded-host"), ["gateway.test"]);
    assert_eq!(all("x-forwarded-proto"), ["http"]);
    assert_eq!(all("x-real-ip"), ["127.0.0.1"]);
    assert!(all("true-client-ip").is_empty(), "{seen:?}");
}

#[tokio::test]
async fn forwarding_headers_of_a_trusted_proxy_are_kept_and_appended() {
    let upstream = TestUpstream::start().await;
    let gateway = TestGateway::start(&config(
        &upstream.url(),
        r#"trusted_proxies = ["127.0.0.0/8"]"#,
    ))
    .await;
    let reply = gateway.get("/api/x", &sent_with_claims()).await;
    assert_eq!(reply.status, 200);
    let seen = upstream.last().headers;
    let one = |name: &str| {
        seen.get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        one("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(
        one("forwarded").as_deref(),
        Some("for=203.0.113.9;proto=https, for=127.0.0.1;proto=http")
    );
    assert_eq!(one("x-forwarded-host").as_deref(), Some("admin.internal"));
    assert_eq!(one("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(one("x-real-ip").as_deref(), Some("203.0.113.9"));
    assert_eq!(one("true-client-ip").as_deref(), Some("203.0.113.9"));
}

#[tokio::test]
async fn trusted_proxies_are_validated_with_key_and_fix() {
    let dir = crate::support::TempDir::new("trusted");
    let path = dir.write(
        "crossgate.toml",
        &config("http://127.0.0.1:9", r#"trusted_proxies = ["10.0.0.1/8"]"#),
    );
    let problems = crossgate::CompiledConfig::load(
        &crossgate::ConfigSource::File(path),
        &crossgate::Metrics::new(),
    )
    .expect_err("host bits set");
    let message = problems.to_string();
    assert!(message.contains("server.trusted_proxies[0]"), "{message}");
    assert!(message.contains("10.0.0.0/8"), "{message}");
}

#[tokio::test]
async fn connection_with_an_obs_text_token_still_strips_the_names_around_it() {
    let upstream = TestUpstream::start().await;
    let gateway = TestGateway::start(&config(&upstream.url(), "")).await;
    let reply = gateway
        .get(
            "/api/x",
            &[
                ("connection", "x-secret, b\u{e4}d, x-other"),
                ("x-secret", "1"),
                ("x-other", "1"),
                ("x-kept", "1"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200);
    let seen = upstream.last().headers;
    assert!(seen.get("x-secret").is_none(), "{seen:?}");
    assert!(seen.get("x-other").is_none(), "{seen:?}");
    assert!(seen.get("x-kept").is_some(), "{seen:?}");
}
