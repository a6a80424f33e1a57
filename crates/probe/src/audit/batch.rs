//! `crossgate audit --input FILE`: many URLs, a bounded number at a time
//! (each audit's own requests go one after another), under the prober's
//! request-rate limit, with progress on a terminal.

use std::io::{IsTerminal, Write};

use serde::Serialize;
use tokio::task::JoinSet;

use super::{audit_with, AuditReport, Severity};
use crate::exchange::Prober;

/// A URL that could not be audited.
#[derive(Debug, Clone, Serialize)]
pub struct TargetError {
    /// The URL.
    pub url: String,
    /// Why.
    pub error: String,
}

/// The audits of every URL of the list, in list order.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// One report per URL that could be audited.
    pub reports: Vec<AuditReport>,
    /// The URLs that could not be audited.
    pub errors: Vec<TargetError>,
    /// The `--fail-on` threshold.
    pub fail_on: Severity,
    /// Whether a finding of any URL reaches the threshold.
    pub failed: bool,
}

/// Audits every URL of `urls`, at most `concurrency` at once (at least one),
/// telling `progress` after each how many are done.
pub async fn audit_many(
    prober: &Prober,
    urls: &[String],
    trusted_origins: &[String],
    fail_on: Severity,
    concurrency: usize,
    progress: &mut Progress,
) -> BatchReport {
    let mut outcomes: Vec<Option<Result<AuditReport, String>>> = vec![None; urls.len()];
    let mut pending = urls.iter().cloned().enumerate();
    let mut running = JoinSet::new();
    let mut done = 0;
    loop {
        while running.len() < concurrency.max(1) {
            let Some((index, url)) = pending.next() else {
                break;
            };
            let prober = prober.clone();
            let trusted = trusted_origins.to_vec();
            running.spawn(async move {
                let outcome = audit_with(&prober, &url, &trusted, fail_on)
                    .await
                    .map_err(|e| e.to_string());
                (index, outcome)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        done += 1;
        match joined {
            Ok((index, outcome)) => {
                progress.advance(done, urls.len(), &urls[index]);
                outcomes[index] = Some(outcome);
            }
            // An audit task panicked: a bug, reported where its URL is unknown.
            Err(e) => progress.advance(done, urls.len(), &e.to_string()),
        }
    }
    progress.finish();
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for (url, outcome) in urls.iter().zip(outcomes) {
        match outcome {
            Some(Ok(report)) => reports.push(report),
            Some(Err(error)) => errors.push(TargetError {
                url: url.clone(),
                error,
            }),
            None => errors.push(TargetError {
                url: url.clone(),
                error: "the audit task failed".to_owned(),
            }),
        }
    }
    let failed = reports.iter().any(|r| r.failed);
    BatchReport {
        reports,
        errors,
        fail_on,
        failed,
    }
}

/// A one-line progress counter on stderr, drawn only when stderr is a
/// terminal: piped or redirected output stays clean.
pub struct Progress {
    terminal: bool,
    drawn: bool,
}

impl Progress {
    /// Draws on stderr when it is a terminal.
    pub fn on_stderr() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Draws nothing.
    pub fn hidden() -> Self {
        Self {
            terminal: false,
            drawn: false,
        }
    }

    fn advance(&mut self, done: usize, total: usize, last: &str) {
        if self.terminal {
            // \r and "erase line" redraw in place.
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[Kaudit: {done}/{total} done, last {last}");
            let _ = err.flush();
            self.drawn = true;
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}
