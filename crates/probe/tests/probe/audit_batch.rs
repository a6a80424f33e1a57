//! `crossgate audit --input`: many URLs with bounded concurrency and a
//! request-rate limit, and the findings as SARIF 2.1.0 validated against the
//! official schema.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossgate_probe::audit::batch::{audit_many, BatchReport, Progress};
use crossgate_probe::audit::{FindingClass, Severity};
use crossgate_probe::Prober;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crossgate_testkit::probe_server::{answer, reflect_with_credentials, Asked, TestServer};
use crossgate_testkit::{fixture, TempDir};

const TRUSTED: &str = "https://app.example.com";

fn exact(asked: &Asked<'_>) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    match asked.origin() {
        Some(TRUSTED) => answer(
            200,
            &[("access-control-allow-origin", TRUSTED), ("vary", "Origin")],
        ),
        _ => answer(200, &[("vary", "Origin")]),
    }
}

/// A port nothing listens on.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/api")
}

/// Audits `urls` two at a time, trusting [`TRUSTED`], failing on high.
async fn audit_trusting_app(urls: &[String]) -> BatchReport {
    let prober = Prober::new(Duration::from_secs(5), None).expect("prober");
    audit_many(
        &prober,
        urls,
        &[TRUSTED.to_owned()],
        Severity::High,
        2,
        &mut Progress::hidden(),
    )
    .await
}

#[tokio::test]
async fn every_url_is_audited_in_list_order_and_failures_are_kept_apart() {
    let bad = TestServer::start(reflect_with_credentials).await;
    let good = TestServer::start(exact).await;
    let urls = vec![bad.url("/api"), dead_url().await, good.url("/api")];
    let report = audit_trusting_app(&urls).await;
    assert_eq!(report.reports.len(), 2);
    assert_eq!(report.reports[0].url, urls[0]);
    assert!(report.reports[0]
        .of(FindingClass::ReflectedWithCredentials)
        .next()
        .is_some());
    assert_eq!(report.reports[1].url, urls[2]);
    assert!(report.reports[1].findings.is_empty());
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].url, urls[1]);
    assert!(report.failed);
}

/// A raw HTTP/1.1 server that holds each request 40 ms and records the
/// most requests it had in flight at once.
async fn slow_server() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (in_flight.clone(), most.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (now, peak) = (now.clone(), peak.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(current, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(40)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nvary: Origin\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (format!("http://{addr}"), in_flight, most)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_urls_than_the_concurrency_are_audited_at_once() {
    let (base, _, most) = slow_server().await;
    let urls: Vec<String> = (0..6).map(|i| format!("{base}/api/{i}")).collect();
    let prober = Prober::new(Duration::from_secs(10), None).expect("prober");
    // Few probes per URL keep this short: trust the URL's own origin only.
    let report = audit_many(
        &prober,
        &urls,
        &[],
        Severity::High,
        2,
        &mut Progress::hidden(),
    )
    .await;
    assert_eq!(report.reports.len(), 6, "{:?}", report.errors);
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} requests in flight with --concurrency 2");
    // Each audit sends its requests one after another, so two at once
    // means two URLs were audited side by side.
    assert_eq!(most, 2, "the two audits never overlapped");
}

#[tokio::test]
async fn the_rate_limit_spaces_every_request() {
    let server = TestServer::start(exact).await;
    let rate = 200.0;
    let prober = Prober::new(Duration::from_secs(5), None)
        .expect("prober")
        .with_rate_limit(Some(rate));
    let started = Instant::now();
    let report = audit_many(
        &prober,
        &[server.url("/a"), server.url("/b")],
        &[TRUSTED.to_owned()],
        Severity::High,
        2,
        &mut Progress::hidden(),
    )
    .await;
    let sent: usize = report.reports.iter().map(|r| r.probes_sent).sum();
    assert_eq!(sent, server.seen().len());
    // A lower bound only: the requests cannot have come faster than the rate.
    let least = Duration::from_secs_f64((sent - 1) as f64 / rate);
    assert!(
        started.elapsed() >= least,
        "{sent} requests in {:?}, at most {rate}/s needs {least:?}",
        started.elapsed()
    );
}

fn venv_python() -> PathBuf {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/third-party/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/third-party-servers.sh (scripts/test.sh does)",
        python.display()
    );
    python
}

/// Validates `log` against the SARIF 2.1.0 schema (OASIS, errata 01) with
/// Python's jsonschema; returns the validator's complaint, if any.
fn sarif_schema_errors(log: &serde_json::Value) -> Option<String> {
    let dir = TempDir::new("sarif");
    let path = dir.write("log.sarif", &serde_json::to_string(log).expect("json"));
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        log = json.load(open(sys.argv[2]))\n\
        errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(log)]\n\
        print('\\n'.join(errors)); sys.exit(1 if errors else 0)\n";
    let out = std::process::Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .arg(fixture("sarif/sarif-schema-2.1.0.json"))
        .arg(&path)
        .output()
        .expect("python runs");
    if out.status.success() {
        None
    } else {
        Some(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test]
async fn sarif_output_is_valid_sarif_2_1_0_with_one_result_per_finding() {
    let bad = TestServer::start(reflect_with_credentials).await;
    let good = TestServer::start(exact).await;
    let urls = vec![bad.url("/api"), good.url("/api"), dead_url().await];
    let report = audit_trusting_app(&urls).await;
    let reports: Vec<_> = report.reports.iter().collect();
    let errors: Vec<(String, String)> = report
        .errors
        .iter()
        .map(|e| (e.url.clone(), e.error.clone()))
        .collect();
    let log = crossgate_probe::sarif::to_sarif(&reports, &errors);
    assert_eq!(sarif_schema_errors(&log), None);

    let run = &log["runs"][0];
    let results = run["results"].as_array().expect("results");
    let findings: usize = report.reports.iter().map(|r| r.findings.len()).sum();
    assert!(findings >= 2);
    assert_eq!(results.len(), findings);
    let critical = results
        .iter()
        .find(|r| r["ruleId"] == "reflected_with_credentials")
        .expect("the critical finding");
    assert_eq!(critical["level"], "error");
    assert_eq!(
        critical["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        urls[0]
    );
    let index = critical["ruleIndex"].as_u64().expect("index") as usize;
    assert_eq!(
        run["tool"]["driver"]["rules"][index]["id"],
        "reflected_with_credentials"
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);

    // The validator is not a rubber stamp: a log without its version fails.
    let mut broken = log.clone();
    broken.as_object_mut().expect("object").remove("version");
    assert!(sarif_schema_errors(&broken).is_some());
    let mut broken = log;
    broken["runs"][0]["results"][0]["level"] = "severe".into();
    assert!(sarif_schema_errors(&broken).is_some());
}
