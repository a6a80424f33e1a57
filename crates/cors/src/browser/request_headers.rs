//! What the browser puts on the wire for a request: whether it preflights,
//! the preflight's headers, and the actual request's headers.

use std::fmt;

use http::header::HeaderValue;
use http::{HeaderMap, Method, Uri};

use super::request::CorsRequest;
use super::safelist::{cors_unsafe_request_headers, is_cors_safelisted_method, UnsafeHeader};
use super::site::fetch_site;

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
        cors_unsafe_request_headers(&request.headers, request.engine)
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
    let names: Vec<String> = cors_unsafe_request_headers(&request.headers, request.engine)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::test_util::*;
    use crate::browser::*;
    use http::header::HeaderName;
    use http::{Method, Uri};

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
}
