//! The text of `crossgate audit`.

use std::fmt::Write;

use anstyle::Style;

use super::batch::BatchReport;
use super::{AuditReport, FindingClass, Severity};
use crate::style::{BAD, FIX, GOOD, HEADING, MILD, TRAFFIC, WARN};

/// Each finding with its probe, proof and fix, then a one-line tally.
pub(super) fn write_human(out: &mut String, report: &AuditReport) -> std::fmt::Result {
    writeln!(
        out,
        "{HEADING}crossgate audit: {}{HEADING:#} (trusted: {}; {} requests sent)",
        report.url,
        report.trusted_origins.join(", "),
        report.probes_sent
    )?;
    for finding in &report.findings {
        writeln!(out)?;
        let style = severity_style(finding.severity);
        writeln!(
            out,
            "{style}[{}] {}{style:#}: {}",
            finding.severity.label().to_ascii_uppercase(),
            finding.class.code(),
            finding.description
        )?;
        write!(
            out,
            "  probe: {} {} with Origin: {}",
            finding.probe.method, finding.probe.url, finding.probe.origin
        )?;
        for [name, value] in &finding.probe.request_headers {
            write!(out, ", {name}: {value}")?;
        }
        writeln!(out)?;
        writeln!(out, "  proof: status {}", finding.status)?;
        for [name, value] in &finding.proof {
            writeln!(out, "         {TRAFFIC}{name}: {value}{TRAFFIC:#}")?;
        }
        if !finding.also_accepted.is_empty() {
            // One finding per class: the other origins of the class are listed here.
            let label = match finding.class {
                FindingClass::TrustedOriginRefused => "also refused",
                _ => "also accepted",
            };
            writeln!(out, "  {label}: {}", finding.also_accepted.join(" "))?;
        }
        writeln!(out, "  {FIX}fix:{FIX:#} {}", finding.fix)?;
    }
    writeln!(out)?;
    let count = |s: Severity| report.findings.iter().filter(|f| f.severity == s).count();
    let tally: Vec<String> = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]
    .into_iter()
    .filter(|&s| count(s) > 0)
    .map(|s| format!("{} {}", count(s), s.label()))
    .collect();
    let verdict = if report.failed {
        format!("{BAD}FAIL{BAD:#}")
    } else {
        format!("{GOOD}PASS{GOOD:#}")
    };
    if tally.is_empty() {
        writeln!(
            out,
            "no finding; {verdict} (--fail-on {})",
            report.fail_on.label()
        )?;
    } else {
        writeln!(
            out,
            "{} finding(s): {}; {verdict} (--fail-on {})",
            report.findings.len(),
            tally.join(", "),
            report.fail_on.label()
        )?;
    }
    Ok(())
}

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical | Severity::High => BAD,
        Severity::Medium => WARN,
        Severity::Low | Severity::Info => MILD,
    }
}

/// Each URL's report, then the URLs that could not be audited and a tally.
pub(super) fn write_batch(out: &mut String, batch: &BatchReport) -> std::fmt::Result {
    for report in &batch.reports {
        write_human(out, report)?;
        writeln!(out)?;
    }
    for error in &batch.errors {
        writeln!(
            out,
            "crossgate audit: {}: could not audit: {}",
            error.url, error.error
        )?;
    }
    let with_findings = batch
        .reports
        .iter()
        .filter(|r| !r.findings.is_empty())
        .count();
    let failing = batch.reports.iter().filter(|r| r.failed).count();
    writeln!(
        out,
        "{} URL(s) audited: {with_findings} with findings, {failing} at or above --fail-on {}; {} could not be audited",
        batch.reports.len(),
        batch.fail_on.label(),
        batch.errors.len()
    )
}
