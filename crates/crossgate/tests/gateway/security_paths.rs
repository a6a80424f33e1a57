//! One normalized path, decided once: a public and a private route on one
//! upstream that decodes, merges slashes and strips `;` parameters before it
//! routes (as nginx, Tomcat and Spring do). Every spelling of a private path
//! is either refused (400) or routed to the private route's auth (401); the
//! upstream never serves it without a token, and it receives exactly the
//! path that was routed and authorized. `CONNECT` is refused with 405.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::support::config::Config;
use crate::support::{Reply, TestGateway, PATIENCE};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use percent_encoding::percent_decode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const APP: &str = "https://app.example";
const TOKEN: &str = "Bearer admin-token-0123456789";

/// An upstream that reads a path as permissively as real ones do, and says
/// whether it served the private resource. It records every request target
/// it received.
struct ReadingUpstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ReadingUpstream {
    async fn start() -> ReadingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let task = crate::support::serve_each(listener, move || {
            let log = log.clone();
            service_fn(move |request| answer(log.clone(), request))
        });
        ReadingUpstream {
            addr,
            received,
            task,
        }
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().expect("received").clone()
    }
}

impl Drop for ReadingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    log: Arc<Mutex<Vec<String>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().to_string(), |pq| pq.as_str().to_owned());
    log.lock().expect("received").push(target);
    let reading = upstream_reading(request.uri().path());
    let visibility = if is_private(&reading) {
        "private"
    } else {
        "public"
    };
    Ok(Response::new(Full::new(Bytes::from(format!(
        "{visibility}:{reading}"
    )))))
}

/// The path as the most permissive upstream reads it: percent-decoded twice
/// (a decoding proxy in front of the application), IIS's `%u0061`, overlong UTF-8 read as
/// ASCII (old decoders), cut at NUL (C strings) and at a decoded `?` or `#`,
/// `\` taken as `/` (Tomcat, IIS), `;...` stripped from segments (Tomcat,
/// Spring), segments trimmed (Spring's `trimTokens`), dot segments resolved
/// and `//` merged (nginx).
fn upstream_reading(path: &str) -> String {
    let mut bytes = path.as_bytes().to_vec();
    for _ in 0..2 {
        bytes = decode_iis_escapes(&percent_decode(&bytes).collect::<Vec<u8>>());
    }
    let text = String::from_utf8_lossy(&overlong_as_ascii(&bytes)).into_owned();
    let text = text.split(['\0', '?', '#']).next().unwrap_or("");
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split(['/', '\\']) {
        match segment.split(';').next().unwrap_or("").trim() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let trailing = if text.ends_with(['/', '\\']) && !segments.is_empty() {
        "/"
    } else {
        ""
    };
    format!("/{}{trailing}", segments.join("/"))
}

/// IIS's `%uXXXX`, for ASCII code points.
fn decode_iis_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes
            .get(i..i + 6)
            .filter(|escape| escape.starts_with(b"%u"))
            .and_then(|escape| std::str::from_utf8(&escape[2..]).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match code {
            Some(byte) => {
                out.push(byte);
                i += 6;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// `C0 AE` is an overlong `.` and `C0 AF` an overlong `/`.
fn overlong_as_ascii(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (0xC0, Some(&0xAE)) => {
                out.push(b'.');
                i += 2;
            }
            (0xC0, Some(&0xAF)) => {
                out.push(b'/');
                i += 2;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

fn is_private(reading: &str) -> bool {
    reading.starts_with("/api/admin/")
        || reading == "/internal"
        || reading.starts_with("/internal/")
        || reading.starts_with("/files/admin/")
}

async fn setup() -> (ReadingUpstream, TestGateway) {
    let upstream = ReadingUpstream::start().await;
    let up = format!("http://{}", upstream.addr);
    let private = r#"access = "private""#;
    let config = Config::server(&[])
        .auth(&[], &[("admin-token-0123456789", &["read", "write"])])
        .policy("web", &[APP], &[])
        .proxy("/", &up, "web", &[])
        .proxy("/api/", &up, "web", &[])
        .proxy("/api/admin/", &up, "web", &[private])
        .proxy("/internal", &up, "web", &[private])
        .proxy("/files/", &up, "web", &[r#"path_normalization = "off""#])
        .proxy("/files/admin/", &up, "web", &[private])
        .render();
    (upstream, TestGateway::start(&config).await)
}

/// Sends `target` byte for byte, which no URI type would let through, and
/// reads the response until the gateway closes the connection.
async fn send_raw(
    addr: SocketAddr,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = Vec::new();
        head.extend_from_slice(method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(target);
        head.extend_from_slice(b" HTTP/1.1\r\nhost: gateway.test\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        stream.write_all(&head).await.expect("write request");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .expect("read response");
        response
    };
    let response = tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("the gateway answers in time");
    parse_response(&response)
}

fn parse_response(bytes: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .expect("a status line");
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.trim().as_bytes()),
                http::HeaderValue::from_str(value.trim()),
            ) {
                headers.append(name, value);
            }
        }
    }
    Reply {
        status,
        headers,
        body: Bytes::from(body.to_owned().into_bytes()),
    }
}

/// Sends a GET of `path` raw from the app and asserts that the answer has
/// `status` and the CORS headers that let the app's script read it.
async fn assert_raw_get_readable(gateway: &TestGateway, path: &str, status: u16) -> Reply {
    let reply = send_raw(gateway.addr, "GET", path.as_bytes(), &[("origin", APP)]).await;
    assert_eq!(reply.status, status, "{path}: {}", reply.text());
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(APP),
        "{path}"
    );
    reply
}

/// Spellings of a private path the gateway can normalize: routed to the
/// private route, so refused without a token.
const NORMALIZED_TO_PRIVATE: [&str; 11] = [
    "/api/%61dmin/users",
    "/api//admin/users",
    "//internal",
    "/%69nternal",
    "/api/%61%64%6D%69%6E/users",
    "/api/%61%64%6d%69%6e/users",
    "//api//%61dmin//users",
    "/api///admin/users",
    "///%69%6Eternal/",
    "/internal/",
    "/files/%61dmin/x",
];

/// Spellings that an upstream could read as the private path but that have
/// no single meaning: refused before routing.
const REFUSED: [&str; 34] = [
    "/api/admin%2fusers",
    "/api/admin%2Fusers",
    "/internal%3f",
    "/internal%3F.css",
    "/internal%23",
    "/api/x/%2e%2e/admin/users",
    "/api/x/%2E%2E/admin/users",
    "/api/x/.%2e/admin/users",
    "/api/x/../admin/users",
    "/api/x/./../admin/users",
    "//api//x/%2e%2e//%61dmin/users",
    "/api/x/..;/admin/users",
    "/api/admin;x/users",
    "/api/admin;jsessionid=1/users",
    "/api/admin%3bx/users",
    "/api/x\\..\\admin\\users",
    "/api\\admin\\users",
    "/api/admin%5cusers",
    "/api/x/..%5cadmin/users",
    "/internal%00",
    "/internal%00.css",
    "/api/admin/users%00.json",
    "/api/x/%c0%ae%c0%ae/admin/users",
    "/api/admin%c0%afusers",
    "/api/%2561dmin/users",
    "/api/%25%36%31dmin/users",
    "/%2569nternal",
    "/internal%20",
    "/%20internal",
    "/internal%09",
    "/internal%0d%0a",
    "/files/..;/api/admin/users",
    "/api/%u0061dmin/users",
    "/%u0069nternal",
];

#[tokio::test]
async fn normalizable_spellings_of_a_private_path_reach_its_auth() {
    let (upstream, gateway) = setup().await;
    for path in NORMALIZED_TO_PRIVATE {
        assert_raw_get_readable(&gateway, path, 401).await;
    }
    assert_eq!(upstream.received(), Vec::<String>::new());
}

#[tokio::test]
async fn ambiguous_spellings_of_a_private_path_are_refused() {
    let (upstream, gateway) = setup().await;
    for path in REFUSED {
        let reply = assert_raw_get_readable(&gateway, path, 400).await;
        assert!(
            reply.text().starts_with(r#"{"error":""#),
            "{path}: the gateway's own 400, not hyper's: {}",
            reply.text()
        );
        // With a token too: refusing is not authorization.
        let reply = send_raw(
            gateway.addr,
            "GET",
            path.as_bytes(),
            &[("origin", APP), ("authorization", TOKEN)],
        )
        .await;
        assert_eq!(reply.status, 400, "{path} with a token: {}", reply.text());
    }
    assert_eq!(upstream.received(), Vec::<String>::new());
}

#[tokio::test]
async fn raw_bytes_no_parser_accepts_are_refused() {
    let (upstream, gateway) = setup().await;
    for target in [
        &b"/api/admin\0/users"[..],
        b"/api/\xff/admin/users",
        b"/api/\xc0\xae\xc0\xae/admin/users",
        b"/internal\x7f",
    ] {
        let reply = send_raw(gateway.addr, "GET", target, &[("origin", APP)]).await;
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(target));
    }
    assert_eq!(upstream.received(), Vec::<String>::new());
}

#[tokio::test]
async fn no_spelling_is_served_as_private_without_a_token() {
    let (upstream, gateway) = setup().await;
    for path in NORMALIZED_TO_PRIVATE.iter().chain(REFUSED.iter()) {
        // The premise: without the gateway, the upstream serves each one as private.
        assert!(is_private(&upstream_reading(path)), "{path} is no attack");
        let reply = send_raw(gateway.addr, "GET", path.as_bytes(), &[]).await;
        assert!(
            !reply.text().starts_with("private"),
            "{path} served: {}",
            reply.text()
        );
    }
    assert_eq!(upstream.received(), Vec::<String>::new());
}

#[tokio::test]
async fn the_upstream_receives_exactly_the_normalized_path() {
    let (upstream, gateway) = setup().await;
    let authorized = [("authorization", TOKEN)];
    for (sent, forwarded, served) in [
        (
            "/api/%61dmin//users?q=%2F..%2f&r=a%20b;c",
            "/api/admin/users?q=%2F..%2f&r=a%20b;c",
            "private:/api/admin/users",
        ),
        ("//internal", "/internal", "private:/internal"),
        (
            "/api/%69tems//a%3Ab%2b/caf%c3%a9/",
            "/api/items/a:b+/caf%C3%A9/",
            "public:/api/items/a:b+/café/",
        ),
        (
            "/api/items/%7b%7D",
            "/api/items/%7B%7D",
            "public:/api/items/{}",
        ),
        (
            "/api/items/100%25",
            "/api/items/100%25",
            "public:/api/items/100%",
        ),
    ] {
        let before = upstream.received().len();
        let reply = gateway.get(sent, &authorized).await;
        assert_eq!(reply.status, 200, "{sent}: {}", reply.text());
        assert_eq!(reply.text(), served, "{sent}");
        assert_eq!(
            upstream.received()[before..],
            [forwarded.to_owned()],
            "{sent}"
        );
    }
}

#[tokio::test]
async fn an_off_route_forwards_the_raw_path_but_not_into_another_route() {
    let (upstream, gateway) = setup().await;
    for path in [
        "/files/a%2Fb",
        "/files/a;v=1",
        "/files//x",
        "/files/%61dmin%2Fx",
    ] {
        let before = upstream.received().len();
        let reply = gateway.get(path, &[]).await;
        let reading = upstream_reading(path);
        if is_private(&reading) {
            // Its widest reading is the private route's: refused, not forwarded raw.
            assert_eq!(reply.status, 400, "{path}: {}", reply.text());
            assert_eq!(upstream.received().len(), before, "{path}");
        } else {
            assert_eq!(reply.status, 200, "{path}: {}", reply.text());
            assert_eq!(upstream.received()[before..], [path.to_owned()], "{path}");
        }
    }
    for path in [
        "/files/%2561dmin/x",
        "/files/admin;x/y",
        "/files/admin%2Fx",
        "/files/x/..%2Fadmin/y",
        "/files/%252e%252e/internal",
        "/files/..;/internal",
    ] {
        let reply = gateway.get(path, &[]).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
    }
    assert!(
        upstream
            .received()
            .iter()
            .all(|target| !is_private(&upstream_reading(target))),
        "{:?}",
        upstream.received()
    );
}

#[tokio::test]
async fn connect_is_refused_with_405_and_allow() {
    let (upstream, gateway) = setup().await;
    for target in [&b"upstream.example:443"[..], b"127.0.0.1:22", b"/api/items"] {
        let reply = send_raw(gateway.addr, "CONNECT", target, &[("origin", APP)]).await;
        assert_eq!(reply.status, 405, "{}", reply.text());
        assert_eq!(
            reply.header("allow"),
            Some("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS")
        );
        assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    }
    assert_eq!(upstream.received(), Vec::<String>::new());
}

/// Compiles a config whose one route is at `path`, proxied, with the
/// `extra` key (a TOML line, or empty).
fn compile_route(path: &str, extra: &str) -> Result<crossgate::CompiledConfig, String> {
    let text = Config::server(&[])
        .route(path, &[r#"upstream = "http://127.0.0.1:9""#, extra])
        .render();
    crate::support::config::compile(&text)
}

#[test]
fn route_prefixes_must_be_in_normal_form() {
    for (path, expected) in [
        ("/api/%61dmin/", r#"write "/api/admin/""#),
        ("/api//admin/", r#"write "/api/admin/""#),
        ("/caf%c3%a9/", r#"write "/caf%C3%A9/""#),
        ("/admin;x/", "segment parameters"),
        ("/a/../b/", ". or .. segments"),
    ] {
        let problems = compile_route(path, "")
            .err()
            .unwrap_or_else(|| panic!("{path} accepted"));
        assert!(problems.contains("routes[0].path"), "{problems}");
        assert!(problems.contains(expected), "{path}: {problems}");
    }
}

#[test]
fn path_normalization_is_strict_or_an_explicit_off_with_a_warning() {
    let route = |value: &str| compile_route("/files/", &format!("path_normalization = {value:?}"));
    let strict = route("strict").expect("strict is valid");
    assert!(strict.warnings.is_empty(), "{:?}", strict.warnings);
    let off = route("off").expect("off is valid");
    let warnings: Vec<String> = off.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("routes[0].path_normalization")
                && w.contains("forwards the path as received")),
        "{warnings:?}"
    );
    let problems = route("lenient").expect_err("lenient is refused");
    assert!(
        problems.contains("routes[0].path_normalization"),
        "{problems}"
    );
    assert!(
        problems.contains("`strict`") && problems.contains("`off`"),
        "{problems}"
    );
}
