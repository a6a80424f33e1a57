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
    /// Say exactly what a browser does with one cross-origin fetch() to any URL:
    /// each request sent, each answer, ALLOWED or BLOCKED and the fix
    /// (exit 0 allowed, 1 blocked, 2 could not run).
    Check(crate::check::CheckArgs),
    /// Probe any URL for CORS holes (reflected origins, `null`, prefix/suffix
    /// matches, unescaped dots, wildcard with credentials, missing Vary, ...);
    /// exit 1 when a finding reaches --fail-on (default high), 2 if it could not run.
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
