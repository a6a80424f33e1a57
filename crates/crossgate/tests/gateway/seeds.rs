//! The five seed documents, replayed against the gateway with the example
//! configurations under `examples/`: each exchange a document shows must
//! come back with the same status and the same CORS headers (ignoring
//! `Date`, `Server` and the order of list items). Where crossgate answers
//! differently on purpose, the test asserts crossgate's answer and
//! `docs/seeds.md` says why. The CORS primer (seed 004) is proven in the
//! browser suite (`tests/browser/`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::support::process::validate;
use crate::support::upstream::loopback_listener;
use crate::support::{
    bearer_jwt, examples_dir, preflight, preflight_with_authorization, Reply, TestGateway,
};
use bytes::Bytes;
use crossgate_testkit::scenarios;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------
// Harness

/// An example file, with its backend address pointed at `backend`.
fn example(name: &str, documented_upstream: &str, backend: &Backend) -> String {
    let path = examples_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        text.contains(documented_upstream),
        "{name} no longer names the upstream {documented_upstream}"
    );
    text.replace(documented_upstream, &backend.url())
}

/// A backend that answers every request with the same status, headers and
/// body, and records what it was asked.
struct Backend {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    task: JoinHandle<()>,
}

impl Backend {
    async fn start(
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    ) -> Backend {
        let (listener, addr) = loopback_listener().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = crate::support::serve_each(listener, move || {
            let log = log.clone();
            service_fn(move |request: Request<Incoming>| {
                log.lock().expect("backend log").push((
                    request.method().to_string(),
                    request.uri().path().to_owned(),
                ));
                async move {
                    let _ = request.into_body().collect().await;
                    let mut response =
                        Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                    for (name, value) in headers {
                        response
                            .headers_mut()
                            .append(*name, HeaderValue::from_static(value));
                    }
                    Ok::<_, Infallible>(response)
                }
            })
        });
        Backend { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The (method, path) of every request that reached the backend.
    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("backend log").clone()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The response's CORS headers: lower-case names, each value as the sorted
/// list of its comma-separated items.
fn cors_headers(reply: &Reply) -> BTreeMap<String, Vec<String>> {
    let mut found = BTreeMap::new();
    for (name, value) in &reply.headers {
        if !name.as_str().starts_with("access-control-") {
            continue;
        }
        let value = value.to_str().expect("CORS header values are ASCII");
        found.insert(name.as_str().to_owned(), list(value));
    }
    found
}

fn list(value: &str) -> Vec<String> {
    let mut items: Vec<String> = value
        .split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect();
    items.sort();
    items
}

/// Asserts that the response carries exactly these CORS headers.
fn assert_cors(reply: &Reply, expected: &[(&str, &str)]) {
    let expected: BTreeMap<String, Vec<String>> = expected
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), list(value)))
        .collect();
    assert_eq!(cors_headers(reply), expected, "CORS headers of {reply:?}");
}

/// Asserts that the response has `status` and exactly these CORS headers.
fn assert_answer(reply: &Reply, status: u16, cors: &[(&str, &str)]) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_cors(reply, cors);
}

/// A [`Backend`] answering with `headers` and `body`, and a gateway with
/// the example `name`, whose `documented_upstream` is pointed at it.
async fn seed_gateway(
    name: &str,
    documented_upstream: &str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> (Backend, TestGateway) {
    let backend = Backend::start(headers, body).await;
    let gateway = TestGateway::start(&example(name, documented_upstream, &backend)).await;
    (backend, gateway)
}

/// `X-Request-Id` as APIG shows it: 32 lower-case hex digits.
fn assert_request_id(reply: &Reply) {
    let id = reply
        .header("x-request-id")
        .expect("an X-Request-Id header");
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "X-Request-Id {id:?} is not 32 hex digits"
    );
}

#[test]
fn every_example_passes_validate() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).expect("read examples/") {
        let path = entry.expect("examples/ entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let output = validate(&path);
        assert!(
            output.status.success(),
            "crossgate validate {} failed:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        checked.push(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    for seed in [
        "apig.toml",
        "restheart.toml",
        "api-contract.toml",
        "personium.toml",
    ] {
        assert!(
            checked.iter().any(|c| c == seed),
            "examples/{seed} is missing"
        );
    }
}

/// Every test docs/seeds.md names exists: `seeds::NAME` in this file,
/// `browser: NAME` in the browser suite's table.
#[test]
fn seeds_doc_names_only_existing_tests() {
    let doc_path = examples_dir().join("../docs/seeds.md");
    let doc = std::fs::read_to_string(&doc_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", doc_path.display()));
    let this_file = include_str!("seeds.rs");
    let mut named = 0;
    let rows = doc
        .lines()
        .skip_while(|line| !line.starts_with("| seed | statement or example |"))
        .filter(|line| line.starts_with("| 00"));
    for row in rows {
        let proofs: Vec<&str> = row.split('`').skip(1).step_by(2).collect();
        let mut row_named = 0;
        for proof in proofs {
            if let Some(test) = proof.strip_prefix("seeds::") {
                assert!(
                    this_file.contains(&format!("fn {test}(")),
                    "docs/seeds.md names seeds::{test}, which does not exist"
                );
                row_named += 1;
            } else if let Some(row_name) = proof.strip_prefix("browser: ") {
                assert!(
                    scenarios::SCENARIOS.iter().any(|s| s.name == row_name),
                    "docs/seeds.md names browser row {row_name}, which does not exist"
                );
                row_named += 1;
            }
        }
        assert!(row_named > 0, "a row of docs/seeds.md names no test: {row}");
        named += row_named;
    }
    assert!(named >= 40, "docs/seeds.md names only {named} tests");
}

// ---------------------------------------------------------------------------
// Huawei API Gateway (seed 003)

const APIG_UPSTREAM: &str = "http://127.0.0.1:3000";
const APIG_BACKEND_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/json"),
    ("server", "api-gateway"),
];
const APIG_BACKEND_BODY: &str = r#"{"status":"200"}"#;
/// The request the guide's browser sends for a simple request.
const APIG_SIMPLE_REQUEST: &[(&str, &str)] = &[
    ("host", "www.test.com"),
    ("origin", "http://www.cors.com"),
    (
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    ),
    ("accept", "application/json"),
    ("date", "Tue, 15 Jan 2019 01:25:52 GMT"),
];
/// crossgate also sends the policy's expose list on actual responses, where
/// browsers read it (APIG shows it on the preflight only; see docs/seeds.md).
const APIG_EXPOSE: (&str, &str) = (
    "access-control-expose-headers",
    "X-Request-Id,X-Apig-Latency,X-Apig-Upstream-Latency,X-Apig-RateLimit-Api,X-Apig-RateLimit-User,X-Apig-RateLimit-App,X-Apig-RateLimit-Ip,X-Apig-RateLimit-Api-Allenv",
);

async fn apig(backend_headers: &'static [(&'static str, &'static str)]) -> (Backend, TestGateway) {
    seed_gateway(
        "apig.toml",
        APIG_UPSTREAM,
        backend_headers,
        APIG_BACKEND_BODY,
    )
    .await
}

#[tokio::test]
async fn apig_scenario_1_simple_request_gets_any_origin_and_request_id() {
    let (backend, gateway) = apig(APIG_BACKEND_HEADERS).await;
    let reply = gateway.get("/simple", APIG_SIMPLE_REQUEST).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("content-length"), Some("16"));
    assert_eq!(reply.text(), APIG_BACKEND_BODY);
    assert_request_id(&reply);
    assert_cors(&reply, &[("access-control-allow-origin", "*"), APIG_EXPOSE]);
    assert_eq!(backend.seen(), [("GET".to_owned(), "/simple".to_owned())]);
}

#[tokio::test]
async fn apig_scenario_2_backend_cors_header_wins() {
    const WITH_OWN_CORS: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("server", "api-gateway"),
        ("access-control-allow-origin", "http://www.cors.com"),
    ];
    let (_backend, gateway) = apig(WITH_OWN_CORS).await;
    let reply = gateway.get("/simple", APIG_SIMPLE_REQUEST).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), APIG_BACKEND_BODY);
    assert_request_id(&reply);
    assert_cors(
        &reply,
        &[("access-control-allow-origin", "http://www.cors.com")],
    );
}

/// The guide's OPTIONS exchange, answered by the gateway itself.
const APIG_PREFLIGHT: &[(&str, &str)] = &[
    ("user-agent", "curl/7.29.0"),
    ("host", "localhost"),
    ("accept", "*/*"),
    ("origin", "http://www.cors.com"),
    ("access-control-request-method", "PUT"),
    ("access-control-request-headers", "X-Sdk-Date"),
];
const APIG_PREFLIGHT_ANSWER: &[(&str, &str)] = &[
    ("access-control-allow-origin", "*"),
    (
        "access-control-allow-headers",
        "X-Stage,X-Sdk-Date,X-Sdk-Nonce,X-Proxy-Signed-Headers,X-Sdk-Content-Sha256,X-Forwarded-For,Authorization,Content-Type,Accept,Accept-Ranges,Cache-Control,Range",
    ),
    APIG_EXPOSE,
    ("access-control-allow-methods", "GET,POST,PUT,DELETE,HEAD,OPTIONS,PATCH"),
    ("access-control-max-age", "172800"),
];

#[tokio::test]
async fn apig_preflight_answered_with_the_documented_headers() {
    let (backend, gateway) = apig(APIG_BACKEND_HEADERS).await;
    // The guide's OPTIONS API on "/", and the API itself: crossgate answers
    // both without an extra OPTIONS API.
    for path in ["/", "/simple"] {
        let reply = gateway.send("OPTIONS", path, APIG_PREFLIGHT, b"").await;
        assert_eq!(reply.status, 200, "OPTIONS {path}");
        assert_request_id(&reply);
        assert_cors(&reply, APIG_PREFLIGHT_ANSWER);
    }
    assert!(
        backend.seen().is_empty(),
        "preflights never reach the backend"
    );
}

#[tokio::test]
async fn apig_put_after_the_preflight_gets_any_origin() {
    let (backend, gateway) = apig(APIG_BACKEND_HEADERS).await;
    let reply = gateway
        .send("PUT", "/simple", APIG_SIMPLE_REQUEST, b"a=1")
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), APIG_BACKEND_BODY);
    assert_request_id(&reply);
    assert_cors(&reply, &[("access-control-allow-origin", "*"), APIG_EXPOSE]);
    assert_eq!(backend.seen(), [("PUT".to_owned(), "/simple".to_owned())]);
}

#[tokio::test]
async fn apig_cors_is_off_for_an_api_without_it() {
    let (backend, gateway) = apig(APIG_BACKEND_HEADERS).await;
    let reply = gateway.get("/private-api/items", APIG_SIMPLE_REQUEST).await;
    assert_answer(&reply, 200, &[]);
    let reply = gateway
        .send("OPTIONS", "/private-api/items", APIG_PREFLIGHT, b"")
        .await;
    assert_cors(&reply, &[]);
    assert_eq!(
        backend.seen(),
        [
            ("GET".to_owned(), "/private-api/items".to_owned()),
            ("OPTIONS".to_owned(), "/private-api/items".to_owned()),
        ],
        "without CORS, the preflight is the backend's business"
    );
}

#[tokio::test]
async fn apig_cors_plugin_custom_origins_methods_and_headers() {
    let (backend, gateway) = apig(APIG_BACKEND_HEADERS).await;
    let reply = gateway
        .send("OPTIONS", "/plugin/items", APIG_PREFLIGHT, b"")
        .await;
    assert_answer(
        &reply,
        204,
        &[
            ("access-control-allow-origin", "http://www.cors.com"),
            ("access-control-allow-methods", "PUT, DELETE"),
            ("access-control-allow-headers", "X-Sdk-Date, Content-Type"),
            ("access-control-expose-headers", "X-Request-Id"),
            ("access-control-max-age", "7200"),
        ],
    );
    let mut other_origin = APIG_PREFLIGHT.to_vec();
    other_origin[3] = ("origin", "http://www.elsewhere.com");
    let reply = gateway
        .send("OPTIONS", "/plugin/items", &other_origin, b"")
        .await;
    assert_answer(&reply, 403, &[]);
    let mut patch = APIG_PREFLIGHT.to_vec();
    patch[4] = ("access-control-request-method", "PATCH");
    let reply = gateway.send("OPTIONS", "/plugin/items", &patch, b"").await;
    assert_eq!(reply.status, 403);
    assert!(backend.seen().is_empty());
}

// ---------------------------------------------------------------------------
// RESTHeart (seed 001)

const RESTHEART_UPSTREAM: &str = "http://127.0.0.1:8081";
const RESTHEART_EXPOSE: (&str, &str) = (
    "access-control-expose-headers",
    "Location, ETag, Auth-Token, Auth-Token-Valid-Until, Auth-Token-Location",
);

async fn restheart() -> (Backend, TestGateway) {
    let headers = &[("content-type", "application/json"), ("etag", "\"1\"")];
    seed_gateway("restheart.toml", RESTHEART_UPSTREAM, headers, "{}").await
}

#[tokio::test]
async fn restheart_options_test_coll() {
    let (backend, gateway) = restheart().await;
    let reply = preflight(
        gateway.addr,
        "/test/coll",
        "https://domain1.com",
        "PATCH",
        "authorization,content-type,if-match,no-auth-challenge",
    )
    .await;
    assert_answer(
        &reply,
        200,
        &[
            ("access-control-allow-credentials", "true"),
            // The documented list minus the four headers scripts cannot set.
            (
                "access-control-allow-headers",
                "Accept, Authorization, Content-Type, If-Match, X-Requested-With, User-Agent, No-Auth-Challenge",
            ),
            ("access-control-allow-methods", "GET, PUT, POST, PATCH, DELETE, OPTIONS"),
            // The document's `*` cannot work with credentials; the origin is echoed.
            ("access-control-allow-origin", "https://domain1.com"),
            RESTHEART_EXPOSE,
        ],
    );
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn restheart_always_returns_cors_headers_to_the_front_end() {
    let (_backend, gateway) = restheart().await;
    let reply = gateway
        .get(
            "/test/coll",
            &[("origin", "https://domain1.com"), ("cookie", "session=1")],
        )
        .await;
    assert_answer(
        &reply,
        200,
        &[
            ("access-control-allow-origin", "https://domain1.com"),
            ("access-control-allow-credentials", "true"),
            RESTHEART_EXPOSE,
        ],
    );
}

#[test]
fn restheart_documented_wildcard_with_credentials_is_refused() {
    let dir = std::env::temp_dir().join(format!("crossgate-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("restheart-as-documented.toml");
    let text = std::fs::read_to_string(examples_dir().join("restheart.toml"))
        .expect("read restheart.toml");
    let documented = text.replace(r#"origins = ["https://domain1.com"]"#, r#"origins = ["*"]"#);
    assert_ne!(
        documented, text,
        "restheart.toml no longer lists https://domain1.com"
    );
    std::fs::write(&path, documented).expect("write config");
    let output = validate(&path);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !output.status.success(),
        "origins = [\"*\"] with credentials must be refused"
    );
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        printed.contains("policies.restheart"),
        "the message names the key:\n{printed}"
    );
}

// ---------------------------------------------------------------------------
// The API design contract (seed 002)

const CONTRACT_UPSTREAM: &str = "http://127.0.0.1:3000";

async fn contract() -> (Backend, TestGateway) {
    let headers = &[
        ("content-type", "application/json"),
        ("vary", "Accept-Encoding"),
    ];
    seed_gateway("api-contract.toml", CONTRACT_UPSTREAM, headers, "{}").await
}

#[tokio::test]
async fn contract_preflight_is_204_with_the_origin_echoed_and_max_age_86400() {
    let (backend, gateway) = contract().await;
    let reply = preflight(
        gateway.addr,
        "/namespace/v1/resources/42",
        "https://api.example.com",
        "POST",
        "X-Requested-With, Content-Type",
    )
    .await;
    assert_answer(
        &reply,
        204,
        &[
            ("access-control-allow-origin", "https://api.example.com"),
            ("access-control-allow-methods", "PUT, GET, OPTIONS, DELETE"),
            (
                "access-control-allow-headers",
                "X-Requested-With, Content-Type",
            ),
            ("access-control-max-age", "86400"),
        ],
    );
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn contract_main_request_echoes_the_origin_and_varies_on_accept_encoding_and_origin() {
    let (backend, gateway) = contract().await;
    let reply = gateway
        .send(
            "POST",
            "/namespace/v1/resources/42",
            &[
                ("origin", "https://api.example.com"),
                ("content-type", "application/json"),
                ("x-requested-with", "XMLHttpRequest"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_cors(
        &reply,
        &[("access-control-allow-origin", "https://api.example.com")],
    );
    let mut vary = reply.vary();
    vary.sort();
    assert_eq!(vary, ["accept-encoding", "origin"]);
    assert_eq!(
        backend.seen(),
        [("POST".to_owned(), "/namespace/v1/resources/42".to_owned())]
    );
}

// ---------------------------------------------------------------------------
// Personium (seed 000)

const PERSONIUM_UPSTREAM: &str = "http://127.0.0.1:3000";
const PUBLIC: &str = "/cell/box/public/data";
const PRIVATE: &str = "/cell/box/private/data";
const READER_WRITER: &str = "Bearer personium-example-reader-writer-token";
const WRITER_ONLY: &str = "Bearer personium-example-writer-only-token";
const JWT_SECRET: &str = "personium-example-secret-change-me-0123456789";
const ORIGIN: (&str, &str) = ("origin", "https://any.example.org");

async fn personium() -> (Backend, TestGateway) {
    let headers = &[("content-type", "application/json")];
    seed_gateway("personium.toml", PERSONIUM_UPSTREAM, headers, "{}").await
}

/// A preflight as a browser sends it, plus `Authorization` when given
/// (Personium's table describes OPTIONS requests that carry one).
async fn personium_options(
    gateway: &TestGateway,
    path: &str,
    authorization: Option<&str>,
) -> Reply {
    preflight_with_authorization(gateway.addr, path, ORIGIN.1, "GET", "", authorization).await
}

#[tokio::test]
async fn personium_any_origin_on_every_api() {
    let (_backend, gateway) = personium().await;
    for (method, path, authorization, status) in [
        ("GET", PUBLIC, None, 200),
        ("GET", PRIVATE, Some(READER_WRITER), 200),
        ("GET", PRIVATE, None, 401),
        ("OPTIONS", PUBLIC, None, 204),
    ] {
        let mut headers = vec![ORIGIN];
        if method == "OPTIONS" {
            headers.push(("access-control-request-method", "GET"));
        }
        if let Some(value) = authorization {
            headers.push(("authorization", value));
        }
        let reply = gateway.send(method, path, &headers, b"").await;
        assert_eq!(reply.status, status, "{method} {path}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("*"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn personium_allow_headers_echo_the_requested_ones() {
    let (_backend, gateway) = personium().await;
    let reply = preflight(gateway.addr, PUBLIC, ORIGIN.1, "GET", "sample").await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-headers"), Some("sample"));
}

#[tokio::test]
async fn personium_public_resource_lists_the_methods_it_supports() {
    let (backend, gateway) = personium().await;
    let reply = personium_options(&gateway, PUBLIC, None).await;
    assert_answer(
        &reply,
        204,
        &[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "GET, OPTIONS"),
        ],
    );
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn personium_private_resource_without_authorization_lists_every_gateway_method() {
    let (_backend, gateway) = personium().await;
    let reply = personium_options(&gateway, PRIVATE, None).await;
    assert_answer(
        &reply,
        204,
        &[
            ("access-control-allow-origin", "*"),
            (
                "access-control-allow-methods",
                "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS",
            ),
        ],
    );
}

#[tokio::test]
async fn personium_private_resource_with_a_valid_token_lists_its_methods() {
    let (_backend, gateway) = personium().await;
    for authorization in [READER_WRITER.to_owned(), bearer_jwt(&["read"], JWT_SECRET)] {
        let reply = personium_options(&gateway, PRIVATE, Some(&authorization)).await;
        assert_eq!(reply.status, 204, "{authorization}");
        assert_cors(
            &reply,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "GET, PUT, DELETE, OPTIONS"),
            ],
        );
    }
}

#[tokio::test]
async fn personium_invalid_token_is_401_with_cors_headers() {
    let (backend, gateway) = personium().await;
    let forged = {
        let mut token = bearer_jwt(&["read", "write"], JWT_SECRET);
        token.pop();
        token.push('x');
        token
    };
    for authorization in ["Bearer not-a-known-token-at-all", forged.as_str()] {
        let reply = personium_options(&gateway, PRIVATE, Some(authorization)).await;
        assert_eq!(reply.status, 401, "OPTIONS with {authorization}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        let reply = gateway
            .get(PRIVATE, &[ORIGIN, ("authorization", authorization)])
            .await;
        assert_eq!(reply.status, 401, "GET with {authorization}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    }
    assert!(
        backend.seen().is_empty(),
        "refused requests never reach the upstream"
    );
}

#[tokio::test]
async fn personium_token_without_the_privilege_is_403_with_cors_headers() {
    let (backend, gateway) = personium().await;
    let reply = personium_options(&gateway, PRIVATE, Some(WRITER_ONLY)).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let reply = gateway
        .get(PRIVATE, &[ORIGIN, ("authorization", WRITER_ONLY)])
        .await;
    assert_eq!(
        reply.status, 403,
        "reading is not allowed for a write-only token"
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let reader = bearer_jwt(&["read"], JWT_SECRET);
    let reply = gateway
        .send("PUT", PRIVATE, &[ORIGIN, ("authorization", &reader)], b"x")
        .await;
    assert_eq!(
        reply.status, 403,
        "writing is not allowed for a read-only JWT"
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn personium_private_requests_are_authorized_before_the_upstream() {
    let (backend, gateway) = personium().await;
    let reply = gateway.get(PRIVATE, &[ORIGIN]).await;
    assert_eq!(reply.status, 401);
    assert!(backend.seen().is_empty());
    let reply = gateway
        .send(
            "PUT",
            PRIVATE,
            &[ORIGIN, ("authorization", READER_WRITER)],
            b"x",
        )
        .await;
    assert_eq!(reply.status, 200);
    let writer = bearer_jwt(&["write"], JWT_SECRET);
    let reply = gateway
        .send(
            "DELETE",
            PRIVATE,
            &[ORIGIN, ("authorization", &writer)],
            b"",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        backend.seen(),
        [
            ("PUT".to_owned(), PRIVATE.to_owned()),
            ("DELETE".to_owned(), PRIVATE.to_owned())
        ]
    );
}
