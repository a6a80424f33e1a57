//! `crossgate audit`: probe any endpoint for the classic CORS holes.
//!
//! Probe origins are derived from the target and the trusted origins (the
//! way CORScanner and Corsy do), each sent as a plain `GET` with `Origin`;
//! an origin counts as accepted when `Access-Control-Allow-Origin` echoes it
//! byte for byte, which is what a browser requires. Two preflights with a
//! trusted origin test whether any method or header is allowed. Every finding
//! carries the probe, the response headers that prove it, and a fix.
//!
//! One concern a file: `origins` derives the probe origins,
//! `answer` reads what a response says, `preflight` sends the two
//! preflight probes, `findings` names and grades what was found, `command`
//! is the command line, `batch` audits a list of URLs, `render` writes text.

mod answer;
pub mod batch;
mod command;
mod findings;
mod origins;
mod preflight;
mod render;

use std::time::Duration;

use crossgate_cors::browser::{self, CredentialsMode};
use http::{HeaderMap, HeaderValue, Method, Uri};

use crate::exchange::{ProbeError, Prober};
use crate::run::parse_target;
use answer::{CorsAnswer, Observed};
pub use command::{run, AuditOptions};
use findings::{acceptance_severity, one_per_class};
pub use findings::{AuditReport, Finding, FindingClass, ProbeSummary, Severity};
use origins::{origin_probes, Trusted, ATTACKER};
use preflight::{preflight_passes, preflight_probes};

/// Why an audit could not run (exit code 2).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The URL is not an absolute http(s) URL.
    #[error("`{0}` is not an absolute http:// or https:// URL")]
    Url(String),
    /// A `--trusted-origin` is not an origin.
    #[error(
        "`{0}` is not an origin: write it as scheme://host[:port], no path, no trailing slash"
    )]
    Origin(String),
    /// A probe could not be sent or answered.
    #[error("{0}")]
    Probe(#[from] ProbeError),
    /// The `--input` file could not be read or has a bad line.
    #[error("--input {path}: {reason}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The `--sarif` file could not be written.
    #[error("cannot write --sarif {path}: {reason}")]
    Sarif {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Audits `url` with a fresh client (10-second timeout, webpki roots).
pub async fn audit(
    url: &str,
    trusted_origins: &[String],
    fail_on: Severity,
) -> Result<AuditReport, AuditError> {
    let prober = Prober::new(Duration::from_secs(10), None)?;
    audit_with(&prober, url, trusted_origins, fail_on).await
}

/// Sends every probe to `url` and collects the findings.
pub async fn audit_with(
    prober: &Prober,
    url: &str,
    trusted_origins: &[String],
    fail_on: Severity,
) -> Result<AuditReport, AuditError> {
    let target = parse_target(url).ok_or_else(|| AuditError::Url(url.to_owned()))?;
    let own_origin =
        browser::serialize_origin(&target).ok_or_else(|| AuditError::Url(url.to_owned()))?;
    let trusted_names: Vec<String> = if trusted_origins.is_empty() {
        vec![own_origin.clone()]
    } else {
        trusted_origins.to_vec()
    };
    let trusted = trusted_names
        .iter()
        .map(|o| Trusted::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    // Probes are also derived from the target's own origin: a server often
    // trusts look-alikes of its own host.
    let mut bases = trusted.clone();
    if let Ok(own) = Trusted::parse(&own_origin) {
        if !bases.iter().any(|b| b.serialized == own.serialized) {
            bases.push(own);
        }
    }

    let mut findings: Vec<Finding> = Vec::new();
    let mut sent = 0usize;
    let mut observed = Observed::default();

    // The answer to no Origin at all: a cache may hold it for everyone.
    let exchange = prober
        .send(&Method::GET, &target, &probe_headers(None))
        .await?;
    sent += 1;
    observed.note_answer(&exchange);

    for t in &trusted {
        let answer = get_from(prober, &target, &t.serialized, &mut observed, &mut findings).await?;
        sent += 1;
        // The URL's own origin is only a starting point for probes, not a claim.
        let claimed = !trusted_origins.is_empty();
        if claimed
            && !answer.accepted()
            && answer.allow_origin().as_deref() != Some(b"*")
            && !answer.multiple_allow_origin()
        {
            findings.push(answer.finding(FindingClass::TrustedOriginRefused, Severity::Info));
        }
        sent += preflight_probes(prober, &target, t, &mut findings).await?;
    }

    let mut accepted: Vec<Finding> = Vec::new();
    for probe in origin_probes(&bases, &trusted) {
        let answer = get_from(prober, &target, &probe.origin, &mut observed, &mut findings).await?;
        sent += 1;
        if !answer.accepted() {
            continue;
        }
        let credentials = answer.credentials();
        let class = match probe.class {
            FindingClass::AnyOriginReflected if credentials => {
                FindingClass::ReflectedWithCredentials
            }
            other => other,
        };
        accepted.push(answer.finding(class, acceptance_severity(class, credentials)));
    }
    let reflected = |accepted: &[Finding]| {
        accepted.iter().any(|f| {
            matches!(
                f.class,
                FindingClass::AnyOriginReflected | FindingClass::ReflectedWithCredentials
            )
        })
    };
    // Some servers only answer CORS on preflights: ask once more that way,
    // with a preflight a browser would pass (the method allowed, 2xx).
    if !reflected(&accepted) {
        let origin = format!("https://{ATTACKER}");
        let mut headers = probe_headers(Some(&origin));
        headers.insert(
            http::header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("PUT"),
        );
        let answer = CorsAnswer {
            exchange: prober.send(&Method::OPTIONS, &target, &headers).await?,
            origin: &origin,
        };
        sent += 1;
        observed.note(&answer, &mut findings);
        let credentials = answer.credentials();
        let mode = if credentials {
            CredentialsMode::Include
        } else {
            CredentialsMode::Omit
        };
        if answer.accepted() && preflight_passes(&origin, "PUT", None, mode, &answer.exchange) {
            let class = if credentials {
                FindingClass::ReflectedWithCredentials
            } else {
                FindingClass::AnyOriginReflected
            };
            let severity = acceptance_severity(class, credentials);
            accepted.push(answer.finding(class, severity));
        }
    }
    // When any origin is echoed, every derived probe is too: they add nothing.
    let reflects_all = reflected(&accepted);
    findings.extend(accepted.into_iter().filter(|f| {
        !reflects_all
            || matches!(
                f.class,
                FindingClass::AnyOriginReflected
                    | FindingClass::ReflectedWithCredentials
                    | FindingClass::NullOriginTrusted
            )
    }));
    if let Some(vary) = observed.missing_vary() {
        findings.push(vary);
    }

    let mut findings = one_per_class(findings);
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let failed = findings.iter().any(|f| f.severity >= fail_on);
    Ok(AuditReport {
        url: target.to_string(),
        trusted_origins: trusted_names,
        probes_sent: sent,
        findings,
        fail_on,
        failed,
    })
}

/// Sends the plain `GET` a page at `origin` makes, and notes what its CORS
/// answer shows across probes.
async fn get_from<'o>(
    prober: &Prober,
    target: &Uri,
    origin: &'o str,
    observed: &mut Observed,
    findings: &mut Vec<Finding>,
) -> Result<CorsAnswer<'o>, ProbeError> {
    let exchange = prober
        .send(&Method::GET, target, &probe_headers(Some(origin)))
        .await?;
    let answer = CorsAnswer { exchange, origin };
    observed.note(&answer, findings);
    Ok(answer)
}

pub(super) fn probe_headers(origin: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(http::header::ORIGIN, value);
    }
    headers
}
