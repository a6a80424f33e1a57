//! What the audit reports: the finding classes with their meaning and fix,
//! severities, and how a probe's exchange becomes a finding.

use serde::Serialize;

use crate::exchange::{show_value, Exchange};

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
    pub(super) fn label(self) -> &'static str {
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

pub(super) fn finding(
    class: FindingClass,
    severity: Severity,
    exchange: &Exchange,
    origin: &str,
) -> Finding {
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
pub(super) fn acceptance_severity(class: FindingClass, credentials: bool) -> Severity {
    match (class, credentials) {
        (FindingClass::ReflectedWithCredentials, _) => Severity::Critical,
        (FindingClass::AnySubdomainTrusted | FindingClass::InsecureOriginTrusted, true) => {
            Severity::Medium
        }
        (_, true) => Severity::High,
        (_, false) => Severity::Low,
    }
}

/// Merges findings of one class into the first, the others' origins listed
/// as also accepted: one finding per class and target.
pub(super) fn one_per_class(findings: Vec<Finding>) -> Vec<Finding> {
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
