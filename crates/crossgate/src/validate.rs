//! `crossgate validate`: every problem, or a one-line summary.

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
