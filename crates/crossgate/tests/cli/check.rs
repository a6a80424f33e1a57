//! The `crossgate check` command: text and JSON output, exit codes 0/1/2.

use crossgate_testkit::probe_server::{answer, answer_cors, Asked};

use super::{assert_says, crossgate, crossgate_against, refused_url, Handler};

const ORIGIN: &str = "https://app.example";

/// `crossgate check <url> <args…>` for `/items` on a fresh server answering with `handler`.
async fn check(handler: Handler, args: &[&str]) -> (i32, String) {
    crossgate_against(handler, "check", "/items", args).await
}

fn echo_server(asked: &Asked<'_>) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    if asked.origin() != Some(ORIGIN) {
        return answer(200, &[("vary", "Origin")]);
    }
    answer_cors(
        asked,
        &[
            ("access-control-allow-origin", ORIGIN),
            ("access-control-allow-methods", "PUT"),
            ("vary", "Origin"),
        ],
    )
}

#[tokio::test]
async fn allowed_prints_each_step_and_exits_0() {
    let (code, out) = check(echo_server, &["--origin", ORIGIN, "-X", "PUT"]).await;
    assert_eq!(code, 0, "{out}");
    assert_says(
        &out,
        &[
            "step 1: preflight",
            "> access-control-request-method: PUT",
            "step 2: request",
            "ALLOWED",
        ],
    );
}

#[tokio::test]
async fn blocked_prints_the_reason_and_fix_and_exits_1() {
    let (code, out) = check(echo_server, &["--origin", "https://other.example"]).await;
    assert_eq!(code, 1, "{out}");
    assert_says(
        &out,
        &[
            "BLOCKED: the response has no `Access-Control-Allow-Origin` header",
            "fix: send `Access-Control-Allow-Origin: https://other.example`",
        ],
    );
}

#[tokio::test]
async fn json_output_is_one_document_with_the_same_content() {
    let (code, out) = check(
        echo_server,
        &[
            "--origin",
            ORIGIN,
            "-X",
            "DELETE",
            "-H",
            "X-Custom: 1",
            "--credentials",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(report["verdict"], "BLOCKED");
    assert_eq!(report["credentials"], "include");
    assert_eq!(report["steps"][0]["kind"], "preflight");
    assert_eq!(report["steps"][0]["exchange"]["status"], 204);
    let codes: Vec<&str> = report["block"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        [
            "missing_allow_credentials",
            "method_not_allowed",
            "header_not_allowed"
        ]
    );
}

#[tokio::test]
async fn could_not_run_exits_2() {
    let refused = refused_url();
    let (code, _, err) = crossgate(&["check", &refused, "--origin", ORIGIN]).await;
    assert_eq!(code, 2);
    assert!(err.contains("failed"), "{err}");
    for bad in [
        vec!["check", "ftp://x/", "--origin", ORIGIN],
        vec![
            "check",
            "http://127.0.0.1:1/",
            "--origin",
            "https://app.example/",
        ],
        vec![
            "check",
            "http://127.0.0.1:1/",
            "--origin",
            ORIGIN,
            "-X",
            "TRACE",
        ],
        vec![
            "check",
            "http://127.0.0.1:1/",
            "--origin",
            ORIGIN,
            "-H",
            "no-colon",
        ],
        vec!["check", "http://127.0.0.1:1/"],
    ] {
        let (code, _, err) = crossgate(&bad).await;
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    let (code, out, _) = crossgate(&["check", &refused, "--origin", ORIGIN, "--json"]).await;
    assert_eq!(code, 2);
    let error: serde_json::Value = serde_json::from_str(&out).expect("JSON error");
    assert!(error["error"].as_str().is_some());
}

#[tokio::test]
async fn help_describes_check_and_audit() {
    let (code, out, _) = crossgate(&["--help"]).await;
    assert_eq!(code, 0);
    assert_says(&out, &["check", "audit"]);
    let (_, check_help, _) = crossgate(&["check", "--help"]).await;
    for flag in [
        "--origin",
        "--method",
        "--header",
        "--credentials",
        "--json",
    ] {
        assert!(
            check_help.contains(flag),
            "{flag} missing from check --help"
        );
    }
    let (_, audit_help, _) = crossgate(&["audit", "--help"]).await;
    for flag in ["--trusted-origin", "--fail-on", "--json"] {
        assert!(
            audit_help.contains(flag),
            "{flag} missing from audit --help"
        );
    }
}

/// `*` in `Access-Control-Allow-Headers`, which the three browsers let cover
/// `Authorization` and the Fetch standard does not (docs/browsers.md).
fn wildcard_headers_server(
    asked: &Asked<'_>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    answer_cors(
        asked,
        &[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-headers", "*"),
        ],
    )
}

#[tokio::test]
async fn engine_all_says_which_engines_disagree_and_why() {
    let (code, out) = check(
        wildcard_headers_server,
        &[
            "--origin",
            ORIGIN,
            "-H",
            "Authorization: Bearer x",
            "--engine",
            "all",
        ],
    )
    .await;
    assert_eq!(
        code, 1,
        "the standard blocks it, so not every engine allows: {out}"
    );
    let summary = out.lines().next().unwrap_or_default();
    assert!(
        summary.starts_with(
            "crossgate check --engine all: works in Chromium, Firefox and WebKit (Safari); blocked by the Fetch standard: "
        ),
        "{out}"
    );
    assert!(
        summary.contains("Authorization"),
        "the reason names the header: {out}"
    );
    for (engine, verdict) in [
        ("chromium", "ALLOWED"),
        ("firefox", "ALLOWED"),
        ("webkit", "ALLOWED"),
        ("spec", "BLOCKED"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().take(2).eq([engine, verdict])),
            "{engine} should be {verdict}: {out}"
        );
    }

    let (code, out) = check(
        wildcard_headers_server,
        &["--origin", ORIGIN, "--engine", "all"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(
            "crossgate check --engine all: allowed in every engine and by the standard\n"
        ),
        "{out}"
    );
}
