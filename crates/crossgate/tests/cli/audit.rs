//! The `crossgate audit` command: output, `--fail-on`, exit codes, and
//! crossgate's own example configurations, which must have no high finding.

use crossgate_testkit::probe_server::{answer, reflect_with_credentials, Asked};
use crossgate_testkit::{examples_dir, TestGateway};

use super::{assert_says, crossgate, crossgate_against, refused_url, Handler};

const TRUSTED: &str = "https://app.example.com";

/// `crossgate audit <url> <args…>` for `/api` on a fresh server answering with `handler`.
async fn audit(handler: Handler, args: &[&str]) -> (i32, String) {
    crossgate_against(handler, "audit", "/api", args).await
}

fn subdomains_without_credentials(
    asked: &Asked<'_>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let origin = asked.origin().unwrap_or("").to_owned();
    if origin == TRUSTED || origin.ends_with(".app.example.com") {
        answer(
            200,
            &[("access-control-allow-origin", &origin), ("vary", "Origin")],
        )
    } else {
        answer(200, &[("vary", "Origin")])
    }
}

#[tokio::test]
async fn a_critical_finding_fails_with_proof_and_fix() {
    let (code, out) = audit(reflect_with_credentials, &["--trusted-origin", TRUSTED]).await;
    assert_eq!(code, 1, "{out}");
    assert_says(
        &out,
        &[
            "[CRITICAL] reflected_with_credentials",
            "access-control-allow-origin: https://crossgate-audit.example",
            "fix: echo the Origin only when it is on an allow-list",
            "FAIL (--fail-on high)",
        ],
    );
}

#[tokio::test]
async fn fail_on_sets_the_threshold() {
    let (code, out) = audit(
        subdomains_without_credentials,
        &["--trusted-origin", TRUSTED],
    )
    .await;
    assert_eq!(code, 0, "a low finding passes the default threshold: {out}");
    assert!(out.contains("[LOW] any_subdomain_trusted"), "{out}");
    let (code, _) = audit(
        subdomains_without_credentials,
        &["--trusted-origin", TRUSTED, "--fail-on", "low"],
    )
    .await;
    assert_eq!(code, 1);
}

#[tokio::test]
async fn json_lists_findings_with_class_severity_probe_proof_and_fix() {
    let (code, out) = audit(
        reflect_with_credentials,
        &["--trusted-origin", TRUSTED, "--json"],
    )
    .await;
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(report["failed"], true);
    let first = &report["findings"][0];
    assert_eq!(first["class"], "reflected_with_credentials");
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["probe"]["origin"], "https://crossgate-audit.example");
    assert!(first["proof"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(first["fix"].as_str().is_some_and(|f| !f.is_empty()));
}

#[tokio::test]
async fn could_not_run_exits_2() {
    let refused = refused_url();
    assert_eq!(crossgate(&["audit", &refused]).await.0, 2);
    assert_eq!(crossgate(&["audit", "not a url"]).await.0, 2);
    assert_eq!(
        crossgate(&[
            "audit",
            "http://127.0.0.1:1/",
            "--trusted-origin",
            "https://a.example/"
        ])
        .await
        .0,
        2
    );
}

/// Concrete origins a config trusts, patterns filled in the way a real page would.
fn trusted_origins(config: &toml::Value) -> Vec<String> {
    let mut origins = Vec::new();
    let policies = config.get("policies").and_then(|p| p.as_table());
    for policy in policies.into_iter().flat_map(|t| t.values()) {
        let listed = policy.get("origins").and_then(|o| o.as_array());
        for origin in listed.into_iter().flatten().filter_map(|o| o.as_str()) {
            if origin == "*" {
                continue;
            }
            let concrete = origin
                .replacen("://*.", "://app.", 1)
                .replace(":*", ":3000");
            if !concrete.contains('*') && !origins.contains(&concrete) {
                origins.push(concrete);
            }
        }
    }
    origins
}

/// Every route path without parameters, as URL paths.
fn route_paths(config: &toml::Value) -> Vec<String> {
    let routes = config.get("routes").and_then(|r| r.as_array());
    let mut paths: Vec<String> = routes
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("path").and_then(|p| p.as_str()))
        .filter(|p| !p.contains(['{', '*', ':']))
        .map(str::to_owned)
        .collect();
    if paths.is_empty() {
        paths.push("/".to_owned());
    }
    paths
}

#[tokio::test]
async fn crossgate_example_configs_have_no_high_finding() {
    let mut audited = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read example");
        let config: toml::Value = toml::from_str(&text).expect("example is TOML");
        let gateway = TestGateway::start_file(&path).await;
        let name = path.display().to_string();
        for route in route_paths(&config) {
            let url = format!("http://{}{route}", gateway.addr);
            let mut args = vec!["audit".to_owned(), url, "--json".to_owned()];
            for origin in trusted_origins(&config) {
                args.push("--trusted-origin".to_owned());
                args.push(origin);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out, err) = crossgate(&args).await;
            assert_eq!(
                code, 0,
                "{name} {route}: a high finding, or the audit could not run:\n{out}{err}"
            );
            let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
            assert_eq!(report["failed"], false, "{name} {route}");
            assert!(
                report["probes_sent"].as_u64().is_some_and(|n| n > 30),
                "{name} {route}"
            );
        }
        audited.push(name);
    }
    assert!(
        audited.iter().any(|n| n.ends_with("demo.toml")),
        "examples/demo.toml must be audited: {audited:?}"
    );
}
