//! The browser's side of the CORS protocol, as the
//! [Fetch standard](https://fetch.spec.whatwg.org/#http-cors-protocol) and
//! Chromium define it: what a page's `fetch()` sends, and what it accepts.
//!
//! Nothing here does I/O. A tool (such as `crossgate check`) describes the
//! request a script would make as a [`CorsRequest`], sends the
//! [`preflight_request_headers`] when [`preflight_reasons`] is not empty, hands
//! the answer to [`check_preflight_response`], then sends the actual request
//! and hands its answer to [`check_actual_response`]. Each refusal is a
//! [`BlockReason`] that names the faulty header and offers a [`Fix`].
//!
//! ```
//! use crossgate_cors::browser::{self, CorsRequest, CredentialsMode, Engine};
//! use http::{HeaderMap, HeaderValue, StatusCode};
//!
//! let request = CorsRequest::new("https://app.example", "patch", CredentialsMode::Include)
//!     .unwrap()
//!     .with_header("Content-Type", "application/json")
//!     .unwrap();
//! assert!(!browser::preflight_reasons(&request).is_empty());
//!
//! let preflight = browser::preflight_request_headers(&request);
//! assert_eq!(preflight["access-control-request-method"], "patch");
//! assert_eq!(preflight["access-control-request-headers"], "content-type");
//!
//! // A server that answers with an upper-case `PATCH` refuses `patch`.
//! let mut answer = HeaderMap::new();
//! answer.insert("access-control-allow-origin", HeaderValue::from_static("https://app.example"));
//! answer.insert("access-control-allow-credentials", HeaderValue::from_static("true"));
//! answer.insert("access-control-allow-methods", HeaderValue::from_static("GET, PATCH"));
//! answer.insert("access-control-allow-headers", HeaderValue::from_static("Content-Type"));
//! let blocked = browser::check_preflight_response(&request, StatusCode::NO_CONTENT, &answer, Engine::Chromium)
//!     .unwrap_err();
//! assert_eq!(
//!     blocked.primary().fix().to_string(),
//!     "add `patch` to `Access-Control-Allow-Methods` (methods are case-sensitive)"
//! );
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri};

use crate::method::{is_safelisted, normalized};
use crate::token::{is_tchar, is_token, FORBIDDEN_REQUEST_HEADERS};

/// The longest value a safelisted request header may have, in bytes.
pub const SAFELISTED_VALUE_LIMIT: usize = 128;

/// The most bytes all safelisted request header values may add up to before
/// every one of them needs a preflight.
pub const SAFELISTED_TOTAL_LIMIT: usize = 1024;

/// Seconds a browser caches a preflight when `Access-Control-Max-Age` is
/// absent or unreadable.
pub const DEFAULT_MAX_AGE: u64 = 5;

/// The most redirects a browser follows for one fetch.
pub const REDIRECT_LIMIT: usize = 20;

/// Response header names script can always read from a CORS response.
const SAFELISTED_RESPONSE_HEADERS: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

/// Headers whose value can smuggle a method past a server.
const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
];

/// Methods `fetch()` refuses to send at all.
const FORBIDDEN_METHODS: [&str; 3] = ["CONNECT", "TRACE", "TRACK"];

const ACAO: &str = "Access-Control-Allow-Origin";
const ACAC: &str = "Access-Control-Allow-Credentials";
const ACAM: &str = "Access-Control-Allow-Methods";
const ACAH: &str = "Access-Control-Allow-Headers";
const ACEH: &str = "Access-Control-Expose-Headers";

/// A request's credentials mode (`fetch(url, { credentials })`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialsMode {
    /// `credentials: 'omit'`: never send cookies.
    Omit,
    /// `credentials: 'same-origin'` (the default): cookies only to the page's
    /// own origin, so a cross-origin request is uncredentialed.
    SameOrigin,
    /// `credentials: 'include'`: cookies everywhere, and the stricter CORS rules.
    Include,
}

impl CredentialsMode {
    /// Whether the stricter rules for credentialed requests apply.
    pub fn is_include(self) -> bool {
        self == Self::Include
    }
}

/// The browser engine whose limits apply where browsers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Chromium, Chrome, Edge: preflights cached for at most two hours.
    Chromium,
    /// Firefox: preflights cached for at most a day.
    Firefox,
}

impl Engine {
    /// The longest time, in seconds, this engine caches a preflight.
    pub fn max_age_cap(self) -> u64 {
        match self {
            Self::Chromium => 7200,
            Self::Firefox => 86400,
        }
    }
}

/// Why a script's request could not be described: `fetch()` would throw a
/// `TypeError` before sending anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The origin is not a serialized origin (`scheme://host[:port]` or `null`).
    InvalidOrigin(String),
    /// The method is not an HTTP token.
    InvalidMethod(String),
    /// `CONNECT`, `TRACE` and `TRACK` cannot be sent by a page.
    ForbiddenMethod(String),
    /// The header name is not an HTTP token.
    InvalidHeaderName(String),
    /// The header value contains a control character (NUL, CR, LF or another one HTTP cannot carry).
    InvalidHeaderValue(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidOrigin(o) => write!(
                f,
                "`{o}` is not an origin: write it as scheme://host[:port], with no path and no trailing slash, or `null`"
            ),
            Self::InvalidMethod(m) => write!(f, "`{m}` is not a valid HTTP method name"),
            Self::ForbiddenMethod(m) => write!(f, "browsers refuse to send `{m}` requests from a page"),
            Self::InvalidHeaderName(n) => write!(f, "`{n}` is not a valid header name"),
            Self::InvalidHeaderValue(n) => write!(f, "the value of header `{n}` contains a control character (NUL, CR, LF, ...)"),
        }
    }
}

impl std::error::Error for RequestError {}

/// The request a script makes with `fetch()` in `mode: 'cors'`, as the
/// browser holds it after normalizing the method and the headers.
#[derive(Debug, Clone)]
pub struct CorsRequest {
    origin: HeaderValue,
    method: Method,
    headers: HeaderMap,
    dropped: Vec<HeaderName>,
    credentials: CredentialsMode,
}

impl CorsRequest {
    /// Describes a request from a page at `origin` (serialized, e.g.
    /// `https://app.example` or `null`), normalizing `method` as `fetch()` does
    /// (`delete` becomes `DELETE`, `patch` stays `patch`).
    pub fn new(
        origin: &str,
        method: &str,
        credentials: CredentialsMode,
    ) -> Result<Self, RequestError> {
        let origin_value = parse_serialized_origin(origin)
            .ok_or_else(|| RequestError::InvalidOrigin(origin.to_owned()))?;
        if !is_token(method.as_bytes()) {
            return Err(RequestError::InvalidMethod(method.to_owned()));
        }
        if FORBIDDEN_METHODS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
        {
            return Err(RequestError::ForbiddenMethod(method.to_owned()));
        }
        let method = Method::from_bytes(normalized(method.as_bytes()))
            .map_err(|_| RequestError::InvalidMethod(method.to_owned()))?;
        Ok(Self {
            origin: origin_value,
            method,
            headers: HeaderMap::new(),
            dropped: Vec::new(),
            credentials,
        })
    }

    /// Adds a header the way `Headers.append()` does: the value is trimmed of
    /// HTTP whitespace, a second value for the same name is joined with `, `,
    /// and a forbidden header (see [`is_forbidden_request_header`]) is
    /// silently dropped, as browsers do; [`dropped_headers`](Self::dropped_headers)
    /// lists those.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self, RequestError> {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| RequestError::InvalidHeaderName(name.to_owned()))?;
        let trimmed = trim_http_whitespace(value.as_bytes());
        if trimmed.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
            return Err(RequestError::InvalidHeaderValue(name.to_owned()));
        }
        if is_forbidden_request_header(&header, trimmed) {
            if !self.dropped.contains(&header) {
                self.dropped.push(header);
            }
            return Ok(self);
        }
        let combined = match self.headers.get(&header) {
            Some(existing) => {
                let mut bytes = existing.as_bytes().to_vec();
                bytes.extend_from_slice(b", ");
                bytes.extend_from_slice(trimmed);
                bytes
            }
            None => trimmed.to_vec(),
        };
        let value = HeaderValue::from_bytes(&combined)
            .map_err(|_| RequestError::InvalidHeaderValue(name.to_owned()))?;
        self.headers.insert(header, value);
        Ok(self)
    }

    /// The serialized origin of the page, as sent in `Origin`.
    pub fn origin(&self) -> &str {
        self.origin.to_str().unwrap_or("null")
    }

    /// The normalized method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The headers the script set and the browser kept, one value per name.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Headers the script set that the browser drops because a page may not set them.
    pub fn dropped_headers(&self) -> &[HeaderName] {
        &self.dropped
    }

    /// The credentials mode.
    pub fn credentials(&self) -> CredentialsMode {
        self.credentials
    }

    /// The same request from an opaque origin (`Origin: null`), as after a
    /// redirect that crosses origins (see [`RedirectStep`]).
    pub fn with_null_origin(mut self) -> Self {
        self.origin = HeaderValue::from_static("null");
        self
    }

    /// The same request with another method, as after a 301/302 of a `POST`
    /// or a 303. Only valid, normalized methods reach here.
    fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }
}

/// Whether `method` (already normalized) is CORS-safelisted: `GET`, `HEAD` or
/// `POST`, byte for byte.
pub fn is_cors_safelisted_method(method: &Method) -> bool {
    is_safelisted(method.as_str().as_bytes())
}

/// Whether `b` may not appear in a safelisted `Accept` or `Content-Type` value:
/// control bytes other than tab, `"():<>?@[\]{}` and DEL.
pub fn is_cors_unsafe_request_header_byte(b: u8) -> bool {
    (b < 0x20 && b != 0x09)
        || matches!(
            b,
            b'"' | b'('
                | b')'
                | b':'
                | b'<'
                | b'>'
                | b'?'
                | b'@'
                | b'['
                | b'\\'
                | b']'
                | b'{'
                | b'}'
                | 0x7f
        )
}

/// Whether a page may not set header `name` (lowercase, as [`HeaderName`]
/// keeps it) with `value`; `fetch()` silently drops such headers.
pub fn is_forbidden_request_header(name: &HeaderName, value: &[u8]) -> bool {
    let name = name.as_str();
    if FORBIDDEN_REQUEST_HEADERS.contains(&name)
        || name.starts_with("proxy-")
        || name.starts_with("sec-")
    {
        return true;
    }
    METHOD_OVERRIDE_HEADERS.contains(&name)
        && value.split(|&b| b == b',').any(|item| {
            let item = trim_http_whitespace(item);
            FORBIDDEN_METHODS
                .iter()
                .any(|m| m.as_bytes().eq_ignore_ascii_case(item))
        })
}

/// Why a request header is not CORS-safelisted, so that it needs a preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSafelisted {
    /// Only `Accept`, `Accept-Language`, `Content-Language`, `Content-Type`
    /// and `Range` can be safelisted.
    Name,
    /// The value is longer than 128 bytes.
    ValueTooLong {
        /// The value's length in bytes.
        len: usize,
    },
    /// `Accept` or `Content-Type` contains a CORS-unsafe byte.
    UnsafeByte {
        /// The offending byte.
        byte: u8,
    },
    /// `Accept-Language` or `Content-Language` contains a byte outside
    /// `0-9 A-Z a-z`, space and `*,-.;=`.
    LanguageByte {
        /// The offending byte.
        byte: u8,
    },
    /// `Content-Type` is not a MIME type.
    ContentTypeUnparsable,
    /// `Content-Type` is a MIME type other than the three a form can send.
    ContentTypeEssence {
        /// The type/subtype, lowercased.
        essence: String,
    },
    /// `Range` is not a single `bytes=START-[END]` range.
    RangeNotSingleByteRange,
    /// `Range` is a suffix range (`bytes=-500`), which needs a preflight.
    RangeSuffix,
    /// The safelisted values together exceed 1024 bytes, so none of them is safelisted.
    TotalTooLong {
        /// The total length of the safelisted values.
        total: usize,
    },
}

impl fmt::Display for NotSafelisted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name => f.write_str("it is not one of the CORS-safelisted request headers"),
            Self::ValueTooLong { len } => write!(
                f,
                "its value is {len} bytes long, over the {SAFELISTED_VALUE_LIMIT}-byte limit for safelisted values"
            ),
            Self::UnsafeByte { byte } => write!(f, "its value contains the CORS-unsafe byte {}", show_byte(*byte)),
            Self::LanguageByte { byte } => write!(
                f,
                "its value contains {}, and a safelisted language value may only hold 0-9 A-Z a-z, space and *,-.;=",
                show_byte(*byte)
            ),
            Self::ContentTypeUnparsable => f.write_str("its value is not a MIME type"),
            Self::ContentTypeEssence { essence } => write!(
                f,
                "`{essence}` is not application/x-www-form-urlencoded, multipart/form-data or text/plain"
            ),
            Self::RangeNotSingleByteRange => f.write_str("its value is not a single `bytes=START-[END]` range"),
            Self::RangeSuffix => f.write_str("it asks for a suffix range (`bytes=-N`), which is not safelisted"),
            Self::TotalTooLong { total } => write!(
                f,
                "the safelisted header values add up to {total} bytes, over the {SAFELISTED_TOTAL_LIMIT}-byte limit"
            ),
        }
    }
}

fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", char::from(b))
    } else {
        format!("0x{b:02X}")
    }
}

/// Checks one header against the CORS-safelisted request-header rules,
/// including the value rules and the 128-byte limit (but not the 1024-byte
/// total, which concerns the whole list: see [`cors_unsafe_request_headers`]).
pub fn check_safelisted_request_header(
    name: &HeaderName,
    value: &[u8],
) -> Result<(), NotSafelisted> {
    let kind = match name.as_str() {
        "accept" | "accept-language" | "content-language" | "content-type" | "range" => {
            name.as_str()
        }
        _ => return Err(NotSafelisted::Name),
    };
    if value.len() > SAFELISTED_VALUE_LIMIT {
        return Err(NotSafelisted::ValueTooLong { len: value.len() });
    }
    match kind {
        "accept" => first_unsafe_byte(value),
        "accept-language" | "content-language" => {
            match value
                .iter()
                .find(|&&b| !(b.is_ascii_alphanumeric() || b" *,-.;=".contains(&b)))
            {
                Some(&byte) => Err(NotSafelisted::LanguageByte { byte }),
                None => Ok(()),
            }
        }
        "content-type" => {
            first_unsafe_byte(value)?;
            let essence = mime_essence(value).ok_or(NotSafelisted::ContentTypeUnparsable)?;
            match essence.as_str() {
                "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain" => {
                    Ok(())
                }
                _ => Err(NotSafelisted::ContentTypeEssence { essence }),
            }
        }
        _ => match parse_single_byte_range(value) {
            Some(ByteRange { start: Some(_) }) => Ok(()),
            Some(ByteRange { start: None }) => Err(NotSafelisted::RangeSuffix),
            None => Err(NotSafelisted::RangeNotSingleByteRange),
        },
    }
}

/// Whether (`name`, `value`) is a CORS-safelisted request header on its own.
pub fn is_cors_safelisted_request_header(name: &HeaderName, value: &[u8]) -> bool {
    check_safelisted_request_header(name, value).is_ok()
}

fn first_unsafe_byte(value: &[u8]) -> Result<(), NotSafelisted> {
    match value
        .iter()
        .find(|&&b| is_cors_unsafe_request_header_byte(b))
    {
        Some(&byte) => Err(NotSafelisted::UnsafeByte { byte }),
        None => Ok(()),
    }
}

/// The `type/subtype` of a MIME type, lowercased, per the WHATWG MIME Sniffing
/// parser (parameters never make parsing fail, so they are not read).
fn mime_essence(value: &[u8]) -> Option<String> {
    let value = trim_http_whitespace(value);
    let slash = value.iter().position(|&b| b == b'/')?;
    let (kind, rest) = value.split_at(slash);
    let rest = rest.get(1..)?;
    let subtype_end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
    let subtype = trim_http_whitespace(rest.get(..subtype_end)?);
    if !is_token(kind) || !is_token(subtype) {
        return None;
    }
    let mut essence = String::with_capacity(kind.len() + 1 + subtype.len());
    essence.extend(kind.iter().map(|b| char::from(b.to_ascii_lowercase())));
    essence.push('/');
    essence.extend(subtype.iter().map(|b| char::from(b.to_ascii_lowercase())));
    Some(essence)
}

/// A valid `bytes=` range; only whether it has a start matters for safelisting.
struct ByteRange<'a> {
    start: Option<&'a [u8]>,
}

/// Parses `bytes=START-END` with either bound optional but not both, no
/// whitespace, and START not after END; bounds are kept as digit strings so
/// that any length compares correctly.
fn parse_single_byte_range(value: &[u8]) -> Option<ByteRange<'_>> {
    let (unit, rest) = value.split_at(
        value
            .iter()
            .position(|&b| !b.is_ascii_alphabetic())
            .unwrap_or(value.len()),
    );
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let rest = rest.strip_prefix(b"=")?;
    let dash = rest
        .iter()
        .position(|&b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    let (start, rest) = rest.split_at(dash);
    let end = rest.strip_prefix(b"-")?;
    if !end.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let start = (!start.is_empty()).then_some(start);
    let end = (!end.is_empty()).then_some(end);
    match (start, end) {
        (None, None) => None,
        (Some(s), Some(e)) if compare_decimal(s, e) == Ordering::Greater => None,
        (start, _) => Some(ByteRange { start }),
    }
}

fn compare_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |d: &[u8]| -> usize { d.iter().position(|&b| b != b'0').unwrap_or(d.len()) };
    let (a, b) = (
        a.get(strip(a)..).unwrap_or(&[]),
        b.get(strip(b)..).unwrap_or(&[]),
    );
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A request header that makes a preflight necessary, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeHeader {
    /// The header's lowercase name.
    pub name: HeaderName,
    /// Why it is not safelisted.
    pub reason: NotSafelisted,
}

/// The CORS-unsafe request-header names of `headers`, sorted by byte and
/// deduplicated, each with its reason; this is exactly the list a browser
/// puts in `Access-Control-Request-Headers`.
///
/// Each value of `headers` is judged on its own, as the standard's header
/// list does; Chromium joins repeated headers into one value first, which
/// [`CorsRequest::with_header`] also does, so a request built that way is
/// judged as Chromium judges it.
pub fn cors_unsafe_request_headers(headers: &HeaderMap) -> Vec<UnsafeHeader> {
    let mut unsafe_headers = Vec::new();
    let mut safelisted = Vec::new();
    let mut total = 0usize;
    for (name, value) in headers {
        match check_safelisted_request_header(name, value.as_bytes()) {
            Ok(()) => {
                total = total.saturating_add(value.len());
                safelisted.push(name.clone());
            }
            Err(reason) => unsafe_headers.push(UnsafeHeader {
                name: name.clone(),
                reason,
            }),
        }
    }
    if total > SAFELISTED_TOTAL_LIMIT {
        unsafe_headers.extend(safelisted.into_iter().map(|name| UnsafeHeader {
            name,
            reason: NotSafelisted::TotalTooLong { total },
        }));
    }
    // Stable sort: for a name listed twice, the first reason found is kept.
    unsafe_headers.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    unsafe_headers.dedup_by(|later, earlier| later.name == earlier.name);
    unsafe_headers
}

/// Why a request is preflighted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightReason {
    /// The method is not `GET`, `HEAD` or `POST`.
    Method(Method),
    /// A header is not safelisted.
    Header(UnsafeHeader),
}

impl fmt::Display for PreflightReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Method(m) => write!(f, "method `{m}` is not GET, HEAD or POST"),
            Self::Header(h) => write!(f, "header `{}` needs permission: {}", h.name, h.reason),
        }
    }
}

/// Every reason the browser sends a preflight before `request`; empty when it
/// sends the request directly. The credentials mode never matters here, only
/// for the checks of the answers.
pub fn preflight_reasons(request: &CorsRequest) -> Vec<PreflightReason> {
    let mut reasons = Vec::new();
    if !is_cors_safelisted_method(&request.method) {
        reasons.push(PreflightReason::Method(request.method.clone()));
    }
    reasons.extend(
        cors_unsafe_request_headers(&request.headers)
            .into_iter()
            .map(PreflightReason::Header),
    );
    reasons
}

/// The headers of the `OPTIONS` preflight Chromium sends for `request` to
/// `target`: `Accept: */*`, `Access-Control-Request-Method`, then
/// `Access-Control-Request-Headers` with the unsafe names lowercased, sorted
/// and joined by bare commas (left out when there are none), `Origin`, and the
/// `Sec-Fetch-*` metadata. No cookies and no author headers are sent.
pub fn preflight_request_headers_to(request: &CorsRequest, target: &Uri) -> HeaderMap {
    let mut headers = preflight_request_headers(request);
    headers.insert("sec-fetch-site", fetch_site(request, target));
    headers
}

/// [`preflight_request_headers_to`] without `Sec-Fetch-Site`, for when the
/// target is not known.
pub fn preflight_request_headers(request: &CorsRequest) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    if let Ok(method) = HeaderValue::from_str(request.method.as_str()) {
        headers.insert(http::header::ACCESS_CONTROL_REQUEST_METHOD, method);
    }
    let names: Vec<String> = cors_unsafe_request_headers(&request.headers)
        .into_iter()
        .map(|h| h.name.as_str().to_owned())
        .collect();
    if !names.is_empty() {
        // Lowercase tokens joined by commas are always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&names.join(",")) {
            headers.insert(http::header::ACCESS_CONTROL_REQUEST_HEADERS, value);
        }
    }
    headers.insert(http::header::ORIGIN, request.origin.clone());
    headers.insert("sec-fetch-mode", HeaderValue::from_static("cors"));
    headers.insert("sec-fetch-dest", HeaderValue::from_static("empty"));
    headers
}

/// The headers of the actual request Chromium sends for `request` to
/// `target`: the script's headers, `Accept: */*` unless the script set one,
/// `Origin` and the `Sec-Fetch-*` metadata.
pub fn actual_request_headers(request: &CorsRequest, target: &Uri) -> HeaderMap {
    let mut headers = request.headers.clone();
    if !headers.contains_key(http::header::ACCEPT) {
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
    }
    headers.insert(http::header::ORIGIN, request.origin.clone());
    headers.insert("sec-fetch-mode", HeaderValue::from_static("cors"));
    headers.insert("sec-fetch-site", fetch_site(request, target));
    headers.insert("sec-fetch-dest", HeaderValue::from_static("empty"));
    headers
}

/// `same-origin`, `same-site` or `cross-site`, as `Sec-Fetch-Site` says.
fn fetch_site(request: &CorsRequest, target: &Uri) -> HeaderValue {
    let Some(target_origin) = serialize_origin(target) else {
        return HeaderValue::from_static("cross-site");
    };
    let origin = request.origin();
    if origin == target_origin {
        return HeaderValue::from_static("same-origin");
    }
    let site = |serialized: &str| -> Option<(String, String)> {
        let (scheme, rest) = serialized.split_once("://")?;
        let host = host_of_authority(rest);
        Some((
            scheme.to_owned(),
            registrable_domain(host).to_ascii_lowercase(),
        ))
    };
    match (site(origin), site(&target_origin)) {
        (Some(a), Some(b)) if a == b => HeaderValue::from_static("same-site"),
        _ => HeaderValue::from_static("cross-site"),
    }
}

/// The part of `host` that makes a site: its registrable domain per the
/// Public Suffix List (`api.example.co.uk` → `example.co.uk`), or the host
/// itself for IP addresses, `localhost` and public suffixes.
pub fn registrable_domain(host: &str) -> &str {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    psl::domain_str(host).unwrap_or(host)
}

fn host_of_authority(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// The serialized origin of `uri` (`scheme://host[:port]`, default port
/// left out), or `None` when it has no scheme or host.
pub fn serialize_origin(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    Some(match uri.port_u16() {
        Some(port) if Some(port) != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn parse_serialized_origin(origin: &str) -> Option<HeaderValue> {
    if origin == "null" {
        return Some(HeaderValue::from_static("null"));
    }
    let uri: Uri = origin.parse().ok()?;
    let serialized = serialize_origin(&uri)?;
    // A browser serializes origins canonically; anything else (a path, a
    // trailing slash, upper case, a default port) is not what it would send.
    (serialized == origin)
        .then(|| HeaderValue::from_str(origin).ok())
        .flatten()
}

/// How long the browser caches a successful preflight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge {
    /// What `Access-Control-Max-Age` asked for, when it was a number of seconds.
    pub requested: Option<u64>,
    /// The seconds the engine actually caches the preflight.
    pub effective: u64,
}

impl MaxAge {
    fn from_headers(headers: &HeaderMap, engine: Engine) -> Self {
        let mut values = headers.get_all(http::header::ACCESS_CONTROL_MAX_AGE).iter();
        let requested = match (values.next(), values.next()) {
            (Some(value), None) => parse_delta_seconds(trim_http_whitespace(value.as_bytes())),
            _ => None,
        };
        Self {
            requested,
            effective: requested
                .unwrap_or(DEFAULT_MAX_AGE)
                .min(engine.max_age_cap()),
        }
    }
}

/// `1*DIGIT`; values too large for `u64` saturate, since every engine caps them anyway.
fn parse_delta_seconds(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// What a successful preflight granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightGrant {
    /// The methods of `Access-Control-Allow-Methods`, as written.
    pub methods: Vec<String>,
    /// The header names of `Access-Control-Allow-Headers`, as written.
    pub header_names: Vec<String>,
    /// How long the grant is cached.
    pub max_age: MaxAge,
}

/// Why the browser refuses a response. Each reason knows its [`Fix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockReason {
    /// The preflight was answered with a redirect, which browsers never follow.
    PreflightRedirect {
        /// The redirect status.
        status: StatusCode,
        /// Where it pointed, if it said.
        location: Option<String>,
    },
    /// The preflight was answered with a status outside 200-299.
    PreflightStatus {
        /// The status received.
        status: StatusCode,
    },
    /// No `Access-Control-Allow-Origin` header.
    MissingAllowOrigin {
        /// The origin it had to name.
        origin: String,
    },
    /// `Access-Control-Allow-Origin` holds several values (several headers or a list).
    MultipleAllowOrigin {
        /// The values, joined.
        value: String,
        /// The origin it had to name.
        origin: String,
    },
    /// `Access-Control-Allow-Origin: *` on a credentialed request.
    WildcardOriginWithCredentials {
        /// The origin it had to name.
        origin: String,
    },
    /// `Access-Control-Allow-Origin` is not byte-equal to the request's origin.
    AllowOriginMismatch {
        /// The value received.
        value: String,
        /// The origin it had to equal.
        origin: String,
    },
    /// A credentialed request without `Access-Control-Allow-Credentials`.
    MissingAllowCredentials,
    /// `Access-Control-Allow-Credentials` is not exactly `true`.
    AllowCredentialsNotTrue {
        /// The value received.
        value: String,
    },
    /// `Access-Control-Allow-Methods` is not a comma-separated list of methods.
    InvalidAllowMethods {
        /// The value received.
        value: String,
        /// The request's method.
        method: String,
    },
    /// `Access-Control-Allow-Headers` is not a comma-separated list of names.
    InvalidAllowHeaders {
        /// The value received.
        value: String,
        /// The unsafe request header names it had to list.
        needed: Vec<String>,
    },
    /// The method is not in `Access-Control-Allow-Methods`.
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// `Access-Control-Allow-Methods` lists it in another case.
        case_mismatch: bool,
        /// `Access-Control-Allow-Methods: *` was sent, which does not count with credentials.
        wildcard_with_credentials: bool,
    },
    /// A header is not in `Access-Control-Allow-Headers`.
    HeaderNotAllowed {
        /// The lowercase header name.
        name: String,
        /// `Access-Control-Allow-Headers: *` was sent, which does not cover this header.
        wildcard: WildcardMiss,
    },
}

/// Why an `Access-Control-Allow-Headers: *` did not cover a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WildcardMiss {
    /// No `*` was sent.
    NoWildcard,
    /// `*` never covers `Authorization`.
    Authorization,
    /// `*` does not count on credentialed requests.
    Credentials,
}

/// What to change on the server so the browser accepts the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Send this header with exactly this value (replacing any other value).
    SetHeader {
        /// The header name.
        name: &'static str,
        /// The value to send.
        value: String,
        /// Why this value, when it is not obvious.
        note: Option<&'static str>,
    },
    /// Add an item to a comma-separated list header.
    AddToList {
        /// The header name.
        name: &'static str,
        /// The item to add, byte for byte.
        item: String,
        /// Why this spelling, when it is not obvious.
        note: Option<&'static str>,
    },
    /// Answer the `OPTIONS` preflight itself with a 2xx status (usually 204).
    AnswerPreflightWith2xx,
    /// Answer the preflight at the requested URL instead of redirecting it.
    AnswerPreflightWithoutRedirect {
        /// Where the server redirected, if it said.
        location: Option<String>,
    },
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SetHeader { name, value, note } => {
                write!(f, "send `{name}: {value}`")?;
                if let Some(note) = note {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Self::AddToList { name, item, note } => {
                write!(f, "add `{item}` to `{name}`")?;
                if let Some(note) = note {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Self::AnswerPreflightWith2xx => f.write_str(
                "answer the OPTIONS preflight with status 204 (any 2xx) and the CORS headers, before authentication or routing rejects it",
            ),
            Self::AnswerPreflightWithoutRedirect { location } => {
                f.write_str("answer the OPTIONS preflight at the requested URL instead of redirecting it")?;
                if let Some(location) = location {
                    write!(f, "; or make the page call `{location}` directly")?;
                }
                Ok(())
            }
        }
    }
}

impl BlockReason {
    /// A stable identifier for machine-readable output (e.g. `method_not_allowed`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::PreflightRedirect { .. } => "preflight_redirect",
            Self::PreflightStatus { .. } => "preflight_status",
            Self::MissingAllowOrigin { .. } => "missing_allow_origin",
            Self::MultipleAllowOrigin { .. } => "multiple_allow_origin",
            Self::WildcardOriginWithCredentials { .. } => "wildcard_origin_with_credentials",
            Self::AllowOriginMismatch { .. } => "allow_origin_mismatch",
            Self::MissingAllowCredentials => "missing_allow_credentials",
            Self::AllowCredentialsNotTrue { .. } => "allow_credentials_not_true",
            Self::InvalidAllowMethods { .. } => "invalid_allow_methods",
            Self::InvalidAllowHeaders { .. } => "invalid_allow_headers",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::HeaderNotAllowed { .. } => "header_not_allowed",
        }
    }

    /// The change on the server that makes the browser accept the response.
    pub fn fix(&self) -> Fix {
        const ORIGIN_NOTE: &str =
            "exactly the page's origin, once, no trailing slash; add `Vary: Origin` when it depends on the request";
        match self {
            Self::PreflightRedirect { location, .. } => Fix::AnswerPreflightWithoutRedirect {
                location: location.clone(),
            },
            Self::PreflightStatus { .. } => Fix::AnswerPreflightWith2xx,
            Self::MissingAllowOrigin { origin }
            | Self::AllowOriginMismatch { origin, .. }
            | Self::MultipleAllowOrigin { origin, .. } => Fix::SetHeader {
                name: ACAO,
                value: origin.clone(),
                note: Some(ORIGIN_NOTE),
            },
            Self::WildcardOriginWithCredentials { origin } => Fix::SetHeader {
                name: ACAO,
                value: origin.clone(),
                note: Some("`*` is refused on credentialed requests: echo the allowed origin and add `Vary: Origin`"),
            },
            Self::MissingAllowCredentials | Self::AllowCredentialsNotTrue { .. } => Fix::SetHeader {
                name: ACAC,
                value: "true".to_owned(),
                note: Some("exactly `true`, lowercase"),
            },
            Self::InvalidAllowMethods { method, .. } => Fix::AddToList {
                name: ACAM,
                item: method.clone(),
                note: Some("and make the header a comma-separated list of method names"),
            },
            Self::MethodNotAllowed {
                method,
                case_mismatch,
                wildcard_with_credentials,
            } => Fix::AddToList {
                name: ACAM,
                item: method.clone(),
                note: if *case_mismatch {
                    Some("methods are case-sensitive")
                } else if *wildcard_with_credentials {
                    Some("`*` does not count on credentialed requests")
                } else {
                    None
                },
            },
            Self::InvalidAllowHeaders { needed, .. } => Fix::SetHeader {
                name: ACAH,
                value: needed.join(", "),
                note: Some("a comma-separated list of header names"),
            },
            Self::HeaderNotAllowed { name, wildcard } => Fix::AddToList {
                name: ACAH,
                item: name.clone(),
                note: match wildcard {
                    WildcardMiss::NoWildcard => None,
                    WildcardMiss::Authorization => Some("`*` never covers Authorization: list it by name"),
                    WildcardMiss::Credentials => Some("`*` does not count on credentialed requests: list it by name"),
                },
            },
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreflightRedirect { status, location } => {
                write!(f, "the preflight was redirected ({status}")?;
                if let Some(location) = location {
                    write!(f, " to {location}")?;
                }
                f.write_str("); browsers do not follow redirects of preflights")
            }
            Self::PreflightStatus { status } => {
                write!(f, "the preflight answer has status {status}, and only 2xx counts as success")
            }
            Self::MissingAllowOrigin { .. } => {
                f.write_str("the response has no `Access-Control-Allow-Origin` header")
            }
            Self::MultipleAllowOrigin { value, .. } => write!(
                f,
                "`Access-Control-Allow-Origin` holds several values (`{value}`), and only one is allowed"
            ),
            Self::WildcardOriginWithCredentials { .. } => f.write_str(
                "`Access-Control-Allow-Origin` is `*`, which is refused when the request includes credentials",
            ),
            Self::AllowOriginMismatch { value, origin } => write!(
                f,
                "`Access-Control-Allow-Origin` is `{value}`, which is not byte-equal to the origin `{origin}`"
            ),
            Self::MissingAllowCredentials => f.write_str(
                "the request includes credentials and the response has no `Access-Control-Allow-Credentials: true`",
            ),
            Self::AllowCredentialsNotTrue { value } => write!(
                f,
                "`Access-Control-Allow-Credentials` is `{value}`; it must be exactly `true` for a credentialed request"
            ),
            Self::InvalidAllowMethods { value, .. } => {
                write!(f, "`Access-Control-Allow-Methods: {value}` is not a list of method names")
            }
            Self::InvalidAllowHeaders { value, .. } => {
                write!(f, "`Access-Control-Allow-Headers: {value}` is not a list of header names")
            }
            Self::MethodNotAllowed {
                method,
                case_mismatch,
                wildcard_with_credentials,
            } => {
                write!(f, "method `{method}` is not in `Access-Control-Allow-Methods`")?;
                if *case_mismatch {
                    f.write_str(" (it is listed in another case, and methods are compared byte for byte)")?;
                }
                if *wildcard_with_credentials {
                    f.write_str(" (`*` is only a wildcard for requests without credentials)")?;
                }
                Ok(())
            }
            Self::HeaderNotAllowed { name, wildcard } => {
                write!(f, "request header `{name}` is not in `Access-Control-Allow-Headers`")?;
                match wildcard {
                    WildcardMiss::NoWildcard => Ok(()),
                    WildcardMiss::Authorization => f.write_str(" (`*` never covers `Authorization`)"),
                    WildcardMiss::Credentials => {
                        f.write_str(" (`*` is only a wildcard for requests without credentials)")
                    }
                }
            }
        }
    }
}

/// A refused response: every reason found, the first being the one the
/// browser's console reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    reasons: Vec<BlockReason>,
    fixes: Vec<Fix>,
}

impl Blocked {
    fn new(reasons: Vec<BlockReason>) -> Option<Self> {
        if reasons.is_empty() {
            return None;
        }
        let mut fixes: Vec<Fix> = Vec::new();
        for fix in reasons.iter().map(BlockReason::fix) {
            if !fixes.contains(&fix) {
                fixes.push(fix);
            }
        }
        Some(Self { reasons, fixes })
    }

    /// The reason the browser reports.
    pub fn primary(&self) -> &BlockReason {
        // `new` never builds an empty list, so the last arm is never taken.
        match self.reasons.first() {
            Some(reason) => reason,
            None => &BlockReason::PreflightStatus {
                status: StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// Every reason found, the browser's first.
    pub fn reasons(&self) -> &[BlockReason] {
        &self.reasons
    }

    /// The changes that make the browser accept the response, one per
    /// distinct problem, in the order of [`reasons`](Self::reasons).
    pub fn fixes(&self) -> &[Fix] {
        &self.fixes
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.primary(), f)
    }
}

impl std::error::Error for Blocked {}

/// The CORS check of the Fetch standard: `Access-Control-Allow-Origin` (and,
/// for credentialed requests, `Access-Control-Allow-Credentials`) of a
/// response to `request`. Returns the reasons it fails; empty when it passes.
pub fn cors_check(request: &CorsRequest, response_headers: &HeaderMap) -> Vec<BlockReason> {
    let include = request.credentials.is_include();
    let mut values = response_headers
        .get_all(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .iter();
    let origin = request.origin().to_owned();
    let Some(first) = values.next() else {
        return vec![BlockReason::MissingAllowOrigin { origin }];
    };
    let rest: Vec<&HeaderValue> = values.collect();
    if !rest.is_empty() || first.as_bytes().contains(&b',') {
        let mut all = vec![lossy(first.as_bytes())];
        all.extend(rest.iter().map(|v| lossy(v.as_bytes())));
        return vec![BlockReason::MultipleAllowOrigin {
            value: all.join(", "),
            origin,
        }];
    }
    let allow_origin = first.as_bytes();
    if allow_origin == b"*" {
        return if include {
            vec![BlockReason::WildcardOriginWithCredentials { origin }]
        } else {
            Vec::new()
        };
    }
    if allow_origin != request.origin.as_bytes() {
        return vec![BlockReason::AllowOriginMismatch {
            value: lossy(allow_origin),
            origin,
        }];
    }
    if !include {
        return Vec::new();
    }
    // Several headers combine into `true, true`, which is not `true`.
    let credentials = combined_value(
        response_headers,
        &http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    );
    if !response_headers.contains_key(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS) {
        vec![BlockReason::MissingAllowCredentials]
    } else if credentials == b"true" {
        Vec::new()
    } else {
        vec![BlockReason::AllowCredentialsNotTrue {
            value: lossy(&credentials),
        }]
    }
}

/// Checks the answer to the preflight of `request`, as the CORS-preflight
/// fetch does: no redirect, a 2xx status, the CORS check, then the method
/// and every unsafe header against `Access-Control-Allow-Methods` and
/// `Access-Control-Allow-Headers` (byte-exact methods, case-insensitive
/// names, `*` only without credentials and never for `Authorization`), and
/// the cache lifetime with `engine`'s cap.
pub fn check_preflight_response(
    request: &CorsRequest,
    status: StatusCode,
    response_headers: &HeaderMap,
    engine: Engine,
) -> Result<PreflightGrant, Blocked> {
    let mut reasons = Vec::new();
    if status.is_redirection() {
        let location = response_headers
            .get(http::header::LOCATION)
            .map(|l| lossy(l.as_bytes()));
        reasons.push(BlockReason::PreflightRedirect { status, location });
    }
    // Chromium checks the origin before the status, and reports the first failure.
    reasons.extend(cors_check(request, response_headers));
    if !status.is_success() && !status.is_redirection() {
        reasons.push(BlockReason::PreflightStatus { status });
    }

    let include = request.credentials.is_include();
    let methods = extract_list(
        response_headers,
        &http::header::ACCESS_CONTROL_ALLOW_METHODS,
    );
    let header_names = extract_list(
        response_headers,
        &http::header::ACCESS_CONTROL_ALLOW_HEADERS,
    );

    let methods = match methods {
        Ok(methods) => {
            let method = request.method.as_str();
            let listed = methods.iter().any(|m| m == method);
            let wildcard = methods.iter().any(|m| m == "*");
            if !listed && !is_cors_safelisted_method(&request.method) && (include || !wildcard) {
                reasons.push(BlockReason::MethodNotAllowed {
                    method: method.to_owned(),
                    case_mismatch: methods.iter().any(|m| m.eq_ignore_ascii_case(method)),
                    wildcard_with_credentials: wildcard && include,
                });
            }
            methods
        }
        Err(value) => {
            reasons.push(BlockReason::InvalidAllowMethods {
                value,
                method: request.method.as_str().to_owned(),
            });
            Vec::new()
        }
    };

    let header_names = match header_names {
        Ok(names) => {
            let allows = |name: &str| names.iter().any(|n| n.eq_ignore_ascii_case(name));
            let wildcard = names.iter().any(|n| n == "*");
            for unsafe_header in cors_unsafe_request_headers(&request.headers) {
                let name = unsafe_header.name.as_str();
                if allows(name) {
                    continue;
                }
                let miss = if name == "authorization" && wildcard {
                    WildcardMiss::Authorization
                } else if !wildcard {
                    WildcardMiss::NoWildcard
                } else if include {
                    WildcardMiss::Credentials
                } else {
                    continue;
                };
                reasons.push(BlockReason::HeaderNotAllowed {
                    name: name.to_owned(),
                    wildcard: miss,
                });
            }
            names
        }
        Err(value) => {
            reasons.push(BlockReason::InvalidAllowHeaders {
                value,
                needed: cors_unsafe_request_headers(&request.headers)
                    .into_iter()
                    .map(|h| h.name.as_str().to_owned())
                    .collect(),
            });
            Vec::new()
        }
    };

    match Blocked::new(reasons) {
        Some(blocked) => Err(blocked),
        None => Ok(PreflightGrant {
            methods,
            header_names,
            max_age: MaxAge::from_headers(response_headers, engine),
        }),
    }
}

/// Checks the answer to the actual request (any status: script can read a
/// 404 or a 502 when the CORS headers are there) and returns the names of
/// the response headers script can read, lowercase, in response order.
pub fn check_actual_response(
    request: &CorsRequest,
    response_headers: &HeaderMap,
) -> Result<Vec<HeaderName>, Blocked> {
    match Blocked::new(cors_check(request, response_headers)) {
        Some(blocked) => Err(blocked),
        None => Ok(readable_response_headers(request, response_headers)),
    }
}

/// The names of the response headers script can read through
/// `response.headers` after a successful CORS check: the safelisted ones
/// (`Cache-Control`, `Content-Language`, `Content-Length`, `Content-Type`,
/// `Expires`, `Last-Modified`, `Pragma`), those named in
/// `Access-Control-Expose-Headers`, and all of them for `*` without
/// credentials; never `Set-Cookie`.
pub fn readable_response_headers(
    request: &CorsRequest,
    response_headers: &HeaderMap,
) -> Vec<HeaderName> {
    let exposed = extract_list(
        response_headers,
        &http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
    )
    .unwrap_or_default();
    let all = !request.credentials.is_include() && exposed.iter().any(|n| n == "*");
    response_headers
        .keys()
        .filter(|name| !matches!(name.as_str(), "set-cookie" | "set-cookie2"))
        .filter(|name| {
            all || SAFELISTED_RESPONSE_HEADERS.contains(&name.as_str())
                || exposed
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(name.as_str()))
        })
        .cloned()
        .collect()
}

/// The fix that makes `name` readable by script.
pub fn expose_fix(name: &str) -> Fix {
    Fix::AddToList {
        name: ACEH,
        item: name.to_owned(),
        note: None,
    }
}

/// What the browser does with a redirect answer to an actual CORS request.
// One value per redirect, consumed at once: boxing the request would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RedirectStep {
    /// It fetches `location` next with `request` (method possibly changed to
    /// `GET`, origin possibly turned `null`), preflighting again if needed.
    Follow {
        /// The next URL.
        location: Uri,
        /// The request as it continues.
        request: CorsRequest,
    },
    /// There is no `Location` header: the browser hands the 3xx response
    /// itself to script, like any other answer.
    Deliver,
    /// It fails the fetch.
    Fail(RedirectFailure),
}

/// Why a redirect of an actual CORS request fails the fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectFailure {
    /// The redirect itself fails the CORS check.
    Cors(Blocked),
    /// No usable `Location` header.
    BadLocation(String),
    /// The target URL carries a username or password.
    CredentialsInUrl,
    /// More than 20 redirects.
    TooMany,
}

impl fmt::Display for RedirectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cors(blocked) => {
                write!(f, "the redirect response fails the CORS check: {blocked}")
            }
            Self::BadLocation(l) => {
                write!(f, "the redirect's Location `{l}` is missing or not a URL")
            }
            Self::CredentialsInUrl => f.write_str(
                "a CORS request cannot be redirected to a URL with a username or password",
            ),
            Self::TooMany => write!(f, "more than {REDIRECT_LIMIT} redirects"),
        }
    }
}

/// What the browser does when an actual CORS request to `current` is
/// answered with redirect `status` (the caller has checked it is one of 301,
/// 302, 303, 307, 308) after `redirects_so_far` redirects.
pub fn follow_redirect(
    request: &CorsRequest,
    current: &Uri,
    status: StatusCode,
    response_headers: &HeaderMap,
    redirects_so_far: usize,
) -> RedirectStep {
    if redirects_so_far >= REDIRECT_LIMIT {
        return RedirectStep::Fail(RedirectFailure::TooMany);
    }
    if let Some(blocked) = Blocked::new(cors_check(request, response_headers)) {
        return RedirectStep::Fail(RedirectFailure::Cors(blocked));
    }
    let Some(raw) = response_headers.get(http::header::LOCATION) else {
        return RedirectStep::Deliver;
    };
    let raw = lossy(raw.as_bytes());
    let Some(location) = resolve_location(current, &raw) else {
        return RedirectStep::Fail(RedirectFailure::BadLocation(raw));
    };
    if location
        .authority()
        .is_some_and(|a| a.as_str().contains('@'))
    {
        return RedirectStep::Fail(RedirectFailure::CredentialsInUrl);
    }
    let mut next = request.clone();
    let becomes_get = (matches!(status.as_u16(), 301 | 302) && next.method == Method::POST)
        || (status.as_u16() == 303 && next.method != Method::GET && next.method != Method::HEAD);
    if becomes_get {
        next = next.with_method(Method::GET);
        for name in [
            "content-encoding",
            "content-language",
            "content-location",
            "content-type",
        ] {
            next.headers.remove(name);
        }
    }
    let current_origin = serialize_origin(current);
    let location_origin = serialize_origin(&location);
    if current_origin != location_origin && Some(request.origin().to_owned()) != current_origin {
        next = next.with_null_origin();
    }
    RedirectStep::Follow {
        location,
        request: next,
    }
}

fn resolve_location(current: &Uri, location: &str) -> Option<Uri> {
    let base = url::Url::parse(&current.to_string()).ok()?;
    let joined = base.join(location).ok()?;
    match joined.scheme() {
        "http" | "https" => joined.as_str().parse().ok(),
        _ => None,
    }
}

/// The browser's preflight cache: which (origin, URL, credentials, method or
/// header) permissions are still fresh, so that a second identical request
/// goes out without a preflight.
#[derive(Debug, Default, Clone)]
pub struct PreflightCache {
    entries: HashMap<CacheKey, Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    origin: Vec<u8>,
    url: String,
    include: bool,
    item: CacheItem,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheItem {
    Method(String),
    Header(String),
}

impl PreflightCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what a successful preflight of `request` to `url` granted, at `now`.
    pub fn store(
        &mut self,
        request: &CorsRequest,
        url: &Uri,
        grant: &PreflightGrant,
        now: Instant,
    ) {
        if grant.max_age.effective == 0 {
            return;
        }
        let expiry = now + Duration::from_secs(grant.max_age.effective);
        let key = |item| CacheKey {
            origin: request.origin.as_bytes().to_vec(),
            url: url.to_string(),
            include: request.credentials.is_include(),
            item,
        };
        for method in &grant.methods {
            self.entries
                .insert(key(CacheItem::Method(method.clone())), expiry);
        }
        for name in &grant.header_names {
            self.entries
                .insert(key(CacheItem::Header(name.to_ascii_lowercase())), expiry);
        }
    }

    /// Whether `request` to `url` needs a preflight at `now`, given what is cached.
    pub fn needs_preflight(&self, request: &CorsRequest, url: &Uri, now: Instant) -> bool {
        let include = request.credentials.is_include();
        let fresh = |item: CacheItem| {
            let key = CacheKey {
                origin: request.origin.as_bytes().to_vec(),
                url: url.to_string(),
                include,
                item,
            };
            self.entries.get(&key).is_some_and(|&expiry| now < expiry)
        };
        let method = request.method.as_str();
        let method_ok = is_cors_safelisted_method(&request.method)
            || fresh(CacheItem::Method(method.to_owned()))
            || (!include && fresh(CacheItem::Method("*".to_owned())));
        let headers_ok = cors_unsafe_request_headers(&request.headers)
            .iter()
            .all(|h| {
                let name = h.name.as_str();
                fresh(CacheItem::Header(name.to_owned()))
                    || (!include
                        && name != "authorization"
                        && fresh(CacheItem::Header("*".to_owned())))
            });
        !(method_ok && headers_ok)
    }
}

/// The items of every `name` header (`#token` lists: empty items skipped,
/// whitespace trimmed), or the raw value when one item is not a token.
fn extract_list(headers: &HeaderMap, name: &HeaderName) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    for value in headers.get_all(name) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = trim_http_whitespace(item);
            if item.is_empty() {
                continue;
            }
            if !item.iter().all(|&b| is_tchar(b)) {
                return Err(lossy(&combined_value(headers, name)));
            }
            items.push(lossy(item));
        }
    }
    Ok(items)
}

fn combined_value(headers: &HeaderMap, name: &HeaderName) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn trim_http_whitespace(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or(&[])
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://app.example";

    fn request(
        method: &str,
        credentials: CredentialsMode,
        headers: &[(&str, &str)],
    ) -> CorsRequest {
        let mut request = CorsRequest::new(ORIGIN, method, credentials).unwrap();
        for (name, value) in headers {
            request = request.with_header(name, value).unwrap();
        }
        request
    }

    fn response(headers: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn name(n: &str) -> HeaderName {
        HeaderName::from_bytes(n.as_bytes()).unwrap()
    }

    fn safelisted(n: &str, value: &[u8]) -> Result<(), NotSafelisted> {
        check_safelisted_request_header(&name(n), value)
    }

    fn preflight(
        request: &CorsRequest,
        status: u16,
        headers: &[(&str, &str)],
    ) -> Result<PreflightGrant, Blocked> {
        check_preflight_response(
            request,
            StatusCode::from_u16(status).unwrap(),
            &response(headers),
            Engine::Chromium,
        )
    }

    fn reasons(result: Result<PreflightGrant, Blocked>) -> Vec<BlockReason> {
        result.unwrap_err().reasons().to_vec()
    }

    #[test]
    fn only_get_head_post_are_safelisted_methods() {
        for m in ["GET", "HEAD", "POST"] {
            assert!(is_cors_safelisted_method(
                &Method::from_bytes(m.as_bytes()).unwrap()
            ));
        }
        for m in ["PUT", "DELETE", "PATCH", "patch", "OPTIONS", "get"] {
            assert!(
                !is_cors_safelisted_method(&Method::from_bytes(m.as_bytes()).unwrap()),
                "{m}"
            );
        }
    }

    #[test]
    fn methods_are_normalized_like_fetch() {
        let m =
            |s| CorsRequest::new(ORIGIN, s, CredentialsMode::Omit).map(|r| r.method().to_string());
        assert_eq!(m("delete").unwrap(), "DELETE");
        assert_eq!(m("pOsT").unwrap(), "POST");
        assert_eq!(m("options").unwrap(), "OPTIONS");
        assert_eq!(m("patch").unwrap(), "patch");
        assert_eq!(m("Patch").unwrap(), "Patch");
        assert!(matches!(m("trace"), Err(RequestError::ForbiddenMethod(_))));
        assert!(matches!(
            m("CONNECT"),
            Err(RequestError::ForbiddenMethod(_))
        ));
        assert!(matches!(m("Track"), Err(RequestError::ForbiddenMethod(_))));
        assert!(matches!(m("GE T"), Err(RequestError::InvalidMethod(_))));
        assert!(matches!(m(""), Err(RequestError::InvalidMethod(_))));
        // A lowercase `get` becomes `GET`, so it is not preflighted.
        let get = request("get", CredentialsMode::Omit, &[]);
        assert!(preflight_reasons(&get).is_empty());
    }

    #[test]
    fn origins_must_be_serialized_exactly() {
        for good in [
            "https://app.example",
            "http://localhost:8080",
            "http://127.0.0.1:3000",
            "null",
            "http://[::1]:9",
        ] {
            assert!(
                CorsRequest::new(good, "GET", CredentialsMode::Omit).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "https://app.example/",
            "https://APP.example",
            "https://app.example:443",
            "http://app.example:80",
            "https://app.example/path",
            "app.example",
            "",
        ] {
            assert!(
                matches!(
                    CorsRequest::new(bad, "GET", CredentialsMode::Omit),
                    Err(RequestError::InvalidOrigin(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unsafe_bytes_are_exactly_the_listed_ones() {
        let listed: Vec<u8> = b"\"():<>?@[\\]{}\x7f".to_vec();
        for b in 0u8..=255 {
            let expected = (b < 0x20 && b != 0x09) || listed.contains(&b);
            assert_eq!(
                is_cors_unsafe_request_header_byte(b),
                expected,
                "byte {b:#04x}"
            );
        }
    }

    #[test]
    fn accept_rejects_unsafe_bytes_only() {
        assert_eq!(
            safelisted("accept", b"text/html, application/json;q=0.9, */*"),
            Ok(())
        );
        assert_eq!(safelisted("accept", b"a\tb"), Ok(()));
        assert_eq!(
            safelisted("accept", b"text/(html)"),
            Err(NotSafelisted::UnsafeByte { byte: b'(' })
        );
        assert_eq!(
            safelisted("accept", b"a@b"),
            Err(NotSafelisted::UnsafeByte { byte: b'@' })
        );
        assert_eq!(
            safelisted("accept", b"a\x01"),
            Err(NotSafelisted::UnsafeByte { byte: 1 })
        );
    }

    #[test]
    fn language_headers_allow_a_narrow_alphabet() {
        for n in ["accept-language", "content-language"] {
            assert_eq!(safelisted(n, b"en-US,en;q=0.9, *"), Ok(()), "{n}");
            assert_eq!(
                safelisted(n, b"en_US"),
                Err(NotSafelisted::LanguageByte { byte: b'_' })
            );
            assert_eq!(
                safelisted(n, b"en\tUS"),
                Err(NotSafelisted::LanguageByte { byte: b'\t' })
            );
            assert_eq!(
                safelisted(n, "fr-é".as_bytes()),
                Err(NotSafelisted::LanguageByte { byte: 0xc3 })
            );
        }
    }

    #[test]
    fn content_type_has_three_safelisted_essences() {
        for ok in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "TEXT/Plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=----x",
            "text/plain ;foo=bar",
            "text/plain;;;",
        ] {
            assert_eq!(safelisted("content-type", ok.as_bytes()), Ok(()), "{ok}");
        }
        assert_eq!(
            safelisted("content-type", b"application/json"),
            Err(NotSafelisted::ContentTypeEssence {
                essence: "application/json".to_owned()
            })
        );
        assert_eq!(
            safelisted("content-type", b"text/html"),
            Err(NotSafelisted::ContentTypeEssence {
                essence: "text/html".to_owned()
            })
        );
        assert_eq!(
            safelisted("content-type", b"text"),
            Err(NotSafelisted::ContentTypeUnparsable)
        );
        assert_eq!(
            safelisted("content-type", b"/plain"),
            Err(NotSafelisted::ContentTypeUnparsable)
        );
        assert_eq!(
            safelisted("content-type", b"text/"),
            Err(NotSafelisted::ContentTypeUnparsable)
        );
        assert_eq!(
            safelisted("content-type", b"te xt/plain"),
            Err(NotSafelisted::ContentTypeUnparsable)
        );
        // Quotes are CORS-unsafe bytes even inside a valid parameter.
        assert_eq!(
            safelisted("content-type", b"text/plain; charset=\"utf-8\""),
            Err(NotSafelisted::UnsafeByte { byte: b'"' })
        );
    }

    #[test]
    fn range_must_be_a_single_byte_range_with_a_start() {
        for ok in [
            "bytes=0-",
            "bytes=0-10",
            "bytes=5-5",
            "BYTES=1-2",
            "bytes=00-1",
        ] {
            assert_eq!(safelisted("range", ok.as_bytes()), Ok(()), "{ok}");
        }
        assert_eq!(
            safelisted("range", b"bytes=-500"),
            Err(NotSafelisted::RangeSuffix)
        );
        for bad in [
            "bytes=10-5",
            "bytes = 0-",
            "bytes=0-1,2-3",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes=a-",
            "bytes=0-1 ",
        ] {
            assert_eq!(
                safelisted("range", bad.as_bytes()),
                Err(NotSafelisted::RangeNotSingleByteRange),
                "{bad}"
            );
        }
        assert_eq!(
            safelisted(
                "range",
                b"bytes=99999999999999999999999-100000000000000000000000"
            ),
            Ok(())
        );
        assert_eq!(
            safelisted(
                "range",
                b"bytes=100000000000000000000000-99999999999999999999999"
            ),
            Err(NotSafelisted::RangeNotSingleByteRange)
        );
    }

    #[test]
    fn values_over_128_bytes_are_never_safelisted() {
        let at_limit = vec![b'a'; 128];
        let over = vec![b'a'; 129];
        assert_eq!(safelisted("accept", &at_limit), Ok(()));
        assert_eq!(
            safelisted("accept", &over),
            Err(NotSafelisted::ValueTooLong { len: 129 })
        );
        assert_eq!(
            safelisted("accept-language", &over),
            Err(NotSafelisted::ValueTooLong { len: 129 })
        );
        assert_eq!(safelisted("x-custom", b"a"), Err(NotSafelisted::Name));
        assert_eq!(
            safelisted("authorization", b"Bearer x"),
            Err(NotSafelisted::Name)
        );
    }

    #[test]
    fn safelisted_values_over_1024_bytes_in_total_all_become_unsafe() {
        // The standard's header list can hold one name several times; nine
        // 120-byte `accept` values are each fine but 1080 bytes together.
        let value = HeaderValue::from_bytes(&[b'a'; 120]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-language", HeaderValue::from_static("en"));
        for _ in 0..8 {
            headers.append("accept", value.clone());
        }
        assert!(
            cors_unsafe_request_headers(&headers).is_empty(),
            "962 bytes is under the limit"
        );
        headers.append("accept", value);
        let names: Vec<(String, NotSafelisted)> = cors_unsafe_request_headers(&headers)
            .into_iter()
            .map(|h| (h.name.to_string(), h.reason))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "accept".to_owned(),
                    NotSafelisted::TotalTooLong { total: 1082 }
                ),
                (
                    "content-language".to_owned(),
                    NotSafelisted::TotalTooLong { total: 1082 }
                ),
            ]
        );
    }

    #[test]
    fn repeated_headers_are_joined_like_chromium() {
        let r = request(
            "GET",
            CredentialsMode::Omit,
            &[("Accept", "text/html"), ("accept", "application/json")],
        );
        assert_eq!(r.headers()["accept"], "text/html, application/json");
        let long = "a".repeat(100);
        let r = request(
            "GET",
            CredentialsMode::Omit,
            &[("accept", &long), ("accept", &long)],
        );
        let reasons = preflight_reasons(&r);
        assert!(matches!(
            reasons.as_slice(),
            [PreflightReason::Header(UnsafeHeader {
                reason: NotSafelisted::ValueTooLong { len: 202 },
                ..
            })]
        ));
    }

    #[test]
    fn forbidden_headers_are_dropped_silently() {
        let r = request(
            "GET",
            CredentialsMode::Include,
            &[
                ("Cookie", "a=b"),
                ("Origin", "https://evil.example"),
                ("Sec-Fetch-Site", "same-origin"),
                ("Proxy-Authorization", "x"),
                ("Access-Control-Request-Method", "PUT"),
                ("X-HTTP-Method-Override", "GET, trace"),
                ("X-HTTP-Method", "PATCH"),
                ("Accept", "  text/html\t"),
            ],
        );
        let dropped: Vec<&str> = r.dropped_headers().iter().map(HeaderName::as_str).collect();
        assert_eq!(
            dropped,
            [
                "cookie",
                "origin",
                "sec-fetch-site",
                "proxy-authorization",
                "access-control-request-method",
                "x-http-method-override"
            ]
        );
        assert_eq!(r.headers().len(), 2);
        assert_eq!(r.headers()["accept"], "text/html");
        assert_eq!(r.headers()["x-http-method"], "PATCH");
        assert!(matches!(
            CorsRequest::new(ORIGIN, "GET", CredentialsMode::Omit)
                .unwrap()
                .with_header("bad name", "x"),
            Err(RequestError::InvalidHeaderName(_))
        ));
        assert!(matches!(
            CorsRequest::new(ORIGIN, "GET", CredentialsMode::Omit)
                .unwrap()
                .with_header("x-a", "a\nb"),
            Err(RequestError::InvalidHeaderValue(_))
        ));
    }

    #[test]
    fn preflight_is_needed_for_methods_and_unsafe_headers_not_credentials() {
        assert!(preflight_reasons(&request("GET", CredentialsMode::Include, &[])).is_empty());
        assert!(preflight_reasons(&request(
            "POST",
            CredentialsMode::Omit,
            &[("content-type", "text/plain"), ("accept-language", "de")]
        ))
        .is_empty());
        assert_eq!(
            preflight_reasons(&request("PUT", CredentialsMode::Omit, &[])),
            [PreflightReason::Method(Method::PUT)]
        );
        let reasons = preflight_reasons(&request(
            "POST",
            CredentialsMode::Omit,
            &[("Content-Type", "application/json")],
        ));
        assert!(matches!(
            reasons.as_slice(),
            [PreflightReason::Header(UnsafeHeader {
                reason: NotSafelisted::ContentTypeEssence { .. },
                ..
            })]
        ));
    }

    #[test]
    fn preflight_request_matches_chromium() {
        let r = request(
            "patch",
            CredentialsMode::Include,
            &[
                ("X-B", "1"),
                ("x-a", "2"),
                ("Content-Type", "application/json"),
                ("Accept", "text/html"),
                ("X-b", "3"),
            ],
        );
        let target: Uri = "https://api.example/items/1".parse().unwrap();
        let h = preflight_request_headers_to(&r, &target);
        assert_eq!(h["accept"], "*/*");
        assert_eq!(h["access-control-request-method"], "patch");
        assert_eq!(h["access-control-request-headers"], "content-type,x-a,x-b");
        assert_eq!(h["origin"], ORIGIN);
        assert_eq!(h["sec-fetch-mode"], "cors");
        assert_eq!(h["sec-fetch-site"], "cross-site");
        assert_eq!(h["sec-fetch-dest"], "empty");
        assert!(
            !h.contains_key("x-a"),
            "author headers are not sent on a preflight"
        );
        assert!(!h.contains_key("cookie"));
        let order: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            order[..4],
            [
                "accept",
                "access-control-request-method",
                "access-control-request-headers",
                "origin"
            ]
        );

        let method_only = preflight_request_headers(&request("DELETE", CredentialsMode::Omit, &[]));
        assert_eq!(method_only["access-control-request-method"], "DELETE");
        assert!(!method_only.contains_key("access-control-request-headers"));
    }

    #[test]
    fn fetch_site_follows_registrable_domains() {
        let site = |origin: &str, target: &str| {
            let r = CorsRequest::new(origin, "GET", CredentialsMode::Omit).unwrap();
            actual_request_headers(&r, &target.parse().unwrap())["sec-fetch-site"].clone()
        };
        assert_eq!(
            site("https://app.example.com", "https://app.example.com/x"),
            "same-origin"
        );
        assert_eq!(
            site("https://app.example.com", "https://api.example.com/x"),
            "same-site"
        );
        assert_eq!(
            site("http://app.example.com", "https://api.example.com/x"),
            "cross-site"
        );
        assert_eq!(
            site("http://127.0.0.1:3000", "http://localhost:8080/"),
            "cross-site"
        );
        assert_eq!(
            site("https://a.github.io", "https://b.github.io/"),
            "cross-site"
        );
    }

    #[test]
    fn registrable_domains_use_the_public_suffix_list() {
        assert_eq!(registrable_domain("api.example.co.uk"), "example.co.uk");
        assert_eq!(registrable_domain("a.b.example.com"), "example.com");
        assert_eq!(registrable_domain("user.github.io"), "user.github.io");
        assert_eq!(registrable_domain("127.0.0.1"), "127.0.0.1");
        assert_eq!(registrable_domain("localhost"), "localhost");
        assert_eq!(registrable_domain("[::1]"), "[::1]");
    }

    #[test]
    fn actual_request_carries_author_headers_and_origin() {
        let r = request("POST", CredentialsMode::Omit, &[("X-Trace", "1")]);
        let h = actual_request_headers(&r, &"http://localhost:8080/".parse().unwrap());
        assert_eq!(h["x-trace"], "1");
        assert_eq!(h["accept"], "*/*");
        assert_eq!(h["origin"], ORIGIN);
        let r = request("GET", CredentialsMode::Omit, &[("Accept", "text/csv")]);
        assert_eq!(
            actual_request_headers(&r, &"http://localhost/".parse().unwrap())["accept"],
            "text/csv"
        );
    }

    #[test]
    fn a_good_preflight_answer_is_accepted() {
        let r = request("PUT", CredentialsMode::Include, &[("X-Custom", "1")]);
        let grant = preflight(
            &r,
            204,
            &[
                ("Access-Control-Allow-Origin", ORIGIN),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Allow-Methods", "GET, PUT,,DELETE"),
                ("Access-Control-Allow-Headers", "X-CUSTOM"),
                ("Access-Control-Max-Age", "600"),
            ],
        )
        .unwrap();
        assert_eq!(grant.methods, ["GET", "PUT", "DELETE"]);
        assert_eq!(grant.header_names, ["X-CUSTOM"]);
        assert_eq!(
            grant.max_age,
            MaxAge {
                requested: Some(600),
                effective: 600
            }
        );
        for status in [200, 299] {
            assert!(preflight(
                &r,
                status,
                &[
                    ("Access-Control-Allow-Origin", ORIGIN),
                    ("Access-Control-Allow-Credentials", "true"),
                    ("Access-Control-Allow-Methods", "PUT"),
                    ("Access-Control-Allow-Headers", "x-custom"),
                ],
            )
            .is_ok());
        }
    }

    #[test]
    fn preflight_status_must_be_ok_and_redirects_fail() {
        let r = request("PUT", CredentialsMode::Omit, &[]);
        let allow = [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "PUT"),
        ];
        for status in [301, 302, 303, 307, 308] {
            let mut headers = allow.to_vec();
            headers.push(("Location", "https://elsewhere.example/"));
            let reasons = reasons(preflight(&r, status, &headers));
            assert_eq!(
                reasons,
                [BlockReason::PreflightRedirect {
                    status: StatusCode::from_u16(status).unwrap(),
                    location: Some("https://elsewhere.example/".to_owned())
                }]
            );
        }
        for status in [100, 300, 304, 400, 401, 403, 404, 500, 502] {
            let reasons = reasons(preflight(&r, status, &allow));
            let expected = if (300..400).contains(&status) {
                "preflight_redirect"
            } else {
                "preflight_status"
            };
            assert_eq!(reasons[0].code(), expected, "{status}");
        }
        // Chromium reports the missing origin before the status.
        let blocked = preflight(&r, 401, &[]).unwrap_err();
        assert_eq!(
            blocked
                .reasons()
                .iter()
                .map(BlockReason::code)
                .collect::<Vec<_>>(),
            [
                "missing_allow_origin",
                "preflight_status",
                "method_not_allowed"
            ]
        );
        assert_eq!(blocked.fixes()[1], Fix::AnswerPreflightWith2xx);
        let blocked = preflight(&r, 500, &allow).unwrap_err();
        assert_eq!(blocked.primary().code(), "preflight_status");
        assert_eq!(blocked.fixes(), [Fix::AnswerPreflightWith2xx]);
    }

    #[test]
    fn allow_origin_must_be_byte_equal_or_star_without_credentials() {
        let omit = request("GET", CredentialsMode::Omit, &[]);
        let include = request("GET", CredentialsMode::Include, &[]);
        let check = |r: &CorsRequest, h: &[(&str, &str)]| cors_check(r, &response(h));
        assert!(check(&omit, &[("access-control-allow-origin", "*")]).is_empty());
        assert!(check(&omit, &[("access-control-allow-origin", ORIGIN)]).is_empty());
        assert_eq!(
            check(&omit, &[]),
            [BlockReason::MissingAllowOrigin {
                origin: ORIGIN.to_owned()
            }]
        );
        for wrong in [
            "https://app.example/",
            "HTTPS://APP.EXAMPLE",
            "https://app.example:443",
            "null",
            "app.example",
        ] {
            assert_eq!(
                check(&omit, &[("access-control-allow-origin", wrong)]),
                [BlockReason::AllowOriginMismatch {
                    value: wrong.to_owned(),
                    origin: ORIGIN.to_owned()
                }],
                "{wrong}"
            );
        }
        assert_eq!(
            check(
                &omit,
                &[
                    ("access-control-allow-origin", ORIGIN),
                    ("access-control-allow-origin", ORIGIN)
                ]
            )[0]
            .code(),
            "multiple_allow_origin"
        );
        assert_eq!(
            check(
                &omit,
                &[(
                    "access-control-allow-origin",
                    "https://app.example, https://b.example"
                )]
            )[0]
            .code(),
            "multiple_allow_origin"
        );
        assert_eq!(
            check(
                &include,
                &[
                    ("access-control-allow-origin", "*"),
                    ("access-control-allow-credentials", "true")
                ]
            ),
            [BlockReason::WildcardOriginWithCredentials {
                origin: ORIGIN.to_owned()
            }]
        );
        let null = CorsRequest::new("null", "GET", CredentialsMode::Omit).unwrap();
        assert!(check(&null, &[("access-control-allow-origin", "null")]).is_empty());
    }

    #[test]
    fn allow_credentials_must_be_exactly_true_when_credentialed() {
        let include = request("GET", CredentialsMode::Include, &[]);
        let omit = request("GET", CredentialsMode::Omit, &[]);
        let check = |r: &CorsRequest, acac: &[&str]| {
            let mut h = vec![("access-control-allow-origin", ORIGIN)];
            h.extend(
                acac.iter()
                    .map(|v| ("access-control-allow-credentials", *v)),
            );
            cors_check(r, &response(&h))
        };
        assert!(check(&include, &["true"]).is_empty());
        assert_eq!(check(&include, &[]), [BlockReason::MissingAllowCredentials]);
        for wrong in ["True", "TRUE", "1", "yes", "false", ""] {
            assert_eq!(
                check(&include, &[wrong]),
                [BlockReason::AllowCredentialsNotTrue {
                    value: wrong.to_owned()
                }]
            );
        }
        assert_eq!(
            check(&include, &["true", "true"])[0].code(),
            "allow_credentials_not_true"
        );
        assert!(check(&omit, &[]).is_empty());
        assert!(check(&omit, &["false"]).is_empty());
        let fix = BlockReason::MissingAllowCredentials.fix().to_string();
        assert_eq!(
            fix,
            "send `Access-Control-Allow-Credentials: true` (exactly `true`, lowercase)"
        );
    }

    #[test]
    fn methods_match_byte_for_byte() {
        let patch = request("patch", CredentialsMode::Omit, &[]);
        fn allow(m: &str) -> Vec<(&str, &str)> {
            vec![
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", m),
            ]
        }
        assert!(preflight(&patch, 204, &allow("patch")).is_ok());
        let blocked = preflight(&patch, 204, &allow("GET, PATCH")).unwrap_err();
        assert_eq!(
            blocked.reasons(),
            [BlockReason::MethodNotAllowed {
                method: "patch".to_owned(),
                case_mismatch: true,
                wildcard_with_credentials: false
            }]
        );
        assert_eq!(
            blocked.fixes()[0].to_string(),
            "add `patch` to `Access-Control-Allow-Methods` (methods are case-sensitive)"
        );
        let put = request("put", CredentialsMode::Omit, &[]);
        assert!(preflight(&put, 204, &allow("PUT")).is_ok());
        assert_eq!(
            reasons(preflight(&put, 204, &allow("put")))[0].code(),
            "method_not_allowed"
        );
        // A safelisted method never needs to be listed.
        let post = request("POST", CredentialsMode::Omit, &[("x-a", "1")]);
        assert!(preflight(
            &post,
            204,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-headers", "x-a")
            ]
        )
        .is_ok());
    }

    #[test]
    fn method_wildcard_counts_only_without_credentials() {
        let omit = request("DELETE", CredentialsMode::Omit, &[]);
        assert!(preflight(
            &omit,
            204,
            &[
                ("access-control-allow-origin", ORIGIN),
                ("access-control-allow-methods", "*")
            ]
        )
        .is_ok());
        let include = request("DELETE", CredentialsMode::Include, &[]);
        let blocked = preflight(
            &include,
            204,
            &[
                ("access-control-allow-origin", ORIGIN),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "*"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            blocked.reasons(),
            [BlockReason::MethodNotAllowed {
                method: "DELETE".to_owned(),
                case_mismatch: false,
                wildcard_with_credentials: true
            }]
        );
    }

    #[test]
    fn malformed_allow_lists_fail() {
        let r = request("PUT", CredentialsMode::Omit, &[("x-a", "1")]);
        let reasons = reasons(preflight(
            &r,
            204,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "GET PUT"),
                ("access-control-allow-headers", "x-a; x-b"),
            ],
        ));
        assert_eq!(
            reasons,
            [
                BlockReason::InvalidAllowMethods {
                    value: "GET PUT".to_owned(),
                    method: "PUT".to_owned()
                },
                BlockReason::InvalidAllowHeaders {
                    value: "x-a; x-b".to_owned(),
                    needed: vec!["x-a".to_owned()]
                }
            ]
        );
        assert_eq!(
            reasons[1].fix().to_string(),
            "send `Access-Control-Allow-Headers: x-a` (a comma-separated list of header names)"
        );
    }

    #[test]
    fn headers_match_case_insensitively_with_wildcard_rules() {
        let omit = request(
            "GET",
            CredentialsMode::Omit,
            &[("X-Custom", "1"), ("Authorization", "Bearer t")],
        );
        let acao = ("access-control-allow-origin", "*");
        assert!(preflight(
            &omit,
            204,
            &[
                acao,
                ("access-control-allow-headers", "authorization, x-CUSTOM")
            ]
        )
        .is_ok());
        assert!(preflight(
            &omit,
            204,
            &[acao, ("access-control-allow-headers", "*, Authorization")]
        )
        .is_ok());
        assert_eq!(
            reasons(preflight(
                &omit,
                204,
                &[acao, ("access-control-allow-headers", "*")]
            )),
            [BlockReason::HeaderNotAllowed {
                name: "authorization".to_owned(),
                wildcard: WildcardMiss::Authorization
            }]
        );
        assert_eq!(
            reasons(preflight(
                &omit,
                204,
                &[acao, ("access-control-allow-headers", "x-custom")]
            )),
            [BlockReason::HeaderNotAllowed {
                name: "authorization".to_owned(),
                wildcard: WildcardMiss::NoWildcard
            }]
        );
        let include = request("GET", CredentialsMode::Include, &[("X-Custom", "1")]);
        let blocked = preflight(
            &include,
            204,
            &[
                ("access-control-allow-origin", ORIGIN),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-headers", "*"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            blocked.reasons(),
            [BlockReason::HeaderNotAllowed {
                name: "x-custom".to_owned(),
                wildcard: WildcardMiss::Credentials
            }]
        );
        assert_eq!(
            blocked.fixes()[0].to_string(),
            "add `x-custom` to `Access-Control-Allow-Headers` (`*` does not count on credentialed requests: list it by name)"
        );
        // A non-safelisted value of a safelisted name must be allowed too.
        let json = request(
            "POST",
            CredentialsMode::Omit,
            &[("Content-Type", "application/json")],
        );
        assert_eq!(
            reasons(preflight(&json, 204, &[acao]))[0].code(),
            "header_not_allowed"
        );
        assert!(preflight(
            &json,
            204,
            &[acao, ("access-control-allow-headers", "Content-Type")]
        )
        .is_ok());
    }

    #[test]
    fn max_age_defaults_to_5_and_is_capped_per_engine() {
        let r = request("PUT", CredentialsMode::Omit, &[]);
        let max_age = |values: &[&str], engine: Engine| {
            let mut h = vec![
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "PUT"),
            ];
            h.extend(values.iter().map(|v| ("access-control-max-age", *v)));
            check_preflight_response(&r, StatusCode::NO_CONTENT, &response(&h), engine)
                .unwrap()
                .max_age
        };
        assert_eq!(
            max_age(&[], Engine::Chromium),
            MaxAge {
                requested: None,
                effective: 5
            }
        );
        assert_eq!(
            max_age(&["0"], Engine::Chromium),
            MaxAge {
                requested: Some(0),
                effective: 0
            }
        );
        assert_eq!(max_age(&["7200"], Engine::Chromium).effective, 7200);
        assert_eq!(
            max_age(&["86400"], Engine::Chromium),
            MaxAge {
                requested: Some(86400),
                effective: 7200
            }
        );
        assert_eq!(max_age(&["86400"], Engine::Firefox).effective, 86400);
        assert_eq!(max_age(&["172800"], Engine::Firefox).effective, 86400);
        assert_eq!(
            max_age(&["99999999999999999999999"], Engine::Firefox).effective,
            86400
        );
        for unreadable in [&["-1"][..], &["1.5"], &["ten"], &["10", "20"], &[""]] {
            assert_eq!(
                max_age(unreadable, Engine::Chromium),
                MaxAge {
                    requested: None,
                    effective: 5
                },
                "{unreadable:?}"
            );
        }
    }

    #[test]
    fn readable_headers_are_safelisted_plus_exposed() {
        let omit = request("GET", CredentialsMode::Omit, &[]);
        let include = request("GET", CredentialsMode::Include, &[]);
        let base = [
            ("access-control-allow-origin", ORIGIN),
            ("access-control-allow-credentials", "true"),
            ("content-type", "text/plain"),
            ("content-length", "3"),
            ("x-request-id", "7"),
            ("x-other", "8"),
            ("set-cookie", "a=b"),
        ];
        let names = |r: &CorsRequest, aceh: Option<&str>| {
            let mut h = base.to_vec();
            h.extend(aceh.map(|v| ("access-control-expose-headers", v)));
            check_actual_response(r, &response(&h))
                .unwrap()
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&omit, None), ["content-type", "content-length"]);
        assert_eq!(
            names(&omit, Some("X-Request-ID")),
            ["content-type", "content-length", "x-request-id"]
        );
        assert_eq!(
            names(&omit, Some("*")),
            [
                "access-control-allow-origin",
                "access-control-allow-credentials",
                "content-type",
                "content-length",
                "x-request-id",
                "x-other",
                "access-control-expose-headers"
            ]
        );
        assert_eq!(
            names(&include, Some("*")),
            ["content-type", "content-length"]
        );
        assert_eq!(
            names(&include, Some("set-cookie, x-other")),
            ["content-type", "content-length", "x-other"]
        );
        assert_eq!(
            expose_fix("x-other").to_string(),
            "add `x-other` to `Access-Control-Expose-Headers`"
        );
    }

    #[test]
    fn actual_responses_of_any_status_pass_with_cors_headers() {
        let r = request("GET", CredentialsMode::Omit, &[]);
        assert!(
            check_actual_response(&r, &response(&[("access-control-allow-origin", "*")])).is_ok()
        );
        let blocked = check_actual_response(
            &r,
            &response(&[("access-control-allow-origin", "https://other.example")]),
        )
        .unwrap_err();
        assert_eq!(
            blocked.fixes()[0].to_string(),
            "send `Access-Control-Allow-Origin: https://app.example` (exactly the page's origin, once, no trailing slash; add `Vary: Origin` when it depends on the request)"
        );
    }

    #[test]
    fn redirects_change_method_and_taint_the_origin() {
        let api: Uri = "https://api.example/a".parse().unwrap();
        let ok = |location: &str| {
            response(&[("access-control-allow-origin", "*"), ("location", location)])
        };
        let post = request(
            "POST",
            CredentialsMode::Omit,
            &[("content-type", "text/plain")],
        );
        let step = follow_redirect(&post, &api, StatusCode::MOVED_PERMANENTLY, &ok("/b"), 0);
        let RedirectStep::Follow {
            location,
            request: next,
        } = step
        else {
            panic!("301 should be followed");
        };
        assert_eq!(location.to_string(), "https://api.example/b");
        assert_eq!(next.method(), Method::GET);
        assert!(!next.headers().contains_key("content-type"));
        // Cross-origin hop from a URL that is not the page's origin: `Origin: null`.
        assert_eq!(next.origin(), ORIGIN, "same-origin hop keeps the origin");
        let RedirectStep::Follow { request: next, .. } = follow_redirect(
            &post,
            &api,
            StatusCode::TEMPORARY_REDIRECT,
            &ok("https://cdn.example/c"),
            0,
        ) else {
            panic!("307 should be followed");
        };
        assert_eq!(next.method(), Method::POST);
        assert_eq!(next.origin(), "null");
        let put = request("PUT", CredentialsMode::Omit, &[]);
        let RedirectStep::Follow { request: next, .. } =
            follow_redirect(&put, &api, StatusCode::SEE_OTHER, &ok("/c"), 0)
        else {
            panic!("303 should be followed");
        };
        assert_eq!(next.method(), Method::GET);
        // A redirect from the page's own origin elsewhere keeps the origin.
        let own: Uri = "https://app.example/start".parse().unwrap();
        let RedirectStep::Follow { request: next, .. } = follow_redirect(
            &post,
            &own,
            StatusCode::FOUND,
            &ok("https://api.example/x"),
            0,
        ) else {
            panic!("302 should be followed");
        };
        assert_eq!(next.origin(), ORIGIN);
    }

    #[test]
    fn redirects_can_fail() {
        let api: Uri = "https://api.example/a".parse().unwrap();
        let r = request("GET", CredentialsMode::Omit, &[]);
        let fail =
            |h: HeaderMap, n: usize| match follow_redirect(&r, &api, StatusCode::FOUND, &h, n) {
                RedirectStep::Fail(f) => f,
                other => panic!("should fail: {other:?}"),
            };
        assert!(matches!(
            fail(response(&[("location", "/b")]), 0),
            RedirectFailure::Cors(_)
        ));
        assert!(matches!(
            follow_redirect(
                &r,
                &api,
                StatusCode::FOUND,
                &response(&[("access-control-allow-origin", "*")]),
                0
            ),
            RedirectStep::Deliver
        ));
        assert_eq!(
            fail(
                response(&[
                    ("access-control-allow-origin", "*"),
                    ("location", "http://[::1")
                ]),
                0
            ),
            RedirectFailure::BadLocation("http://[::1".to_owned())
        );
        assert_eq!(
            fail(
                response(&[
                    ("access-control-allow-origin", "*"),
                    ("location", "ftp://x/")
                ]),
                0
            ),
            RedirectFailure::BadLocation("ftp://x/".to_owned())
        );
        assert_eq!(
            fail(
                response(&[
                    ("access-control-allow-origin", "*"),
                    ("location", "https://u:p@b.example/")
                ]),
                0
            ),
            RedirectFailure::CredentialsInUrl
        );
        assert_eq!(
            fail(
                response(&[("access-control-allow-origin", "*"), ("location", "/b")]),
                REDIRECT_LIMIT
            ),
            RedirectFailure::TooMany
        );
    }

    #[test]
    fn the_preflight_cache_remembers_grants_until_max_age() {
        let url: Uri = "https://api.example/items".parse().unwrap();
        let r = request("PUT", CredentialsMode::Omit, &[("x-a", "1")]);
        let grant = preflight(
            &r,
            204,
            &[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "PUT"),
                ("access-control-allow-headers", "X-A"),
                ("access-control-max-age", "10"),
            ],
        )
        .unwrap();
        let now = Instant::now();
        let mut cache = PreflightCache::new();
        assert!(cache.needs_preflight(&r, &url, now));
        cache.store(&r, &url, &grant, now);
        assert!(!cache.needs_preflight(&r, &url, now + Duration::from_secs(9)));
        assert!(cache.needs_preflight(&r, &url, now + Duration::from_secs(10)));
        let other_url: Uri = "https://api.example/other".parse().unwrap();
        assert!(cache.needs_preflight(&r, &other_url, now));
        let with_b = request("PUT", CredentialsMode::Omit, &[("x-a", "1"), ("x-b", "2")]);
        assert!(cache.needs_preflight(&with_b, &url, now));
        let credentialed = request("PUT", CredentialsMode::Include, &[("x-a", "1")]);
        assert!(cache.needs_preflight(&credentialed, &url, now));
    }

    #[test]
    fn cached_wildcards_do_not_cover_credentials_or_authorization() {
        let url: Uri = "https://api.example/items".parse().unwrap();
        let now = Instant::now();
        let grant = PreflightGrant {
            methods: vec!["*".to_owned()],
            header_names: vec!["*".to_owned()],
            max_age: MaxAge {
                requested: Some(60),
                effective: 60,
            },
        };
        let mut cache = PreflightCache::new();
        let first = request("DELETE", CredentialsMode::Omit, &[("x-a", "1")]);
        cache.store(&first, &url, &grant, now);
        assert!(!cache.needs_preflight(
            &request("patch", CredentialsMode::Omit, &[("x-z", "1")]),
            &url,
            now
        ));
        assert!(cache.needs_preflight(
            &request("GET", CredentialsMode::Omit, &[("authorization", "x")]),
            &url,
            now
        ));
        let zero = PreflightGrant {
            max_age: MaxAge {
                requested: Some(0),
                effective: 0,
            },
            ..grant
        };
        let mut empty = PreflightCache::new();
        empty.store(&first, &url, &zero, now);
        assert!(empty.needs_preflight(&first, &url, now));
    }

    #[test]
    fn every_block_reason_has_a_fix_that_names_a_header_or_the_status() {
        let all = [
            BlockReason::PreflightRedirect {
                status: StatusCode::FOUND,
                location: None,
            },
            BlockReason::PreflightStatus {
                status: StatusCode::NOT_FOUND,
            },
            BlockReason::MissingAllowOrigin {
                origin: ORIGIN.to_owned(),
            },
            BlockReason::MultipleAllowOrigin {
                value: "a, b".to_owned(),
                origin: ORIGIN.to_owned(),
            },
            BlockReason::WildcardOriginWithCredentials {
                origin: ORIGIN.to_owned(),
            },
            BlockReason::AllowOriginMismatch {
                value: "x".to_owned(),
                origin: ORIGIN.to_owned(),
            },
            BlockReason::MissingAllowCredentials,
            BlockReason::AllowCredentialsNotTrue {
                value: "True".to_owned(),
            },
            BlockReason::InvalidAllowMethods {
                value: "a b".to_owned(),
                method: "PUT".to_owned(),
            },
            BlockReason::InvalidAllowHeaders {
                value: "a b".to_owned(),
                needed: vec!["x-a".to_owned()],
            },
            BlockReason::MethodNotAllowed {
                method: "PUT".to_owned(),
                case_mismatch: false,
                wildcard_with_credentials: false,
            },
            BlockReason::HeaderNotAllowed {
                name: "x-a".to_owned(),
                wildcard: WildcardMiss::NoWildcard,
            },
        ];
        let mut codes = std::collections::HashSet::new();
        for reason in &all {
            assert!(
                codes.insert(reason.code()),
                "duplicate code {}",
                reason.code()
            );
            assert!(!reason.to_string().is_empty());
            let fix = reason.fix().to_string();
            assert!(
                fix.contains("Access-Control-") || fix.contains("preflight"),
                "{fix}"
            );
        }
        assert_eq!(
            BlockReason::WildcardOriginWithCredentials { origin: ORIGIN.to_owned() }.fix().to_string(),
            "send `Access-Control-Allow-Origin: https://app.example` (`*` is refused on credentialed requests: echo the allowed origin and add `Vary: Origin`)"
        );
    }
}
