//! The building blocks of the scenario table: pages, named policies,
//! requests, expectations, and row modifiers that change one field of a row.

use super::{
    Access, Api, Backend, Credentials, Expect, Page, PagePort, Request, Scenario, Verdict,
};

/// A page on `host`, served by the page server's main listener.
pub(super) const fn page_on(host: &'static str) -> Page {
    Page {
        host,
        port: PagePort::Main,
    }
}

pub(super) const PAGE: Page = page_on("127.0.0.1");
pub(super) const PAGE_ALT_PORT: Page = Page {
    port: PagePort::Alt,
    ..PAGE
};
/// Same site as the gateway (`localhost`), so its cookie travels with `credentials: 'include'`.
pub(super) const PAGE_LOCALHOST: Page = page_on("localhost");
pub(super) const PAGE_APP: Page = page_on("app.example.test");
pub(super) const PAGE_DEEP: Page = page_on("a.b.example.test");
pub(super) const PAGE_APEX: Page = page_on("example.test");
pub(super) const PAGE_LOOKALIKE: Page = page_on("app.example.test.evil.test");
pub(super) const PAGE_EVIL: Page = page_on("evil.test");

/// The allow-list policy most scenarios vary.
pub(super) const WEB: &str = r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["PUT", "DELETE", "PATCH"]
request_headers = ["content-type", "x-custom"]
expose_headers = ["x-visible"]
"#;

/// Personium's policy: any request header (echoed), for a private route.
pub(super) const PERSONIUM: &str = r#"
origins = ["http://127.0.0.1:{page}"]
request_headers = ["*"]
expose_headers = ["x-visible"]
"#;

/// The page's origin and nothing more: no methods, headers or exposed headers.
pub(super) const PAGE_ORIGIN_ONLY: &str = r#"origins = ["http://127.0.0.1:{page}"]"#;

/// Only PUT among the non-simple methods, and nothing exposed.
pub(super) const PUT_ONLY: &str = r#"
origins = ["http://127.0.0.1:{page}"]
methods = ["PUT"]
"#;

/// The localhost page's origin, without credentials.
pub(super) const LOCALHOST_ORIGIN: &str = r#"
origins = ["http://localhost:{page}"]
expose_headers = ["x-visible"]
"#;

pub(super) const ANY_ORIGIN: &str = r#"
origins = ["*"]
expose_headers = ["x-visible"]
"#;

pub(super) const EXAMPLE_SUBDOMAINS: &str = r#"origins = ["http://*.example.test:{page}"]"#;

/// The upstream's own CORS headers, where it sends them, win over the policy's.
pub(super) const DEFER_TO_UPSTREAM: &str = r#"
origins = ["http://127.0.0.1:{page}"]
expose_headers = ["x-visible"]
upstream_headers = "defer"
"#;

pub(super) const GET: Request = Request {
    api: Api::Fetch,
    method: "GET",
    headers: &[],
    body: None,
    credentials: Credentials::SameOrigin,
    repeat_after_ms: None,
};

pub(super) const fn method(method: &'static str) -> Request {
    Request { method, ..GET }
}

pub(super) const fn with_headers(
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
pub(super) const fn with_body(
    method: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> Request {
    Request {
        body: Some(body),
        ..with_headers(method, headers)
    }
}

pub(super) const fn xhr(request: Request) -> Request {
    Request {
        api: Api::Xhr,
        ..request
    }
}

/// `credentials: 'include'` (XHR: `withCredentials`).
pub(super) const fn including_cookies(request: Request) -> Request {
    Request {
        credentials: Credentials::Include,
        ..request
    }
}

/// `expect`, with the page's cookie seen (`true`) or not (`false`) by the upstream.
pub(super) const fn with_cookie(sent: bool, expect: Expect) -> Expect {
    Expect {
        cookie_sent: Some(sent),
        ..expect
    }
}

/// Readable, with `x-visible` exposed and `x-secret` not.
pub(super) const OK: Expect = Expect {
    verdict: Verdict::Readable(200),
    readable: &["content-type", "x-visible"],
    hidden: &["x-secret"],
    preflights: 0,
    upstream_requests: 1,
    cookie_sent: None,
};

pub(super) const OK_PREFLIGHTED: Expect = Expect {
    preflights: 1,
    ..OK
};

/// An error the gateway answers itself, readable by the script.
pub(super) const fn gateway_error(status: u16) -> Expect {
    Expect {
        verdict: Verdict::Readable(status),
        readable: &[],
        hidden: &[],
        preflights: 0,
        upstream_requests: 0,
        cookie_sent: None,
    }
}

pub(super) const ERROR_401: Expect = gateway_error(401);
pub(super) const ERROR_403: Expect = gateway_error(403);

/// A simple request the browser sent but whose response it hid.
pub(super) const HIDDEN: Expect = Expect {
    verdict: Verdict::NetworkError,
    readable: &[],
    hidden: &[],
    preflights: 0,
    upstream_requests: 1,
    cookie_sent: None,
};

/// A preflight refused: the actual request never left the browser.
pub(super) const REFUSED_PREFLIGHT: Expect = Expect {
    preflights: 1,
    upstream_requests: 0,
    ..HIDDEN
};

pub(super) const fn on(
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

pub(super) const fn from(page: Page, scenario: Scenario) -> Scenario {
    Scenario { page, ..scenario }
}

pub(super) const fn behind(backend: Backend, scenario: Scenario) -> Scenario {
    Scenario {
        backend,
        ..scenario
    }
}

/// The scenario on a route with `access = "private"`.
pub(super) const fn private(scenario: Scenario) -> Scenario {
    Scenario {
        access: Access::Private,
        ..scenario
    }
}

/// The scenario on a route without a policy.
pub(super) const fn unpoliced(scenario: Scenario) -> Scenario {
    Scenario {
        policy: None,
        ..scenario
    }
}
