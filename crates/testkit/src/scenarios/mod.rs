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
        expected_in(engine, self.expect, self.differs)
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

/// What `engine` does in a row that expects `expect` of every engine but
/// those it lists in `differs` (this table's rows and the browser suite's
/// engine matrix both say it so).
pub fn expected_in<T: Copy>(engine: Engine, expect: T, differs: &[(Engine, T)]) -> T {
    differs
        .iter()
        .find(|(e, _)| *e == engine)
        .map_or(expect, |&(_, differing)| differing)
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

mod build;
mod table;

pub use table::SCENARIOS;
