//! Issue 9, items 5 and 8, attacked over real sockets: JWTs with malformed,
//! missing or future time claims, another audience, issuer or algorithm; log
//! lines forged through request values; and a flood of denials that must not
//! flood the log while metrics and `/decisions` count every one.

use std::time::{Duration, Instant};

use crate::support::config::Config;
use crate::support::process::Gateway;
use crate::support::{send, Client, Reply, TestGateway, TestUpstream, PATIENCE};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ORIGIN: &str = "https://app.example.com";

// ---------------------------------------------------------------- auth

/// A gateway with one private route to `upstream`; `auth_keys` are added to `[auth]`.
async fn private_gateway(upstream: &TestUpstream, auth_keys: &str) -> TestGateway {
    let config = Config::server(&[])
        .auth(&[&format!("jwt_secret = \"{SECRET}\""), auth_keys], &[])
        .policy(
            "web",
            &[ORIGIN],
            &[
                r#"methods = ["GET", "PUT"]"#,
                r#"request_headers = ["authorization"]"#,
            ],
        )
        .proxy(
            "/private/",
            &upstream.url(),
            "web",
            &[r#"access = "private""#],
        )
        .render();
    TestGateway::start(&config).await
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).expect("clock")
}

/// `claims` plus `privileges: ["read"]`, signed with `algorithm` and the gateway's secret.
fn token(algorithm: Algorithm, mut claims: Value) -> String {
    claims["privileges"] = json!(["read"]);
    jsonwebtoken::encode(
        &Header::new(algorithm),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode JWT")
}

async fn read_with(gateway: &TestGateway, token: &str) -> Reply {
    let authorization = format!("Bearer {token}");
    gateway
        .get(
            "/private/box",
            &[("origin", ORIGIN), ("authorization", &authorization)],
        )
        .await
}

/// 401 `invalid_token`, readable by the page's script (CORS headers present).
fn assert_refused(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(ORIGIN),
        "{what}: the 401 carries CORS headers"
    );
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#),
        "{what}"
    );
}

async fn assert_accepted(gateway: &TestGateway, claims: Value, what: &str) {
    let reply = read_with(gateway, &token(Algorithm::HS256, claims)).await;
    assert_eq!(reply.status, 200, "{what}");
}

async fn assert_claims_refused(gateway: &TestGateway, claims: Value, what: &str) {
    let reply = read_with(gateway, &token(Algorithm::HS256, claims)).await;
    assert_refused(&reply, what);
}

#[tokio::test]
async fn malformed_exp_is_refused_with_cors_headers() {
    let upstream = TestUpstream::start().await;
    let strict = private_gateway(&upstream, "").await;
    // jsonwebtoken alone would take a malformed exp for a missing one, which
    // this option allows: the typed claim must refuse it there too.
    let lenient = private_gateway(&upstream, "jwt_allow_missing_exp = true").await;
    let far = now() + 600;
    for gateway in [&strict, &lenient] {
        assert_accepted(gateway, json!({"exp": far}), "a valid exp").await;
        for exp in [
            json!("1"),
            json!(far.to_string()),
            Value::Null,
            json!(-1),
            json!(true),
            json!({}),
        ] {
            assert_claims_refused(gateway, json!({"exp": exp}), &format!("exp {exp}")).await;
            assert_claims_refused(
                gateway,
                json!({"exp": far, "nbf": exp}),
                &format!("nbf {exp}"),
            )
            .await;
        }
    }
    assert_eq!(
        upstream.hits(),
        2,
        "only the two valid tokens reached the upstream"
    );
}

#[tokio::test]
async fn token_without_exp_is_refused_unless_explicitly_allowed() {
    let upstream = TestUpstream::start().await;
    let strict = private_gateway(&upstream, "").await;
    assert_claims_refused(&strict, json!({}), "no exp").await;
    let lenient = private_gateway(&upstream, "jwt_allow_missing_exp = true").await;
    assert_accepted(&lenient, json!({}), "no exp, allowed").await;
    assert_claims_refused(
        &lenient,
        json!({"exp": now() - 600}),
        "expired, allowed missing",
    )
    .await;
}

#[tokio::test]
async fn nbf_in_the_future_is_refused_and_within_the_leeway_accepted() {
    let upstream = TestUpstream::start().await;
    let gateway = private_gateway(&upstream, "").await;
    let exp = now() + 600;
    assert_claims_refused(
        &gateway,
        json!({"exp": exp, "nbf": now() + 120}),
        "nbf +120 s",
    )
    .await;
    assert_accepted(
        &gateway,
        json!({"exp": exp, "nbf": now() + 10}),
        "nbf +10 s (leeway 30)",
    )
    .await;
    assert_accepted(
        &gateway,
        json!({"exp": exp, "nbf": now() - 10}),
        "nbf in the past",
    )
    .await;
}

#[tokio::test]
async fn leeway_is_30_seconds_by_default_and_0_is_exact() {
    let upstream = TestUpstream::start().await;
    let default = private_gateway(&upstream, "").await;
    let exact = private_gateway(&upstream, "jwt_leeway = 0").await;
    let just_expired = json!({"exp": now() - 10});
    assert_accepted(
        &default,
        just_expired.clone(),
        "expired 10 s ago, leeway 30",
    )
    .await;
    assert_claims_refused(
        &default,
        json!({"exp": now() - 60}),
        "expired 60 s ago, leeway 30",
    )
    .await;
    assert_claims_refused(&exact, just_expired, "expired 10 s ago, leeway 0").await;
    assert_claims_refused(
        &exact,
        json!({"exp": now() + 600, "nbf": now() + 10}),
        "nbf +10 s, leeway 0",
    )
    .await;
    assert_accepted(&exact, json!({"exp": now() + 600}), "valid, leeway 0").await;
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_configured() {
    let upstream = TestUpstream::start().await;
    let gateway = private_gateway(
        &upstream,
        r#"jwt_audience = "crossgate"
jwt_issuer = "https://issuer.example""#,
    )
    .await;
    let exp = now() + 600;
    let iss = "https://issuer.example";
    assert_accepted(
        &gateway,
        json!({"exp": exp, "aud": "crossgate", "iss": iss}),
        "match",
    )
    .await;
    assert_accepted(
        &gateway,
        json!({"exp": exp, "aud": ["other", "crossgate"], "iss": iss}),
        "one of several audiences",
    )
    .await;
    for (claims, what) in [
        (
            json!({"exp": exp, "aud": "billing", "iss": iss}),
            "other audience",
        ),
        (
            json!({"exp": exp, "aud": "crossgate", "iss": "https://evil.example"}),
            "other issuer",
        ),
        (json!({"exp": exp, "iss": iss}), "no audience"),
        (json!({"exp": exp, "aud": "crossgate"}), "no issuer"),
    ] {
        assert_claims_refused(&gateway, claims, what).await;
    }
    let unconfigured = private_gateway(&upstream, "").await;
    assert_claims_refused(
        &unconfigured,
        json!({"exp": exp, "aud": "billing"}),
        "a token for another audience, none configured",
    )
    .await;
}

#[tokio::test]
async fn algorithms_other_than_hs256_are_refused() {
    let upstream = TestUpstream::start().await;
    let gateway = private_gateway(&upstream, "").await;
    let claims = json!({"exp": now() + 600});
    for algorithm in [Algorithm::HS384, Algorithm::HS512] {
        let reply = read_with(&gateway, &token(algorithm, claims.clone())).await;
        assert_refused(&reply, &format!("{algorithm:?}"));
    }
    // `alg: none`, no signature; the header is base64url of {"alg":"none","typ":"JWT"}.
    let signed = token(Algorithm::HS256, claims);
    let payload = signed.split('.').nth(1).expect("payload");
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    assert_refused(&read_with(&gateway, &unsigned).await, "alg none");
    assert_eq!(upstream.hits(), 0);
}

// ---------------------------------------------------------------- logs

/// An `Origin` that forges fields when written raw, with a tab, a backslash,
/// a quote and a non-ASCII character (sent as obs-text bytes).
const FORGING_ORIGIN: &str = "https://evil.example reason=\"none\" detail=allowed\t\\\"é";
/// A request id the gateway keeps (visible ASCII) that unbalances quotes.
const FORGING_ID: &str = "id\"reason=\"none\"\\";

/// One route to `upstream` (CORS denials, upstream failures when it is
/// absent) and one private route (auth refusals), with an admin listener.
fn log_config(upstream: std::net::SocketAddr, extra_server_keys: &str) -> String {
    let up = format!("http://{upstream}");
    Config::server(&[r#"admin = "127.0.0.1:0""#, extra_server_keys])
        .auth(&[&format!("jwt_secret = \"{SECRET}\"")], &[])
        .policy("web", &[ORIGIN], &[r#"methods = ["PUT"]"#])
        .proxy("/api/", &up, "web", &[])
        .proxy("/private/", &up, "web", &[r#"access = "private""#])
        .render()
}

/// A text log field: its value, decoded, and whether it was quoted.
#[derive(Debug, PartialEq)]
struct TextField {
    value: String,
    quoted: bool,
}

/// The `key=value` fields after `message` in a tracing text line. Quoted
/// values use Rust string escapes, which is what tracing writes for `&str`.
fn text_fields(line: &str, message: &str) -> Vec<(String, TextField)> {
    let (_, rest) = line
        .split_once(message)
        .expect("the message is in the line");
    let mut chars = rest.chars().peekable();
    let mut fields = Vec::new();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return fields;
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('r') => value.push('\r'),
                        Some('t') => value.push('\t'),
                        Some('0') => value.push('\0'),
                        Some('u') => {
                            let hex: String = chars
                                .by_ref()
                                .skip_while(|c| *c == '{')
                                .take_while(|c| *c != '}')
                                .collect();
                            let code = u32::from_str_radix(&hex, 16).expect("\\u{hex}");
                            value.push(char::from_u32(code).expect("a char"));
                        }
                        Some(other) => value.push(other),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ' ') {
                value.push(c);
            }
        }
        fields.push((key, TextField { value, quoted }));
    }
}

/// The single field `key` of a line; fails when it is missing or repeated (forged).
fn field<'a>(fields: &'a [(String, TextField)], key: &str) -> &'a TextField {
    let mut found = fields.iter().filter(|(name, _)| name == key);
    let first = found.next().map(|(_, value)| value);
    assert!(
        found.next().is_none(),
        "field {key} appears twice: {fields:?}"
    );
    first.unwrap_or_else(|| panic!("no field {key}: {fields:?}"))
}

fn assert_quoted(fields: &[(String, TextField)], key: &str, expected: &str) {
    let found = field(fields, key);
    assert_eq!(
        found,
        &TextField {
            value: expected.to_owned(),
            quoted: true
        },
        "{key} in {fields:?}"
    );
}

async fn wait_for_line(gateway: &Gateway, text: &str) -> String {
    gateway.wait_logged(text).await;
    gateway
        .logs()
        .into_iter()
        .find(|line| line.contains(text))
        .expect("the line just seen")
}

async fn send_forging_requests(gateway: &Gateway) {
    let denied = send(
        gateway.addr,
        "OPTIONS",
        "/api/x",
        &[
            ("origin", FORGING_ORIGIN),
            ("access-control-request-method", "PUT"),
            ("x-request-id", FORGING_ID),
        ],
        b"",
    )
    .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("x-request-id"), Some(FORGING_ID));
    // From the allowed origin, with the forging request id.
    let forged_id = [("origin", ORIGIN), ("x-request-id", FORGING_ID)];
    let refused = send(gateway.addr, "GET", "/private/x", &forged_id, b"").await;
    assert_eq!(refused.status, 401);
    let failed = send(gateway.addr, "GET", "/api/x", &forged_id, b"").await;
    assert_eq!(failed.status, 502);
}

#[tokio::test]
async fn text_logs_quote_request_values_so_fields_cannot_be_forged() {
    let absent = crate::support::absent_upstream().await;
    let gateway = Gateway::start_with_log_format(&log_config(absent, ""), "text").await;
    send_forging_requests(&gateway).await;

    let denial = text_fields(
        &wait_for_line(&gateway, "CORS request denied").await,
        "CORS request denied",
    );
    assert_quoted(&denial, "origin", FORGING_ORIGIN);
    assert_quoted(&denial, "request_id", FORGING_ID);
    assert_quoted(&denial, "reason", "origin_not_allowed");
    assert_quoted(&denial, "detail", "origin not allowed");
    assert_quoted(&denial, "method", "OPTIONS");
    assert_quoted(&denial, "route", "/api/");

    let auth = text_fields(
        &wait_for_line(&gateway, "request refused by [auth]").await,
        "request refused by [auth]",
    );
    assert_quoted(&auth, "request_id", FORGING_ID);
    assert_quoted(&auth, "reason", "token_missing");

    let upstream = text_fields(
        &wait_for_line(&gateway, "upstream request failed").await,
        "upstream request failed",
    );
    assert_quoted(&upstream, "request_id", FORGING_ID);
    assert_quoted(&upstream, "reason", "upstream_unreachable");
    assert!(field(&upstream, "error").quoted);

    let lines = gateway.logs();
    assert!(
        lines
            .iter()
            .all(|line| !line.starts_with("https://") && !line.starts_with(' ')),
        "no line begins with request data: {lines:#?}"
    );
}

#[tokio::test]
async fn json_logs_carry_request_values_as_exact_strings() {
    let absent = crate::support::absent_upstream().await;
    let gateway = Gateway::start(&log_config(absent, "")).await;
    send_forging_requests(&gateway).await;
    for (message, reason) in [
        ("CORS request denied", "origin_not_allowed"),
        ("request refused by [auth]", "token_missing"),
        ("upstream request failed", "upstream_unreachable"),
    ] {
        let line = wait_for_line(&gateway, message).await;
        let json: Value = serde_json::from_str(&line).expect("one JSON object per line");
        assert_eq!(json["request_id"], FORGING_ID, "{line}");
        assert_eq!(json["reason"], reason, "{line}");
        if message == "CORS request denied" {
            assert_eq!(json["origin"], FORGING_ORIGIN, "{line}");
            assert_eq!(json["detail"], "origin not allowed", "{line}");
        }
    }
}

/// Sends `count` requests over `connections` keep-alive connections at once.
async fn flood(
    gateway: &Gateway,
    count: usize,
    connections: usize,
    request: (&str, &str, &[(&str, &str)]),
) {
    let (method, path, headers) = request;
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    let tasks: Vec<_> = (0..connections)
        .map(|connection| {
            let addr = gateway.addr;
            let (method, path, headers) = (method.to_owned(), path.to_owned(), headers.clone());
            let share = count / connections + usize::from(connection < count % connections);
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await.expect("connect");
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                for _ in 0..share {
                    client
                        .send(&method, &path, &headers, b"")
                        .await
                        .expect("an answer");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("flood task");
    }
}

/// Log lines with `message` (and `reason`), and the suppressed counts of the
/// summaries for `route` and `reason`.
fn count_lines(gateway: &Gateway, message: &str, route: &str, reason: &str) -> (u64, u64) {
    let mut lines = 0;
    let mut suppressed = 0;
    for line in gateway.logs() {
        let Ok(json) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if json["route"] != route || json["reason"] != reason {
            continue;
        }
        if json["message"] == message {
            lines += 1;
        } else if json["message"] == "log lines suppressed by denial_log_rate" {
            suppressed += json["suppressed"].as_u64().expect("a count");
        }
    }
    (lines, suppressed)
}

#[tokio::test]
async fn denial_floods_are_rate_limited_with_summaries_while_metrics_count_all() {
    const RATE: u64 = 5;
    const DENIALS: usize = 300;
    const REFUSALS: usize = 120;
    let upstream = TestUpstream::start().await;
    let gateway = Gateway::start(&log_config(
        upstream.addr,
        &format!("denial_log_rate = {RATE}"),
    ))
    .await;

    let started = Instant::now();
    let preflight: &[(&str, &str)] = &[
        ("origin", "https://evil.example"),
        ("access-control-request-method", "PUT"),
    ];
    flood(&gateway, DENIALS, 4, ("OPTIONS", "/api/x", preflight)).await;
    let bad_token: &[(&str, &str)] = &[("origin", ORIGIN), ("authorization", "Bearer not-a-token")];
    flood(&gateway, REFUSALS, 4, ("GET", "/private/x", bad_token)).await;
    let elapsed = started.elapsed();
    // Budgets are per whole second: the flood touched at most this many.
    let seconds = elapsed.as_secs() + 2;

    let denied = gateway
        .wait_metric(
            "crossgate_preflights_denied_total",
            &[("route", "/api/"), ("reason", "origin_not_allowed")],
            DENIALS as f64,
        )
        .await;
    assert_eq!(denied, DENIALS as f64, "metrics count every denial");
    let refused = gateway
        .wait_metric(
            "crossgate_requests_total",
            &[("route", "/private/"), ("code", "401")],
            REFUSALS as f64,
        )
        .await;
    assert_eq!(refused, REFUSALS as f64);
    let decisions = gateway.admin_get("/decisions").await;
    let decisions: Value = serde_json::from_slice(&decisions.body).expect("JSON");
    assert_eq!(
        decisions["denials"].as_array().map(Vec::len),
        decisions["capacity"].as_u64().map(|c| c as usize),
        "/decisions keeps recording every denial"
    );

    for (message, route, reason, total) in [
        (
            "CORS request denied",
            "/api/",
            "origin_not_allowed",
            DENIALS as u64,
        ),
        (
            "request refused by [auth]",
            "/private/",
            "token_invalid",
            REFUSALS as u64,
        ),
    ] {
        // The summaries come once a second: wait until they account for all.
        let deadline = Instant::now() + PATIENCE;
        let (lines, suppressed) = loop {
            let (lines, suppressed) = count_lines(&gateway, message, route, reason);
            if lines + suppressed >= total || Instant::now() > deadline {
                break (lines, suppressed);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            lines + suppressed,
            total,
            "{message}: every line is written or counted"
        );
        assert!(
            (RATE..=RATE * seconds).contains(&lines),
            "{message}: {lines} lines in {elapsed:?}, at most {RATE}/s"
        );
        assert!(
            suppressed > 0,
            "{message}: a summary says how many were suppressed"
        );
    }
}
