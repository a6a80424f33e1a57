//! `crossgate audit` on the command line: one URL or an `--input` list,
//! the `--sarif` file, and the exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{audit_with, batch, render, AuditError, AuditReport, Severity};
use crate::progress::Progress;
use crate::run::{could_not_run, run_report, RunOptions};

/// `crossgate audit` as the command line gives it.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The URL to probe (or `input`).
    pub url: Option<String>,
    /// A file listing URLs to probe, one per line (or `url`).
    pub input: Option<PathBuf>,
    /// How many URLs of `input` are audited at once.
    pub concurrency: usize,
    /// At most this many requests per second in all; `None`: no limit.
    pub rate: Option<f64>,
    /// Also write the findings to this file as SARIF 2.1.0.
    pub sarif: Option<PathBuf>,
    /// Origins the API is meant to trust; empty: the URL's own origin.
    pub trusted_origins: Vec<String>,
    /// Print one JSON document instead of text.
    pub json: bool,
    /// Exit 1 when a finding has this severity or higher.
    pub fail_on: Severity,
    /// Seconds to wait for each answer.
    pub timeout: u64,
    /// Trust only the CA certificates in this PEM file.
    pub cacert: Option<PathBuf>,
}

/// Runs `crossgate audit`; exit code 0 when no finding reaches `--fail-on`,
/// 1 when one does, 2 when the audit (of any URL of `--input`) could not run.
pub fn run(args: &AuditOptions) -> ExitCode {
    let run = RunOptions {
        json: args.json,
        timeout_seconds: args.timeout,
        cacert: args.cacert.as_deref(),
    };
    if let Some(path) = &args.input {
        let urls = match read_input(path) {
            Ok(urls) => urls,
            Err(e) => return could_not_run(&e, args.json),
        };
        return run_report(
            &run,
            |prober| async move {
                let prober = prober.with_rate_limit(args.rate);
                let mut progress = batch::Progress::on_stderr();
                let report = batch::audit_many(
                    &prober,
                    &urls,
                    &args.trusted_origins,
                    args.fail_on,
                    args.concurrency,
                    &mut progress,
                )
                .await;
                let errors: Vec<(String, String)> = report
                    .errors
                    .iter()
                    .map(|e| (e.url.clone(), e.error.clone()))
                    .collect();
                let reports: Vec<&AuditReport> = report.reports.iter().collect();
                write_sarif(args.sarif.as_deref(), &reports, &errors)?;
                Ok::<_, AuditError>(report)
            },
            render::write_batch,
            |report: &batch::BatchReport| {
                if !report.errors.is_empty() {
                    ExitCode::from(2)
                } else if report.failed {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            },
        );
    }
    let url = args.url.clone().unwrap_or_default();
    run_report(
        &run,
        |prober| async move {
            // Cleared when dropped, before the report is printed.
            let progress = Progress::start(!args.json, &url);
            let prober = prober
                .with_rate_limit(args.rate)
                .on_sent(progress.counter());
            let report = audit_with(&prober, &url, &args.trusted_origins, args.fail_on).await?;
            write_sarif(args.sarif.as_deref(), &[&report], &[])?;
            Ok::<_, AuditError>(report)
        },
        render::write_human,
        |report: &AuditReport| {
            if report.failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        },
    )
}

fn read_input(path: &Path) -> Result<Vec<String>, AuditError> {
    let bad = |reason: String| AuditError::Input {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let urls = crate::input::read_targets(&text).map_err(|e| bad(e.to_string()))?;
    if urls.is_empty() {
        return Err(bad("no URL in the file".to_owned()));
    }
    Ok(urls)
}

fn write_sarif(
    path: Option<&Path>,
    reports: &[&AuditReport],
    errors: &[(String, String)],
) -> Result<(), AuditError> {
    let Some(path) = path else { return Ok(()) };
    let log = crate::sarif::to_sarif(reports, errors);
    let text = serde_json::to_string_pretty(&log).map_err(|e| e.to_string());
    text.and_then(|t| std::fs::write(path, t + "\n").map_err(|e| e.to_string()))
        .map_err(|reason| AuditError::Sarif {
            path: path.display().to_string(),
            reason,
        })
}
