//! WebSocket in the real engines: `new WebSocket()` from a page whose origin
//! the route's policy allows connects through the gateway and echoes text
//! and binary, closing cleanly; from a page of another origin it fails
//! without ever opening, and the upstream is never contacted (browsers apply
//! no CORS to WebSocket, so only the gateway's origin check stops it).
//!
//! Then the same WebSocket over HTTPS, on a gateway listening with TLS (the
//! testkit's `localhost` certificate, which no browser trusts: the sessions
//! set `acceptInsecureCerts`): the page first `fetch()`es the gateway, so
//! the browser holds a connection to it, then opens `wss://`. Which
//! handshake the browser used is read from the gateway's own
//! `crossgate_websocket_upgrades_total{handshake}`, which counts an HTTP/1.1
//! `Upgrade` and an HTTP/2 extended CONNECT (RFC 8441) apart, so the
//! expectation per engine ([`expected_handshake`]) cannot pass by accident.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crossgate_cors::browser::Engine;
use crossgate_testkit::TestGateway;

use super::engines::EngineBrowser;
use super::scenarios::Ports;

/// Defines `exchange(url, text, finish)`: opens a socket to `url`, sends
/// `text` and a binary message, closes after both echoes, and calls `finish`
/// with whether it opened, what came back and how it closed (`code` and
/// `clean` are null if it had not closed after 10 s). Both scripts below
/// start with it.
macro_rules! exchange_js {
    () => {
        r#"
function exchange(url, text, finish) {
  const echoed = [];
  let opened = false;
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  const timer = setTimeout(() => finish({ opened, echoed, code: null, clean: null }), 10000);
  socket.onopen = () => {
    opened = true;
    socket.send(text);
    socket.send(new Uint8Array([0, 1, 254, 255]));
  };
  socket.onmessage = (event) => {
    echoed.push(typeof event.data === "string" ? event.data : Array.from(new Uint8Array(event.data)).join(","));
    if (echoed.length === 2) socket.close(1000, "done");
  };
  socket.onclose = (event) => {
    clearTimeout(timer);
    finish({ opened, echoed, code: event.code, clean: event.wasClean });
  };
}
"#
    };
}

/// The exchange on `url`, as `exchange` reports it.
const SOCKET_SCRIPT: &str = concat!(
    exchange_js!(),
    r#"
const [url, done] = arguments;
exchange(url, "hello through the gateway", done);
"#
);

/// Fetches `fetchUrl` with credentials (so the WebSocket, which always
/// carries them, may share the connection: Chromium keeps credentialed and
/// anonymous connections apart, and after an uncredentialed fetch opens the
/// WebSocket as HTTP/1.1 on a new one), then runs the exchange on `url`;
/// reports the fetch's status, body and protocol (the mock sends
/// `Timing-Allow-Origin`) with the socket's outcome.
const FETCH_THEN_SOCKET_SCRIPT: &str = concat!(
    exchange_js!(),
    r#"
const [fetchUrl, url, done] = arguments;
let fetched = null;
fetch(fetchUrl, { credentials: "include" })
  .then(async (response) => { fetched = [response.status, await response.text()]; })
  .catch((error) => { fetched = String(error); })
  .then(() => {
    const timing = performance.getEntriesByName(fetchUrl)[0];
    const fetchProtocol = timing ? timing.nextHopProtocol : "no timing entry";
    exchange(url, "hello over TLS", (socket) => done({ fetched, fetchProtocol, ...socket }));
  });
"#
);

/// How each engine sends `new WebSocket("wss://...")` to a host it already
/// holds an HTTP/2 connection to (all three `fetch()` it over `h2`: the
/// script checks the fetch's `nextHopProtocol`), one that advertised
/// `SETTINGS_ENABLE_CONNECT_PROTOCOL`: the `handshake` label it must show.
/// As measured here:
///
/// - Chromium 156 sends an extended CONNECT on that connection (its binary
///   names a feature for WebSocket over HTTP/3 only, none for HTTP/2), and
///   so does Firefox ESR 153 (the pref `network.http.http2.websockets`, on
///   by default): `http2`.
/// - WebKitGTK 2.50.6 opens a connection of its own for an HTTP/1.1
///   `Upgrade`: its HTTP stack, libsoup 3.6, has no RFC 8441 client (the
///   `:protocol` pseudo-header appears nowhere in it): `http1`.
fn expected_handshake(engine: Engine) -> &'static str {
    match engine {
        Engine::Chromium | Engine::Firefox => "http2",
        Engine::WebKit => "http1",
        Engine::Spec => panic!("the standard is not a browser"),
    }
}

/// Runs every WebSocket page in `browser`; the failures, each naming the engine.
pub async fn run(browser: &EngineBrowser, ports: &Ports) -> Vec<String> {
    let mut failures = Failures {
        engine: browser.engine.profile().observed_in,
        found: Vec::new(),
    };
    over_http(browser, ports, &mut failures).await;
    over_https(browser, ports, &mut failures).await;
    failures.found
}

/// The failures of one engine's WebSocket scenarios, each as
/// `<scenario> in <engine>: <what went wrong>`.
struct Failures {
    engine: &'static str,
    found: Vec<String>,
}

impl Failures {
    fn add(&mut self, scenario: &str, what: impl std::fmt::Display) {
        self.found
            .push(format!("{scenario} in {}: {what}", self.engine));
    }

    /// Fails `scenario` unless its page reported `expected`.
    fn expect_seen(&mut self, scenario: &str, seen: &Value, expected: &Value) {
        if seen != expected {
            self.add(scenario, format!("expected {expected}, observed {seen}"));
        }
    }

    /// Fails `scenario` unless the upstream accepted exactly one connection.
    fn expect_one_connection(&mut self, scenario: &str, accepted: usize) {
        if accepted != 1 {
            self.add(
                scenario,
                format!("the upstream accepted {accepted} connections, expected 1"),
            );
        }
    }
}

/// What `exchange` reports for a socket that opened, had `text` and the
/// binary message echoed, and closed cleanly.
fn clean_exchange(text: &str) -> Value {
    json!({
        "opened": true,
        "echoed": [text, "0,1,254,255"],
        "code": 1000,
        "clean": true,
    })
}

/// `ws://` from an allowed page and from another.
async fn over_http(browser: &EngineBrowser, ports: &Ports, failures: &mut Failures) {
    let allowed_page = format!("http://127.0.0.1:{}", ports.page);
    let other_page = format!("http://127.0.0.1:{}", ports.page_alt);
    let (upstream, accepted) = echo_upstream().await;
    let gateway =
        TestGateway::start(&gateway_config(upstream, &allowed_page, Listener::Plain)).await;
    let url = format!("ws://127.0.0.1:{}/ws/echo", gateway.addr.port());

    browser.show_page(&allowed_page).await;
    let seen = browser.run(SOCKET_SCRIPT, vec![json!(url)]).await;
    let allowed = "websocket_allowed_origin";
    failures.expect_seen(allowed, &seen, &clean_exchange("hello through the gateway"));
    let accepted_after_allowed = accepted.load(Ordering::SeqCst);
    failures.expect_one_connection(allowed, accepted_after_allowed);

    browser.show_page(&other_page).await;
    let seen = browser.run(SOCKET_SCRIPT, vec![json!(url)]).await;
    let disallowed = "websocket_disallowed_origin";
    if seen["opened"] != Value::Bool(false) || seen["echoed"] != json!([]) || seen["code"].is_null()
    {
        failures.add(
            disallowed,
            format!("must fail without opening, observed {seen}"),
        );
    }
    if accepted.load(Ordering::SeqCst) != accepted_after_allowed {
        failures.add(disallowed, "the upstream was contacted");
    }
    let denied = gateway.metrics.render().lines().any(|line| {
        line == "crossgate_actual_denied_total{route=\"/ws/\",reason=\"websocket_origin_not_allowed\"} 1"
    });
    if !denied {
        failures.add(
            disallowed,
            "/metrics does not count one websocket_origin_not_allowed",
        );
    }
}

/// `fetch()` then `wss://` to a TLS gateway, from an allowed page: the
/// socket must echo and close cleanly, over the handshake this engine uses.
async fn over_https(browser: &EngineBrowser, ports: &Ports, failures: &mut Failures) {
    let page = format!("http://127.0.0.1:{}", ports.page);
    let (upstream, accepted) = echo_upstream().await;
    let gateway = TestGateway::start(&gateway_config(upstream, &page, Listener::Tls)).await;
    let port = gateway.addr.port();

    browser.show_page(&page).await;
    let seen = browser
        .run(
            FETCH_THEN_SOCKET_SCRIPT,
            vec![
                json!(format!("https://127.0.0.1:{port}/hello")),
                json!(format!("wss://127.0.0.1:{port}/ws/echo")),
            ],
        )
        .await;
    let scenario = "websocket_wss_after_fetch";
    let mut expected = clean_exchange("hello over TLS");
    expected["fetched"] = json!([200, "hello over TLS"]);
    expected["fetchProtocol"] = json!("h2");
    failures.expect_seen(scenario, &seen, &expected);
    let rendered = gateway.metrics.render();
    let count = |handshake: &str| {
        let line = format!(
            "crossgate_websocket_upgrades_total{{route=\"/ws/\",handshake=\"{handshake}\"}} "
        );
        rendered
            .lines()
            .find_map(|l| l.strip_prefix(&line).map(str::to_owned))
    };
    let want = expected_handshake(browser.engine);
    let counted = [("http1", count("http1")), ("http2", count("http2"))];
    let as_expected = counted.iter().all(|(handshake, count)| {
        count.as_deref() == Some(if *handshake == want { "1" } else { "0" })
    });
    if !as_expected {
        failures.add(
            scenario,
            format!("expected one {want} handshake and no other, the gateway counted {counted:?}"),
        );
    }
    failures.expect_one_connection(scenario, accepted.load(Ordering::SeqCst));
}

/// An echo server counting the connections it accepted.
async fn echo_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
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
    (addr, accepted)
}

/// How the gateway listens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listener {
    Plain,
    /// TLS with the testkit's `localhost` certificate (HTTP/2 and HTTP/1.1 by ALPN).
    Tls,
}

/// The config of a gateway with one WebSocket route `/ws/` whose policy
/// allows `page_origin` only (with credentials), and a mock `/hello`.
fn gateway_config(upstream: SocketAddr, page_origin: &str, listener: Listener) -> String {
    let tls = match listener {
        Listener::Plain => String::new(),
        Listener::Tls => format!(
            "tls = {{ cert = {:?}, key = {:?} }}",
            crossgate_testkit::fixture("localhost.pem"),
            crossgate_testkit::fixture("localhost.key")
        ),
    };
    format!(
        r#"[server]
listen = "127.0.0.1:0"
{tls}

[policies.page]
origins = ["{page_origin}"]
credentials = true

[[routes]]
path = "/ws/"
upstream = "http://{upstream}"
policy = "page"

[[routes]]
path = "/hello"
mock = {{ status = 200, body = "hello over TLS", headers = {{ timing-allow-origin = "*" }} }}
policy = "page"
"#
    )
}
