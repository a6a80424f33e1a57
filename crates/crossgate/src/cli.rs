//! The command line: every subcommand and flag is declared here, turned into
//! the plain options the libraries take, and dispatched. Nothing else in the
//! workspace depends on clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use crossgate_cors::browser::Engine;
use crossgate_probe::audit::{AuditOptions, Severity};
use crossgate_probe::check::{CheckOptions, EngineChoice};

use crate::logging::LogFormat;
use crate::serve::ServeOptions;

/// A CORS gateway that puts a validated policy in front of any HTTP API.
#[derive(Debug, Parser)]
#[command(name = "crossgate", version = env!("CROSSGATE_VERSION"), about)]
pub struct Cli {
    /// Log format.
    #[arg(long, value_enum, global = true, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
    /// Color the report of check and audit: auto colors when stdout is a
    /// terminal and NO_COLOR is unset or empty; never in pipes or with --json.
    #[arg(long, value_enum, global = true, value_name = "WHEN", default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(format: LogFormatArg) -> Self {
        match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// When to color the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// When stdout is a terminal and NO_COLOR is unset or empty.
    Auto,
    /// Always, even in pipes.
    Always,
    /// Never.
    Never,
}

impl From<ColorArg> for anstream::ColorChoice {
    fn from(color: ColorArg) -> Self {
        match color {
            ColorArg::Auto => Self::Auto,
            ColorArg::Always => Self::Always,
            ColorArg::Never => Self::Never,
        }
    }
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
    Check(CheckArgs),
    /// Probe any URL for CORS holes, with proof and fix for each finding.
    ///
    /// Classes: any origin reflected (with or without credentials), `null`
    /// trusted, prefix and suffix matches, unescaped dots, special characters
    /// after the host, any subdomain, http:// on an https:// site, `*` with
    /// credentials, shared hosting origins, missing `Vary: Origin`, preflights
    /// allowing any method or header with credentials.
    /// Exit code: 0 when no finding reaches --fail-on (default high), 1 when
    /// one does, 2 when the audit could not run.
    Audit(AuditArgs),
    /// Print a shell completion script to stdout.
    ///
    /// bash: `crossgate completions bash > ~/.local/share/bash-completion/completions/crossgate`;
    /// zsh: `crossgate completions zsh > ~/.zfunc/_crossgate` (with ~/.zfunc in $fpath);
    /// fish: `crossgate completions fish > ~/.config/fish/completions/crossgate.fish`.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout: `crossgate man | man -l -`.
    Man(ManArgs),
}

/// `crossgate completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `crossgate man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (crossgate-audit(1), say); without it, crossgate(1).
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
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

/// `crossgate check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The URL the page's script fetches (http:// or https://).
    #[arg(value_name = "URL", required_unless_present_any = ["curl", "har"], conflicts_with_all = ["curl", "har"])]
    pub url: Option<String>,
    /// The page's origin, e.g. https://app.example.com (no path, no trailing slash).
    #[arg(long, value_name = "ORIGIN", required_unless_present_any = ["curl", "har"])]
    pub origin: Option<String>,
    /// The whole fetch as DevTools' "Copy as cURL (bash)" gives it; headers
    /// the browser set itself are ignored (and listed), cookies mean credentials.
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["har", "method", "headers", "data", "credentials"])]
    pub curl: Option<String>,
    /// Check every cross-origin request of a HAR file recorded in DevTools,
    /// from its recorded answers (offline).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["method", "headers", "data", "credentials"])]
    pub har: Option<PathBuf>,
    /// With --har: send each request again instead of judging the recorded answers.
    #[arg(long, requires = "har")]
    pub live: bool,
    /// The method the script uses; Fetch upper-cases only DELETE GET HEAD OPTIONS POST PUT.
    #[arg(long, short = 'X', value_name = "METHOD", default_value = "GET")]
    pub method: String,
    /// A header the script sets, as 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request body the script sends, as text; like fetch(), adds
    /// `Content-Type: text/plain;charset=UTF-8` unless -H sets one.
    #[arg(long, short = 'd', value_name = "TEXT")]
    pub data: Option<String>,
    /// The script uses `credentials: 'include'` (cookies): stricter rules apply.
    #[arg(long)]
    pub credentials: bool,
    /// Print one JSON document instead of the step-by-step text.
    #[arg(long)]
    pub json: bool,
    /// Which browser's behaviour to model where browsers differ from the
    /// Fetch standard and each other (`all`: every profile, and where they disagree).
    #[arg(long, value_enum, default_value_t = EngineArg::Chromium)]
    pub engine: EngineArg,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Trust only the CA certificates in this PEM file (for private HTTPS servers).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// A browser engine, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// Chromium, Chrome, Edge.
    Chromium,
    /// Firefox.
    Firefox,
    /// WebKit: Safari and every iOS browser.
    Webkit,
    /// The Fetch standard to the letter.
    Spec,
    /// Every profile, and where they disagree.
    All,
}

impl From<EngineArg> for EngineChoice {
    fn from(engine: EngineArg) -> Self {
        match engine {
            EngineArg::Chromium => Self::One(Engine::Chromium),
            EngineArg::Firefox => Self::One(Engine::Firefox),
            EngineArg::Webkit => Self::One(Engine::WebKit),
            EngineArg::Spec => Self::One(Engine::Spec),
            EngineArg::All => Self::All,
        }
    }
}

impl From<CheckArgs> for CheckOptions {
    fn from(args: CheckArgs) -> Self {
        Self {
            url: args.url,
            origin: args.origin,
            curl: args.curl,
            har: args.har,
            live: args.live,
            method: args.method,
            headers: args.headers,
            data: args.data,
            credentials: args.credentials,
            json: args.json,
            engine: args.engine.into(),
            timeout: args.timeout,
            cacert: args.cacert,
        }
    }
}

/// `crossgate audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The URL to probe (http:// or https://).
    #[arg(
        value_name = "URL",
        required_unless_present = "input",
        conflicts_with = "input"
    )]
    pub url: Option<String>,
    /// Audit every URL of FILE (one per line; blank lines and `#` comments skipped).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// How many URLs of --input are audited at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Send at most this many requests per second in all (default: no limit).
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Also write the findings to FILE as SARIF 2.1.0 (for code-scanning dashboards).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// An origin the API is meant to trust (repeatable); probes are derived
    /// from it. Default: the URL's own origin.
    #[arg(long = "trusted-origin", value_name = "ORIGIN")]
    pub trusted_origins: Vec<String>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a finding has this severity or higher.
    #[arg(long, value_enum, default_value_t = SeverityArg::High)]
    pub fail_on: SeverityArg,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Trust only the CA certificates in this PEM file (for private HTTPS servers).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// How bad a finding is, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// Worth knowing; no risk by itself.
    Info,
    /// Unintended, but gives an attacker nothing a public API would not.
    Low,
    /// Exploitable under extra conditions (a compromised subdomain, a network attacker, a shared cache).
    Medium,
    /// Another site can read credentialed responses.
    High,
    /// Every site can read credentialed responses.
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(severity: SeverityArg) -> Self {
        match severity {
            SeverityArg::Info => Severity::Info,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
            SeverityArg::Critical => Severity::Critical,
        }
    }
}

/// A `--rate`: a positive number of requests per second, at most 10,000.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 10_000.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a rate: give requests per second, more than 0 and at most 10000 (e.g. 5 or 0.5)"
        )),
    }
}

impl From<AuditArgs> for AuditOptions {
    fn from(args: AuditArgs) -> Self {
        Self {
            url: args.url,
            input: args.input,
            concurrency: args.concurrency.into(),
            rate: args.rate,
            sarif: args.sarif,
            trusted_origins: args.trusted_origins,
            json: args.json,
            fail_on: args.fail_on.into(),
            timeout: args.timeout,
            cacert: args.cacert,
        }
    }
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> ExitCode {
        crate::logging::init(self.log_format.into());
        // The reports print through anstream, which reads this choice and
        // strips the colors when they are off.
        anstream::ColorChoice::from(self.color).write_global();
        match self.command {
            Command::Serve(args) => crate::serve::run(ServeOptions {
                config: args.config,
                listen: args.listen,
            }),
            Command::Validate(args) => crate::validate::run(&args.config),
            Command::Check(args) => crossgate_probe::check::run(&args.into()),
            Command::Audit(args) => crossgate_probe::audit::run(&args.into()),
            Command::Completions(args) => crate::manual::completions(args.shell),
            Command::Man(args) => crate::manual::man_page(args.command.as_deref()),
        }
    }
}
