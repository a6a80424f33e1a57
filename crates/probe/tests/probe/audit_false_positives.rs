//! `crossgate audit` raises nothing that is not a hole: for each way an
//! audit can be fooled, a server that would fool it, and the assertion that
//! only the real finding (if any) is raised.

use std::time::Duration;

use crossgate_probe::audit::{audit_with, AuditReport, FindingClass, Severity};
use crossgate_probe::Prober;

use crossgate_testkit::probe_server::{answer, answer_cors, Asked, TestServer};

const TRUSTED: &str = "https://app.example.com";

async fn audit_url(url: &str, trusted: &[&str]) -> AuditReport {
    let prober = Prober::new(Duration::from_secs(5), None).expect("prober");
    let trusted: Vec<String> = trusted.iter().map(|t| t.to_string()).collect();
    audit_with(&prober, url, &trusted, Severity::High)
        .await
        .expect("audit runs")
}

fn classes(report: &AuditReport) -> Vec<FindingClass> {
    report.findings.iter().map(|f| f.class).collect()
}

/// A host the URL standard's host parser keeps as it is (ASCII, no forbidden
/// domain code point, a numeric last label only for a whole IPv4 address).
fn browser_sendable(origin: &str) -> bool {
    if origin == "null" {
        return true;
    }
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => authority,
    };
    let forbidden = "#%/:<>?@[\\]^| ";
    if host
        .chars()
        .any(|c| !c.is_ascii() || c.is_ascii_control() || forbidden.contains(c))
    {
        return false;
    }
    let last = host.rsplit('.').next().unwrap_or("");
    !last.bytes().all(|b| b.is_ascii_digit()) || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Every origin the audit sends could come from a browser, and a server
/// matching only the end of its IP-address origin (`endsWith("127.0.0.1:PORT")`)
/// is not reported as a suffix match: no browser origin other than the IP's
/// own ends that way.
#[tokio::test]
async fn probes_from_an_ip_literal_origin_are_origins_a_browser_can_send() {
    let suffix = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let matched = suffix.clone();
    let server = TestServer::start(move |asked: &Asked<'_>| {
        let origin = asked.origin().unwrap_or("").to_owned();
        let ok = matched.get().is_some_and(|s| origin.ends_with(s.as_str()));
        let mut headers = vec![
            ("vary", "Origin"),
            ("access-control-allow-credentials", "true"),
        ];
        if ok {
            headers.push(("access-control-allow-origin", origin.as_str()));
        }
        answer(200, &headers)
    })
    .await;
    let own = server.url("");
    let host_port = own.trim_start_matches("http://").to_owned();
    suffix.set(host_port).expect("set once");
    let report = audit_url(&server.url("/api"), &[]).await;
    let sent: Vec<String> = server
        .seen()
        .iter()
        .filter_map(|s| {
            s.headers
                .get("origin")
                .map(|o| o.to_str().expect("ascii").to_owned())
        })
        .collect();
    assert!(sent.len() > 20, "{} probes", sent.len());
    let unsendable: Vec<&String> = sent.iter().filter(|o| !browser_sendable(o)).collect();
    assert!(
        unsendable.is_empty(),
        "origins no browser sends: {unsendable:?}"
    );
    // The prefix probe on an IP host is a valid domain: it is sent.
    assert!(sent
        .iter()
        .any(|o| o.starts_with("http://127.0.0.1.crossgate-audit.example:")));
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

/// An app that reflects any origin behind a proxy that adds `*` as well:
/// two values, which every browser refuses. That is its own finding, not a
/// reflected origin with credentials.
#[tokio::test]
async fn two_allow_origin_values_are_their_own_finding_not_a_reflection() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let origin = asked.origin().unwrap_or("").to_owned();
        answer(
            200,
            &[
                ("vary", "Origin"),
                ("access-control-allow-origin", "*"),
                ("access-control-allow-origin", origin.as_str()),
                ("access-control-allow-credentials", "true"),
            ],
        )
    })
    .await;
    let report = audit_url(&server.url("/api"), &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::MultipleAllowOrigin]);
    assert_eq!(report.findings[0].severity, Severity::Low);
    assert!(!report.failed);
}

/// A reflecting server whose every answer carries one value is a reflection;
/// the origin's own comma (`https://app.example.com,.attacker`) is not a list.
#[tokio::test]
async fn a_reflected_origin_with_a_comma_is_one_value() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let origin = asked.origin().unwrap_or("").to_owned();
        answer(
            200,
            &[
                ("vary", "Origin"),
                ("access-control-allow-origin", origin.as_str()),
            ],
        )
    })
    .await;
    let report = audit_url(&server.url("/api"), &[TRUSTED]).await;
    assert_eq!(
        classes(&report),
        [
            FindingClass::AnyOriginReflected,
            FindingClass::NullOriginTrusted
        ]
    );
}

/// The same `Access-Control-Allow-Origin` for every request (a static
/// single-origin config) needs no `Vary: Origin`: caches cannot mix answers.
#[tokio::test]
async fn a_static_allow_origin_without_vary_is_not_missing_vary() {
    let server = TestServer::start(|_: &Asked<'_>| {
        answer(
            200,
            &[
                ("access-control-allow-origin", TRUSTED),
                ("access-control-allow-credentials", "true"),
            ],
        )
    })
    .await;
    let report = audit_url(&server.url("/api"), &[TRUSTED]).await;
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

/// The answer differs only between an Origin and none (CORS headers only
/// when Origin is sent): a cache can serve the bare answer to the trusted
/// page, or the other way round. That is a real missing Vary.
#[tokio::test]
async fn an_answer_that_differs_from_the_no_origin_answer_is_missing_vary() {
    let server = TestServer::start(|asked: &Asked<'_>| match asked.origin() {
        Some(_) => answer(200, &[("access-control-allow-origin", TRUSTED)]),
        None => answer(200, &[]),
    })
    .await;
    let report = audit_url(&server.url("/api"), &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::MissingVaryOrigin]);
}

/// Preflights that echo any method and header but that browsers fail
/// anyway: a 403 status, no credentials grant, `*` on a credentialed
/// preflight, or two Allow-Origin values. None is a preflight finding.
#[tokio::test]
async fn preflights_a_browser_would_fail_raise_no_preflight_finding() {
    type Breaks = fn(&mut Vec<(String, String)>, &mut u16);
    let breaks: [(&str, Breaks); 4] = [
        ("403 status", |_, status| *status = 403),
        ("no credentials", |headers, _| {
            headers.retain(|(n, _)| n != "access-control-allow-credentials")
        }),
        ("wildcard origin", |headers, _| {
            for (n, v) in headers.iter_mut() {
                if n == "access-control-allow-origin" {
                    *v = "*".into();
                }
            }
        }),
        ("two origins", |headers, _| {
            headers.push((
                "access-control-allow-origin".into(),
                "https://other.example".into(),
            ))
        }),
    ];
    for (name, broken) in breaks {
        let server = TestServer::start(move |asked: &Asked<'_>| {
            let origin = asked.origin().unwrap_or("").to_owned();
            let mut headers: Vec<(String, String)> = vec![("vary".into(), "Origin".into())];
            if origin == TRUSTED {
                headers.push(("access-control-allow-origin".into(), origin));
                headers.push(("access-control-allow-credentials".into(), "true".into()));
            }
            let mut status = 200;
            if asked.is_preflight() {
                status = 204;
                for (ask, grant) in [
                    (
                        "access-control-request-method",
                        "access-control-allow-methods",
                    ),
                    (
                        "access-control-request-headers",
                        "access-control-allow-headers",
                    ),
                ] {
                    if let Some(v) = asked.header(ask) {
                        headers.push((grant.into(), v.to_owned()));
                    }
                }
                broken(&mut headers, &mut status);
            }
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            answer(status, &pairs)
        })
        .await;
        let report = audit_url(&server.url("/api"), &[TRUSTED]).await;
        let preflight: Vec<FindingClass> = classes(&report)
            .into_iter()
            .filter(|c| {
                matches!(
                    c,
                    FindingClass::PreflightAllowsAnyMethod | FindingClass::PreflightAllowsAnyHeader
                )
            })
            .collect();
        assert!(preflight.is_empty(), "{name}: {:#?}", report.findings);
    }
}

/// A preflight that allows any header but only GET/POST methods: the header
/// probe asks with POST (no method grant needed), so the hole is found; the
/// method probe is not.
#[tokio::test]
async fn any_header_is_found_even_when_put_is_not_allowed() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let origin = asked.origin().unwrap_or("").to_owned();
        let mut headers: Vec<(&str, String)> = vec![("vary", "Origin".into())];
        if origin == TRUSTED {
            headers.push(("access-control-allow-origin", origin));
            headers.push(("access-control-allow-credentials", "true".into()));
        }
        if asked.is_preflight() {
            headers.push(("access-control-allow-methods", "GET, POST".into()));
            if let Some(h) = asked.header("access-control-request-headers") {
                headers.push(("access-control-allow-headers", h.to_owned()));
            }
        }
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        answer_cors(asked, &pairs)
    })
    .await;
    let report = audit_url(&server.url("/api"), &[TRUSTED]).await;
    assert_eq!(classes(&report), [FindingClass::PreflightAllowsAnyHeader]);
}

/// Two trusted origins that both hit the same hole give one finding, the
/// second origin listed with it.
#[tokio::test]
async fn one_finding_per_class_and_target() {
    let server = TestServer::start(|asked: &Asked<'_>| {
        let origin = asked.origin().unwrap_or("").to_owned();
        let mut headers: Vec<(&str, String)> = vec![("vary", "Origin".into())];
        if origin.ends_with(".example.com") {
            headers.push(("access-control-allow-origin", origin));
            headers.push(("access-control-allow-credentials", "true".into()));
        }
        if asked.is_preflight() {
            if let Some(m) = asked.header("access-control-request-method") {
                headers.push(("access-control-allow-methods", m.to_owned()));
            }
        }
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        answer_cors(asked, &pairs)
    })
    .await;
    let report = audit_url(
        &server.url("/api"),
        &[
            TRUSTED,
            "https://admin.example.com",
            "https://refused.example.org",
        ],
    )
    .await;
    let mut seen = std::collections::HashSet::new();
    for f in &report.findings {
        assert!(
            seen.insert(f.class),
            "{:?} twice: {:#?}",
            f.class,
            report.findings
        );
    }
    let method = report
        .of(FindingClass::PreflightAllowsAnyMethod)
        .next()
        .expect("any method");
    assert_eq!(method.also_accepted, ["https://admin.example.com"]);
    assert!(report
        .of(FindingClass::AnySubdomainTrusted)
        .next()
        .is_some());
    assert!(report
        .of(FindingClass::TrustedOriginRefused)
        .next()
        .is_some());
}
