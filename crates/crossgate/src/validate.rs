//! `crossgate validate`: every problem, or a one-line summary with the
//! routes under a report-only policy.

use std::path::Path;
use std::process::ExitCode;

use crate::config::CompiledConfig;
use crate::config::ConfigSource;
use crate::ops::metrics::Metrics;

/// Prints every problem and returns 1, or the summary and warnings and returns 0.
pub fn run(config: &Path) -> ExitCode {
    let source = ConfigSource::File(config.to_path_buf());
    match CompiledConfig::load(&source, &Metrics::new()) {
        Ok(config) => {
            println!("{}", config.summary());
            for route in config.router.routes() {
                if let Some(candidate) = &route.report_only_policy {
                    let enforced = route
                        .policy
                        .as_ref()
                        .map_or_else(|| "no policy".to_owned(), |p| format!("`{}`", p.name));
                    println!(
                        "report-only: route {:?} enforces {enforced} and reports where `{}` would decide otherwise",
                        route.path, candidate.name
                    );
                }
            }
            for warning in &config.warnings {
                println!("{warning}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{problems}");
            ExitCode::FAILURE
        }
    }
}
