//! The request a script makes: its origin, normalized method, headers (as
//! `Headers.append()` keeps them) and credentials mode, and the browser
//! engine whose limits apply.

use std::fmt;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

use super::forbidden::{is_forbidden_request_header, FORBIDDEN_METHODS};
use super::profile::Engine;
use super::site::{parse_serialized_origin, serialize_origin};
use crate::method::normalized;
use crate::token::{is_token, trim_http_whitespace};

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
    /// A `GET` or `HEAD` request cannot have a body.
    BodyNotAllowed(String),
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
            Self::BodyNotAllowed(m) => write!(f, "fetch() refuses a body on a {m} request"),
        }
    }
}

impl std::error::Error for RequestError {}

/// The request a script makes with `fetch()` in `mode: 'cors'`, as the
/// browser holds it after normalizing the method and the headers.
#[derive(Debug, Clone)]
pub struct CorsRequest {
    pub(super) origin: HeaderValue,
    pub(super) method: Method,
    pub(super) headers: HeaderMap,
    pub(super) dropped: Vec<HeaderName>,
    /// Headers Fetch lets a script set that this engine drops, kept so that
    /// [`CorsRequest::in_engine`] can give them back to another engine.
    withheld: HeaderMap,
    pub(super) credentials: CredentialsMode,
    pub(super) body: bool,
    pub(super) engine: Engine,
}

impl CorsRequest {
    /// Describes a request from a page at `origin` (serialized, e.g.
    /// `https://app.example` or `null`), normalizing `method` as `fetch()` does
    /// (`delete` becomes `DELETE`, `patch` stays `patch`), in Chromium, the
    /// default engine (see [`in_engine`](Self::in_engine)).
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
            withheld: HeaderMap::new(),
            credentials,
            body: false,
            engine: Engine::Chromium,
        })
    }

    /// The same request in `engine`, whose profile decides which headers it
    /// drops, what it safelists and what it accepts. Headers already added
    /// that `engine` drops move to [`dropped_headers`](Self::dropped_headers).
    pub fn in_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        let mut all = std::mem::take(&mut self.headers);
        for (name, value) in std::mem::take(&mut self.withheld) {
            if let Some(name) = name {
                all.insert(name, value);
            }
        }
        for (name, value) in all {
            if let Some(name) = name {
                if engine.drops_request_header(name.as_str()) {
                    self.withheld.insert(name, value);
                } else {
                    self.headers.insert(name, value);
                }
            }
        }
        self
    }

    /// The engine whose profile applies.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Adds a header the way `Headers.append()` does: the value is trimmed of
    /// HTTP whitespace, a second value for the same name is joined with `, `,
    /// and a forbidden header (see [`is_forbidden_request_header`]) is
    /// silently dropped, as browsers do, and so is a header the engine drops
    /// although Fetch allows it; [`dropped_headers`](Self::dropped_headers)
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
        let kept = if self.engine.drops_request_header(header.as_str()) {
            &mut self.withheld
        } else {
            &mut self.headers
        };
        let combined = match kept.get(&header) {
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
        kept.insert(header, value);
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

    /// Headers the script set that the browser drops: those a page may never
    /// set, then those the engine drops although Fetch allows them.
    pub fn dropped_headers(&self) -> Vec<HeaderName> {
        let mut all = self.dropped.clone();
        all.extend(self.withheld.keys().cloned());
        all
    }

    /// Headers the script set that Fetch allows and this engine drops.
    pub fn engine_dropped_headers(&self) -> Vec<HeaderName> {
        self.withheld.keys().cloned().collect()
    }

    /// The credentials mode.
    pub fn credentials(&self) -> CredentialsMode {
        self.credentials
    }

    /// The same request with a string body (`fetch(url, { body: "..." })`),
    /// which gets `Content-Type: text/plain;charset=UTF-8` unless the script
    /// set one; `fetch()` throws for a body on `GET` or `HEAD`.
    pub fn with_text_body(mut self) -> Result<Self, RequestError> {
        if matches!(self.method, Method::GET | Method::HEAD) {
            return Err(RequestError::BodyNotAllowed(self.method.to_string()));
        }
        if !self.headers.contains_key(http::header::CONTENT_TYPE) {
            self = self.with_header("content-type", "text/plain;charset=UTF-8")?;
        }
        self.body = true;
        Ok(self)
    }

    /// Whether the request carries a body (a redirect to `GET` drops it).
    pub fn has_body(&self) -> bool {
        self.body
    }

    /// Whether `target` has the page's origin, so that CORS does not apply.
    pub fn is_same_origin(&self, target: &Uri) -> bool {
        serialize_origin(target).as_deref() == Some(self.origin())
    }

    /// The same request from an opaque origin (`Origin: null`), as after a
    /// redirect that crosses origins (see [`RedirectStep`](super::RedirectStep)).
    pub fn with_null_origin(mut self) -> Self {
        self.origin = HeaderValue::from_static("null");
        self
    }

    /// The same request with another method, as after a 301/302 of a `POST`
    /// or a 303. Only valid, normalized methods reach here.
    pub(super) fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::test_util::*;
    use crate::browser::*;

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
    fn a_text_body_gets_text_plain_and_is_refused_on_get_and_head() {
        let post = request("POST", CredentialsMode::Omit, &[])
            .with_text_body()
            .unwrap();
        assert!(post.has_body());
        assert_eq!(post.headers()["content-type"], "text/plain;charset=UTF-8");
        let typed = request(
            "POST",
            CredentialsMode::Omit,
            &[("content-type", "application/json")],
        )
        .with_text_body()
        .unwrap();
        assert_eq!(typed.headers()["content-type"], "application/json");
        for method in ["GET", "HEAD"] {
            let refused = request(method, CredentialsMode::Omit, &[]).with_text_body();
            assert_eq!(
                refused.unwrap_err().to_string(),
                format!("fetch() refuses a body on a {method} request")
            );
        }
        assert!(!request("POST", CredentialsMode::Omit, &[]).has_body());
    }

    #[test]
    fn same_origin_is_scheme_host_and_port() {
        let r = request("GET", CredentialsMode::Omit, &[]);
        assert!(r.is_same_origin(&"https://app.example/x".parse().unwrap()));
        assert!(r.is_same_origin(&"https://app.example:443/".parse().unwrap()));
        assert!(!r.is_same_origin(&"http://app.example/".parse().unwrap()));
        assert!(!r.is_same_origin(&"https://app.example:8443/".parse().unwrap()));
        assert!(!r.is_same_origin(&"https://api.app.example/".parse().unwrap()));
        assert_eq!(Engine::Chromium.name(), "chromium");
        assert_eq!(Engine::Firefox.name(), "firefox");
    }

    #[test]
    fn only_chromium_drops_a_script_set_user_agent() {
        for engine in Engine::ALL {
            let r = CorsRequest::new(ORIGIN, "GET", CredentialsMode::Omit)
                .unwrap()
                .with_header("User-Agent", "probe")
                .unwrap()
                .in_engine(engine);
            let dropped = engine == Engine::Chromium;
            assert_eq!(
                r.headers().contains_key("user-agent"),
                !dropped,
                "{engine:?}"
            );
            assert_eq!(preflight_reasons(&r).is_empty(), dropped, "{engine:?}");
            // The order of in_engine and with_header does not matter.
            let r = CorsRequest::new(ORIGIN, "GET", CredentialsMode::Omit)
                .unwrap()
                .in_engine(engine)
                .with_header("User-Agent", "probe")
                .unwrap();
            assert_eq!(
                r.dropped_headers().len(),
                usize::from(dropped),
                "{engine:?}"
            );
            assert_eq!(
                r.engine_dropped_headers().len(),
                usize::from(dropped),
                "{engine:?}"
            );
        }
    }
}
