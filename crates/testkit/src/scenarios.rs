//! The browser scenario table: what a page does, against which gateway
//! policy and route, and what Chromium, Firefox and WebKit report.
//!
//! Pure data: the browser suite runs every row in each engine, and holds
//! `crossgate check --engine X` to what engine X did, row by row. Where an
//! engine legitimately ends differently, the row says so in
//! [`Scenario::differs`], citing docs/browsers.md. See `docs/testing.md`.
//!
//! Ports are only known at run time, so origins and policies carry two
//! placeholders: `{page}` (the port of the page server's main listener) and
//! `{page_alt}` (its second listener). [`Ports::fill`] substitutes them. The
//! gateway is always reached as `http://localhost:<gateway port>`; the
//! scenario's resource is [`Scenario::path`].

use crossgate_cors::browser::Engine;

/// The run-time ports a scenario's text refers to.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub page: u16,
    pub page_alt: u16,
}

impl Ports {
    /// Replaces `{page}` and `{page_alt}` in `text`.
    pub fn fill(&self, text: &str) -> String {
        text.replace("{page_alt}", &self.page_alt.to_string())
            .replace("{page}", &self.page.to_string())
    }
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Unique, snake_case; also the policy's name and the route's path segment.
    pub name: &'static str,
    /// The body of `[policies.<name>]` (TOML, with placeholders); `None`: the
    /// route has no policy, so the gateway adds no CORS at all.
    pub policy: Option<&'static str>,
    /// What stands behind the route.
    pub backend: Backend,
    /// `methods` of the route (the resource's own method list), if any.
    pub route_methods: Option<&'static [&'static str]>,
    /// `access` of the route: private routes need one of [`TOKENS`].
    pub access: Access,
    /// The page whose script makes the request.
    pub page: Page,
    pub request: Request,
    /// What every engine reports, unless it is listed in `differs`.
    pub expect: Expect,
    /// Engines that end differently, in the versions their profiles name
    /// (each one explained in docs/browsers.md).
    pub differs: &'static [(Engine, Expect)],
}

impl Scenario {
    /// What `engine` reports for this row.
    pub fn expected(&self, engine: Engine) -> Expect {
        self.differs
            .iter()
            .find(|(e, _)| *e == engine)
            .map_or(self.expect, |(_, expect)| *expect)
    }

    /// The route prefix the gateway config gives this scenario.
    pub fn route_path(&self) -> String {
        format!("/s/{}/", self.name)
    }

    /// The path the script requests. [`Backend::NoRoute`] scenarios ask for a
    /// path no route matches.
    pub fn path(&self) -> String {
        match self.backend {
            Backend::NoRoute => format!("/no-such-route/{}?scenario={}", self.name, self.name),
            _ => format!("/s/{}/resource?scenario={}", self.name, self.name),
        }
    }

    /// The page's origin, e.g. `http://app.example.test:41234`.
    pub fn origin(&self, ports: &Ports) -> String {
        let port = match self.page.port {
            PagePort::Main => ports.page,
            PagePort::Alt => ports.page_alt,
        };
        format!("http://{}:{}", self.page.host, port)
    }

    /// The policy table's body with the ports filled in.
    pub fn policy_toml(&self, ports: &Ports) -> Option<String> {
        self.policy.map(|policy| ports.fill(policy))
    }
}

/// A route's `access` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Private,
}

/// The bearer tokens of the gateway's `[auth]` section, with their privileges.
pub const TOKENS: &[(&str, &[&str])] = &[(READER_TOKEN, &["read"]), (WRITER_TOKEN, &["write"])];
pub const READER_TOKEN: &str = "browser-suite-reader-token";
pub const WRITER_TOKEN: &str = "browser-suite-writer-token";

/// What answers behind the scenario's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The test's upstream: 200, JSON, with `x-visible` and `x-secret`
    /// headers and no CORS headers of its own.
    Upstream,
    /// The test's upstream, which also sets its own CORS headers:
    /// `Access-Control-Allow-Origin` as given (`"{origin}"` echoes the
    /// request's `Origin`) and `Access-Control-Expose-Headers: x-secret`.
    UpstreamWithOwnCors { allow_origin: &'static str },
    /// A port nothing listens on: the gateway answers 502.
    Unreachable,
    /// The test's upstream, answering only after the gateway's response
    /// timeout: the gateway answers 504.
    Slow,
    /// No route matches the requested path: the gateway answers 404.
    NoRoute,
}

/// Where the page is loaded from. Every `*.test` host resolves to 127.0.0.1
/// inside the suite's browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub host: &'static str,
    pub port: PagePort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagePort {
    Main,
    Alt,
}

/// The script's request.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub api: Api,
    /// Exactly as the script passes it (`"patch"` stays lower case: Fetch only
    /// normalizes DELETE, GET, HEAD, OPTIONS, POST and PUT).
    pub method: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Option<&'static str>,
    pub credentials: Credentials,
    /// `Some(ms)`: the same request is made a second time after `ms`
    /// milliseconds (to observe the preflight cache); the verdict is the second's.
    pub repeat_after_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Fetch,
    Xhr,
}

/// Fetch's credentials mode (for XHR: `Include` is `withCredentials = true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    Omit,
    SameOrigin,
    Include,
}

impl Credentials {
    pub fn as_fetch(&self) -> &'static str {
        match self {
            Credentials::Omit => "omit",
            Credentials::SameOrigin => "same-origin",
            Credentials::Include => "include",
        }
    }
}

/// What the browser reports, and what crossed the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    pub verdict: Verdict,
    /// Response header names the script must be able to read.
    pub readable: &'static [&'static str],
    /// Response header names present on the wire that the script must not see.
    pub hidden: &'static [&'static str],
    /// Preflights (OPTIONS) the browser sent, over all repetitions.
    pub preflights: u32,
    /// Requests that reached the upstream, over all repetitions, OPTIONS
    /// included: on a route with a policy the gateway answers preflights
    /// itself, so they never count here.
    pub upstream_requests: u32,
    /// `Some(true)`: the request that reached the upstream carried the
    /// page's cookie; `Some(false)`: it carried none.
    pub cookie_sent: Option<bool>,
}

/// The script's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The script got a response with this status.
    Readable(u16),
    /// The script got a network error (a CORS failure looks exactly like this).
    NetworkError,
}

/// The cookie the suite sets on `localhost` before the credential scenarios.
pub const COOKIE: &str = "crossgate_session=s3cret";

// ---------------------------------------------------------------------------
// Building blocks

/// A page on `host`, served by the page server's main listener.
const fn page_on(host: &'static str) -> Page {
    Page {
        host,
        port: PagePort::Main,
    }
}

const PAGE: Page = page_on("127.0.0.1");
const PAGE_ALT_PORT: Page = Page {
    port: PagePort::Alt,
    ..PAGE
};
/// Same site as the gateway (`localhost`), so its cookie travels with `credentials: 'include'`.
const PAGE_LOCALHOST: Page = page_on("localhost");
const PAGE_APP: Page = page_on("app.example.test");
const PAGE_DEEP: Page = page_on("a.b.example.test");
const PAGE_APEX: Page = page_on("example.test");
const PAGE_LOOKALIKE: Page = page_on("app.example.test.evil.test");
const PAGE_EVIL: Page = page_on("evil.test");

/// The allow-list policy most scenarios vary.
const WEB: &str = r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["PUT", "DELETE", "PATCH"]
request_headers = ["content-type", "x-custom"]
expose_headers = ["x-visible"]
"#;

/// Personium's policy: any request header (echoed), for a private route.
const PERSONIUM: &str = r#"
origins = ["http://127.0.0.1:{page}"]
request_headers = ["*"]
expose_headers = ["x-visible"]
"#;

/// The page's origin and nothing more: no methods, headers or exposed headers.
const PAGE_ORIGIN_ONLY: &str = r#"origins = ["http://127.0.0.1:{page}"]"#;

/// Only PUT among the non-simple methods, and nothing exposed.
const PUT_ONLY: &str = r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["PUT"]
"#;

/// The localhost page's origin, without credentials.
const LOCALHOST_ORIGIN: &str = r#"
origins = ["http://localhost:{page}"]
expose_headers = ["x-visible"]
"#;

const ANY_ORIGIN: &str = r#"
origins = ["*"]
expose_headers = ["x-visible"]
"#;

const EXAMPLE_SUBDOMAINS: &str = r#"origins = ["http://*.example.test:{page}"]"#;

/// The upstream's own CORS headers, where it sends them, win over the policy's.
const DEFER_TO_UPSTREAM: &str = r#"
origins = ["http://127.0.0.1:{page}"]
expose_headers = ["x-visible"]
upstream_headers = "defer"
"#;

const GET: Request = Request {
    api: Api::Fetch,
    method: "GET",
    headers: &[],
    body: None,
    credentials: Credentials::SameOrigin,
    repeat_after_ms: None,
};

const fn method(method: &'static str) -> Request {
    Request { method, ..GET }
}

const fn with_headers(
    method: &'static str,
    headers: &'static [(&'static str, &'static str)],
) -> Request {
    Request {
        method,
        headers,
        ..GET
    }
}

/// `method` (a POST, whatever its case) sending `body` with `headers`.
const fn with_body(
    method: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> Request {
    Request {
        body: Some(body),
        ..with_headers(method, headers)
    }
}

const fn xhr(request: Request) -> Request {
    Request {
        api: Api::Xhr,
        ..request
    }
}

/// `credentials: 'include'` (XHR: `withCredentials`).
const fn including_cookies(request: Request) -> Request {
    Request {
        credentials: Credentials::Include,
        ..request
    }
}

/// `expect`, with the page's cookie seen (`true`) or not (`false`) by the upstream.
const fn with_cookie(sent: bool, expect: Expect) -> Expect {
    Expect {
        cookie_sent: Some(sent),
        ..expect
    }
}

/// Readable, with `x-visible` exposed and `x-secret` not.
const OK: Expect = Expect {
    verdict: Verdict::Readable(200),
    readable: &["content-type", "x-visible"],
    hidden: &["x-secret"],
    preflights: 0,
    upstream_requests: 1,
    cookie_sent: None,
};

const OK_PREFLIGHTED: Expect = Expect {
    preflights: 1,
    ..OK
};

/// An error the gateway answers itself, readable by the script.
const fn gateway_error(status: u16) -> Expect {
    Expect {
        verdict: Verdict::Readable(status),
        readable: &[],
        hidden: &[],
        preflights: 0,
        upstream_requests: 0,
        cookie_sent: None,
    }
}

const ERROR_401: Expect = gateway_error(401);
const ERROR_403: Expect = gateway_error(403);

/// A simple request the browser sent but whose response it hid.
const HIDDEN: Expect = Expect {
    verdict: Verdict::NetworkError,
    readable: &[],
    hidden: &[],
    preflights: 0,
    upstream_requests: 1,
    cookie_sent: None,
};

/// A preflight refused: the actual request never left the browser.
const REFUSED_PREFLIGHT: Expect = Expect {
    preflights: 1,
    upstream_requests: 0,
    ..HIDDEN
};

const fn on(
    name: &'static str,
    policy: &'static str,
    request: Request,
    expect: Expect,
) -> Scenario {
    Scenario {
        name,
        policy: Some(policy),
        backend: Backend::Upstream,
        route_methods: None,
        access: Access::Public,
        page: PAGE,
        request,
        expect,
        differs: &[],
    }
}

const fn from(page: Page, scenario: Scenario) -> Scenario {
    Scenario { page, ..scenario }
}

const fn behind(backend: Backend, scenario: Scenario) -> Scenario {
    Scenario {
        backend,
        ..scenario
    }
}

/// The scenario on a route with `access = "private"`.
const fn private(scenario: Scenario) -> Scenario {
    Scenario {
        access: Access::Private,
        ..scenario
    }
}

/// The scenario on a route without a policy.
const fn unpoliced(scenario: Scenario) -> Scenario {
    Scenario {
        policy: None,
        ..scenario
    }
}

// ---------------------------------------------------------------------------
// The matrix

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
