//! The browser's side of the CORS protocol, as the
//! [Fetch standard](https://fetch.spec.whatwg.org/#http-cors-protocol)
//! defines it and as Chromium, Firefox and WebKit implement it (their
//! departures from the standard are the data of each [`EngineProfile`]):
//! what a page's `fetch()` sends, and what it accepts.
//!
//! Nothing here does I/O. A tool (such as `crossgate check`) describes the
//! request a script would make as a [`CorsRequest`], sends the
//! [`preflight_request_headers`] when [`preflight_reasons`] is not empty, hands
//! the answer to [`check_preflight_response`], then sends the actual request
//! and hands its answer to [`check_actual_response`]. Each refusal is a
//! [`BlockReason`] that names the faulty header and offers a [`Fix`].
//!
//! ```
//! use crossgate_cors::browser::{self, CorsRequest, CredentialsMode};
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
//! let blocked = browser::check_preflight_response(&request, StatusCode::NO_CONTENT, &answer)
//!     .unwrap_err();
//! assert_eq!(
//!     blocked.primary().fix().to_string(),
//!     "add `patch` to `Access-Control-Allow-Methods` (methods are case-sensitive)"
//! );
//! ```

mod forbidden;
mod profile;
mod redirect;
mod request;
mod request_headers;
mod response;
mod safelist;
mod site;
#[cfg(test)]
mod test_util;
mod verdict;

pub(crate) use forbidden::is_forbidden_or_protocol_request_header;
pub use forbidden::is_forbidden_request_header;
pub use profile::{departures_applying, Departure, Engine, EngineProfile};
pub use redirect::{
    follow_redirect, is_redirect_status, RedirectFailure, RedirectStep, REDIRECT_LIMIT,
};
pub use request::{CorsRequest, CredentialsMode, RequestError};
pub use request_headers::{
    actual_request_headers, preflight_reasons, preflight_request_headers,
    preflight_request_headers_to, PreflightReason,
};
pub use response::{
    check_actual_response, check_preflight_response, cors_check, exposable_hidden_headers,
    readable_response_headers,
};
pub use safelist::{
    check_safelisted_request_header, cors_unsafe_request_headers, is_cors_safelisted_method,
    is_cors_unsafe_request_header_byte, NotSafelisted, UnsafeHeader, SAFELISTED_TOTAL_LIMIT,
    SAFELISTED_VALUE_LIMIT,
};
pub use site::{registrable_domain, serialize_origin};
pub use verdict::{
    expose_fix, BlockReason, Blocked, Fix, MaxAge, PreflightGrant, WildcardMiss, DEFAULT_MAX_AGE,
};

/// Header bytes as text, with bytes that are not UTF-8 replaced.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
