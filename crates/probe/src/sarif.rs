//! Audit findings as a SARIF 2.1.0 log, for code-scanning dashboards: one
//! run of the tool `crossgate audit`, one rule per finding class, one result
//! per finding, located at the audited URL.

use serde_json::{json, Value};

use crate::audit::{AuditReport, Finding, FindingClass, Severity};

/// The schema URI SARIF consumers key on.
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// SARIF's level for a severity: what fails a build is an error.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning's `security-severity` (a CVSS-like score) for a severity.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn rule(class: FindingClass, severity: Severity) -> Value {
    json!({
        "id": class.code(),
        "name": class.code(),
        "shortDescription": { "text": class.describe() },
        "help": { "text": class.fix() },
        "defaultConfiguration": { "level": level(severity) },
        "properties": {
            "tags": ["security", "cors"],
            "security-severity": security_severity(severity),
        },
    })
}

fn result(finding: &Finding, rule_index: usize, url: &str) -> Value {
    let proof: Vec<String> = finding
        .proof
        .iter()
        .map(|[name, value]| format!("{name}: {value}"))
        .collect();
    let mut text = format!(
        "{}. Probe: {} {} with Origin: {}; answer {} with {}.",
        finding.description,
        finding.probe.method,
        finding.probe.url,
        finding.probe.origin,
        finding.status,
        if proof.is_empty() {
            "no CORS header".to_owned()
        } else {
            proof.join(", ")
        },
    );
    if !finding.also_accepted.is_empty() {
        text.push_str(&format!(" Also: {}.", finding.also_accepted.join(" ")));
    }
    text.push_str(&format!(" Fix: {}", finding.fix));
    json!({
        "ruleId": finding.class.code(),
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": { "text": text },
        "locations": [{
            "physicalLocation": { "artifactLocation": { "uri": url } }
        }],
        // One finding per class and target, so class and URL identify it across runs.
        "partialFingerprints": { "crossgateFinding/v1": format!("{}|{url}", finding.class.code()) },
        "properties": {
            "severity": finding.severity,
            "probe": finding.probe,
            "status": finding.status,
            "proof": finding.proof,
            "alsoAccepted": finding.also_accepted,
        },
    })
}

/// The SARIF log of `reports` (one per audited URL); `errors` are the URLs
/// that could not be audited, with why, reported as the invocation's notifications.
pub fn to_sarif(reports: &[&AuditReport], errors: &[(String, String)]) -> Value {
    let mut rules: Vec<(FindingClass, Value)> = Vec::new();
    let mut results = Vec::new();
    for report in reports {
        for finding in &report.findings {
            let index = match rules.iter().position(|(c, _)| *c == finding.class) {
                Some(index) => index,
                None => {
                    rules.push((finding.class, rule(finding.class, finding.severity)));
                    rules.len() - 1
                }
            };
            results.push(result(finding, index, &report.url));
        }
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "crossgate audit",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/crossgate/crossgate",
                    "rules": rules.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
                }
            },
            "invocations": [{
                "executionSuccessful": errors.is_empty(),
                "toolExecutionNotifications": errors.iter().map(|(url, error)| json!({
                    "level": "error",
                    "message": { "text": format!("{url}: {error}") },
                })).collect::<Vec<_>>(),
            }],
            "results": results,
        }],
    })
}
