//! Request headers and methods a page may not use: `fetch()` drops such
//! headers silently and throws for such methods.

use http::header::HeaderName;

use crate::token::trim_http_whitespace;

/// Headers whose value can smuggle a method past a server.
const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
];

/// Methods `fetch()` refuses to send at all.
pub(super) const FORBIDDEN_METHODS: [&str; 3] = ["CONNECT", "TRACE", "TRACK"];

/// Request-header names that scripts cannot set (Fetch, "forbidden
/// request-header"), besides the `proxy-` and `sec-` prefixes.
const FORBIDDEN_REQUEST_HEADER_NAMES: [&str; 21] = [
    "accept-charset",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "connection",
    "content-length",
    "cookie",
    "cookie2",
    "date",
    "dnt",
    "expect",
    "host",
    "keep-alive",
    "origin",
    "referer",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
];

/// Whether a page may never set header `name` (lowercase), whatever its value.
fn is_forbidden_request_header_name(name: &str) -> bool {
    FORBIDDEN_REQUEST_HEADER_NAMES.contains(&name)
        || name.starts_with("proxy-")
        || name.starts_with("sec-")
}

/// Whether a page may not set header `name` (lowercase, as [`HeaderName`]
/// keeps it) with `value`; `fetch()` silently drops such headers.
pub fn is_forbidden_request_header(name: &HeaderName, value: &[u8]) -> bool {
    let name = name.as_str();
    if is_forbidden_request_header_name(name) {
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

/// Whether a policy allowing request header `name` (lowercase) would be
/// meaningless: a page can never set it (whatever the value), or it is an
/// `Access-Control-*` name, which belongs to the protocol itself.
pub(crate) fn is_forbidden_or_protocol_request_header(name: &str) -> bool {
    is_forbidden_request_header_name(name) || name.starts_with("access-control-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::test_util::*;
    use crate::browser::*;
    use http::header::HeaderName;

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
        let dropped = r.dropped_headers();
        let dropped: Vec<&str> = dropped.iter().map(HeaderName::as_str).collect();
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
    fn forbidden_names() {
        for name in [
            "cookie",
            "host",
            "sec-fetch-mode",
            "proxy-authorization",
            "access-control-allow-origin",
        ] {
            assert!(is_forbidden_or_protocol_request_header(name), "{name}");
        }
        for name in ["authorization", "content-type", "x-requested-with"] {
            assert!(!is_forbidden_or_protocol_request_header(name), "{name}");
        }
    }
}
