//! The browser's checks of the answers: the CORS check, the preflight
//! checks, and which response headers script can read.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use super::lossy;
use super::request::CorsRequest;
use super::safelist::{cors_unsafe_request_headers, is_cors_safelisted_method};
use super::verdict::{BlockReason, Blocked, MaxAge, PreflightGrant, WildcardMiss};
use crate::token::{is_tchar, trim_http_whitespace};

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
/// names, `*` only without credentials and, in the standard, never for
/// `Authorization`), and the cache lifetime, as the request's engine does.
pub fn check_preflight_response(
    request: &CorsRequest,
    status: StatusCode,
    response_headers: &HeaderMap,
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
            let wildcard_covers_authorization =
                request.engine.profile().wildcard_covers_authorization;
            for unsafe_header in cors_unsafe_request_headers(&request.headers, request.engine) {
                let name = unsafe_header.name.as_str();
                if allows(name) {
                    continue;
                }
                let miss = if !wildcard {
                    WildcardMiss::NoWildcard
                } else if include {
                    WildcardMiss::Credentials
                } else if name == "authorization" && !wildcard_covers_authorization {
                    WildcardMiss::Authorization
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
                needed: cors_unsafe_request_headers(&request.headers, request.engine)
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
            max_age: MaxAge::from_headers(response_headers, request.engine),
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
        .filter(|name| !is_set_cookie(name))
        .filter(|name| {
            all || SAFELISTED_RESPONSE_HEADERS.contains(&name.as_str())
                || exposed
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(name.as_str()))
        })
        .cloned()
        .collect()
}

/// The response headers script cannot read and the server could expose with
/// `Access-Control-Expose-Headers`: those not in `readable` (see
/// [`readable_response_headers`]), except `Set-Cookie`, which is never
/// exposed, and the CORS headers themselves, which are of no use to script.
pub fn exposable_hidden_headers(
    response_headers: &HeaderMap,
    readable: &[HeaderName],
) -> Vec<HeaderName> {
    response_headers
        .keys()
        .filter(|name| !readable.contains(name))
        .filter(|name| !is_set_cookie(name))
        .filter(|name| !name.as_str().starts_with("access-control-"))
        .cloned()
        .collect()
}

/// Script never reads cookies from a response, whatever the server exposes.
fn is_set_cookie(name: &HeaderName) -> bool {
    matches!(name.as_str(), "set-cookie" | "set-cookie2")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::test_util::*;
    use crate::browser::*;

    use http::StatusCode;

    fn preflight(
        request: &CorsRequest,
        status: u16,
        headers: &[(&str, &str)],
    ) -> Result<PreflightGrant, Blocked> {
        check_preflight_response(
            request,
            StatusCode::from_u16(status).unwrap(),
            &response(headers),
        )
    }

    fn reasons(result: Result<PreflightGrant, Blocked>) -> Vec<BlockReason> {
        result.unwrap_err().reasons().to_vec()
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
        // Observed: Chromium 156, Firefox 153 and WebKitGTK 2.50.6 all let
        // `*` cover Authorization; the standard does not.
        assert!(preflight(&omit, 204, &[acao, ("access-control-allow-headers", "*")]).is_ok());
        assert_eq!(
            reasons(preflight(
                &omit.clone().in_engine(Engine::Spec),
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
        let max_age = |values: &[&str], engine: Engine| {
            let r = request("PUT", CredentialsMode::Omit, &[]).in_engine(engine);
            let mut h = vec![
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "PUT"),
            ];
            h.extend(values.iter().map(|v| ("access-control-max-age", *v)));
            check_preflight_response(&r, StatusCode::NO_CONTENT, &response(&h))
                .unwrap()
                .max_age
        };
        // The whole answer, in Chromium: what was asked for and what is cached.
        for (values, requested, effective) in [
            (&[][..], None, 5),
            (&["0"], Some(0), 0),
            (&["86400"], Some(86400), 7200),
            // Unreadable values count as absent.
            (&["1.5"], None, 5),
            (&["ten"], None, 5),
            (&["10", "20"], None, 5),
            (&[""], None, 5),
        ] {
            assert_eq!(
                max_age(values, Engine::Chromium),
                MaxAge {
                    requested,
                    effective
                },
                "{values:?}"
            );
        }
        // How long each engine caches.
        for (value, engine, effective) in [
            ("7200", Engine::Chromium, 7200),
            ("86400", Engine::Firefox, 86400),
            ("172800", Engine::Firefox, 86400),
            ("99999999999999999999999", Engine::Firefox, 86400),
            // Observed: Chromium 156 and WebKitGTK 2.50.6 keep the default for
            // `10s` but do not cache `-1`; Firefox 153 caches neither.
            ("-1", Engine::Chromium, 0),
            ("-1", Engine::WebKit, 0),
            ("-1", Engine::Spec, 5),
            ("10s", Engine::Firefox, 0),
            ("10s", Engine::WebKit, 5),
            ("700", Engine::WebKit, 600),
            ("9999999", Engine::Spec, 9999999),
        ] {
            assert_eq!(
                max_age(&[value], engine).effective,
                effective,
                "{value} {engine:?}"
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
    fn hidden_headers_leave_out_cookies_and_cors_headers() {
        let r = request("GET", CredentialsMode::Omit, &[]);
        let answer = response(&[
            ("access-control-allow-origin", "*"),
            ("content-type", "text/plain"),
            ("set-cookie", "a=b"),
            ("x-request-id", "1"),
        ]);
        let readable = check_actual_response(&r, &answer).unwrap();
        let hidden = exposable_hidden_headers(&answer, &readable);
        assert_eq!(hidden, [name("x-request-id")]);
    }
}
