//! `crossgate audit` against deliberately misconfigured servers: every
//! finding class is caught by a server that has the hole, and a correct
//! server triggers none.

use std::sync::Arc;
use std::time::Duration;

use crossgate_probe::audit::{audit_with, AuditReport, FindingClass, Severity};
use crossgate_probe::Prober;

use crossgate_testkit::probe_server::{answer, answer_cors, Asked, TestServer};

const TRUSTED: &str = "https://app.example.com";

type Rule = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A server that echoes the Origin when `accepts` says so.
struct Policy {
    accepts: Rule,
    credentials: bool,
    vary: bool,
    /// Echo Access-Control-Request-Method / -Headers on preflights.
    echo_requests: bool,
    /// Answer `*` instead of echoing.
    wildcard: bool,
}

impl Policy {
    fn new(accepts: impl Fn(&str) -> bool + Send + Sync + 'static) -> Policy {
        Policy {
            accepts: Arc::new(accepts),
            credentials: true,
            vary: true,
            echo_requests: false,
            wildcard: false,
        }
    }

    async fn serve(self) -> TestServer {
        TestServer::start(move |asked: &Asked<'_>| {
            let origin = asked.origin().unwrap_or("").to_owned();
            let mut headers: Vec<(String, String)> = Vec::new();
            if self.vary {
                headers.push(("vary".into(), "Origin".into()));
            }
            if self.wildcard {
                headers.push(("access-control-allow-origin".into(), "*".into()));
            } else if (self.accepts)(&origin) {
                headers.push(("access-control-allow-origin".into(), origin.clone()));
            }
            if self.credentials {
                headers.push(("access-control-allow-credentials".into(), "true".into()));
            }
            if asked.is_preflight() {
                // What the preflight asked for when echoing, else a fixed list.
                let allow = |requested: &str, fixed: &str| match asked.header(requested) {
                    Some(asked_for) if self.echo_requests => asked_for.to_owned(),
                    _ => fixed.to_owned(),
                };
                let methods = allow("access-control-request-method", "GET, POST, PUT");
                headers.push(("access-control-allow-methods".into(), methods));
                let allowed = allow("access-control-request-headers", "content-type");
                headers.push(("access-control-allow-headers".into(), allowed));
            }
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            answer_cors(asked, &pairs)
        })
        .await
    }
}

async fn audit(server: &TestServer, trusted: &[&str]) -> AuditReport {
    let prober = Prober::new(Duration::from_secs(5), None).expect("prober");
    let trusted: Vec<String> = trusted.iter().map(|t| t.to_string()).collect();
    audit_with(&prober, &server.url("/api"), &trusted, Severity::High)
        .await
        .expect("audit runs")
}

fn classes(report: &AuditReport) -> Vec<FindingClass> {
    report.findings.iter().map(|f| f.class).collect()
}

fn severity_of(report: &AuditReport, class: FindingClass) -> Severity {
    report
        .of(class)
        .next()
        .unwrap_or_else(|| panic!("{class:?} not found in {:?}", classes(report)))
        .severity
}

fn exact(origin: &str) -> bool {
    origin == TRUSTED
}

#[tokio::test]
async fn a_correct_server_has_no_finding() {
    let server = Policy::new(exact).serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert!(!report.failed);
    assert!(report.probes_sent > 30, "{} probes", report.probes_sent);
}

#[tokio::test]
async fn reflect_anything_with_credentials_is_critical() {
    let server = Policy::new(|_| true).serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(
        severity_of(&report, FindingClass::ReflectedWithCredentials),
        Severity::Critical
    );
    assert!(report.failed);
    let finding = report
        .of(FindingClass::ReflectedWithCredentials)
        .next()
        .expect("finding");
    assert_eq!(finding.probe.origin, "https://crossgate-audit.example");
    assert!(
        finding
            .proof
            .iter()
            .any(|[n, v]| n == "access-control-allow-origin"
                && v == "https://crossgate-audit.example")
    );
    assert!(finding
        .proof
        .iter()
        .any(|[n, v]| n == "access-control-allow-credentials" && v == "true"));
    // Derived probes are implied and not repeated.
    assert!(report.of(FindingClass::PrefixMatch).next().is_none());
}

#[tokio::test]
async fn reflect_anything_without_credentials_is_reported_low() {
    let mut policy = Policy::new(|o| o != "null");
    policy.credentials = false;
    let server = policy.serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::AnyOriginReflected]);
    assert_eq!(report.findings[0].severity, Severity::Low);
    assert!(!report.failed);
}

#[tokio::test]
async fn null_trusting_is_caught() {
    let server = Policy::new(|o| o == TRUSTED || o == "null").serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::NullOriginTrusted]);
    assert_eq!(report.findings[0].severity, Severity::High);
}

#[tokio::test]
async fn prefix_matching_is_caught() {
    let server = Policy::new(|o| o.starts_with(TRUSTED)).serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert!(
        classes(&report).contains(&FindingClass::PrefixMatch),
        "{:?}",
        classes(&report)
    );
    let finding = report.of(FindingClass::PrefixMatch).next().expect("prefix");
    assert_eq!(
        finding.probe.origin,
        "https://app.example.com.crossgate-audit.example"
    );
    assert_eq!(finding.severity, Severity::High);
}

#[tokio::test]
async fn suffix_matching_is_caught() {
    let server = Policy::new(|o| o.starts_with("https://") && o.ends_with("example.com"))
        .serve()
        .await;
    let report = audit(&server, &[TRUSTED]).await;
    let finding = report.of(FindingClass::SuffixMatch).next().expect("suffix");
    assert_eq!(finding.probe.origin, "https://crossgateauditexample.com");
}

/// `^https://app.example.com$` with the dots unescaped.
fn unescaped_regex(origin: &str) -> bool {
    let pattern = TRUSTED.as_bytes();
    let origin = origin.as_bytes();
    origin.len() == pattern.len()
        && pattern
            .iter()
            .zip(origin)
            .all(|(p, o)| *p == b'.' || p == o)
}

#[tokio::test]
async fn an_unescaped_regex_dot_is_caught() {
    let server = Policy::new(unescaped_regex).serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::UnescapedDot]);
    assert_eq!(report.findings[0].probe.origin, "https://appxexample.com");
    assert_eq!(
        report.findings[0].also_accepted,
        ["https://app.examplexcom"]
    );
}

#[tokio::test]
async fn special_characters_after_the_host_are_caught() {
    // `^https://app\.example\.com[\w`~-]*\.` style: a few characters may follow the host.
    let server = Policy::new(|o| {
        o == TRUSTED
            || o.strip_prefix(TRUSTED)
                .is_some_and(|rest| rest.starts_with(['_', '-', '`', '~']))
    })
    .serve()
    .await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::SpecialCharacters]);
    let finding = &report.findings[0];
    assert_eq!(
        finding.probe.origin,
        "https://app.example.com_.crossgate-audit.example"
    );
    assert_eq!(finding.also_accepted.len(), 3);
}

#[tokio::test]
async fn any_subdomain_trusted_is_caught() {
    let server = Policy::new(|o| o == TRUSTED || o.ends_with(".app.example.com"))
        .serve()
        .await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::AnySubdomainTrusted]);
    assert_eq!(report.findings[0].severity, Severity::Medium);
}

#[tokio::test]
async fn http_trusted_by_an_https_site_is_caught() {
    let server = Policy::new(|o| o == TRUSTED || o == "http://app.example.com")
        .serve()
        .await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::InsecureOriginTrusted]);
}

#[tokio::test]
async fn wildcard_with_credentials_is_caught() {
    let mut policy = Policy::new(|_| false);
    policy.wildcard = true;
    let server = policy.serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::WildcardWithCredentials]);
    // Without credentials, `*` is a public API and not a finding.
    let mut public = Policy::new(|_| false);
    public.wildcard = true;
    public.credentials = false;
    let server = public.serve().await;
    assert!(audit(&server, &[TRUSTED]).await.findings.is_empty());
}

#[tokio::test]
async fn third_party_hosting_origins_are_caught() {
    let server =
        Policy::new(|o| o == TRUSTED || o == "https://codepen.io" || o.ends_with(".github.io"))
            .serve()
            .await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::ThirdPartyOriginTrusted]);
    let finding = &report.findings[0];
    assert_eq!(finding.probe.origin, "https://crossgate-audit.github.io");
    assert_eq!(finding.also_accepted, ["https://codepen.io"]);
}

#[tokio::test]
async fn an_origin_dependent_answer_without_vary_is_caught() {
    let mut policy = Policy::new(exact);
    policy.vary = false;
    let server = policy.serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::MissingVaryOrigin]);
    assert!(report.findings[0].fix.contains("Vary: Origin"));
}

#[tokio::test]
async fn preflights_echoing_any_method_or_header_with_credentials_are_caught() {
    let mut policy = Policy::new(exact);
    policy.echo_requests = true;
    let server = policy.serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(
        classes(&report),
        [
            FindingClass::PreflightAllowsAnyMethod,
            FindingClass::PreflightAllowsAnyHeader
        ]
    );
    let method = &report.findings[0];
    assert_eq!(method.probe.method, "OPTIONS");
    assert!(method
        .probe
        .request_headers
        .iter()
        .any(|[n, v]| n == "access-control-request-method" && v == "CROSSGATE-PROBE"));
    // Without credentials, echoing is harmless.
    let mut anonymous = Policy::new(exact);
    anonymous.echo_requests = true;
    anonymous.credentials = false;
    let server = anonymous.serve().await;
    assert!(audit(&server, &[TRUSTED]).await.findings.is_empty());
}

#[tokio::test]
async fn a_refused_trusted_origin_is_reported_as_info() {
    let server = Policy::new(|_| false).serve().await;
    let report = audit(&server, &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::TrustedOriginRefused]);
    assert_eq!(report.findings[0].severity, Severity::Info);
}

#[tokio::test]
async fn without_trusted_origins_probes_derive_from_the_target() {
    // A server that trusts anything starting like its own address.
    let server = Policy::new(|o| o.starts_with("http://127.0.0.1"))
        .serve()
        .await;
    let report = audit(&server, &[]).await;
    let finding = report
        .of(FindingClass::PrefixMatch)
        .next()
        .expect("prefix found");
    assert_eq!(
        finding.probe.origin,
        format!(
            "http://127.0.0.1.crossgate-audit.example:{}",
            server.addr.port()
        )
    );
    assert!(report
        .of(FindingClass::TrustedOriginRefused)
        .next()
        .is_none());
}

#[tokio::test]
async fn reflection_on_preflights_only_is_caught() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let origin = asked.origin().unwrap_or("").to_owned();
        if asked.is_preflight() {
            answer(
                204,
                &[
                    ("access-control-allow-origin", &origin),
                    ("access-control-allow-credentials", "true"),
                    ("access-control-allow-methods", "PUT"),
                    ("vary", "Origin"),
                ],
            )
        } else if origin == TRUSTED {
            answer(
                200,
                &[("access-control-allow-origin", TRUSTED), ("vary", "Origin")],
            )
        } else {
            answer(200, &[("vary", "Origin")])
        }
    })
    .await;
    let report = audit(&server, &[TRUSTED]).await;
    let finding = report
        .of(FindingClass::ReflectedWithCredentials)
        .next()
        .expect("found through a preflight");
    assert_eq!(finding.probe.method, "OPTIONS");
    assert_eq!(finding.severity, Severity::Critical);
}
