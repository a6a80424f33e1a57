//! Configuration errors and warnings.
//!
//! Every problem found while compiling a [`PolicyConfig`](crate::PolicyConfig)
//! is a [`ConfigError`] that names the key, the offending value and a fix;
//! compiling returns them all at once in [`ConfigErrors`].

use std::fmt;

/// What is wrong with one value of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Neither `origins` nor `origin_regex` allows anything.
    NoOrigins,
    /// The literal origin `null`, which sandboxed iframes and local files share.
    NullOrigin,
    /// A `file:` origin; browsers serialize such origins as `null`.
    FileOrigin,
    /// An origin that is not a serialized origin (`scheme://host[:port]`).
    MalformedOrigin {
        /// What exactly is wrong.
        problem: &'static str,
        /// The corrected value, when one can be derived.
        suggestion: Option<String>,
    },
    /// `*` listed together with other origins.
    WildcardNotAlone,
    /// `*` (or an equivalent) together with `credentials = true`.
    WildcardWithCredentials,
    /// A plain-`http` origin that is not loopback, with `credentials = true`.
    InsecureOriginWithCredentials,
    /// A subdomain wildcard directly on a public suffix, with `credentials = true`.
    PublicSuffixWildcard,
    /// An `origin_regex` that does not compile.
    InvalidRegex(String),
    /// An `origin_regex` that matches unrelated origins, with `credentials = true`.
    RegexTooBroad,
    /// CONNECT, TRACE or TRACK, which browsers never send.
    ForbiddenMethod,
    /// A method that is not an HTTP token.
    InvalidMethod,
    /// A header name that is not an HTTP token.
    InvalidHeaderName,
    /// A forbidden request-header name (Fetch), which scripts cannot set.
    ForbiddenRequestHeader,
    /// `Set-Cookie` or `Set-Cookie2`, which browsers never expose.
    ForbiddenExposedHeader,
    /// `expose_headers = ["*"]` together with credentials.
    WildcardExposeWithCredentials,
    /// `preflight_status` other than 200 or 204.
    InvalidPreflightStatus,
    /// A negative `max_age`.
    NegativeMaxAge,
}

/// One problem in a policy: the key, the offending value, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: String,
    value: String,
    kind: ConfigErrorKind,
}

impl ConfigError {
    pub(crate) fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        kind: ConfigErrorKind,
    ) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            kind,
        }
    }

    /// The policy key at fault, with the list index when there is one (`origins[2]`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The offending value as written.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What is wrong.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.kind
    }

    /// Why the value is refused.
    pub fn problem(&self) -> String {
        use ConfigErrorKind as K;
        match &self.kind {
            K::NoOrigins => "no origin is allowed".into(),
            K::NullOrigin => "the origin `null` is shared by sandboxed iframes, local files and some redirects, so any site can obtain it".into(),
            K::FileOrigin => "browsers send `file:` pages as the origin `null`, which cannot be trusted".into(),
            K::MalformedOrigin { problem, .. } => format!("not a valid origin: {problem}"),
            K::WildcardNotAlone => "`*` already allows every origin, so the other entries have no effect".into(),
            K::WildcardWithCredentials => "`*` with credentials would let every website read responses with your users' cookies; browsers also refuse `Access-Control-Allow-Origin: *` on credentialed requests".into(),
            K::InsecureOriginWithCredentials => "a plain-http origin can be impersonated by anyone on the network path, and with credentials it could read your users' data".into(),
            K::PublicSuffixWildcard => "the wildcard sits directly on a public suffix, so anyone can register a matching domain".into(),
            K::InvalidRegex(why) => format!("the regular expression does not compile: {why}"),
            K::RegexTooBroad => "the regular expression matches unrelated origins such as `https://attacker.example`, which with credentials lets any site read your users' data".into(),
            K::ForbiddenMethod => "CONNECT, TRACE and TRACK are forbidden methods: browsers never send them".into(),
            K::InvalidMethod => "not a valid method token".into(),
            K::InvalidHeaderName => "not a valid header name".into(),
            K::ForbiddenRequestHeader => "scripts cannot set this header (a forbidden request-header in the Fetch standard), so allowing it has no effect".into(),
            K::ForbiddenExposedHeader => "browsers never expose Set-Cookie or Set-Cookie2 to scripts".into(),
            K::WildcardExposeWithCredentials => "browsers read `Access-Control-Expose-Headers: *` literally on credentialed requests, so `*` exposes nothing there".into(),
            K::InvalidPreflightStatus => "a preflight must be answered with 200 or 204".into(),
            K::NegativeMaxAge => "a negative cache lifetime is meaningless".into(),
        }
    }

    /// How to fix the value.
    pub fn fix(&self) -> String {
        use ConfigErrorKind as K;
        match &self.kind {
            K::NoOrigins => "list the origins that may call this API in `origins`, e.g. [\"https://app.example.com\"], or set `origins = [\"*\"]` for a public API without credentials".into(),
            K::NullOrigin | K::FileOrigin => "remove it and serve the calling page from a real origin such as http://localhost:8000".into(),
            K::MalformedOrigin { suggestion: Some(s), .. } => format!("write it as \"{s}\""),
            K::MalformedOrigin { suggestion: None, .. } => "write it as scheme://host[:port], e.g. \"https://app.example.com\"; patterns: \"https://*.example.com\", \"http://localhost:*\"".into(),
            K::WildcardNotAlone => "keep either `*` alone or the list of origins".into(),
            K::WildcardWithCredentials => "list the origins instead, e.g. [\"https://app.example.com\"], or allow a family of subdomains with a pattern such as \"https://*.example.com\"".into(),
            K::InsecureOriginWithCredentials => format!("use \"{}\" instead (only localhost and loopback may use http with credentials)", self.value.replacen("http://", "https://", 1)),
            K::PublicSuffixWildcard => "name the registrable domain you own, e.g. \"https://*.example.com\", or list the exact origins".into(),
            K::InvalidRegex(_) => "fix the syntax (the `regex` crate's syntax; the expression is anchored for you)".into(),
            K::RegexTooBroad => "make the expression match only your origins, e.g. \"https://[a-z0-9-]+\\.example\\.com\" (escape the dots)".into(),
            K::ForbiddenMethod => "remove it".into(),
            K::InvalidMethod => "use a method name such as \"PUT\" or \"PATCH\", or [\"*\"] alone".into(),
            K::InvalidHeaderName => "use a header name such as \"content-type\", or [\"*\"] alone".into(),
            K::ForbiddenRequestHeader => "remove it; browsers set it themselves".into(),
            K::ForbiddenExposedHeader => "remove it".into(),
            K::WildcardExposeWithCredentials => "list the response headers to expose, e.g. [\"x-request-id\"]".into(),
            K::InvalidPreflightStatus => "use 204 (the default) or 200".into(),
            K::NegativeMaxAge => "use a number of seconds from 0 to 86400, or remove `max_age`".into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "`{}`: {}; fix: {}", self.key, self.problem(), self.fix())
        } else {
            write!(
                f,
                "`{}`: {:?}: {}; fix: {}",
                self.key,
                self.value,
                self.problem(),
                self.fix()
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a policy, in the order of the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn from_vec(errors: Vec<ConfigError>) -> Self {
        Self { errors }
    }

    /// The problems, one per offending value.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    /// How many problems there are (never zero).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `ConfigErrors` holds at least one problem.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A value that is accepted but probably not what the author wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    key: String,
    value: String,
    message: String,
}

impl ConfigWarning {
    pub(crate) fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            message: message.into(),
        }
    }

    /// The policy key concerned.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value as written.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Why the value deserves a second look, and what to do about it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {:?}: {}", self.key, self.value, self.message)
    }
}
