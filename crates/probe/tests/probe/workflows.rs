//! `check --curl` and `check --har`: the requests people already have,
//! from DevTools. The HAR is a real Chromium 156 session
//! (fixtures/har/chromium.har, recorded by fixtures/har/capture-chromium-har.py).

use std::time::Duration;

use crossgate_cors::browser::Engine;
use crossgate_probe::check::{check_with, StepKind, Verdict};
use crossgate_probe::curl::parse_curl;
use crossgate_probe::har::{check_har, har_fetches};
use crossgate_probe::Prober;

use crossgate_testkit::fixture;
use crossgate_testkit::probe_server::{answer_cors, reflect_with_credentials, Asked, TestServer};

fn prober() -> Prober {
    Prober::new(Duration::from_secs(5), None).expect("prober")
}

/// The browser's own headers in a copied command (User-Agent, Sec-Fetch-*,
/// Accept-Language, ...) are not taken as the script's: a strict server that
/// allows no request header still allows the fetch, with no preflight.
#[tokio::test]
async fn a_copied_chromium_command_checks_the_script_s_fetch_not_the_browser_s_headers() {
    let server = TestServer::start(reflect_with_credentials).await;
    let command = format!(
        "curl '{}' \\\n  -H 'accept: */*' \\\n  -H 'accept-language: en-US,en;q=0.9' \\\n  -b 'sid=1' \\\n  \
         -H 'origin: https://app.example.com' \\\n  -H 'referer: https://app.example.com/' \\\n  \
         -H 'sec-fetch-mode: cors' \\\n  -H 'sec-ch-ua-platform: \"Linux\"' \\\n  \
         -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0'",
        server.url("/api")
    );
    let fetch = parse_curl(&command, None, Engine::Chromium).expect("parses");
    assert!(fetch.input.credentials, "-b means credentials: 'include'");
    assert!(fetch.input.headers.is_empty(), "{:?}", fetch.input.headers);
    let report = check_with(&prober(), &fetch.input)
        .await
        .expect("check runs");
    assert_eq!(report.verdict, Verdict::Allowed);
    assert_eq!(report.credentials, "include");
    assert_eq!(
        server.methods_seen(),
        ["GET"],
        "no preflight for the browser's own headers"
    );
    let ignored: Vec<&str> = fetch.ignored.iter().map(|h| h.name.as_str()).collect();
    assert!(ignored.contains(&"user-agent") && ignored.contains(&"sec-fetch-mode"));
}

/// A script-set header and a body in the command do count: the PUT with
/// `Authorization` is preflighted, and refused when the server lists no header.
#[tokio::test]
async fn a_copied_command_with_script_headers_is_preflighted() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let origin = asked.origin().unwrap_or("").to_owned();
        let mut headers = vec![
            ("access-control-allow-origin", origin.clone()),
            ("vary", "Origin".into()),
        ];
        if asked.is_preflight() {
            headers.push(("access-control-allow-methods", "PUT".into()));
        }
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        answer_cors(asked, &pairs)
    })
    .await;
    let command = format!(
        "curl '{}' -X 'PUT' -H 'authorization: Bearer t' -H 'content-type: application/json' \
         -H 'origin: https://app.example.com' --data-raw $'{{\"a\":\"it\\'s\"}}'",
        server.url("/api")
    );
    let fetch = parse_curl(&command, None, Engine::Chromium).expect("parses");
    assert_eq!(fetch.input.body.as_deref(), Some(r#"{"a":"it's"}"#));
    let report = check_with(&prober(), &fetch.input)
        .await
        .expect("check runs");
    assert_eq!(report.verdict, Verdict::Blocked);
    assert_eq!(report.steps[0].kind, StepKind::Preflight);
    let block = report.block.expect("block");
    assert_eq!(
        block.problems[0].code, "header_not_allowed",
        "{:?}",
        block.problems
    );
}

fn recorded_har() -> (String, serde_json::Value) {
    let text = std::fs::read_to_string(fixture("har/chromium.har")).expect("HAR fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    (text, json)
}

/// What each fetch() did in Chromium's page, in scenario order.
fn chromium_outcomes(har: &serde_json::Value) -> Vec<Verdict> {
    har["log"]["_crossgateScenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| {
            let outcome = s["outcome"].as_str().expect("outcome");
            if outcome.starts_with("allowed") {
                Verdict::Allowed
            } else {
                Verdict::Blocked
            }
        })
        .collect()
}

/// Offline, from the recorded answers only: every cross-origin request of
/// the Chromium session gets Chromium's own verdict, with the reason.
#[test]
fn a_chromium_har_gets_chromium_s_verdicts_offline() {
    let (text, har) = recorded_har();
    let report = check_har(&text, Engine::Chromium).expect("reads the HAR");
    let verdicts: Vec<Verdict> = report.checks.iter().map(|c| c.verdict).collect();
    assert_eq!(verdicts, chromium_outcomes(&har));
    for check in &report.checks {
        assert_eq!(check.agrees, Some(true), "{check:#?}");
    }
    let codes: Vec<(&str, &str, Vec<&str>)> = report
        .checks
        .iter()
        .map(|c| {
            (
                c.url.rsplit('/').next().unwrap_or(""),
                c.credentials,
                c.problems.iter().map(|p| p.code.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        codes[1],
        ("open", "include", vec!["wildcard_origin_with_credentials"])
    );
    assert_eq!(codes[3], ("none", "omit", vec!["missing_allow_origin"]));
    assert_eq!(
        codes[6],
        ("pf-no-header", "omit", vec!["header_not_allowed"])
    );
    assert_eq!(report.checks[6].decided_by, "preflight");
}

/// `--live`: the same requests sent again, to a server that answers as the
/// recorded one did, give the same verdicts.
#[tokio::test]
async fn a_har_sent_again_gets_the_same_verdicts() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let origin = asked.origin().unwrap_or("").to_owned();
        let path = asked.path.to_owned();
        let mut headers: Vec<(&str, String)> = Vec::new();
        match (path.as_str(), asked.is_preflight()) {
            ("/open", _) => headers.push(("access-control-allow-origin", "*".into())),
            ("/reflect", _) => {
                headers.push(("access-control-allow-origin", origin));
                headers.push(("access-control-allow-credentials", "true".into()));
            }
            ("/pf-ok", true) => {
                headers.push(("access-control-allow-origin", origin));
                headers.push(("access-control-allow-methods", "PUT".into()));
                headers.push(("access-control-allow-headers", "x-token".into()));
            }
            ("/pf-ok" | "/pf-no-header", false) | ("/pf-no-header", true) => {
                headers.push(("access-control-allow-origin", origin));
                if asked.is_preflight() {
                    headers.push(("access-control-allow-methods", "PUT".into()));
                }
            }
            _ => {}
        }
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        answer_cors(asked, &pairs)
    })
    .await;
    let (text, har) = recorded_har();
    let api = har["log"]["_crossgateScenarios"][0]["url"]
        .as_str()
        .expect("url")
        .trim_end_matches("/open")
        .to_owned();
    let text = text.replace(&api, server.url("").trim_end_matches('/'));
    let fetches = har_fetches(&text, Engine::Chromium).expect("reads the HAR");
    let mut verdicts = Vec::new();
    for fetch in &fetches {
        verdicts.push(
            check_with(&prober(), fetch)
                .await
                .expect("check runs")
                .verdict,
        );
    }
    assert_eq!(verdicts, chromium_outcomes(&har));
    assert!(server.methods_seen().contains(&"OPTIONS".to_owned()));
}

/// The committed HAR could go stale: record a fresh one from this
/// machine's Chromium (installed by scripts/test.sh) and require the same
/// agreement, so a browser update that changes a verdict fails here, by entry.
#[test]
fn a_fresh_chromium_capture_gets_chromium_s_verdicts() {
    let out = std::env::temp_dir().join(format!("crossgate-fresh-{}.har", std::process::id()));
    let status = std::process::Command::new("python3")
        .arg(fixture("har/capture-chromium-har.py"))
        .arg(&out)
        .status()
        .expect("python3 runs the capture (needs chromium and chromedriver: scripts/test.sh installs them)");
    assert!(status.success(), "the Chromium capture failed");
    let text = std::fs::read_to_string(&out).expect("fresh HAR");
    let _ = std::fs::remove_file(&out);
    let har: serde_json::Value = serde_json::from_str(&text).expect("json");
    let report = check_har(&text, Engine::Chromium).expect("reads the HAR");
    let verdicts: Vec<Verdict> = report.checks.iter().map(|c| c.verdict).collect();
    assert_eq!(verdicts, chromium_outcomes(&har), "{:#?}", report.checks);
    let disagreeing: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.agrees != Some(true))
        .map(|c| {
            format!(
                "#{} {} {}: {:?}",
                c.entry, c.method, c.url, c.browser_recorded
            )
        })
        .collect();
    assert!(disagreeing.is_empty(), "{disagreeing:?}");
}
