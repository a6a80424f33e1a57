//! The policy as written by a user: a TOML table or a builder.

use serde::Deserialize;

use crate::{ConfigErrors, Policy};

/// What a gateway does when the upstream's response already carries CORS headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamHeaders {
    /// The policy's CORS headers replace any `Access-Control-*` header the
    /// upstream (or inner service) sent, so a browser never sees two
    /// `Access-Control-Allow-Origin` values.
    #[default]
    Override,
    /// When the response carries `Access-Control-Allow-Origin`, its CORS
    /// headers are kept and the policy adds none (Huawei APIG's behaviour: the
    /// backend's header wins).
    Defer,
}

/// A CORS policy as written in a `[policies.NAME]` table of the gateway's
/// configuration file, or built with [`PolicyConfig::builder`].
///
/// Nothing is checked until [`compile`](Self::compile), which reports every
/// problem at once.
///
/// ```
/// let config: crossgate_cors::PolicyConfig = toml::from_str(r#"
///     origins = ["https://app.example.com", "https://*.example.com", "http://localhost:*"]
///     methods = ["PUT", "DELETE"]
///     request_headers = ["content-type", "x-requested-with"]
///     expose_headers = ["x-request-id"]
///     credentials = true
///     max_age = 7200
/// "#).unwrap();
/// let policy = config.compile().unwrap();
/// assert!(policy.warnings().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// The origins allowed to read responses. Each entry is one of:
    ///
    /// - an exact serialized origin: `"https://app.example.com"`, `"http://localhost:3000"`;
    /// - a subdomain pattern: `"https://*.example.com"` matches one or more labels
    ///   in front of `example.com` (`https://a.b.example.com`), never `https://example.com` itself;
    /// - an any-port pattern: `"http://localhost:*"` matches every port, and no port;
    /// - both: `"https://*.example.com:*"`;
    /// - `"*"` alone: every origin (not with `credentials`).
    ///
    /// Matching is exact on scheme, host and port: allowing `https://foo.com`
    /// never allows `http://foo.com`, `https://foo.com.evil.com` or `https://barfoo.com`.
    /// `null` and `file:` origins are refused.
    ///
    /// ```toml
    /// origins = ["https://app.example.com", "https://*.example.com", "http://localhost:*"]
    /// ```
    pub origins: Vec<String>,
    /// Regular expressions (syntax of the `regex` crate, linear time) that an
    /// origin must match as a *whole*: the engine anchors them for you, so
    /// `https://app\.example\.com` does not match `https://app.example.com.evil.com`.
    ///
    /// ```toml
    /// origin_regex = ['https://pr-[0-9]+\.preview\.example\.com']
    /// ```
    pub origin_regex: Vec<String>,
    /// The methods allowed besides GET, HEAD and POST (which are always
    /// allowed, as in the Fetch standard), or `["*"]` to allow any method: the
    /// preflight then answers with the method the browser asked for, which
    /// works with credentials too. Names are normalized as Fetch does: only
    /// DELETE, GET, HEAD, OPTIONS, POST and PUT are upper-cased, so `"patch"`
    /// stays `patch` and a browser's `PATCH` is a different method.
    ///
    /// ```toml
    /// methods = ["PUT", "DELETE", "PATCH"]
    /// ```
    pub methods: Vec<String>,
    /// The request headers a script may send that are not CORS-safelisted,
    /// case-insensitive, or `["*"]` to allow any: the preflight then answers
    /// with the header names the browser asked for (so `Authorization` is
    /// allowed too, and it works with credentials).
    ///
    /// ```toml
    /// request_headers = ["content-type", "x-requested-with", "authorization"]
    /// ```
    pub request_headers: Vec<String>,
    /// The response headers a script may read besides the CORS-safelisted
    /// ones (`Cache-Control`, `Content-Language`, `Content-Length`,
    /// `Content-Type`, `Expires`, `Last-Modified`, `Pragma`), or `["*"]` for
    /// all of them (not with `credentials`).
    ///
    /// ```toml
    /// expose_headers = ["x-request-id", "etag"]
    /// ```
    pub expose_headers: Vec<String>,
    /// Whether requests made with credentials (cookies, HTTP authentication,
    /// client certificates) may read responses: sends
    /// `Access-Control-Allow-Credentials: true`. Requires listed origins.
    ///
    /// ```toml
    /// credentials = true
    /// ```
    pub credentials: bool,
    /// How many seconds a browser may cache a preflight's answer
    /// (`Access-Control-Max-Age`). Absent: no header, and browsers cache for
    /// 5 seconds. Chromium caps the value at 7200 and Firefox at 86400; a
    /// larger value is accepted with a warning.
    ///
    /// ```toml
    /// max_age = 7200
    /// ```
    pub max_age: Option<i64>,
    /// Whether a public website may reach this server on a private network:
    /// answers `Access-Control-Allow-Private-Network: true` to preflights that
    /// carry `Access-Control-Request-Private-Network: true`.
    ///
    /// ```toml
    /// private_network = true
    /// ```
    pub private_network: bool,
    /// The status of a successful preflight response: 204 (default) or 200.
    ///
    /// ```toml
    /// preflight_status = 200
    /// ```
    pub preflight_status: u16,
    /// Whether cross-origin actual requests from origins that are not allowed
    /// are refused with 403 before reaching the handler. Without it, they reach
    /// the handler and the browser hides the response from the script, as the
    /// Fetch standard intends. Same-origin requests (whose `Origin` matches
    /// `Host`) are never blocked.
    ///
    /// ```toml
    /// block_disallowed = true
    /// ```
    pub block_disallowed: bool,
    /// What to do with CORS headers the upstream already set: `"override"`
    /// (default) or `"defer"`. See [`UpstreamHeaders`].
    ///
    /// ```toml
    /// upstream_headers = "defer"
    /// ```
    pub upstream_headers: UpstreamHeaders,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            origin_regex: Vec::new(),
            methods: Vec::new(),
            request_headers: Vec::new(),
            expose_headers: Vec::new(),
            credentials: false,
            max_age: None,
            private_network: false,
            preflight_status: 204,
            block_disallowed: false,
            upstream_headers: UpstreamHeaders::Override,
        }
    }
}

impl PolicyConfig {
    /// Starts a builder, for Rust users who write a policy in code.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Checks every key and compiles the policy, or returns every problem.
    pub fn compile(&self) -> Result<Policy, ConfigErrors> {
        Policy::compile(self)
    }
}

/// Builds a [`PolicyConfig`] in code; each method sets the key of the same name.
///
/// ```
/// let policy = crossgate_cors::PolicyConfig::builder()
///     .origins(["https://app.example.com"])
///     .methods(["PUT"])
///     .compile()
///     .unwrap();
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, Default)]
pub struct PolicyBuilder {
    config: PolicyConfig,
}

/// The builder's setters, one per [`PolicyConfig`] key and named after it:
/// a list key takes any iterable of strings, any other key its value as is.
macro_rules! setters {
    (lists: $($list:ident),+; values: $($key:ident: $type:ty),+;) => {
        $(
            #[doc = concat!("Sets [`PolicyConfig::", stringify!($list), "`].")]
            pub fn $list<I: IntoIterator<Item = S>, S: Into<String>>(mut self, values: I) -> Self {
                self.config.$list = values.into_iter().map(Into::into).collect();
                self
            }
        )+
        $(
            #[doc = concat!("Sets [`PolicyConfig::", stringify!($key), "`].")]
            pub fn $key(mut self, value: $type) -> Self {
                self.config.$key = value;
                self
            }
        )+
    };
}

impl PolicyBuilder {
    setters! {
        lists: origins, origin_regex, methods, request_headers, expose_headers;
        values: credentials: bool, private_network: bool, preflight_status: u16,
            block_disallowed: bool, upstream_headers: UpstreamHeaders;
    }
    /// Sets [`PolicyConfig::max_age`].
    pub fn max_age(mut self, seconds: i64) -> Self {
        self.config.max_age = Some(seconds);
        self
    }
    /// The configuration built so far.
    pub fn build(self) -> PolicyConfig {
        self.config
    }
    /// Compiles the configuration; see [`PolicyConfig::compile`].
    pub fn compile(self) -> Result<Policy, ConfigErrors> {
        self.config.compile()
    }
}
