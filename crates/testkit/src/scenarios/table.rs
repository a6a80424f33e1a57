//! The scenario table itself: one row per page-to-gateway exchange.

use super::build::*;
use super::*;

pub const SCENARIOS: &[Scenario] = &[
    // Simple requests (primer 004, APIG "simple request"): no preflight.
    on("simple_get", WEB, GET, OK),
    on("simple_get_xhr", WEB, xhr(GET), OK),
    on("simple_head", WEB, method("HEAD"), OK),
    on(
        "simple_post_form",
        WEB,
        with_body(
            "POST",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            "a=1",
        ),
        OK,
    ),
    on(
        "simple_post_text_plain",
        WEB,
        with_body("POST", &[("content-type", "text/plain")], "hello"),
        OK,
    ),
    on(
        "simple_post_multipart_xhr",
        WEB,
        xhr(with_body(
            "POST",
            &[("content-type", "multipart/form-data; boundary=b")],
            "--b--",
        )),
        OK,
    ),
    on(
        "safelisted_accept_header",
        WEB,
        with_headers(
            "GET",
            &[("accept", "application/json"), ("accept-language", "en")],
        ),
        OK,
    ),
    on(
        // Fetch upper-cases `post`, so it stays a simple method.
        "lowercase_post_is_simple",
        WEB,
        with_body("post", &[("content-type", "text/plain")], "hello"),
        OK,
    ),
    on(
        // The primer and APIG list Last-Event-ID as a simple header; the
        // Fetch standard no longer does, and Chromium preflights it.
        "last_event_id_is_preflighted",
        WEB,
        with_headers("GET", &[("last-event-id", "7")]),
        REFUSED_PREFLIGHT,
    ),
    // Where the engines legitimately part ways (docs/browsers.md, first and
    // third rows of the table): the gateway must answer each one's request
    // as that request deserves.
    Scenario {
        // Chromium drops a script-set User-Agent (crbug 571722): a simple
        // GET. Firefox and WebKit send it, so they preflight it, and the
        // policy does not allow `user-agent`.
        differs: &[(Engine::Chromium, OK)],
        ..on(
            "script_user_agent_per_engine",
            WEB,
            with_headers("GET", &[("user-agent", "crossgate-suite")]),
            REFUSED_PREFLIGHT,
        )
    },
    Scenario {
        // A `Range` unit that is not lowercase `bytes` is safelisted in
        // Fetch and WebKit, preflighted (and refused here) by Chromium and Firefox.
        differs: &[
            (Engine::Chromium, REFUSED_PREFLIGHT),
            (Engine::Firefox, REFUSED_PREFLIGHT),
        ],
        ..on(
            "range_unit_case_per_engine",
            WEB,
            with_headers("GET", &[("range", "Bytes=0-4")]),
            OK,
        )
    },
    // Non-safelisted content type: preflighted.
    on(
        "post_json_allowed",
        WEB,
        with_body("POST", &[("content-type", "application/json")], "{}"),
        OK_PREFLIGHTED,
    ),
    on(
        "post_json_not_allowed",
        PAGE_ORIGIN_ONLY,
        with_body("POST", &[("content-type", "application/json")], "{}"),
        REFUSED_PREFLIGHT,
    ),
    // Custom request headers.
    on(
        "custom_header_allowed",
        WEB,
        with_headers("GET", &[("x-custom", "1")]),
        OK_PREFLIGHTED,
    ),
    on(
        "custom_header_not_allowed",
        WEB,
        with_headers("GET", &[("x-other", "1")]),
        REFUSED_PREFLIGHT,
    ),
    on(
        "custom_header_case_insensitive",
        WEB,
        with_headers("GET", &[("X-CUSTOM", "1")]),
        OK_PREFLIGHTED,
    ),
    on(
        "custom_header_xhr_allowed",
        WEB,
        xhr(with_headers("PUT", &[("x-custom", "1")])),
        OK_PREFLIGHTED,
    ),
    on(
        "authorization_listed",
        r#"
origins = ["http://127.0.0.1:{page}"]
request_headers = ["authorization"]
expose_headers = ["x-visible"]
"#,
        with_headers("GET", &[("authorization", "Bearer t0ken")]),
        OK_PREFLIGHTED,
    ),
    on(
        "authorization_not_listed",
        WEB,
        with_headers("GET", &[("authorization", "Bearer t0ken")]),
        REFUSED_PREFLIGHT,
    ),
    on(
        // A literal `Access-Control-Allow-Headers: *` would not cover
        // Authorization; the engine echoes the requested names instead.
        "authorization_under_header_wildcard",
        PERSONIUM,
        with_headers(
            "GET",
            &[("authorization", "Bearer t0ken"), ("x-anything", "1")],
        ),
        OK_PREFLIGHTED,
    ),
    // Methods.
    on("put_allowed", WEB, method("PUT"), OK_PREFLIGHTED),
    on("delete_allowed", WEB, method("DELETE"), OK_PREFLIGHTED),
    on("patch_allowed", WEB, method("PATCH"), OK_PREFLIGHTED),
    on(
        "put_not_allowed",
        r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["DELETE"]
"#,
        method("PUT"),
        REFUSED_PREFLIGHT,
    ),
    on(
        "delete_not_allowed",
        PUT_ONLY,
        method("DELETE"),
        REFUSED_PREFLIGHT,
    ),
    on(
        "patch_not_allowed",
        PUT_ONLY,
        method("PATCH"),
        REFUSED_PREFLIGHT,
    ),
    on(
        // Fetch upper-cases `put` before sending it.
        "lowercase_put_normalized",
        WEB,
        method("put"),
        OK_PREFLIGHTED,
    ),
    on(
        // Fetch does not upper-case `patch`: the browser asks for `patch`,
        // which `PATCH` in the policy does not allow.
        "lowercase_patch_vs_uppercase_policy",
        WEB,
        method("patch"),
        REFUSED_PREFLIGHT,
    ),
    on(
        "lowercase_patch_allowed",
        r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["patch"]
expose_headers = ["x-visible"]
"#,
        method("patch"),
        OK_PREFLIGHTED,
    ),
    on(
        "uppercase_patch_vs_lowercase_policy",
        r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["patch"]
"#,
        method("PATCH"),
        REFUSED_PREFLIGHT,
    ),
    on(
        "methods_wildcard",
        r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["*"]
expose_headers = ["x-visible"]
"#,
        method("PURGE"),
        OK_PREFLIGHTED,
    ),
    on(
        "preflight_status_200",
        r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["PUT"]
expose_headers = ["x-visible"]
preflight_status = 200
"#,
        method("PUT"),
        OK_PREFLIGHTED,
    ),
    // Credentials: the page on localhost is same-site with the gateway, so
    // its cookie is sent; whether the script may read the answer is CORS's call.
    from(
        PAGE_LOCALHOST,
        on(
            "credentials_allowed",
            r#"
origins = ["http://localhost:{page}"]
credentials = true
expose_headers = ["x-visible"]
"#,
            including_cookies(GET),
            with_cookie(true, OK),
        ),
    ),
    from(
        PAGE_LOCALHOST,
        on(
            "credentials_not_allowed",
            LOCALHOST_ORIGIN,
            including_cookies(GET),
            with_cookie(true, HIDDEN),
        ),
    ),
    from(
        PAGE_LOCALHOST,
        on(
            "credentials_allowed_preflighted",
            r#"
origins = ["http://localhost:{page}"]
credentials = true
methods = ["*"]
request_headers = ["*"]
expose_headers = ["x-visible"]
"#,
            including_cookies(with_headers("DELETE", &[("authorization", "Bearer t0ken")])),
            with_cookie(true, OK_PREFLIGHTED),
        ),
    ),
    from(
        PAGE_LOCALHOST,
        on(
            "credentials_omitted_no_cookie",
            LOCALHOST_ORIGIN,
            Request {
                credentials: Credentials::Omit,
                ..GET
            },
            with_cookie(false, OK),
        ),
    ),
    // `*` origins.
    on("any_origin", ANY_ORIGIN, GET, OK),
    from(
        PAGE_EVIL,
        on(
            "any_origin_from_any_page_preflighted",
            r#"
origins = ["*"]
methods = ["PUT"]
request_headers = ["x-custom"]
expose_headers = ["x-visible"]
"#,
            with_headers("PUT", &[("x-custom", "1")]),
            OK_PREFLIGHTED,
        ),
    ),
    from(
        PAGE_LOCALHOST,
        on(
            // `Access-Control-Allow-Origin: *` never satisfies a credentialed request.
            "any_origin_with_credentials_refused",
            ANY_ORIGIN,
            including_cookies(GET),
            with_cookie(true, HIDDEN),
        ),
    ),
    // Subdomain patterns.
    from(
        PAGE_APP,
        on(
            "subdomain_pattern_match",
            r#"
origins = ["http://*.example.test:{page}"]
methods = ["PUT"]
expose_headers = ["x-visible"]
"#,
            method("PUT"),
            OK_PREFLIGHTED,
        ),
    ),
    from(
        PAGE_DEEP,
        on(
            "subdomain_pattern_deep_match",
            r#"
origins = ["http://*.example.test:{page}"]
expose_headers = ["x-visible"]
"#,
            GET,
            OK,
        ),
    ),
    from(
        PAGE_APEX,
        on(
            "subdomain_pattern_excludes_apex",
            EXAMPLE_SUBDOMAINS,
            GET,
            HIDDEN,
        ),
    ),
    from(
        PAGE_LOOKALIKE,
        on(
            "subdomain_pattern_excludes_lookalike",
            EXAMPLE_SUBDOMAINS,
            method("PUT"),
            REFUSED_PREFLIGHT,
        ),
    ),
    from(
        PAGE_APP,
        on(
            "origin_regex_match",
            r#"
origins = []
origin_regex = ['http://(app|www)\.example\.test:{page}']
expose_headers = ["x-visible"]
"#,
            GET,
            OK,
        ),
    ),
    from(
        PAGE_LOOKALIKE,
        on(
            "origin_regex_is_anchored",
            r#"
origins = []
origin_regex = ['http://(app|www)\.example\.test']
"#,
            GET,
            HIDDEN,
        ),
    ),
    // Port patterns.
    from(
        PAGE_ALT_PORT,
        on(
            "port_pattern_match",
            r#"
origins = ["http://127.0.0.1:*"]
methods = ["DELETE"]
expose_headers = ["x-visible"]
"#,
            method("DELETE"),
            OK_PREFLIGHTED,
        ),
    ),
    from(
        PAGE_ALT_PORT,
        on("port_mismatch", PAGE_ORIGIN_ONLY, GET, HIDDEN),
    ),
    on(
        "port_pattern_other_host",
        r#"origins = ["http://localhost:*"]"#,
        GET,
        HIDDEN,
    ),
    // Exposed headers.
    on(
        "expose_listed_only",
        WEB,
        GET,
        Expect {
            readable: &["content-type", "x-visible"],
            hidden: &["x-secret"],
            ..OK
        },
    ),
    on(
        "expose_none",
        PAGE_ORIGIN_ONLY,
        GET,
        Expect {
            readable: &["content-type"],
            hidden: &["x-visible", "x-secret"],
            ..OK
        },
    ),
    on(
        "expose_wildcard",
        r#"
origins = ["http://127.0.0.1:{page}"]
expose_headers = ["*"]
"#,
        GET,
        Expect {
            readable: &["content-type", "x-visible", "x-secret"],
            hidden: &[],
            ..OK
        },
    ),
    // Preflight cache: Chromium keeps an answer without Max-Age for 5 s, so
    // waiting longer than that proves `max_age` is what kept it.
    on(
        "max_age_honoured",
        r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["PUT"]
expose_headers = ["x-visible"]
max_age = 600
"#,
        Request {
            repeat_after_ms: Some(5_500),
            ..method("PUT")
        },
        Expect {
            preflights: 1,
            upstream_requests: 2,
            ..OK
        },
    ),
    on(
        "max_age_zero_not_cached",
        r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["PUT"]
expose_headers = ["x-visible"]
max_age = 0
"#,
        Request {
            repeat_after_ms: Some(0),
            ..method("PUT")
        },
        Expect {
            preflights: 2,
            upstream_requests: 2,
            ..OK
        },
    ),
    // upstream_headers.
    behind(
        Backend::UpstreamWithOwnCors {
            allow_origin: "http://elsewhere.test",
        },
        on(
            // The upstream's foreign ACAO and ACEH are replaced by the policy's.
            "upstream_headers_override",
            WEB,
            GET,
            OK,
        ),
    ),
    Scenario {
        backend: Backend::UpstreamWithOwnCors {
            allow_origin: "{origin}",
        },
        ..on(
            // The upstream's own headers win: it exposes x-secret, not x-visible.
            "upstream_headers_defer_upstream_wins",
            DEFER_TO_UPSTREAM,
            GET,
            Expect {
                readable: &["content-type", "x-secret"],
                hidden: &["x-visible"],
                ..OK
            },
        )
    },
    behind(
        Backend::UpstreamWithOwnCors {
            allow_origin: "http://elsewhere.test",
        },
        on(
            "upstream_headers_defer_upstream_refuses",
            DEFER_TO_UPSTREAM,
            GET,
            HIDDEN,
        ),
    ),
    on(
        "upstream_headers_defer_upstream_silent",
        DEFER_TO_UPSTREAM,
        GET,
        OK,
    ),
    // Errors the gateway produces are readable by an allowed origin.
    behind(
        Backend::Unreachable,
        on("gateway_502_readable", WEB, GET, gateway_error(502)),
    ),
    behind(
        Backend::Slow,
        on(
            "gateway_504_readable",
            WEB,
            GET,
            // The request reached the slow upstream before the gateway gave up.
            Expect {
                upstream_requests: 1,
                ..gateway_error(504)
            },
        ),
    ),
    behind(
        Backend::NoRoute,
        on("gateway_404_readable", WEB, GET, gateway_error(404)),
    ),
    Scenario {
        route_methods: Some(&["GET"]),
        ..on(
            "gateway_405_readable",
            WEB,
            with_body("POST", &[("content-type", "text/plain")], "x"),
            gateway_error(405),
        )
    },
    // Private routes (Personium): auth answers carry CORS headers, so the
    // script can read 401 and 403; a browser's preflight never carries
    // Authorization, and passes.
    private(on("private_route_401_readable", PERSONIUM, GET, ERROR_401)),
    private(on(
        "private_route_token_accepted",
        PERSONIUM,
        with_headers(
            "GET",
            &[("authorization", "Bearer browser-suite-reader-token")],
        ),
        OK_PREFLIGHTED,
    )),
    private(on(
        "private_route_403_readable",
        PERSONIUM,
        with_headers(
            "GET",
            &[("authorization", "Bearer browser-suite-writer-token")],
        ),
        Expect {
            preflights: 1,
            ..ERROR_403
        },
    )),
    // block_disallowed.
    from(
        PAGE_EVIL,
        on(
            "block_disallowed_refuses_before_upstream",
            r#"
origins = ["http://127.0.0.1:{page}"]
block_disallowed = true
"#,
            GET,
            Expect {
                upstream_requests: 0,
                ..HIDDEN
            },
        ),
    ),
    on(
        "block_disallowed_lets_allowed_origin_through",
        r#"
origins = ["http://127.0.0.1:{page}"]
block_disallowed = true
expose_headers = ["x-visible"]
"#,
        GET,
        OK,
    ),
    // Disallowed origins.
    from(
        PAGE_EVIL,
        on("disallowed_origin_simple_get", WEB, GET, HIDDEN),
    ),
    from(
        PAGE_EVIL,
        on(
            "disallowed_origin_preflight",
            WEB,
            method("PUT"),
            REFUSED_PREFLIGHT,
        ),
    ),
    from(
        PAGE_EVIL,
        on("disallowed_origin_xhr", WEB, xhr(GET), HIDDEN),
    ),
    // A route without a policy: the gateway adds nothing and the preflight
    // goes to the upstream, which knows nothing of CORS.
    unpoliced(on("no_policy_route", WEB, GET, HIDDEN)),
    unpoliced(on(
        "no_policy_route_preflight_reaches_upstream",
        WEB,
        method("PUT"),
        Expect {
            preflights: 1,
            upstream_requests: 1,
            ..HIDDEN
        },
    )),
];
