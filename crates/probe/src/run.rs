//! What `check` and `audit` share as commands: the target URL they accept,
//! a one-thread runtime to probe on, the report printed as text or JSON, and
//! the exit code (2 when the probe could not run).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use http::Uri;
use serde::Serialize;

use crate::exchange::{ProbeError, Prober};

/// `url` as an absolute http(s) URL, or `None`.
pub(crate) fn parse_target(url: &str) -> Option<Uri> {
    let uri: Uri = url.parse().ok()?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Some(uri),
        _ => None,
    }
}

/// How a command prints its report and which CA it trusts.
pub(crate) struct RunOptions<'a> {
    /// One JSON document instead of text.
    pub(crate) json: bool,
    /// Seconds to wait for each answer (at least 1).
    pub(crate) timeout_seconds: u64,
    /// Trust only the CA certificates of this PEM file.
    pub(crate) cacert: Option<&'a Path>,
}

/// Probes on a one-thread runtime, prints the report as text or JSON, and
/// turns it into an exit code (2 when the probe could not run).
pub(crate) fn run_report<R, E, Fut>(
    options: &RunOptions<'_>,
    probe: impl FnOnce(Prober) -> Fut,
    write_text: fn(&mut String, &R) -> std::fmt::Result,
    exit_code: impl FnOnce(&R) -> ExitCode,
) -> ExitCode
where
    R: Serialize,
    E: std::fmt::Display + From<ProbeError>,
    Fut: std::future::Future<Output = Result<R, E>>,
{
    let json = options.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return could_not_run(&format!("cannot start the async runtime: {e}"), json),
    };
    let result = runtime.block_on(async {
        let timeout = Duration::from_secs(options.timeout_seconds.max(1));
        let prober = Prober::new(timeout, options.cacert)?;
        probe(prober).await
    });
    match result {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => return could_not_run(&e, true),
                }
            } else {
                let mut text = String::new();
                // Writing to a String cannot fail.
                let _ = write_text(&mut text, &report);
                // anstream strips the renderers' colors unless they are on.
                anstream::print!("{text}");
            }
            exit_code(&report)
        }
        Err(e) => could_not_run(&e, json),
    }
}

/// Prints why a command could not run and returns exit code 2.
pub(crate) fn could_not_run(error: &dyn std::fmt::Display, json: bool) -> ExitCode {
    if json {
        println!("{}", serde_json::json!({ "error": error.to_string() }));
    } else {
        eprintln!("error: {error}");
    }
    ExitCode::from(2)
}
