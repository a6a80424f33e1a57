//! WebSocket in the real engines: `new WebSocket()` from a page whose origin
//! the route's policy allows connects through the gateway and echoes text
//! and binary, closing cleanly; from a page of another origin it fails
//! without ever opening, and the upstream is never contacted (browsers apply
//! no CORS to WebSocket, so only the gateway's origin check stops it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossgate::{ConfigSource, DenialLog, Gateway, Metrics, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use super::engines::EngineBrowser;
use super::scenarios::Ports;

/// Opens a socket, sends a text and a binary message, closes after both
/// echoes; reports whether it opened, what came back and how it closed.
const SOCKET_SCRIPT: &str = r#"
const [url, done] = arguments;
const echoed = [];
let opened = false;
const socket = new WebSocket(url);
socket.binaryType = "arraybuffer";
const timer = setTimeout(() => done({ opened, echoed, code: null, clean: null }), 10000);
socket.onopen = () => {
  opened = true;
  socket.send("hello through the gateway");
  socket.send(new Uint8Array([0, 1, 254, 255]));
};
socket.onmessage = (event) => {
  echoed.push(typeof event.data === "string" ? event.data : Array.from(new Uint8Array(event.data)).join(","));
  if (echoed.length === 2) socket.close(1000, "done");
};
socket.onclose = (event) => {
  clearTimeout(timer);
  done({ opened, echoed, code: event.code, clean: event.wasClean });
};
"#;

/// Runs both pages in `browser`; the failures, each naming the engine.
pub async fn run(browser: &EngineBrowser, ports: &Ports) -> Vec<String> {
    let name = browser.engine.profile().observed_in;
    let allowed_page = format!("http://127.0.0.1:{}", ports.page);
    let other_page = format!("http://127.0.0.1:{}", ports.page_alt);
    let (upstream, accepted) = echo_upstream().await;
    let (gateway, metrics) = start_gateway(upstream, &allowed_page).await;
    let url = format!("ws://127.0.0.1:{}/ws/echo", gateway.port());
    let mut failures = Vec::new();

    browser.show_page(&allowed_page).await;
    let seen = browser.run(SOCKET_SCRIPT, vec![json!(url)]).await;
    let expected = json!({
        "opened": true,
        "echoed": ["hello through the gateway", "0,1,254,255"],
        "code": 1000,
        "clean": true,
    });
    if seen != expected {
        failures.push(format!(
            "websocket_allowed_origin in {name}: expected {expected}, observed {seen}"
        ));
    }
    let accepted_after_allowed = accepted.load(Ordering::SeqCst);
    if accepted_after_allowed != 1 {
        failures.push(format!(
            "websocket_allowed_origin in {name}: the upstream accepted {accepted_after_allowed} connections, expected 1"
        ));
    }

    browser.show_page(&other_page).await;
    let seen = browser.run(SOCKET_SCRIPT, vec![json!(url)]).await;
    if seen["opened"] != Value::Bool(false) || seen["echoed"] != json!([]) || seen["code"].is_null()
    {
        failures.push(format!(
            "websocket_disallowed_origin in {name}: must fail without opening, observed {seen}"
        ));
    }
    if accepted.load(Ordering::SeqCst) != accepted_after_allowed {
        failures.push(format!(
            "websocket_disallowed_origin in {name}: the upstream was contacted"
        ));
    }
    let denied = metrics.render().lines().any(|line| {
        line == "crossgate_actual_denied_total{route=\"/ws/\",reason=\"websocket_origin_not_allowed\"} 1"
    });
    if !denied {
        failures.push(format!(
            "websocket_disallowed_origin in {name}: /metrics does not count one websocket_origin_not_allowed"
        ));
    }
    failures
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

/// A gateway in this process with one WebSocket route whose policy allows
/// `page_origin` only.
async fn start_gateway(upstream: SocketAddr, page_origin: &str) -> (SocketAddr, Arc<Metrics>) {
    let dir = std::env::temp_dir().join(format!(
        "crossgate-browser-websocket-{}-{}",
        std::process::id(),
        upstream.port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("websocket.toml");
    std::fs::write(
        &path,
        format!(
            r#"[server]
listen = "127.0.0.1:0"

[policies.page]
origins = ["{page_origin}"]

[[routes]]
path = "/ws/"
upstream = "http://{upstream}"
policy = "page"
"#
        ),
    )
    .expect("write config");
    let metrics = Arc::new(Metrics::new());
    let gateway = Gateway::load(
        ConfigSource::File(path),
        None,
        metrics.clone(),
        Arc::new(DenialLog::new(DenialLog::DEFAULT_CAPACITY)),
    )
    .unwrap_or_else(|e| panic!("the WebSocket config must load:\n{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::bind(Arc::new(gateway)).await.expect("bind gateway");
    let addr = server.local_addr();
    tokio::spawn(server.run(std::future::pending::<()>()));
    (addr, metrics)
}
