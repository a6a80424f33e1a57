//! What the engine decided about one request, and why.

use std::fmt;

use http::{HeaderValue, StatusCode};

use crate::TokenText;

/// How the Fetch standard classifies a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// No `Origin` header: not a CORS request (same-origin GET, curl, a server).
    NotCors,
    /// `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    Preflight,
    /// Any other request with `Origin`, including a plain `OPTIONS`.
    Actual,
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a CORS request; the handler runs and the response gets at most
    /// `Vary: Origin` (or `Access-Control-Allow-Origin: *` for a public policy).
    NotCors,
    /// Answer the preflight now with the policy's status and CORS headers.
    PreflightAllowed,
    /// Answer the preflight now with 403 and no CORS headers.
    PreflightDenied(Denial),
    /// Run the handler and add the CORS headers to its response.
    ActualAllowed,
    /// Run the handler but add no CORS headers: the browser hides the response.
    ActualDenied(Denial),
    /// Answer 403 without running the handler (`block_disallowed`).
    Blocked(Denial),
}

/// Why a request was refused; its [`code`](Self::code) is a stable label for
/// logs and metrics, its `Display` a sentence for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Denial {
    /// The `Origin` matches no allowed origin.
    OriginNotAllowed,
    /// The preflight asked for a method the policy does not allow.
    MethodNotAllowed(TokenText),
    /// The preflight asked for a request header the policy does not allow.
    HeaderNotAllowed(TokenText),
    /// The preflight asked for private-network access, which the policy does not allow.
    PrivateNetworkNotAllowed,
    /// The request is not one a browser would send.
    Malformed(Malformed),
    /// A WebSocket handshake whose `Origin` matches no allowed origin, or
    /// that has none where one is required. Browsers apply no CORS to
    /// WebSocket, so this refusal is what stops cross-site hijacking.
    WebSocketOriginNotAllowed,
}

/// The ways a CORS request can be malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Malformed {
    /// More than one `Origin` header.
    SeveralOrigins,
    /// More than one `Access-Control-Request-Method` header.
    SeveralRequestMethods,
    /// `Access-Control-Request-Method` is not a method token.
    InvalidRequestMethod,
    /// `Access-Control-Request-Headers` is not a comma-separated list of names.
    InvalidRequestHeaders,
    /// `Access-Control-Request-Headers` lists more names, or more empty
    /// elements, than any browser sends.
    TooManyRequestHeaders,
}

impl Denial {
    /// A stable, machine-readable label.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::OriginNotAllowed => "origin_not_allowed",
            Denial::MethodNotAllowed(_) => "method_not_allowed",
            Denial::HeaderNotAllowed(_) => "header_not_allowed",
            Denial::PrivateNetworkNotAllowed => "private_network_not_allowed",
            Denial::Malformed(_) => "malformed_request",
            Denial::WebSocketOriginNotAllowed => "websocket_origin_not_allowed",
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::OriginNotAllowed => f.write_str("origin not allowed"),
            Denial::MethodNotAllowed(method) => write!(f, "method `{method}` not allowed"),
            Denial::HeaderNotAllowed(name) => write!(f, "header `{name}` not allowed"),
            Denial::PrivateNetworkNotAllowed => f.write_str("private network access not allowed"),
            Denial::Malformed(why) => write!(f, "malformed request: {why}"),
            Denial::WebSocketOriginNotAllowed => f.write_str(
                "WebSocket handshake from an origin that is not allowed, or without one",
            ),
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::SeveralOrigins => "more than one Origin header",
            Malformed::SeveralRequestMethods => {
                "more than one Access-Control-Request-Method header"
            }
            Malformed::InvalidRequestMethod => "Access-Control-Request-Method is not a method name",
            Malformed::InvalidRequestHeaders => {
                "Access-Control-Request-Headers is not a list of header names"
            }
            Malformed::TooManyRequestHeaders => {
                "Access-Control-Request-Headers is longer than any browser sends"
            }
        })
    }
}

/// The engine's decision on one request: the [`Outcome`], and the values that
/// depend on the request (the echoed origin, method and headers).
///
/// A decision owns what it holds (clones of header values share their bytes),
/// so it can outlive the request, as a tower future or a proxied call needs.
#[derive(Debug, Clone)]
pub struct Decision {
    pub(crate) outcome: Outcome,
    pub(crate) preflight_status: StatusCode,
    pub(crate) allow_origin: Option<HeaderValue>,
    pub(crate) allow_methods: Option<HeaderValue>,
    pub(crate) allow_headers: Option<HeaderValue>,
    pub(crate) private_network: bool,
    /// Whether the answer is the policy's prepared one but for the origin.
    pub(crate) prepared_answer: bool,
}

impl Decision {
    pub(crate) fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            preflight_status: StatusCode::NO_CONTENT,
            allow_origin: None,
            allow_methods: None,
            allow_headers: None,
            private_network: false,
            prepared_answer: false,
        }
    }

    /// The verdict.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// How the request was classified.
    pub fn kind(&self) -> RequestKind {
        match self.outcome {
            Outcome::NotCors => RequestKind::NotCors,
            Outcome::PreflightAllowed | Outcome::PreflightDenied(_) => RequestKind::Preflight,
            Outcome::ActualAllowed | Outcome::ActualDenied(_) | Outcome::Blocked(_) => {
                RequestKind::Actual
            }
        }
    }

    /// Why the request was refused, if it was.
    pub fn denial(&self) -> Option<&Denial> {
        match &self.outcome {
            Outcome::PreflightDenied(d) | Outcome::ActualDenied(d) | Outcome::Blocked(d) => Some(d),
            _ => None,
        }
    }

    /// `Some(status)` when the caller must answer now, with an empty body and
    /// without running the handler: the policy's status for an allowed
    /// preflight, 403 for a denied preflight or a blocked request.
    pub fn short_circuit(&self) -> Option<StatusCode> {
        match self.outcome {
            Outcome::PreflightAllowed => Some(self.preflight_status),
            Outcome::PreflightDenied(_) | Outcome::Blocked(_) => Some(StatusCode::FORBIDDEN),
            _ => None,
        }
    }

    /// Whether the response may carry CORS headers that let a script read it.
    pub fn is_allowed(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::PreflightAllowed | Outcome::ActualAllowed
        )
    }
}
