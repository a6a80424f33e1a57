//! Report-only policies (`report_only_policy`): the candidate decides beside
//! the enforced policy; differences are counted in `/metrics`, recorded in
//! `/decisions` with both decisions and logged within the denial budget,
//! and the response is exactly what it is without the candidate.

use serde_json::Value;

use crate::support::config::Config;
use crate::support::process::{sample, Gateway};
use crate::support::{preflight, send, Reply, TempDir, TestGateway, TestUpstream};

/// Allowed by both policies.
const BOTH: &str = "https://both.example";
/// Allowed by the enforced policy only.
const OLD: &str = "https://old.example";
/// Allowed by the candidate only.
const NEW: &str = "https://new.example";
/// Allowed by neither.
const EVIL: &str = "https://evil.example";

const DIFFERENCES: &str = "crossgate_report_only_differences_total";

/// `/api/` enforces `current` and reports `next`, which swaps `OLD` for
/// `NEW`, drops the `x-legacy` request header and credentials; `/open/` has
/// no policy and reports `next`; `/status` is a mock reporting `next`.
/// `extra` is appended to `/api/`'s route table.
fn config(upstream: &TestUpstream, report_only: bool, extra: &str) -> String {
    let next = if report_only {
        r#"report_only_policy = "next""#
    } else {
        ""
    };
    let url = upstream.url();
    Config::server(&[r#"admin = "127.0.0.1:0""#, "denial_log_rate = 1"])
        .policy(
            "current",
            &[BOTH, OLD],
            &[
                r#"methods = ["PUT", "DELETE"]"#,
                r#"request_headers = ["content-type", "x-legacy"]"#,
                r#"expose_headers = ["x-total"]"#,
                "credentials = true",
                "max_age = 600",
            ],
        )
        .policy(
            "next",
            &[BOTH, NEW],
            &[
                r#"methods = ["PUT"]"#,
                r#"request_headers = ["content-type"]"#,
                "max_age = 60",
            ],
        )
        .proxy("/api/", &url, "current", &[next, extra])
        .route("/open/", &[&format!("upstream = \"{url}\""), next])
        .route(
            "/status",
            &[
                r#"mock = { status = 200, headers = { "content-type" = "text/plain" }, body = "ok" }"#,
                r#"policy = "current""#,
                next,
            ],
        )
        .render()
}

async fn get_from(addr: std::net::SocketAddr, path: &str, origin: &str) -> Reply {
    send(addr, "GET", path, &[("origin", origin)], b"").await
}

/// The report-only series of `/metrics`, as (route, reason, count).
fn difference_series(metrics: &str) -> Vec<(String, String, f64)> {
    metrics
        .lines()
        .filter(|line| line.starts_with(DIFFERENCES))
        .map(|line| {
            let route = line
                .split("route=\"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            let reason = line
                .split("reason=\"")
                .nth(1)
                .and_then(|r| r.split('"').next());
            let count = line.rsplit(' ').next().and_then(|c| c.parse().ok());
            (
                route.unwrap_or_default().to_owned(),
                reason.unwrap_or_default().to_owned(),
                count.unwrap_or(-1.0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differences_are_counted_by_route_and_reason() {
    let upstream = TestUpstream::start().await;
    let gateway = Gateway::start(&config(&upstream, true, "")).await;

    for _ in 0..5 {
        assert_eq!(get_from(gateway.addr, "/api/x", BOTH).await.status, 200);
    }
    for _ in 0..3 {
        let reply = get_from(gateway.addr, "/api/x", OLD).await;
        assert_eq!(reply.header("access-control-allow-origin"), Some(OLD));
    }
    for _ in 0..2 {
        let reply = get_from(gateway.addr, "/api/x", NEW).await;
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    // Denied by both, and not CORS at all: no difference.
    get_from(gateway.addr, "/api/x", EVIL).await;
    send(gateway.addr, "GET", "/api/x", &[], b"").await;
    // Both allow the origin; only the enforced policy allows `x-legacy`.
    let legacy = preflight(gateway.addr, "/api/x", BOTH, "PUT", "x-legacy").await;
    assert_eq!(legacy.status, 204);
    // Both deny, for different reasons: the enforced policy NEW's origin,
    // the candidate its `x-legacy`.
    let both_deny = preflight(gateway.addr, "/api/x", NEW, "PUT", "x-legacy").await;
    assert_eq!(both_deny.status, 403);
    // Only the enforced policy allows DELETE.
    let delete = preflight(gateway.addr, "/api/x", BOTH, "DELETE", "").await;
    assert_eq!(delete.status, 204);
    // Both allow: same verdict, other headers (max-age, methods) do not count.
    assert_eq!(
        preflight(gateway.addr, "/api/x", BOTH, "PUT", "content-type")
            .await
            .status,
        204
    );
    // No policy on /open/: the candidate would deny OLD and EVIL.
    get_from(gateway.addr, "/open/x", OLD).await;
    get_from(gateway.addr, "/open/x", EVIL).await;
    get_from(gateway.addr, "/open/x", NEW).await;
    // A mock route is observed like any other.
    get_from(gateway.addr, "/status", NEW).await;

    let metrics = gateway.metrics().await;
    let mut series = difference_series(&metrics);
    series.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let expected: Vec<(String, String, f64)> = [
        ("/api/", "header_not_allowed", 2.0),
        ("/api/", "method_not_allowed", 1.0),
        ("/api/", "origin_not_allowed", 3.0),
        ("/api/", "would_allow", 2.0),
        ("/open/", "origin_not_allowed", 2.0),
        ("/status", "would_allow", 1.0),
    ]
    .iter()
    .map(|(route, reason, count)| (route.to_string(), reason.to_string(), *count))
    .collect();
    assert_eq!(series, expected, "{metrics}");
    assert!(metrics.contains(&format!("# TYPE {DIFFERENCES} counter")));
    // The enforced policy's own counters are untouched by the candidate.
    assert_eq!(
        sample(
            &metrics,
            "crossgate_actual_denied_total",
            &[("route", "/api/"), ("reason", "origin_not_allowed")]
        ),
        Some(3.0),
        "2 from NEW and 1 from EVIL, as enforced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_record_both_decisions_marked_report_only() {
    let upstream = TestUpstream::start().await;
    let gateway = Gateway::start(&config(&upstream, true, "")).await;

    send(
        gateway.addr,
        "GET",
        "/api/x",
        &[("origin", OLD), ("x-request-id", "req-old")],
        b"",
    )
    .await;
    send(gateway.addr, "GET", "/api/x", &[("origin", BOTH)], b"").await;
    preflight(gateway.addr, "/api/x", NEW, "PUT", "").await;
    get_from(gateway.addr, "/open/x", EVIL).await;

    let reply = gateway.admin_get("/decisions").await;
    let json: Value = serde_json::from_slice(&reply.body).expect("JSON");
    let entries = json["denials"].as_array().expect("denials array");
    // Newest first: /open/ (report-only), the preflight's denial (recorded
    // when answered) after its report-only difference (recorded when
    // decided), OLD's difference. BOTH left no entry.
    let summary: Vec<(bool, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["report_only"].as_bool().expect("report_only flag"),
                e["route"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (true, "/open/", "origin_not_allowed"),
            (false, "/api/", "origin_not_allowed"),
            (true, "/api/", "would_allow"),
            (true, "/api/", "origin_not_allowed"),
        ],
        "{json}"
    );

    let open = &entries[0];
    assert_eq!(open["origin"], EVIL);
    assert_eq!(open["enforced"]["policy"], Value::Null);
    assert_eq!(open["enforced"]["outcome"], "none");
    assert_eq!(open["candidate"]["policy"], "next");
    assert_eq!(open["candidate"]["outcome"], "actual_denied");

    let would_allow = &entries[2];
    assert_eq!(would_allow["method"], "OPTIONS");
    assert_eq!(would_allow["origin"], NEW);
    assert_eq!(
        would_allow["enforced"],
        serde_json::json!({"policy": "current", "outcome": "preflight_denied",
            "reason": "origin_not_allowed", "message": "origin not allowed"})
    );
    assert_eq!(
        would_allow["candidate"],
        serde_json::json!({"policy": "next", "outcome": "preflight_allowed",
            "reason": null, "message": null})
    );
    assert_eq!(
        would_allow["message"],
        "report-only policy `next` would allow"
    );
    // The enforced denial stays an ordinary entry.
    assert!(entries[1].get("enforced").is_none() && entries[1].get("candidate").is_none());

    let old = &entries[3];
    assert_eq!(old["request_id"], "req-old");
    assert_eq!(old["method"], "GET");
    assert_eq!(old["enforced"]["outcome"], "actual_allowed");
    assert_eq!(old["enforced"]["reason"], Value::Null);
    assert_eq!(old["candidate"]["outcome"], "actual_denied");
    assert_eq!(old["candidate"]["reason"], "origin_not_allowed");
    assert_eq!(
        old["message"],
        "report-only policy `next` would deny: origin not allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn difference_log_lines_are_info_and_rate_limited() {
    let upstream = TestUpstream::start().await;
    let gateway = Gateway::start(&config(&upstream, true, "")).await;
    for _ in 0..6 {
        get_from(gateway.addr, "/api/x", OLD).await;
    }
    let metrics = gateway.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            DIFFERENCES,
            &[("route", "/api/"), ("reason", "origin_not_allowed")]
        ),
        Some(6.0)
    );
    let differences = || -> Vec<String> {
        gateway
            .logs()
            .into_iter()
            .filter(|line| line.contains("report-only policy decided otherwise"))
            .collect()
    };
    crate::support::eventually("a report-only log line", || !differences().is_empty()).await;
    // Let stderr drain: the last request's line, if written, is read by now.
    gateway.admin_get("/metrics").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let lines = differences();
    // denial_log_rate = 1: one line a second, however the six fell.
    assert!(!lines.is_empty() && lines.len() < 6, "{lines:#?}");
    let line: Value = serde_json::from_str(&lines[0]).expect("JSON log line");
    assert_eq!(line["level"], "INFO", "{line}");
    let fields = &line;
    assert_eq!(fields["candidate_policy"], "next", "{line}");
    assert_eq!(fields["enforced_outcome"], "actual_allowed", "{line}");
    assert_eq!(fields["reason"], "origin_not_allowed", "{line}");
}

/// A response's status, every header but `date` (in order, byte for byte) and body.
type Answer = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

fn answer(reply: &Reply) -> Answer {
    let headers = reply
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    (reply.status.as_u16(), headers, reply.body.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_candidate_never_changes_the_response() {
    let upstream = TestUpstream::start().await;
    let observed = TestGateway::start(&config(&upstream, true, "")).await;
    let plain = TestGateway::start(&config(&upstream, false, "")).await;

    let cookie = ("cookie", "session=1");
    // (method, path, headers)
    type Request<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let mut requests: Vec<Request> = Vec::new();
    // `/cors/` paths: the upstream sets its own CORS headers.
    for path in [
        "/api/x",
        "/api/cors/x",
        "/open/x",
        "/open/cors/x",
        "/status",
    ] {
        for origin in [BOTH, OLD, NEW, EVIL] {
            requests.push(("GET", path, vec![("origin", origin), cookie]));
            requests.push((
                "POST",
                path,
                vec![("origin", origin), ("content-type", "text/plain")],
            ));
            for (method, headers) in [
                ("PUT", ""),
                ("PUT", "content-type"),
                ("PUT", "x-legacy"),
                ("PUT", "x-unknown"),
                ("DELETE", ""),
                ("PATCH", ""),
            ] {
                let mut preflight = vec![
                    ("origin", origin),
                    ("access-control-request-method", method),
                ];
                if !headers.is_empty() {
                    preflight.push(("access-control-request-headers", headers));
                }
                requests.push(("OPTIONS", path, preflight));
            }
        }
        requests.push(("GET", path, vec![cookie]));
        requests.push((
            "OPTIONS",
            path,
            vec![("origin", "null"), ("access-control-request-method", "GET")],
        ));
    }
    for (method, path, headers) in &requests {
        let mut headers = headers.clone();
        headers.push(("x-request-id", "fixed-id"));
        let with = send(observed.addr, method, path, &headers, b"").await;
        let without = send(plain.addr, method, path, &headers, b"").await;
        assert_eq!(
            answer(&with),
            answer(&without),
            "{method} {path} {headers:?}"
        );
    }
    // The mix did produce differences: the candidate decided on it.
    let metrics = observed.metrics.render();
    let counted: f64 = difference_series(&metrics).iter().map(|(_, _, n)| n).sum();
    assert!(counted >= 40.0, "{metrics}");
    assert!(difference_series(&plain.metrics.render()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_swaps_the_candidate() {
    let upstream = TestUpstream::start().await;
    let gateway = TestGateway::start(&config(&upstream, true, "")).await;
    let count = |reason: &str| {
        sample(
            &gateway.metrics.render(),
            DIFFERENCES,
            &[("route", "/api/"), ("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    get_from(gateway.addr, "/api/x", OLD).await;
    assert_eq!(count("origin_not_allowed"), 1.0);

    // The first `report_only_policy` is /api/'s: it now reports `strict`,
    // which allows BOTH only.
    let swapped = config(&upstream, true, "").replacen(
        "report_only_policy = \"next\"",
        "report_only_policy = \"strict\"",
        1,
    ) + &format!("\n[policies.strict]\norigins = [\"{BOTH}\"]\n");
    gateway.reload_with(&swapped).expect("reload");
    get_from(gateway.addr, "/api/x", OLD).await;
    get_from(gateway.addr, "/api/x", NEW).await;
    assert_eq!(count("origin_not_allowed"), 2.0, "strict denies OLD too");
    assert_eq!(count("would_allow"), 0.0, "strict does not allow NEW");

    // Removing the key stops the reporting.
    gateway
        .reload_with(&config(&upstream, false, ""))
        .expect("reload");
    get_from(gateway.addr, "/api/x", OLD).await;
    assert_eq!(count("origin_not_allowed"), 2.0);
}

fn validate(text: &str) -> (bool, String) {
    let dir = TempDir::new("report-only");
    let path = dir.write("crossgate.toml", text);
    let output = crate::support::process::validate(&path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn validate_lists_report_only_routes_and_refuses_unknown_names() {
    let upstream = TestUpstream::start().await;
    let (ok, output) = validate(&config(&upstream, true, ""));
    assert!(ok, "{output}");
    assert!(
        output.contains("report-only: route \"/api/\" enforces `current` and reports where `next` would decide otherwise"),
        "{output}"
    );
    assert!(
        output.contains("report-only: route \"/open/\" enforces no policy"),
        "{output}"
    );

    let (ok, output) = validate(&config(&upstream, false, "report_only_policy = \"nxt\""));
    assert!(!ok, "{output}");
    assert!(output.contains("routes[0].report_only_policy"), "{output}");
    assert!(
        output.contains("there is no policy named `nxt`"),
        "{output}"
    );
    assert!(output.contains("use one of `current`, `next`"), "{output}");

    // A second unknown name elsewhere is reported too: all problems at once.
    let two = config(&upstream, false, "report_only_policy = \"nxt\"").replace(
        "path = \"/open/\"\n",
        "path = \"/open/\"\nreport_only_policy = \"later\"\n",
    );
    let (ok, output) = validate(&two);
    assert!(!ok, "{output}");
    assert!(output.contains("routes[1].report_only_policy"), "{output}");
    assert!(
        output.contains("`nxt`") && output.contains("`later`"),
        "{output}"
    );

    let (ok, output) = validate(&config(
        &upstream,
        false,
        "report_only_policy = \"current\"",
    ));
    assert!(ok, "naming the enforced policy is harmless: {output}");
    assert!(output.contains("routes[0].report_only_policy"), "{output}");
    assert!(output.contains("never differ"), "{output}");
    assert!(
        !output.contains("report-only: route"),
        "nothing is observed: {output}"
    );
}

/// On a private route without `policy`, a preflight without credentials is
/// not a CORS question for the gateway today; the candidate, once enforced,
/// would answer it with every gateway method (as `[auth]` routes do), so it
/// is judged with those, not with the route's narrower list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_route_is_judged_with_the_methods_its_policy_would_have() {
    let upstream = TestUpstream::start().await;
    let config = Config::server(&[])
        .auth(&[], &[("writer-token-0123456789", &["read", "write"])])
        .policy("next", &[BOTH], &[r#"methods = ["PUT"]"#])
        .route(
            "/private/",
            &[
                &format!("upstream = \"{}\"", upstream.url()),
                r#"access = "private""#,
                r#"methods = ["GET"]"#,
                r#"report_only_policy = "next""#,
            ],
        )
        .render();
    let gateway = TestGateway::start(&config).await;
    let without = preflight(gateway.addr, "/private/x", BOTH, "PUT", "").await;
    assert_eq!(
        without.status, 405,
        "no policy: OPTIONS is not a declared method"
    );
    let with = gateway
        .send(
            "OPTIONS",
            "/private/x",
            &[
                ("origin", BOTH),
                ("access-control-request-method", "PUT"),
                ("authorization", "Bearer writer-token-0123456789"),
            ],
            b"",
        )
        .await;
    assert_eq!(with.status, 405, "the route declares GET only");
    let metrics = gateway.metrics.render();
    assert_eq!(
        difference_series(&metrics),
        [("/private/".to_owned(), "method_not_allowed".to_owned(), 1.0)],
        "only the credentialed preflight is judged with the route's methods: {metrics}"
    );
}

/// A request refused for its head's size is not a CORS decision: neither its
/// enforced denial nor a report-only difference is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_for_their_head_are_not_observed() {
    let upstream = TestUpstream::start().await;
    let config = config(&upstream, true, "").replace(
        "denial_log_rate = 1\n",
        "denial_log_rate = 1\nmax_header_bytes = 1024\n",
    );
    let gateway = TestGateway::start(&config).await;
    let padding = "p".repeat(2000);
    let reply = gateway
        .get("/api/x", &[("origin", OLD), ("x-padding", &padding)])
        .await;
    assert_eq!(reply.status, 431);
    assert!(difference_series(&gateway.metrics.render()).is_empty());
    get_from(gateway.addr, "/api/x", OLD).await;
    assert_eq!(difference_series(&gateway.metrics.render()).len(), 1);
}
