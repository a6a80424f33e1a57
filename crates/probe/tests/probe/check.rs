//! `crossgate check` against small servers that each give one kind of wrong
//! (or right) CORS answer: the verdict, the reason, the fix, and which
//! requests actually went out.

use std::time::Duration;

use crossgate_cors::browser::{Engine, RequestError};
use crossgate_probe::check::{check_with, CheckError, CheckInput, CheckReport, StepKind, Verdict};
use crossgate_probe::Prober;

use crossgate_testkit::fixture;
use crossgate_testkit::probe_server::{answer, answer_cors, Asked, TestServer};

const ORIGIN: &str = "https://app.example";

fn input(url: String, method: &str, headers: &[(&str, &str)], credentials: bool) -> CheckInput {
    CheckInput {
        url,
        origin: ORIGIN.to_owned(),
        method: method.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: None,
        credentials,
        engine: Engine::Chromium,
    }
}

async fn run(input: &CheckInput) -> CheckReport {
    let prober = Prober::new(Duration::from_secs(5), None).expect("prober");
    check_with(&prober, input).await.expect("check runs")
}

/// A check of a `fetch()` from ORIGIN of `path` on `server`.
async fn check(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    credentials: bool,
) -> CheckReport {
    run(&input(server.url(path), method, headers, credentials)).await
}

/// A plain `fetch()` GET of `path`, with or without credentials.
async fn check_get(server: &TestServer, path: &str, credentials: bool) -> CheckReport {
    check(server, "GET", path, &[], credentials).await
}

/// A server that gives every request the same answer.
async fn always(status: u16, headers: &'static [(&'static str, &'static str)]) -> TestServer {
    TestServer::start(move |_: &Asked<'_>| answer(status, headers)).await
}

fn codes(report: &CheckReport) -> Vec<String> {
    report
        .block
        .as_ref()
        .map(|b| b.problems.iter().map(|p| p.code.clone()).collect())
        .unwrap_or_default()
}

fn first_fix(report: &CheckReport) -> String {
    report.block.as_ref().expect("blocked").problems[0]
        .fix
        .clone()
}

/// A correct server: echoes the allowed origin, answers preflights with 204.
fn good(asked: &Asked<'_>) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let origin = asked.origin().unwrap_or("");
    let allowed = origin == ORIGIN;
    if asked.is_preflight() {
        if !allowed {
            return answer(403, &[("vary", "Origin")]);
        }
        return answer(
            204,
            &[
                ("access-control-allow-origin", ORIGIN),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "GET, PUT, DELETE, patch"),
                (
                    "access-control-allow-headers",
                    "content-type, x-custom, authorization",
                ),
                ("access-control-max-age", "86400"),
                ("vary", "Origin"),
            ],
        );
    }
    let mut headers = vec![
        ("content-type", "text/plain"),
        ("x-request-id", "42"),
        ("x-secret", "s"),
        ("vary", "Origin"),
    ];
    if allowed {
        headers.push(("access-control-allow-origin", ORIGIN));
        headers.push(("access-control-allow-credentials", "true"));
        headers.push(("access-control-expose-headers", "x-request-id"));
    }
    answer(200, &headers)
}

#[tokio::test]
async fn a_simple_get_sends_no_preflight_and_reports_readable_headers() {
    let server = TestServer::start(good).await;
    let report = check(
        &server,
        "get",
        "/items",
        &[("Accept-Language", "de")],
        false,
    )
    .await;
    assert_eq!(report.verdict, Verdict::Allowed);
    assert_eq!(report.method, "GET");
    assert_eq!(server.methods_seen(), ["GET"]);
    assert_eq!(report.steps.len(), 1);
    assert_eq!(report.status, Some(200));
    assert_eq!(
        report.readable_headers,
        ["content-type", "x-request-id", "content-length"]
    );
    let hidden: Vec<&str> = report
        .hidden_headers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(hidden, ["x-secret", "vary", "date"]);
    assert_eq!(
        report.hidden_headers[0].fix,
        "add `x-secret` to `Access-Control-Expose-Headers`"
    );
    let seen = &server.seen()[0];
    assert_eq!(seen.headers["origin"], ORIGIN);
    assert_eq!(seen.headers["sec-fetch-mode"], "cors");
}

#[tokio::test]
async fn a_preflighted_put_sends_the_chromium_preflight_then_the_request() {
    let server = TestServer::start(good).await;
    let report = check(
        &server,
        "put",
        "/items",
        &[("Content-Type", "application/json"), ("X-Custom", "1")],
        true,
    )
    .await;
    assert_eq!(report.verdict, Verdict::Allowed, "{report:#?}");
    assert_eq!(server.methods_seen(), ["OPTIONS", "PUT"]);
    let preflight = &server.seen()[0];
    assert_eq!(preflight.headers["access-control-request-method"], "PUT");
    assert_eq!(
        preflight.headers["access-control-request-headers"],
        "content-type,x-custom"
    );
    assert!(!preflight.headers.contains_key("x-custom"));
    assert_eq!(report.steps[0].kind, StepKind::Preflight);
    assert_eq!(
        report.steps[0].cached_seconds,
        Some(7200),
        "Chromium caps 86400 s at 2 hours"
    );
    assert_eq!(report.steps[0].max_age_requested, Some(86400));
    let actual = &server.seen()[1];
    assert_eq!(actual.headers["x-custom"], "1");
}

#[tokio::test]
async fn firefox_caps_max_age_at_a_day_and_absent_max_age_is_5_seconds() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let max_age = if asked.path == "/none" {
            None
        } else {
            Some("172800")
        };
        let mut headers = vec![
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "DELETE"),
        ];
        headers.extend(max_age.map(|m| ("access-control-max-age", m)));
        answer_cors(asked, &headers)
    })
    .await;
    let mut firefox = input(server.url("/x"), "DELETE", &[], false);
    firefox.engine = Engine::Firefox;
    assert_eq!(run(&firefox).await.steps[0].cached_seconds, Some(86400));
    let default = check(&server, "DELETE", "/none", &[], false).await;
    assert_eq!(default.steps[0].cached_seconds, Some(5));
    assert_eq!(default.steps[0].max_age_requested, None);
}

#[tokio::test]
async fn no_allow_origin_blocks_with_the_exact_header_to_add() {
    let server = always(200, &[("content-type", "text/plain")]).await;
    let report = check_get(&server, "/", false).await;
    assert_eq!(report.verdict, Verdict::Blocked);
    assert_eq!(codes(&report), ["missing_allow_origin"]);
    assert!(
        first_fix(&report).starts_with("send `Access-Control-Allow-Origin: https://app.example`")
    );
}

#[tokio::test]
async fn a_trailing_slash_in_allow_origin_blocks() {
    let server = always(
        200,
        &[("access-control-allow-origin", "https://app.example/")],
    )
    .await;
    let report = check_get(&server, "/", false).await;
    assert_eq!(codes(&report), ["allow_origin_mismatch"]);
}

#[tokio::test]
async fn two_allow_origin_headers_block() {
    let server = always(
        200,
        &[
            ("access-control-allow-origin", ORIGIN),
            ("access-control-allow-origin", ORIGIN),
        ],
    )
    .await;
    let report = check_get(&server, "/", false).await;
    assert_eq!(codes(&report), ["multiple_allow_origin"]);
}

#[tokio::test]
async fn a_wildcard_with_credentials_blocks_only_credentialed_requests() {
    let server = always(
        200,
        &[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
        ],
    )
    .await;
    let credentialed = check_get(&server, "/", true).await;
    assert_eq!(codes(&credentialed), ["wildcard_origin_with_credentials"]);
    assert!(first_fix(&credentialed).contains("Access-Control-Allow-Origin: https://app.example"));
    let anonymous = check_get(&server, "/", false).await;
    assert_eq!(anonymous.verdict, Verdict::Allowed);
}

#[tokio::test]
async fn credentials_need_allow_credentials_exactly_true() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let mut headers = vec![("access-control-allow-origin", ORIGIN)];
        match asked.path {
            "/upper" => headers.push(("access-control-allow-credentials", "True")),
            "/good" => headers.push(("access-control-allow-credentials", "true")),
            _ => {}
        }
        answer(200, &headers)
    })
    .await;
    assert_eq!(
        codes(&check_get(&server, "/none", true).await),
        ["missing_allow_credentials"]
    );
    assert_eq!(
        codes(&check_get(&server, "/upper", true).await),
        ["allow_credentials_not_true"]
    );
    assert_eq!(
        check_get(&server, "/good", true).await.verdict,
        Verdict::Allowed
    );
}

#[tokio::test]
async fn a_failed_preflight_stops_before_the_actual_request() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        if asked.method == http::Method::OPTIONS {
            answer(401, &[("www-authenticate", "Bearer")])
        } else {
            answer(200, &[("access-control-allow-origin", "*")])
        }
    })
    .await;
    let report = check(&server, "DELETE", "/", &[], false).await;
    assert_eq!(report.verdict, Verdict::Blocked);
    assert_eq!(
        server.methods_seen(),
        ["OPTIONS"],
        "the DELETE must never be sent"
    );
    assert_eq!(
        codes(&report),
        [
            "missing_allow_origin",
            "preflight_status",
            "method_not_allowed"
        ]
    );
    assert!(report.block.as_ref().expect("blocked").problems[1]
        .fix
        .contains("status 204"));
}

#[tokio::test]
async fn a_redirected_preflight_is_reported_and_not_followed() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        if asked.path == "/old" {
            answer(
                301,
                &[
                    ("location", "/new"),
                    ("access-control-allow-origin", "*"),
                    ("access-control-allow-methods", "PUT"),
                ],
            )
        } else {
            answer(
                204,
                &[
                    ("access-control-allow-origin", "*"),
                    ("access-control-allow-methods", "PUT"),
                ],
            )
        }
    })
    .await;
    let report = check(&server, "PUT", "/old", &[], false).await;
    assert_eq!(codes(&report), ["preflight_redirect"]);
    assert_eq!(
        server.seen().len(),
        1,
        "the redirect target must not be contacted"
    );
    assert!(first_fix(&report).contains("/new"));
}

#[tokio::test]
async fn method_case_matters_and_lowercase_patch_stays_lowercase() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let methods = if asked.path == "/upper" {
            "GET, PATCH"
        } else {
            "patch"
        };
        answer_cors(
            asked,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", methods),
            ],
        )
    })
    .await;
    let upper = check(&server, "patch", "/upper", &[], false).await;
    assert_eq!(codes(&upper), ["method_not_allowed"]);
    assert_eq!(
        first_fix(&upper),
        "add `patch` to `Access-Control-Allow-Methods` (methods are case-sensitive)"
    );
    assert_eq!(
        server.seen()[0].headers["access-control-request-method"],
        "patch"
    );
    let lower = check(&server, "patch", "/lower", &[], false).await;
    assert_eq!(lower.verdict, Verdict::Allowed);
}

#[tokio::test]
async fn authorization_is_covered_by_a_wildcard_in_browsers_but_not_in_the_standard() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let headers = if asked.path == "/named" {
            "*, authorization"
        } else {
            "*"
        };
        answer_cors(
            asked,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-headers", headers),
            ],
        )
    })
    .await;
    let mut spec = input(
        server.url("/star"),
        "GET",
        &[("Authorization", "Bearer t")],
        false,
    );
    let chromium = run(&spec).await;
    assert_eq!(chromium.verdict, Verdict::Allowed);
    assert_eq!(
        chromium.departures[0].scenario, "authorization_under_wildcard",
        "Chromium's departure from the standard is named"
    );
    spec.engine = Engine::Spec;
    let star = run(&spec).await;
    assert_eq!(codes(&star), ["header_not_allowed"]);
    assert!(first_fix(&star).contains("`*` never covers Authorization"));
    assert!(star.departures.is_empty());
    let named = check(
        &server,
        "GET",
        "/named",
        &[("Authorization", "Bearer t")],
        false,
    )
    .await;
    assert_eq!(named.verdict, Verdict::Allowed);
    let custom = check(&server, "GET", "/star", &[("X-Custom", "1")], false).await;
    assert_eq!(
        custom.verdict,
        Verdict::Allowed,
        "`*` covers other headers without credentials"
    );
}

#[tokio::test]
async fn header_wildcard_does_not_count_with_credentials() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        answer_cors(
            asked,
            &[
                ("access-control-allow-origin", ORIGIN),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-headers", "*"),
                ("access-control-allow-methods", "*"),
            ],
        )
    })
    .await;
    let report = check(&server, "PUT", "/", &[("X-Custom", "1")], true).await;
    assert_eq!(codes(&report), ["method_not_allowed", "header_not_allowed"]);
}

#[tokio::test]
async fn redirects_of_the_actual_request_are_reported_and_checked() {
    let server = TestServer::start(|asked: &Asked<'_>| match asked.path {
        "/moved" => answer(
            302,
            &[("location", "/final"), ("access-control-allow-origin", "*")],
        ),
        "/bare-redirect" => answer(302, &[("location", "/final")]),
        _ => answer(200, &[("access-control-allow-origin", "*")]),
    })
    .await;
    let report = check_get(&server, "/moved", false).await;
    assert_eq!(report.verdict, Verdict::Allowed);
    assert_eq!(report.steps.len(), 2);
    assert!(
        report.steps[0].outcome.starts_with("redirect followed to"),
        "{}",
        report.steps[0].outcome
    );
    let paths: Vec<String> = server.seen().iter().map(|s| s.path.clone()).collect();
    assert_eq!(paths, ["/moved", "/final"]);
    let bare = check_get(&server, "/bare-redirect", false).await;
    assert_eq!(bare.verdict, Verdict::Blocked);
    assert_eq!(codes(&bare), ["missing_allow_origin"]);
}

#[tokio::test]
async fn a_redirect_loop_stops_after_twenty() {
    let server = always(
        307,
        &[("location", "/again"), ("access-control-allow-origin", "*")],
    )
    .await;
    let report = check_get(&server, "/again", false).await;
    assert_eq!(codes(&report), ["too_many_redirects"]);
    assert_eq!(server.seen().len(), 21);
}

#[tokio::test]
async fn error_statuses_are_readable_when_cors_headers_are_there() {
    let server = always(502, &[("access-control-allow-origin", "*")]).await;
    let report = check_get(&server, "/", false).await;
    assert_eq!(report.verdict, Verdict::Allowed);
    assert_eq!(report.status, Some(502));
}

#[tokio::test]
async fn same_origin_requests_do_not_use_cors() {
    let server = always(200, &[]).await;
    let mut same = input(server.url("/"), "PUT", &[("X-Custom", "1")], false);
    same.origin = format!("http://{}", server.addr);
    let report = run(&same).await;
    assert!(!report.cross_origin);
    assert_eq!(report.verdict, Verdict::Allowed);
    assert_eq!(server.methods_seen(), ["PUT"]);
}

#[tokio::test]
async fn https_servers_are_checked_with_a_private_ca() {
    let server = TestServer::start_tls(good).await;
    let prober = Prober::new(Duration::from_secs(5), Some(&fixture("ca.pem"))).expect("prober");
    let report = check_with(
        &prober,
        &input(server.url("/items"), "PUT", &[("X-Custom", "1")], true),
    )
    .await
    .expect("check over TLS");
    assert_eq!(report.verdict, Verdict::Allowed, "{report:#?}");
    assert!(report.url.starts_with("https://localhost:"));
    assert_eq!(server.methods_seen(), ["OPTIONS", "PUT"]);
}

#[tokio::test]
async fn a_text_body_is_sent_as_fetch_sends_it() {
    let server = always(200, &[("access-control-allow-origin", "*")]).await;
    let mut post = input(server.url("/form"), "POST", &[], false);
    post.body = Some("a=1".to_owned());
    let report = run(&post).await;
    assert_eq!(report.verdict, Verdict::Allowed);
    assert_eq!(
        server.methods_seen(),
        ["POST"],
        "text/plain is safelisted: no preflight"
    );
    assert_eq!(
        server.seen()[0].headers["content-type"],
        "text/plain;charset=UTF-8"
    );
    let mut get = input(server.url("/form"), "GET", &[], false);
    get.body = Some("a=1".to_owned());
    let prober = Prober::new(Duration::from_secs(5), None).expect("prober");
    assert!(matches!(
        check_with(&prober, &get).await,
        Err(CheckError::Request(RequestError::BodyNotAllowed(_)))
    ));
}
