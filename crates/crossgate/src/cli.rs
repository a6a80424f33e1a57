//! The command line: every subcommand is declared and dispatched here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A CORS gateway that puts a validated policy in front of any HTTP API.
#[derive(Debug, Parser)]
#[command(name = "crossgate", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (with no --config: the built-in demo on 127.0.0.1:8080).
    Serve(ServeArgs),
    /// Check a configuration file and print every problem.
    Validate(ValidateArgs),
    /// Say exactly what a browser does with one cross-origin fetch() to any URL.
    ///
    /// Sends the preflight and the request as Chromium would, shows each step,
    /// and ends with ALLOWED or BLOCKED and the exact header to fix.
    /// Exit code: 0 allowed, 1 blocked, 2 could not run.
    Check(crate::check::CheckArgs),
    /// Probe any URL for CORS holes, with proof and fix for each finding.
    ///
    /// Classes: any origin reflected (with or without credentials), `null`
    /// trusted, prefix and suffix matches, unescaped dots, special characters
    /// after the host, any subdomain, http:// on an https:// site, `*` with
    /// credentials, shared hosting origins, missing `Vary: Origin`, preflights
    /// allowing any method or header with credentials.
    /// Exit code: 0 when no finding reaches --fail-on (default high), 1 when
    /// one does, 2 when the audit could not run.
    Audit(crate::audit::AuditArgs),
}

/// `crossgate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file; without it the built-in demo runs.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen on this address instead of the file's `server.listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// `crossgate validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The configuration file to check.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: PathBuf,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> ExitCode {
        crate::logging::init(self.log_format);
        match self.command {
            Command::Serve(args) => crate::serve::run(args),
            Command::Validate(args) => crate::validate::run(&args),
            Command::Check(args) => crate::check::run(&args),
            Command::Audit(args) => crate::audit::run(&args),
        }
    }
}
