//! `crossgate check --curl`, `check --har`, `audit --input --sarif` through
//! the binary: arguments, output and exit codes.

use crossgate_testkit::fixture;
use crossgate_testkit::probe_server::{reflect_with_credentials, TestServer};

use super::{assert_says, crossgate};

const TRUSTED: &str = "https://app.example.com";

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crossgate-workflows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

#[tokio::test]
async fn check_curl_says_what_it_ignored_and_gives_the_verdict() {
    let server = TestServer::start(reflect_with_credentials).await;
    let command = format!(
        "curl '{}' -H 'origin: {TRUSTED}' -H 'user-agent: Mozilla/5.0' -H 'sec-fetch-mode: cors' -b 'sid=1' --compressed",
        server.url("/api")
    );
    let (code, out, err) = crossgate(&["check", "--curl", &command]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_says(&out, &["from curl: the page's origin https://app.example.com comes from the Origin header; credentials: include", "user-agent: the browser sets it on every request", "sec-fetch-mode: a forbidden header", "ALLOWED"]);

    let (code, out, _) = crossgate(&["check", "--json", "--curl", &command]).await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["verdict"], "ALLOWED");
    assert_eq!(
        json["from_curl"]["ignored_headers"][1]["name"],
        "user-agent"
    );

    let (code, _, err) = crossgate(&["check", "--curl", "curl https://x.example"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("pass --origin"), "{err}");
    let (code, _, err) = crossgate(&["check", "https://x.example", "--curl", &command]).await;
    assert_eq!(code, 2, "a URL and --curl conflict: {err}");
}

#[tokio::test]
async fn check_har_reports_each_cross_origin_request_offline() {
    let har = fixture("har/chromium.har");
    let har = har.to_str().expect("UTF-8 path");
    let (code, out, err) = crossgate(&["check", "--har", har]).await;
    assert_eq!(code, 1, "some requests are blocked: {out}{err}");
    assert!(
        out.contains("7 cross-origin request(s), judged from the recorded answers"),
        "{out}"
    );
    assert_eq!(out.matches("(the model agrees)").count(), 7, "{out}");
    assert!(out.contains("preflight (header_not_allowed)"), "{out}");
    let (code, _, err) =
        crossgate(&["check", "--live", "https://x.example", "--origin", TRUSTED]).await;
    assert_eq!(code, 2, "--live needs --har: {err}");
}

#[tokio::test]
async fn audit_input_audits_every_url_and_writes_sarif() {
    let bad = TestServer::start(reflect_with_credentials).await;
    let list = scratch("targets.txt");
    std::fs::write(
        &list,
        format!(
            "# our APIs\n{}\n\n{}  # the same server twice\n",
            bad.url("/a"),
            bad.url("/b")
        ),
    )
    .expect("list");
    let sarif = scratch("audit.sarif");
    let (code, out, err) = crossgate(&[
        "audit",
        "--input",
        list.to_str().expect("path"),
        "--trusted-origin",
        TRUSTED,
        "--concurrency",
        "2",
        "--rate",
        "500",
        "--sarif",
        sarif.to_str().expect("path"),
    ])
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("2 URL(s) audited: 2 with findings"), "{out}");
    assert!(
        err.is_empty(),
        "no progress when stderr is not a terminal: {err}"
    );
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).expect("sarif written"))
            .expect("json");
    assert_eq!(log["version"], "2.1.0");
    let uris: Vec<&str> = log["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["ruleId"] == "reflected_with_credentials")
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .expect("uri")
        })
        .collect();
    assert_eq!(uris, [bad.url("/a"), bad.url("/b")]);

    std::fs::write(&list, "https://ok.example\nftp://nope.example\n").expect("list");
    let (code, _, err) = crossgate(&["audit", "--input", list.to_str().expect("path")]).await;
    assert_eq!(code, 2);
    assert!(err.contains("line 2"), "{err}");
    let (code, _, err) = crossgate(&["audit", "https://x.example", "--rate", "0"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("is not a rate"), "{err}");
    let _ = std::fs::remove_dir_all(list.parent().expect("dir"));
}
