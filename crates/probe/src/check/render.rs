//! The step-by-step text of `crossgate check`.

use std::fmt::Write;

use http::HeaderMap;

use super::{AllEnginesReport, CheckReport, StepKind, Verdict};
use crate::exchange::show_value;
use crate::style::{BAD, FIX, GOOD, HEADING, TRAFFIC, WARN};

/// The report as a person reads it: each request sent and answered, what
/// the browser made of it, then the verdict and the fix.
pub(super) fn write_human(out: &mut String, report: &CheckReport) -> std::fmt::Result {
    writeln!(
        out,
        "{HEADING}crossgate check: {} {}{HEADING:#} from origin {} (credentials: {}, engine: {})",
        report.method, report.url, report.origin, report.credentials, report.engine
    )?;
    for departure in &report.departures {
        writeln!(
            out,
            "note: {} departs from the standard here: it {}; the standard's rule, which it may adopt later: {}",
            report.engine_version, departure.behaviour, departure.rule
        )?;
    }
    for name in &report.dropped_headers {
        writeln!(
            out,
            "{WARN}note:{WARN:#} browsers never let a page set `{name}`; fetch() drops it silently, so it is not sent"
        )?;
    }
    if report.steps.iter().all(|s| s.kind != StepKind::Preflight) && report.cross_origin {
        let direct = match report.steps.first() {
            Some(step) if step.kind == StepKind::Actual => {
                "no preflight: the method and headers are CORS-safelisted"
            }
            _ => "no preflight",
        };
        writeln!(out, "{direct}")?;
    }
    for (i, step) in report.steps.iter().enumerate() {
        writeln!(out)?;
        let title = match step.kind {
            StepKind::Preflight => "preflight",
            StepKind::Actual => "request",
        };
        writeln!(out, "{HEADING}step {}: {title}{HEADING:#}", i + 1)?;
        for reason in &step.preflight_reasons {
            writeln!(out, "  why: {reason}")?;
        }
        let exchange = &step.exchange;
        writeln!(out, "  > {} {}", exchange.method, exchange.url)?;
        write_headers(out, "  > ", &exchange.request_headers)?;
        writeln!(out, "  < {}", exchange.status)?;
        write_headers(out, "  < ", &exchange.response_headers)?;
        write!(out, "  = {}", step.outcome)?;
        if let Some(seconds) = step.cached_seconds {
            match step.max_age_requested {
                Some(asked) if asked != seconds => {
                    write!(out, "; cached {seconds} s (Access-Control-Max-Age asked {asked} s, capped by the browser)")?
                }
                Some(_) => write!(out, "; cached {seconds} s")?,
                None => write!(out, "; cached {seconds} s (the default: no readable Access-Control-Max-Age)")?,
            }
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    match (&report.verdict, &report.block) {
        (Verdict::Blocked, Some(block)) => {
            let mut problems = block.problems.iter();
            if let Some(first) = problems.next() {
                writeln!(out, "{BAD}BLOCKED:{BAD:#} {}", first.message)?;
                writeln!(out, "{FIX}fix:{FIX:#} {}", first.fix)?;
            } else {
                writeln!(out, "{BAD}BLOCKED{BAD:#}")?;
            }
            for other in problems {
                writeln!(out, "{BAD}also:{BAD:#} {}", other.message)?;
                writeln!(out, "{FIX}fix:{FIX:#} {}", other.fix)?;
            }
        }
        _ => {
            let status = report.status.map(|s| s.to_string()).unwrap_or_default();
            writeln!(
                out,
                "{GOOD}ALLOWED:{GOOD:#} script gets the {status} response"
            )?;
            if !report.readable_headers.is_empty() {
                writeln!(
                    out,
                    "script can read: {}",
                    report.readable_headers.join(", ")
                )?;
            }
            for hidden in &report.hidden_headers {
                writeln!(
                    out,
                    "{WARN}hidden from script:{WARN:#} {} (to expose it: {})",
                    hidden.name, hidden.fix
                )?;
            }
        }
    }
    Ok(())
}

/// `--engine all`: the verdict of each profile, where they disagree, then
/// each profile's report.
pub(super) fn write_all_engines(out: &mut String, all: &AllEnginesReport) -> std::fmt::Result {
    writeln!(out, "crossgate check --engine all: {}", all.summary)?;
    for report in &all.engines {
        let verdict = match report.verdict {
            Verdict::Allowed => "ALLOWED",
            Verdict::Blocked => "BLOCKED",
        };
        writeln!(
            out,
            "  {:<8} {verdict:<8} ({})",
            report.engine, report.engine_version
        )?;
    }
    for report in &all.engines {
        writeln!(out)?;
        writeln!(out, "==> {}", report.engine)?;
        write_human(out, report)?;
    }
    Ok(())
}

fn write_headers(out: &mut String, prefix: &str, headers: &HeaderMap) -> std::fmt::Result {
    for (name, value) in headers {
        writeln!(
            out,
            "{TRAFFIC}{prefix}{name}: {}{TRAFFIC:#}",
            show_value(value)
        )?;
    }
    Ok(())
}
