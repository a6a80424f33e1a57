//! `crossgate audit`: probe any endpoint for the classic CORS holes.
//!
//! Probe origins are derived from the target and the trusted origins (the
//! way CORScanner and Corsy do), each sent as a plain `GET` with `Origin`;
//! an origin counts as accepted when `Access-Control-Allow-Origin` echoes it
//! byte for byte, which is what a browser requires. Two preflights with a
//! trusted origin test whether any method or header is allowed. Every finding
//! carries the probe, the response headers that prove it, and a fix.

pub mod batch;
mod render;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crossgate_cors::browser::{self, CorsRequest, CredentialsMode, Engine};
use http::{HeaderMap, HeaderValue, Method, Uri};
use serde::Serialize;

use crate::exchange::{show_value, Exchange, ProbeError, Prober};
use crate::progress::Progress;
use crate::run::{could_not_run, parse_target, run_report, RunOptions};

/// The attacker-controlled domain every probe origin is built on.
const ATTACKER: &str = "crossgate-audit.example";

/// Characters that sloppy origin checks let through after the host
/// (`https://trusted.com_.attacker.example`). Only those the URL standard
/// allows in a domain (Safari sends them all, Chromium and Firefox `_` and
/// `-`); `^`, `|` and `%` are forbidden domain code points, so no browser
/// can send an origin holding them and probing with them proves nothing.
const SPECIAL_CHARACTERS: [&str; 17] = [
    "_", "-", "{", "}", "`", "!", "~", ";", "&", "'", "(", ")", "*", ",", "$", "=", "+",
];

/// Shared hosting where anyone can publish a page, hence run script.
const THIRD_PARTY_ORIGINS: [&str; 14] = [
    "https://crossgate-audit.github.io",
    "https://crossgate-audit.gitlab.io",
    "https://codepen.io",
    "https://cdpn.io",
    "https://jsfiddle.net",
    "https://fiddle.jshell.net",
    "https://jsbin.com",
    "https://output.jsbin.com",
    "https://stackblitz.com",
    "https://crossgate-audit.glitch.me",
    "https://crossgate-audit.netlify.app",
    "https://crossgate-audit.vercel.app",
    "https://crossgate-audit.herokuapp.com",
    "https://crossgate-audit.pages.dev",
];

/// The method and header a sane preflight policy never allows.
const PROBE_METHOD: &str = "CROSSGATE-PROBE";
const PROBE_HEADER: &str = "x-crossgate-probe";

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

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
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

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// The kinds of CORS holes the audit looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingClass {
    /// Any origin is echoed, without credentials.
    AnyOriginReflected,
    /// Any origin is echoed together with `Access-Control-Allow-Credentials: true`.
    ReflectedWithCredentials,
    /// `Origin: null` (sandboxed iframes, `file:`, some redirects) is trusted.
    NullOriginTrusted,
    /// `https://trusted.com.attacker.example` is trusted: only the start is compared.
    PrefixMatch,
    /// `https://attackertrusted.com` is trusted: only the end is compared.
    SuffixMatch,
    /// `https://trustedxcom` is trusted: a regex dot is unescaped.
    UnescapedDot,
    /// `https://trusted.com_.attacker.example` is trusted: characters after the host pass.
    SpecialCharacters,
    /// Any subdomain of a trusted host is trusted.
    AnySubdomainTrusted,
    /// The `http://` twin of an `https://` trusted origin is trusted.
    InsecureOriginTrusted,
    /// `Access-Control-Allow-Origin: *` together with `Access-Control-Allow-Credentials: true`.
    WildcardWithCredentials,
    /// A shared hosting origin (github.io, codepen.io, ...) is trusted.
    ThirdPartyOriginTrusted,
    /// `Access-Control-Allow-Origin` echoes the request's origin without `Vary: Origin`.
    MissingVaryOrigin,
    /// A credentialed preflight allows any method.
    PreflightAllowsAnyMethod,
    /// A credentialed preflight allows any header.
    PreflightAllowsAnyHeader,
    /// A trusted origin is not accepted (the trusted list or the server is wrong).
    TrustedOriginRefused,
    /// The response carries several `Access-Control-Allow-Origin` values, which browsers refuse.
    MultipleAllowOrigin,
}

impl FindingClass {
    /// The identifier used in output, e.g. `null_origin_trusted`.
    pub fn code(self) -> &'static str {
        match self {
            Self::AnyOriginReflected => "any_origin_reflected",
            Self::ReflectedWithCredentials => "reflected_with_credentials",
            Self::NullOriginTrusted => "null_origin_trusted",
            Self::PrefixMatch => "prefix_match",
            Self::SuffixMatch => "suffix_match",
            Self::UnescapedDot => "unescaped_dot",
            Self::SpecialCharacters => "special_characters",
            Self::AnySubdomainTrusted => "any_subdomain_trusted",
            Self::InsecureOriginTrusted => "insecure_origin_trusted",
            Self::WildcardWithCredentials => "wildcard_with_credentials",
            Self::ThirdPartyOriginTrusted => "third_party_origin_trusted",
            Self::MissingVaryOrigin => "missing_vary_origin",
            Self::PreflightAllowsAnyMethod => "preflight_allows_any_method",
            Self::PreflightAllowsAnyHeader => "preflight_allows_any_header",
            Self::TrustedOriginRefused => "trusted_origin_refused",
            Self::MultipleAllowOrigin => "multiple_allow_origin",
        }
    }

    /// What the class means, in one sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Self::AnyOriginReflected => "any origin is echoed in Access-Control-Allow-Origin",
            Self::ReflectedWithCredentials => {
                "any origin is echoed with Access-Control-Allow-Credentials: true: every website can read this API with the visitor's cookies"
            }
            Self::NullOriginTrusted => {
                "`Origin: null` is trusted; any site can send it from a sandboxed iframe"
            }
            Self::PrefixMatch => "an origin that only starts with a trusted origin is trusted",
            Self::SuffixMatch => "an origin that only ends with a trusted domain is trusted",
            Self::UnescapedDot => "a dot of a trusted host matches any character (unescaped regex dot)",
            Self::SpecialCharacters => "characters after a trusted host are let through",
            Self::AnySubdomainTrusted => {
                "any subdomain of a trusted host is trusted, so one subdomain takeover or XSS exposes the API"
            }
            Self::InsecureOriginTrusted => {
                "the http:// twin of a trusted https:// origin is trusted; a network attacker can inject script into it"
            }
            Self::WildcardWithCredentials => {
                "Access-Control-Allow-Origin: * with Access-Control-Allow-Credentials: true; browsers refuse it, and it shows credentialed access is meant for everyone"
            }
            Self::ThirdPartyOriginTrusted => {
                "a shared hosting origin is trusted; anyone can publish script there"
            }
            Self::MissingVaryOrigin => {
                "Access-Control-Allow-Origin depends on the request's Origin but the response has no `Vary: Origin`, so caches serve one origin's answer to another"
            }
            Self::PreflightAllowsAnyMethod => "a credentialed preflight allows any method it is asked for",
            Self::PreflightAllowsAnyHeader => "a credentialed preflight allows any header it is asked for",
            Self::TrustedOriginRefused => "a trusted origin is not accepted",
            Self::MultipleAllowOrigin => {
                "the response carries more than one Access-Control-Allow-Origin value; browsers refuse it, so no page can read it cross-origin (usually the app and a proxy both add the header)"
            }
        }
    }

    /// What to change.
    pub fn fix(self) -> &'static str {
        match self {
            Self::AnyOriginReflected | Self::ReflectedWithCredentials => {
                "echo the Origin only when it is on an allow-list of exact origins (crossgate: `origins = [\"https://app.example.com\"]`)"
            }
            Self::NullOriginTrusted => "never allow `null`; give each page a real origin",
            Self::PrefixMatch => {
                "compare the whole origin (scheme, host and port) exactly; anchor regexes with `^` and `$`"
            }
            Self::SuffixMatch => {
                "match hosts exactly, or subdomains only on a dot boundary (`.trusted.com`), never a bare suffix"
            }
            Self::UnescapedDot => "escape dots in origin regexes (`\\.`), or list exact origins",
            Self::SpecialCharacters => {
                "parse the Origin and compare its host exactly instead of matching a pattern over the raw string"
            }
            Self::AnySubdomainTrusted => {
                "list the subdomains that need access instead of trusting every one (and never with credentials)"
            }
            Self::InsecureOriginTrusted => "trust only https:// origins for an https:// API",
            Self::WildcardWithCredentials => {
                "either drop Access-Control-Allow-Credentials, or echo origins from an exact allow-list instead of `*`"
            }
            Self::ThirdPartyOriginTrusted => {
                "trust only origins you control, never a shared hosting domain or its wildcard"
            }
            Self::MissingVaryOrigin => {
                "add `Vary: Origin` to every response whose Access-Control-Allow-Origin depends on the request"
            }
            Self::PreflightAllowsAnyMethod => {
                "list the methods the API uses in Access-Control-Allow-Methods instead of echoing Access-Control-Request-Method"
            }
            Self::PreflightAllowsAnyHeader => {
                "list the headers the API reads in Access-Control-Allow-Headers instead of echoing Access-Control-Request-Headers"
            }
            Self::TrustedOriginRefused => {
                "add the origin to the server's allow-list, or drop it from --trusted-origin"
            }
            Self::MultipleAllowOrigin => {
                "set Access-Control-Allow-Origin in one place only (the app or the proxy), with exactly one origin"
            }
        }
    }
}

/// The request that revealed a finding.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeSummary {
    /// The method sent.
    pub method: String,
    /// The URL probed.
    pub url: String,
    /// The `Origin` sent.
    pub origin: String,
    /// The `Access-Control-Request-*` headers, for preflights.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<[String; 2]>,
}

/// One CORS hole.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What kind of hole.
    pub class: FindingClass,
    /// How bad.
    pub severity: Severity,
    /// What it means.
    pub description: String,
    /// The request that proves it.
    pub probe: ProbeSummary,
    /// The status and the response headers that prove it.
    pub status: u16,
    /// The CORS and `Vary` response headers received.
    pub proof: Vec<[String; 2]>,
    /// Other origins of the same class: accepted the same way (for
    /// `trusted_origin_refused`: also refused).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_accepted: Vec<String>,
    /// What to change.
    pub fix: String,
}

/// The result of an audit.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The URL probed.
    pub url: String,
    /// The origins probes were derived from.
    pub trusted_origins: Vec<String>,
    /// How many requests were sent.
    pub probes_sent: usize,
    /// The findings, most severe first.
    pub findings: Vec<Finding>,
    /// The `--fail-on` threshold.
    pub fail_on: Severity,
    /// Whether a finding reaches the threshold.
    pub failed: bool,
}

impl AuditReport {
    /// Findings of `class`.
    pub fn of(&self, class: FindingClass) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.class == class)
    }
}

/// Why an audit could not run (exit code 2).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The URL is not an absolute http(s) URL.
    #[error("`{0}` is not an absolute http:// or https:// URL")]
    Url(String),
    /// A `--trusted-origin` is not an origin.
    #[error(
        "`{0}` is not an origin: write it as scheme://host[:port], no path, no trailing slash"
    )]
    Origin(String),
    /// A probe could not be sent or answered.
    #[error("{0}")]
    Probe(#[from] ProbeError),
    /// The `--input` file could not be read or has a bad line.
    #[error("--input {path}: {reason}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The `--sarif` file could not be written.
    #[error("cannot write --sarif {path}: {reason}")]
    Sarif {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
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

/// A trusted origin taken apart.
#[derive(Debug, Clone)]
struct Trusted {
    serialized: String,
    scheme: String,
    host: String,
    /// `:port`, or empty for the default port.
    port: String,
}

impl Trusted {
    fn parse(origin: &str) -> Result<Self, AuditError> {
        let bad = || AuditError::Origin(origin.to_owned());
        let uri: Uri = origin.parse().map_err(|_| bad())?;
        if browser::serialize_origin(&uri).as_deref() != Some(origin) {
            return Err(bad());
        }
        let scheme = uri.scheme_str().ok_or_else(bad)?.to_owned();
        let host = uri.host().ok_or_else(bad)?.to_owned();
        let port = match origin.rsplit_once(':') {
            Some((_, port))
                if !port.starts_with("//") && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!(":{port}")
            }
            _ => String::new(),
        };
        Ok(Self {
            serialized: origin.to_owned(),
            scheme,
            host,
            port,
        })
    }

    fn is_ip(&self) -> bool {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok()
    }

    fn with_host(&self, host: &str) -> String {
        format!("{}://{host}{}", self.scheme, self.port)
    }
}

/// One probe origin and the class it reveals when accepted.
struct OriginProbe {
    origin: String,
    class: FindingClass,
}

fn origin_probes(bases: &[Trusted], trusted: &[Trusted]) -> Vec<OriginProbe> {
    let mut probes = vec![
        OriginProbe {
            origin: format!("https://{ATTACKER}"),
            class: FindingClass::AnyOriginReflected,
        },
        OriginProbe {
            origin: "null".to_owned(),
            class: FindingClass::NullOriginTrusted,
        },
    ];
    for t in bases {
        let mut add = |origin: String, class| {
            if !probes.iter().any(|p: &OriginProbe| p.origin == origin) {
                probes.push(OriginProbe { origin, class });
            }
        };
        add(
            t.with_host(&format!("{}.{ATTACKER}", t.host)),
            FindingClass::PrefixMatch,
        );
        let registrable = browser::registrable_domain(&t.host);
        add(
            t.with_host(&format!("crossgateaudit{registrable}")),
            FindingClass::SuffixMatch,
        );
        if !t.is_ip() {
            for (i, _) in t.host.match_indices('.').take(3) {
                let mut host = t.host.clone();
                host.replace_range(i..=i, "x");
                add(t.with_host(&host), FindingClass::UnescapedDot);
            }
            add(
                t.with_host(&format!("crossgate-audit.{}", t.host)),
                FindingClass::AnySubdomainTrusted,
            );
        }
        for c in SPECIAL_CHARACTERS {
            add(
                t.with_host(&format!("{}{c}.{ATTACKER}", t.host)),
                FindingClass::SpecialCharacters,
            );
        }
        if t.scheme == "https" {
            add(
                format!("http://{}{}", t.host, t.port),
                FindingClass::InsecureOriginTrusted,
            );
        }
    }
    for origin in THIRD_PARTY_ORIGINS {
        probes.push(OriginProbe {
            origin: origin.to_owned(),
            class: FindingClass::ThirdPartyOriginTrusted,
        });
    }
    // A probe equal to a trusted origin proves nothing, and one no browser
    // can send (a suffix probe glued to an IP address) proves nothing either.
    probes.retain(|p| {
        !trusted.iter().any(|t| t.serialized == p.origin) && browser_can_send(&p.origin)
    });
    probes
}

/// Whether a browser can send `origin` in an `Origin` header: `null`, or
/// `scheme://host[:port]` whose host the URL standard's host parser accepts
/// unchanged (an IP literal, or an ASCII domain without forbidden domain code
/// points whose last label is not a number unless the whole host is IPv4).
fn browser_can_send(origin: &str) -> bool {
    if origin == "null" {
        return true;
    }
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(inner) => {
            return inner.split_once(']').is_some_and(|(ip, port)| {
                ip.parse::<std::net::Ipv6Addr>().is_ok() && valid_port(port)
            });
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) if valid_port(&format!(":{port}")) => host,
            Some(_) => return false,
            None => rest,
        },
    };
    let forbidden = |b: u8| {
        b <= 0x20
            || b >= 0x7f
            || matches!(
                b,
                b'#' | b'%'
                    | b'/'
                    | b':'
                    | b'<'
                    | b'>'
                    | b'?'
                    | b'@'
                    | b'['
                    | b'\\'
                    | b']'
                    | b'^'
                    | b'|'
            )
    };
    if host.is_empty() || host.bytes().any(forbidden) {
        return false;
    }
    let last_label = host
        .strip_suffix('.')
        .unwrap_or(host)
        .rsplit('.')
        .next()
        .unwrap_or("");
    let numeric = !last_label.is_empty() && last_label.bytes().all(|b| b.is_ascii_digit())
        || last_label.starts_with("0x")
        || last_label.starts_with("0X");
    !numeric || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// An empty port or `:digits` below 65536.
fn valid_port(port: &str) -> bool {
    port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        })
}

/// What a response says about CORS.
struct CorsAnswer<'a> {
    exchange: &'a Exchange,
    origin: &'a str,
}

impl CorsAnswer<'_> {
    /// The `Access-Control-Allow-Origin` value a browser reads: the fields
    /// combined with `, ` as Fetch's "get" does, compared byte for byte.
    fn allow_origin(&self) -> Option<Vec<u8>> {
        let mut fields = self
            .exchange
            .response_headers
            .get_all(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .iter();
        let mut combined = fields.next()?.as_bytes().to_vec();
        for field in fields {
            combined.extend_from_slice(b", ");
            combined.extend_from_slice(field.as_bytes());
        }
        Some(combined)
    }

    /// Several origins where browsers want one: repeated fields, or one field
    /// listing several (a comma that is not part of the probe origin itself).
    /// Browsers refuse both.
    fn multiple_allow_origin(&self) -> bool {
        let fields = self
            .exchange
            .response_headers
            .get_all(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .iter()
            .count();
        fields > 1 || (!self.accepted() && self.allow_origin().is_some_and(|v| v.contains(&b',')))
    }

    fn accepted(&self) -> bool {
        self.allow_origin().as_deref() == Some(self.origin.as_bytes())
    }

    fn credentials(&self) -> bool {
        self.exchange
            .response_headers
            .get(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_some_and(|v| v.as_bytes() == b"true")
    }

    fn wildcard_with_credentials(&self) -> bool {
        self.allow_origin().as_deref() == Some(b"*") && self.credentials()
    }

    fn varies_on_origin(&self) -> bool {
        self.exchange
            .response_headers
            .get_all(http::header::VARY)
            .iter()
            .any(|v| {
                v.as_bytes()
                    .split(|&b| b == b',')
                    .map(|item| item.trim_ascii())
                    .any(|item| item.eq_ignore_ascii_case(b"origin") || item == b"*")
            })
    }
}

/// The CORS headers of an answer, to tell whether the answer depends on the Origin.
fn cors_headers(exchange: &Exchange) -> Vec<(String, Vec<u8>)> {
    exchange
        .response_headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("access-control-"))
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

fn summary(exchange: &Exchange, origin: &str) -> ProbeSummary {
    ProbeSummary {
        method: exchange.method.to_string(),
        url: exchange.url.to_string(),
        origin: origin.to_owned(),
        request_headers: exchange
            .request_headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("access-control-request-"))
            .map(|(name, value)| [name.to_string(), show_value(value)])
            .collect(),
    }
}

fn proof(exchange: &Exchange) -> Vec<[String; 2]> {
    exchange
        .response_headers
        .iter()
        .filter(|(name, _)| {
            name.as_str().starts_with("access-control-") || name == &http::header::VARY
        })
        .map(|(name, value)| [name.to_string(), show_value(value)])
        .collect()
}

fn finding(class: FindingClass, severity: Severity, exchange: &Exchange, origin: &str) -> Finding {
    Finding {
        class,
        severity,
        description: class.describe().to_owned(),
        probe: summary(exchange, origin),
        status: exchange.status.as_u16(),
        proof: proof(exchange),
        also_accepted: Vec::new(),
        fix: class.fix().to_owned(),
    }
}

/// How bad an accepted untrusted origin is: it matters when credentials come with it.
fn acceptance_severity(class: FindingClass, credentials: bool) -> Severity {
    match (class, credentials) {
        (FindingClass::ReflectedWithCredentials, _) => Severity::Critical,
        (FindingClass::AnySubdomainTrusted | FindingClass::InsecureOriginTrusted, true) => {
            Severity::Medium
        }
        (_, true) => Severity::High,
        (_, false) => Severity::Low,
    }
}

/// Audits `url` with a fresh client (10-second timeout, webpki roots).
pub async fn audit(
    url: &str,
    trusted_origins: &[String],
    fail_on: Severity,
) -> Result<AuditReport, AuditError> {
    let prober = Prober::new(Duration::from_secs(10), None)?;
    audit_with(&prober, url, trusted_origins, fail_on).await
}

/// Sends every probe to `url` and collects the findings.
pub async fn audit_with(
    prober: &Prober,
    url: &str,
    trusted_origins: &[String],
    fail_on: Severity,
) -> Result<AuditReport, AuditError> {
    let target = parse_target(url).ok_or_else(|| AuditError::Url(url.to_owned()))?;
    let own_origin =
        browser::serialize_origin(&target).ok_or_else(|| AuditError::Url(url.to_owned()))?;
    let trusted_names: Vec<String> = if trusted_origins.is_empty() {
        vec![own_origin.clone()]
    } else {
        trusted_origins.to_vec()
    };
    let trusted = trusted_names
        .iter()
        .map(|o| Trusted::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    // Probes are also derived from the target's own origin: a server often
    // trusts look-alikes of its own host.
    let mut bases = trusted.clone();
    if let Ok(own) = Trusted::parse(&own_origin) {
        if !bases.iter().any(|b| b.serialized == own.serialized) {
            bases.push(own);
        }
    }

    let mut findings: Vec<Finding> = Vec::new();
    let mut sent = 0usize;
    let mut observed = Observed::default();

    // The answer to no Origin at all: a cache may hold it for everyone.
    let exchange = prober
        .send(&Method::GET, &target, &probe_headers(None))
        .await?;
    sent += 1;
    observed.note_answer(&exchange);

    for t in &trusted {
        let exchange = prober
            .send(&Method::GET, &target, &probe_headers(Some(&t.serialized)))
            .await?;
        sent += 1;
        let answer = CorsAnswer {
            exchange: &exchange,
            origin: &t.serialized,
        };
        observed.note(&answer, &mut findings);
        // The URL's own origin is only a starting point for probes, not a claim.
        let claimed = !trusted_origins.is_empty();
        if claimed
            && !answer.accepted()
            && answer.allow_origin().as_deref() != Some(b"*")
            && !answer.multiple_allow_origin()
        {
            findings.push(finding(
                FindingClass::TrustedOriginRefused,
                Severity::Info,
                &exchange,
                &t.serialized,
            ));
        }
        sent += preflight_probes(prober, &target, t, &mut findings).await?;
    }

    let mut accepted: Vec<Finding> = Vec::new();
    for probe in origin_probes(&bases, &trusted) {
        let exchange = prober
            .send(&Method::GET, &target, &probe_headers(Some(&probe.origin)))
            .await?;
        sent += 1;
        let answer = CorsAnswer {
            exchange: &exchange,
            origin: &probe.origin,
        };
        observed.note(&answer, &mut findings);
        if !answer.accepted() {
            continue;
        }
        let credentials = answer.credentials();
        let class = match probe.class {
            FindingClass::AnyOriginReflected if credentials => {
                FindingClass::ReflectedWithCredentials
            }
            other => other,
        };
        accepted.push(finding(
            class,
            acceptance_severity(class, credentials),
            &exchange,
            &probe.origin,
        ));
    }
    let reflected = |accepted: &[Finding]| {
        accepted.iter().any(|f| {
            matches!(
                f.class,
                FindingClass::AnyOriginReflected | FindingClass::ReflectedWithCredentials
            )
        })
    };
    // Some servers only answer CORS on preflights: ask once more that way,
    // with a preflight a browser would pass (the method allowed, 2xx).
    if !reflected(&accepted) {
        let origin = format!("https://{ATTACKER}");
        let mut headers = probe_headers(Some(&origin));
        headers.insert(
            http::header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("PUT"),
        );
        let exchange = prober.send(&Method::OPTIONS, &target, &headers).await?;
        sent += 1;
        let answer = CorsAnswer {
            exchange: &exchange,
            origin: &origin,
        };
        observed.note(&answer, &mut findings);
        let credentials = answer.credentials();
        let mode = if credentials {
            CredentialsMode::Include
        } else {
            CredentialsMode::Omit
        };
        if answer.accepted() && preflight_passes(&origin, "PUT", None, mode, &exchange) {
            let class = if credentials {
                FindingClass::ReflectedWithCredentials
            } else {
                FindingClass::AnyOriginReflected
            };
            let severity = acceptance_severity(class, credentials);
            accepted.push(finding(class, severity, &exchange, &origin));
        }
    }
    // When any origin is echoed, every derived probe is too: they add nothing.
    let reflects_all = reflected(&accepted);
    findings.extend(accepted.into_iter().filter(|f| {
        !reflects_all
            || matches!(
                f.class,
                FindingClass::AnyOriginReflected
                    | FindingClass::ReflectedWithCredentials
                    | FindingClass::NullOriginTrusted
            )
    }));
    if let Some(vary) = observed.missing_vary() {
        findings.push(vary);
    }

    let mut findings = one_per_class(findings);
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let failed = findings.iter().any(|f| f.severity >= fail_on);
    Ok(AuditReport {
        url: target.to_string(),
        trusted_origins: trusted_names,
        probes_sent: sent,
        findings,
        fail_on,
        failed,
    })
}

/// What the audit learns across probes, besides origin acceptance.
#[derive(Default)]
struct Observed {
    /// The distinct CORS header sets seen, the no-Origin answer included.
    cors_answers: Vec<Vec<(String, Vec<u8>)>>,
    /// The first echoed origin without `Vary: Origin`.
    unvaried_echo: Option<Finding>,
    wildcard_with_credentials: bool,
    multiple_allow_origin: bool,
}

impl Observed {
    fn note_answer(&mut self, exchange: &Exchange) {
        let headers = cors_headers(exchange);
        if !self.cors_answers.contains(&headers) {
            self.cors_answers.push(headers);
        }
    }

    fn note(&mut self, answer: &CorsAnswer<'_>, findings: &mut Vec<Finding>) {
        self.note_answer(answer.exchange);
        if self.unvaried_echo.is_none() && answer.accepted() && !answer.varies_on_origin() {
            self.unvaried_echo = Some(finding(
                FindingClass::MissingVaryOrigin,
                Severity::Medium,
                answer.exchange,
                answer.origin,
            ));
        }
        if !self.wildcard_with_credentials && answer.wildcard_with_credentials() {
            self.wildcard_with_credentials = true;
            findings.push(finding(
                FindingClass::WildcardWithCredentials,
                Severity::Medium,
                answer.exchange,
                answer.origin,
            ));
        }
        if !self.multiple_allow_origin && answer.multiple_allow_origin() {
            self.multiple_allow_origin = true;
            findings.push(finding(
                FindingClass::MultipleAllowOrigin,
                Severity::Low,
                answer.exchange,
                answer.origin,
            ));
        }
    }

    /// A missing `Vary: Origin` matters only when the CORS answer really
    /// changes with the Origin (or its absence); a static answer is safe to cache.
    fn missing_vary(self) -> Option<Finding> {
        if self.cors_answers.len() > 1 {
            self.unvaried_echo
        } else {
            None
        }
    }
}

/// Merges findings of one class into the first, the others' origins listed
/// as also accepted: one finding per class and target.
fn one_per_class(findings: Vec<Finding>) -> Vec<Finding> {
    let mut merged: Vec<Finding> = Vec::new();
    for f in findings {
        match merged.iter_mut().find(|m| m.class == f.class) {
            Some(first) => {
                if first.probe.origin != f.probe.origin
                    && !first.also_accepted.contains(&f.probe.origin)
                {
                    first.also_accepted.push(f.probe.origin);
                }
            }
            None => merged.push(f),
        }
    }
    merged
}

/// Whether a browser would pass this preflight answer for a request from
/// `origin` with `method` (and `header`, if any), judged by the browser model.
fn preflight_passes(
    origin: &str,
    method: &str,
    header: Option<&str>,
    credentials: CredentialsMode,
    exchange: &Exchange,
) -> bool {
    // Judged as the default engine judges it: a preflight finding stands only
    // where Chromium would let the preflight pass.
    let request = CorsRequest::new(origin, method, credentials)
        .map(|r| r.in_engine(Engine::Chromium))
        .and_then(|r| match header {
            Some(name) => r.with_header(name, "1"),
            None => Ok(r),
        });
    match request {
        Ok(request) => {
            browser::check_preflight_response(&request, exchange.status, &exchange.response_headers)
                .is_ok()
        }
        Err(_) => false,
    }
}

fn probe_headers(origin: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(http::header::ORIGIN, value);
    }
    headers
}

/// Two credentialed preflights from `trusted`: one asking for a method no
/// API uses, one for a header no API reads (with `POST`, which needs no
/// method grant). A finding only when a browser would pass the preflight.
/// Returns how many were sent.
async fn preflight_probes(
    prober: &Prober,
    target: &Uri,
    trusted: &Trusted,
    findings: &mut Vec<Finding>,
) -> Result<usize, AuditError> {
    let asks = [
        (PROBE_METHOD, None, FindingClass::PreflightAllowsAnyMethod),
        (
            "POST",
            Some(PROBE_HEADER),
            FindingClass::PreflightAllowsAnyHeader,
        ),
    ];
    for (method, header, class) in asks {
        let mut headers = probe_headers(Some(&trusted.serialized));
        headers.insert(
            http::header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static(method),
        );
        if let Some(header) = header {
            headers.insert(
                http::header::ACCESS_CONTROL_REQUEST_HEADERS,
                HeaderValue::from_static(header),
            );
        }
        let exchange = prober.send(&Method::OPTIONS, target, &headers).await?;
        if preflight_passes(
            &trusted.serialized,
            method,
            header,
            CredentialsMode::Include,
            &exchange,
        ) {
            findings.push(finding(
                class,
                Severity::Medium,
                &exchange,
                &trusted.serialized,
            ));
        }
    }
    Ok(asks.len())
}
