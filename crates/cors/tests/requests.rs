//! Request handling, rule by rule, as the Fetch standard's "CORS protocol"
//! and "CORS-preflight fetch" sections describe it.

use crossgate_cors::{
    Decision, Denial, Malformed, Outcome, Policy, PolicyConfig, RequestKind, UpstreamHeaders,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

const APP: &str = "https://app.example.com";

fn policy(
    build: impl FnOnce(crossgate_cors::PolicyBuilder) -> crossgate_cors::PolicyBuilder,
) -> Policy {
    build(PolicyConfig::builder())
        .compile()
        .expect("valid policy")
}

fn list_policy() -> Policy {
    policy(|b| {
        b.origins([APP, "https://*.example.org", "http://localhost:*"])
            .methods(["PUT", "DELETE", "patch"])
            .request_headers(["Content-Type", "X-Requested-With"])
            .expose_headers(["X-Request-Id"])
            .credentials(true)
            .max_age(600)
    })
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn preflight(origin: &str, method: &str, request_headers: Option<&str>) -> HeaderMap {
    let mut pairs = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if let Some(names) = request_headers {
        pairs.push(("access-control-request-headers", names));
    }
    headers(&pairs)
}

fn respond(policy: &Policy, decision: &Decision, existing: &[(&str, &str)]) -> HeaderMap {
    let mut response = headers(existing);
    policy.apply(decision, &mut response);
    response
}

fn get<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a str> {
    map.get(name).map(|v| v.to_str().unwrap())
}

/// Asserts each `(name, value)` of `map`; `None`: the header is absent.
fn assert_headers(map: &HeaderMap, expected: &[(&str, Option<&str>)]) {
    for (name, value) in expected {
        assert_eq!(get(map, name), *value, "{name}");
    }
}

fn cors_names(map: &HeaderMap) -> Vec<&str> {
    map.keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[test]
fn classification_follows_fetch() {
    let none = HeaderMap::new();
    assert_eq!(Policy::classify(&Method::GET, &none), RequestKind::NotCors);
    assert_eq!(
        Policy::classify(&Method::OPTIONS, &none),
        RequestKind::NotCors
    );
    let origin_only = headers(&[("origin", APP)]);
    assert_eq!(
        Policy::classify(&Method::OPTIONS, &origin_only),
        RequestKind::Actual
    );
    assert_eq!(
        Policy::classify(&Method::POST, &origin_only),
        RequestKind::Actual
    );
    let acrm_only = headers(&[("access-control-request-method", "PUT")]);
    assert_eq!(
        Policy::classify(&Method::OPTIONS, &acrm_only),
        RequestKind::NotCors
    );
    assert_eq!(
        Policy::classify(&Method::OPTIONS, &preflight(APP, "PUT", None)),
        RequestKind::Preflight
    );
    // ACRM on a non-OPTIONS request does not make it a preflight.
    assert_eq!(
        Policy::classify(&Method::PUT, &preflight(APP, "PUT", None)),
        RequestKind::Actual
    );
}

#[test]
fn a_plain_options_request_reaches_the_handler() {
    let p = list_policy();
    let d = p.decide(&Method::OPTIONS, &headers(&[("origin", APP)]));
    assert_eq!(d.outcome(), &Outcome::ActualAllowed);
    assert_eq!(d.short_circuit(), None);
}

#[test]
fn allowed_preflight_gets_every_header() {
    let p = list_policy();
    let d = p.decide(
        &Method::OPTIONS,
        &preflight(APP, "PUT", Some("content-type,x-requested-with")),
    );
    assert_eq!(d.outcome(), &Outcome::PreflightAllowed);
    assert_eq!(d.short_circuit(), Some(StatusCode::NO_CONTENT));
    let r = respond(&p, &d, &[]);
    assert_headers(
        &r,
        &[
            ("access-control-allow-origin", Some(APP)),
            ("access-control-allow-credentials", Some("true")),
            ("access-control-allow-methods", Some("PUT, DELETE, patch")),
            (
                "access-control-allow-headers",
                Some("Content-Type, X-Requested-With"),
            ),
            ("access-control-max-age", Some("600")),
            ("access-control-expose-headers", Some("X-Request-Id")),
            ("access-control-allow-private-network", None),
            (
                "vary",
                Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            ),
        ],
    );
}

#[test]
fn preflight_status_is_configurable() {
    let p = policy(|b| b.origins([APP]).preflight_status(200));
    let d = p.decide(&Method::OPTIONS, &preflight(APP, "GET", None));
    assert_eq!(d.short_circuit(), Some(StatusCode::OK));
}

#[test]
fn requested_headers_match_in_any_order_case_and_lines() {
    let p = list_policy();
    for (lines, ok) in [
        (&["X-REQUESTED-WITH, content-type"][..], true),
        (&[" content-type ,\tx-requested-with "][..], true),
        (&["content-type", "x-requested-with"][..], true),
        (&["content-type,,x-requested-with"][..], true),
        (&["content-type, x-other"][..], false),
    ] {
        let mut h = preflight(APP, "PUT", None);
        for line in lines {
            h.append(
                "access-control-request-headers",
                HeaderValue::from_str(line).unwrap(),
            );
        }
        let d = p.decide(&Method::OPTIONS, &h);
        assert_eq!(d.is_allowed(), ok, "{lines:?}: {:?}", d.outcome());
    }
}

#[test]
fn preflight_failures_say_why_and_carry_no_cors_headers() {
    let p = list_policy();
    let cases: Vec<(HeaderMap, Denial)> = vec![
        (
            preflight("https://evil.example", "PUT", None),
            Denial::OriginNotAllowed,
        ),
        (
            preflight(APP, "PATCH", None),
            Denial::MethodNotAllowed(crossgate_cors::TokenText::new(b"PATCH")),
        ),
        (
            preflight(APP, "PUT", Some("content-type, x-secret")),
            Denial::HeaderNotAllowed(crossgate_cors::TokenText::new(b"x-secret")),
        ),
        (
            preflight(APP, "PUT", Some("authorization")),
            Denial::HeaderNotAllowed(crossgate_cors::TokenText::new(b"authorization")),
        ),
        (
            preflight(APP, "PU T", None),
            Denial::Malformed(Malformed::InvalidRequestMethod),
        ),
        (
            preflight(APP, "PUT", Some("content type")),
            Denial::Malformed(Malformed::InvalidRequestHeaders),
        ),
    ];
    for (request, expected) in cases {
        let d = p.decide(&Method::OPTIONS, &request);
        assert_eq!(
            d.outcome(),
            &Outcome::PreflightDenied(expected),
            "{request:?}"
        );
        assert_eq!(d.short_circuit(), Some(StatusCode::FORBIDDEN));
        assert_eq!(d.denial(), Some(&expected));
        let r = respond(&p, &d, &[]);
        assert!(cors_names(&r).is_empty(), "{r:?}");
        assert!(!expected.code().is_empty() && !expected.to_string().is_empty());
    }
}

#[test]
fn denial_codes_and_messages_are_stable() {
    let header = Denial::HeaderNotAllowed(crossgate_cors::TokenText::new(b"x-secret"));
    assert_eq!(header.code(), "header_not_allowed");
    assert_eq!(header.to_string(), "header `x-secret` not allowed");
    assert_eq!(Denial::OriginNotAllowed.code(), "origin_not_allowed");
    assert_eq!(
        Denial::Malformed(Malformed::SeveralOrigins).code(),
        "malformed_request"
    );
}

#[test]
fn several_origin_or_method_headers_are_malformed() {
    let p = list_policy();
    let mut h = preflight(APP, "PUT", None);
    h.append("origin", HeaderValue::from_static(APP));
    assert_eq!(
        p.decide(&Method::OPTIONS, &h).denial(),
        Some(&Denial::Malformed(Malformed::SeveralOrigins))
    );
    let mut h = preflight(APP, "PUT", None);
    h.append(
        "access-control-request-method",
        HeaderValue::from_static("PUT"),
    );
    assert_eq!(
        p.decide(&Method::OPTIONS, &h).denial(),
        Some(&Denial::Malformed(Malformed::SeveralRequestMethods))
    );
    let mut h = headers(&[("origin", APP)]);
    h.append("origin", HeaderValue::from_static(APP));
    assert_eq!(
        p.decide(&Method::GET, &h).outcome(),
        &Outcome::ActualDenied(Denial::Malformed(Malformed::SeveralOrigins))
    );
}

#[test]
fn methods_are_normalized_as_fetch_does() {
    let p = list_policy();
    // `put` is normalized to PUT by Fetch; `patch` is not normalized.
    assert!(p
        .decide(&Method::OPTIONS, &preflight(APP, "put", None))
        .is_allowed());
    assert!(p
        .decide(&Method::OPTIONS, &preflight(APP, "patch", None))
        .is_allowed());
    assert!(!p
        .decide(&Method::OPTIONS, &preflight(APP, "PATCH", None))
        .is_allowed());
    // Safelisted methods are always allowed.
    for m in ["GET", "HEAD", "POST", "post"] {
        assert!(
            p.decide(&Method::OPTIONS, &preflight(APP, m, None))
                .is_allowed(),
            "{m}"
        );
    }
}

#[test]
fn wildcard_methods_and_headers_echo_the_request() {
    let p = policy(|b| {
        b.origins([APP])
            .methods(["*"])
            .request_headers(["*"])
            .credentials(true)
    });
    let d = p.decide(
        &Method::OPTIONS,
        &preflight(APP, "PROPFIND", Some("authorization,x-custom")),
    );
    let r = respond(&p, &d, &[]);
    assert_headers(
        &r,
        &[
            ("access-control-allow-methods", Some("PROPFIND")),
            (
                "access-control-allow-headers",
                Some("authorization,x-custom"),
            ),
            ("access-control-allow-credentials", Some("true")),
        ],
    );

    let mut h = preflight(APP, "PUT", Some("x-a"));
    h.append(
        "access-control-request-headers",
        HeaderValue::from_static("x-b"),
    );
    let r = respond(&p, &p.decide(&Method::OPTIONS, &h), &[]);
    assert_eq!(get(&r, "access-control-allow-headers"), Some("x-a,x-b"));

    // Even an echo refuses what is not a token.
    let d = p.decide(&Method::OPTIONS, &preflight(APP, "PUT", Some("x-a, b@d")));
    assert_eq!(
        d.denial(),
        Some(&Denial::Malformed(Malformed::InvalidRequestHeaders))
    );
}

#[test]
fn no_allow_headers_without_requested_headers() {
    let p = list_policy();
    let r = respond(
        &p,
        &p.decide(&Method::OPTIONS, &preflight(APP, "PUT", None)),
        &[],
    );
    assert_eq!(get(&r, "access-control-allow-headers"), None);
}

#[test]
fn private_network_access_only_when_asked_and_allowed() {
    let allowing = policy(|b| b.origins([APP]).private_network(true));
    let refusing = policy(|b| b.origins([APP]));
    let mut asked = preflight(APP, "GET", None);
    asked.insert(
        "access-control-request-private-network",
        HeaderValue::from_static("true"),
    );

    let r = respond(&allowing, &allowing.decide(&Method::OPTIONS, &asked), &[]);
    assert_eq!(
        get(&r, "access-control-allow-private-network"),
        Some("true")
    );
    assert!(get(&r, "vary")
        .unwrap()
        .contains("Access-Control-Request-Private-Network"));

    let r = respond(
        &allowing,
        &allowing.decide(&Method::OPTIONS, &preflight(APP, "GET", None)),
        &[],
    );
    assert_eq!(get(&r, "access-control-allow-private-network"), None);

    assert_eq!(
        refusing.decide(&Method::OPTIONS, &asked).denial(),
        Some(&Denial::PrivateNetworkNotAllowed)
    );
}

#[test]
fn actual_requests_get_origin_credentials_and_exposed_headers() {
    let p = list_policy();
    let d = p.decide(
        &Method::GET,
        &headers(&[("origin", "https://a.b.example.org")]),
    );
    assert_eq!(d.outcome(), &Outcome::ActualAllowed);
    let r = respond(&p, &d, &[("content-type", "application/json")]);
    assert_headers(
        &r,
        &[
            (
                "access-control-allow-origin",
                Some("https://a.b.example.org"),
            ),
            ("access-control-allow-credentials", Some("true")),
            ("access-control-expose-headers", Some("X-Request-Id")),
            ("access-control-allow-methods", None),
            ("vary", Some("Origin")),
        ],
    );
}

#[test]
fn disallowed_actual_requests_get_only_vary() {
    let p = list_policy();
    let d = p.decide(&Method::GET, &headers(&[("origin", "https://example.org")]));
    assert_eq!(
        d.outcome(),
        &Outcome::ActualDenied(Denial::OriginNotAllowed)
    );
    assert_eq!(d.short_circuit(), None);
    let r = respond(&p, &d, &[]);
    assert!(cors_names(&r).is_empty());
    assert_eq!(get(&r, "vary"), Some("Origin"));
}

#[test]
fn requests_without_origin_still_vary_on_it() {
    let p = list_policy();
    let d = p.decide(&Method::GET, &HeaderMap::new());
    assert_eq!(d.outcome(), &Outcome::NotCors);
    let r = respond(&p, &d, &[("vary", "Accept-Encoding")]);
    assert!(cors_names(&r).is_empty());
    assert_eq!(get(&r, "vary"), Some("Accept-Encoding, Origin"));
}

#[test]
fn public_policies_send_a_literal_star_everywhere_and_no_vary() {
    let p = policy(|b| b.origins(["*"]).expose_headers(["*"]));
    for request in [
        headers(&[("origin", "https://anyone.example")]),
        HeaderMap::new(),
        headers(&[("origin", "null")]),
    ] {
        let d = p.decide(&Method::GET, &request);
        let r = respond(&p, &d, &[]);
        assert_eq!(
            get(&r, "access-control-allow-origin"),
            Some("*"),
            "{request:?}"
        );
        assert_headers(
            &r,
            &[
                ("access-control-expose-headers", Some("*")),
                ("access-control-allow-credentials", None),
                ("vary", None),
            ],
        );
    }
    let r = respond(
        &p,
        &p.decide(
            &Method::OPTIONS,
            &preflight("https://x.example", "GET", None),
        ),
        &[],
    );
    assert_eq!(get(&r, "access-control-allow-origin"), Some("*"));
}

#[test]
fn block_disallowed_refuses_cross_origin_but_not_same_origin() {
    let p = policy(|b| b.origins([APP]).block_disallowed(true));
    let d = p.decide(
        &Method::POST,
        &headers(&[
            ("origin", "https://evil.example"),
            ("host", "api.example.com"),
        ]),
    );
    assert_eq!(d.outcome(), &Outcome::Blocked(Denial::OriginNotAllowed));
    assert_eq!(d.short_circuit(), Some(StatusCode::FORBIDDEN));
    assert!(cors_names(&respond(&p, &d, &[])).is_empty());

    let same = headers(&[
        ("origin", "https://api.example.com"),
        ("host", "api.example.com"),
    ]);
    assert_eq!(
        p.decide(&Method::POST, &same).outcome(),
        &Outcome::ActualDenied(Denial::OriginNotAllowed)
    );
    let fetch_site = headers(&[
        ("origin", "https://api.example.com"),
        ("sec-fetch-site", "same-origin"),
    ]);
    assert_eq!(p.decide(&Method::POST, &fetch_site).short_circuit(), None);
    // An allowed origin is never blocked.
    assert_eq!(
        p.decide(&Method::POST, &headers(&[("origin", APP)]))
            .outcome(),
        &Outcome::ActualAllowed
    );
}

#[test]
fn override_replaces_the_handlers_cors_headers() {
    let p = list_policy();
    let upstream = [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "GET"),
        ("access-control-expose-headers", "x-secret"),
    ];
    let r = respond(
        &p,
        &p.decide(&Method::GET, &headers(&[("origin", APP)])),
        &upstream,
    );
    assert_eq!(r.get_all("access-control-allow-origin").iter().count(), 1);
    assert_headers(
        &r,
        &[
            ("access-control-allow-origin", Some(APP)),
            ("access-control-allow-methods", None),
            ("access-control-expose-headers", Some("X-Request-Id")),
        ],
    );
    // A denied origin must not inherit the upstream's permissive header either.
    let r = respond(
        &p,
        &p.decide(
            &Method::GET,
            &headers(&[("origin", "https://evil.example")]),
        ),
        &upstream,
    );
    assert!(cors_names(&r).is_empty());
}

#[test]
fn defer_keeps_an_upstream_that_speaks_cors() {
    let p = policy(|b| b.origins(["*"]).upstream_headers(UpstreamHeaders::Defer));
    let request = headers(&[("origin", "http://www.cors.com")]);
    let d = p.decide(&Method::GET, &request);
    let r = respond(
        &p,
        &d,
        &[("access-control-allow-origin", "http://www.cors.com")],
    );
    assert_eq!(
        get(&r, "access-control-allow-origin"),
        Some("http://www.cors.com")
    );
    let r = respond(&p, &d, &[]);
    assert_eq!(get(&r, "access-control-allow-origin"), Some("*"));
}

#[test]
fn resource_methods_replace_the_policys_for_preflights() {
    let p = policy(|b| b.origins(["*"]).methods(["*"]));
    let resource = crossgate_cors::AllowedMethods::new(["GET", "OPTIONS"]).unwrap();
    let d = p.decide_for(
        &Method::OPTIONS,
        &preflight(APP, "GET", None),
        Some(&resource),
    );
    let r = respond(&p, &d, &[]);
    assert_eq!(
        get(&r, "access-control-allow-methods"),
        Some("GET, OPTIONS")
    );
    let d = p.decide_for(
        &Method::OPTIONS,
        &preflight(APP, "DELETE", None),
        Some(&resource),
    );
    assert!(matches!(d.denial(), Some(Denial::MethodNotAllowed(m)) if m.as_str() == "DELETE"));
}

#[test]
fn hostile_request_headers_are_refused_cheaply() {
    let p = list_policy();
    let commas = ",".repeat(1 << 20);
    let d = p.decide(&Method::OPTIONS, &preflight(APP, "PUT", Some(&commas)));
    assert_eq!(
        d.denial(),
        Some(&Denial::Malformed(Malformed::TooManyRequestHeaders))
    );
    let repeated = "content-type,".repeat(10_000);
    let d = p.decide(&Method::OPTIONS, &preflight(APP, "PUT", Some(&repeated)));
    assert_eq!(
        d.denial(),
        Some(&Denial::Malformed(Malformed::TooManyRequestHeaders))
    );
    let long_name = "x".repeat(100_000);
    let d = p.decide(&Method::OPTIONS, &preflight(APP, "PUT", Some(&long_name)));
    assert!(matches!(d.denial(), Some(Denial::HeaderNotAllowed(name)) if name.is_truncated()));
    let long_origin = format!("{APP}{}", "a".repeat(1 << 20));
    let d = p.decide(&Method::GET, &headers(&[("origin", &long_origin)]));
    assert_eq!(d.denial(), Some(&Denial::OriginNotAllowed));
}

#[test]
fn credentialed_wildcard_origin_never_reaches_the_wire() {
    // The only way to answer every origin with credentials is to list them;
    // the engine then echoes the origin, never `*`.
    let p = policy(|b| b.origins(["https://*.example.com"]).credentials(true));
    let r = respond(
        &p,
        &p.decide(
            &Method::GET,
            &headers(&[("origin", "https://x.example.com")]),
        ),
        &[],
    );
    assert_eq!(
        get(&r, "access-control-allow-origin"),
        Some("https://x.example.com")
    );
}

/// The answer to an allowed preflight is prepared once per policy and cloned
/// into a fresh map; a map that already has room gets the headers inserted one
/// by one. Both must write exactly the same headers, for every shape of policy.
#[test]
fn a_prepared_preflight_answer_is_the_one_inserted() {
    let policies = [
        list_policy(),
        policy(|b| b.origins([APP]).request_headers(["x-a"])),
        policy(|b| b.origins([APP])),
        policy(|b| {
            b.origins([APP, "https://*.example.org"])
                .request_headers(["content-type"])
                .private_network(true)
                .max_age(5)
        }),
        policy(|b| b.origins([APP]).methods(["*"]).request_headers(["*"])),
        policy(|b| b.origins(["*"]).request_headers(["content-type"])),
    ];
    let mut with_network = preflight("https://a.example.org", "GET", Some("content-type"));
    with_network.insert(
        "access-control-request-private-network",
        HeaderValue::from_static("true"),
    );
    let requests = [
        preflight(APP, "PUT", Some("content-type,x-requested-with")),
        preflight("https://deep.a.example.org", "GET", Some("Content-Type")),
        preflight("http://localhost:3000", "patch", None),
        preflight(APP, "GET", Some("x-a")),
        preflight(APP, "GET", None),
        with_network,
    ];
    let sorted = |map: &HeaderMap| {
        let mut pairs: Vec<(String, String)> = map
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        pairs.sort();
        pairs
    };
    let mut prepared_answers = 0;
    for p in &policies {
        for request in &requests {
            let d = p.decide(&Method::OPTIONS, request);
            if d.outcome() != &Outcome::PreflightAllowed {
                continue;
            }
            let mut fresh = HeaderMap::new();
            p.apply(&d, &mut fresh);
            let mut roomy = HeaderMap::with_capacity(16);
            p.apply(&d, &mut roomy);
            assert_eq!(sorted(&fresh), sorted(&roomy), "{request:?}");
            let origin = request.get("origin").unwrap().to_str().unwrap();
            let echoed = get(&fresh, "access-control-allow-origin").unwrap();
            assert!(echoed == origin || echoed == "*", "{echoed} for {origin}");
            prepared_answers += 1;
        }
    }
    assert!(
        prepared_answers >= 12,
        "only {prepared_answers} allowed preflights"
    );
}

/// Allowed names are searched by length first: lists whose alphabetical and
/// length orders differ must still find every name, in any case.
#[test]
fn every_allowed_name_is_found_whatever_its_length() {
    let names = [
        "x-b",
        "authorization",
        "x-aa",
        "content-type",
        "a",
        "x-custom-long-name",
    ];
    let p = policy(|b| b.origins([APP]).request_headers(names));
    for name in names {
        for requested in [name.to_owned(), name.to_ascii_uppercase()] {
            let d = p.decide(&Method::OPTIONS, &preflight(APP, "GET", Some(&requested)));
            assert!(d.is_allowed(), "{requested}: {:?}", d.outcome());
        }
    }
    for refused in ["x-a", "x-bb", "authorizatio", "b"] {
        let d = p.decide(&Method::OPTIONS, &preflight(APP, "GET", Some(refused)));
        assert!(!d.is_allowed(), "{refused}");
    }
}

#[test]
fn websocket_handshakes_pass_only_from_allowed_origins() {
    let policy = list_policy();
    let allowed = policy.decide_websocket(&headers(&[("origin", APP)]), false);
    assert_eq!(allowed.outcome(), &Outcome::ActualAllowed);
    for refused in [
        "https://evil.example",
        "null",
        "https://app.example.com.evil",
    ] {
        let decision = policy.decide_websocket(&headers(&[("origin", refused)]), false);
        assert_eq!(
            decision.outcome(),
            &Outcome::Blocked(Denial::WebSocketOriginNotAllowed),
            "{refused}"
        );
        assert_eq!(decision.short_circuit(), Some(StatusCode::FORBIDDEN));
    }
    let two = headers(&[("origin", APP), ("origin", APP)]);
    assert_eq!(
        policy.decide_websocket(&two, false).outcome(),
        &Outcome::Blocked(Denial::Malformed(Malformed::SeveralOrigins))
    );
    assert_eq!(
        policy.decide_websocket(&HeaderMap::new(), false).outcome(),
        &Outcome::NotCors
    );
    assert_eq!(
        policy.decide_websocket(&HeaderMap::new(), true).outcome(),
        &Outcome::Blocked(Denial::WebSocketOriginNotAllowed)
    );
    assert_eq!(
        Denial::WebSocketOriginNotAllowed.code(),
        "websocket_origin_not_allowed"
    );
}

#[test]
fn several_request_header_lines_are_one_list() {
    let p = list_policy();
    let mut h = preflight(APP, "PUT", Some("content-type"));
    h.append(
        "access-control-request-headers",
        HeaderValue::from_static("X-Requested-With"),
    );
    let decision = p.decide(&Method::OPTIONS, &h);
    assert_eq!(decision.outcome(), &Outcome::PreflightAllowed);
    let answer = respond(&p, &decision, &[]);
    assert_eq!(
        get(&answer, "access-control-allow-headers"),
        Some("Content-Type, X-Requested-With")
    );

    h.append(
        "access-control-request-headers",
        HeaderValue::from_static("x-secret"),
    );
    assert_eq!(
        p.decide(&Method::OPTIONS, &h).denial().map(Denial::code),
        Some("header_not_allowed")
    );

    let any = policy(|b| b.origins([APP]).methods(["PUT"]).request_headers(["*"]));
    let decision = any.decide(&Method::OPTIONS, &h);
    assert_eq!(decision.outcome(), &Outcome::PreflightAllowed);
    assert_eq!(
        get(
            &respond(&any, &decision, &[]),
            "access-control-allow-headers"
        ),
        Some("content-type,X-Requested-With,x-secret")
    );
}
