//! Responses the gateway makes itself, with static bodies: every refusal and
//! every upstream failure becomes a response here and nowhere else.

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::proxy::auth::AuthFailure;
use crate::proxy::body::GatewayBody;
use crate::proxy::host::HostRejection;
use crate::proxy::path::PathRejection;
use crate::proxy::upstream::UpstreamError;

/// Why the gateway answers instead of the route's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// 400: the path could be read differently by the upstream (see [`crate::proxy::path`]).
    BadPath(PathRejection),
    /// 400: the `Host` or `:authority` is unusable (see [`crate::proxy::host`]).
    BadHost(HostRejection),
    /// 404: no route matches the path.
    NoRoute,
    /// 405: the route does not declare the method, or the method is
    /// `CONNECT`; with the `Allow` header to send.
    MethodNotAllowed(HeaderValue),
    /// 413: the body exceeds the route's limit.
    PayloadTooLarge,
    /// 431: the request headers exceed `max_header_bytes`.
    HeadersTooLarge,
    /// 400: the request body is malformed (bad chunk, short body, unusable `Content-Length`).
    MalformedBody,
    /// 502: the upstream could not be reached, broke off, or answered with ambiguous framing.
    BadGateway,
    /// 503: `max_upstream_requests` are in flight.
    UpstreamBusy,
    /// 504: the upstream did not answer in time.
    GatewayTimeout,
    /// 503: every target of the route's upstream pool is out of rotation.
    NoHealthyUpstream,
    /// 401 or 403 from `[auth]`.
    Auth(AuthFailure),
    /// 403: a WebSocket handshake on a route with `websocket = false`
    /// (RFC 6455 §4.2.2: a server that does not wish to accept answers 403).
    WebSocketDisabled,
    /// 403: a WebSocket handshake from a page on a route without a policy,
    /// which lists no allowed origin, or without `Origin` where one is required.
    WebSocketOriginNotAllowed,
    /// 400: a WebSocket handshake RFC 6455 §4.1 does not allow.
    BadWebSocketHandshake,
    /// 426 with `Sec-WebSocket-Version: 13`: another WebSocket version (RFC 6455 §4.4).
    WebSocketVersion,
}

impl GatewayError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadPath(_) | Self::BadHost(_) => StatusCode::BAD_REQUEST,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::MalformedBody => StatusCode::BAD_REQUEST,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::UpstreamBusy | Self::NoHealthyUpstream => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Auth(AuthFailure::Missing | AuthFailure::Invalid) => StatusCode::UNAUTHORIZED,
            Self::Auth(AuthFailure::Insufficient) => StatusCode::FORBIDDEN,
            Self::WebSocketDisabled | Self::WebSocketOriginNotAllowed => StatusCode::FORBIDDEN,
            Self::BadWebSocketHandshake => StatusCode::BAD_REQUEST,
            Self::WebSocketVersion => StatusCode::UPGRADE_REQUIRED,
        }
    }

    fn body(&self) -> &'static str {
        match self {
            Self::BadPath(rejection) => rejection.body(),
            Self::BadHost(rejection) => rejection.body(),
            Self::NoRoute => r#"{"error":"no_route","message":"no route matches this path"}"#,
            Self::MethodNotAllowed(_) => {
                r#"{"error":"method_not_allowed","message":"this resource does not support the method; see the Allow header"}"#
            }
            Self::PayloadTooLarge => {
                r#"{"error":"payload_too_large","message":"the request body exceeds this route's limit"}"#
            }
            Self::HeadersTooLarge => {
                r#"{"error":"request_header_fields_too_large","message":"the request headers exceed the gateway's limit"}"#
            }
            Self::MalformedBody => {
                r#"{"error":"malformed_request_body","message":"the request body does not match its declared framing"}"#
            }
            Self::BadGateway => {
                r#"{"error":"bad_gateway","message":"the upstream could not be reached, closed the connection or sent a malformed response"}"#
            }
            Self::UpstreamBusy => {
                r#"{"error":"upstream_busy","message":"the gateway is at its limit of upstream requests; retry later"}"#
            }
            Self::GatewayTimeout => {
                r#"{"error":"gateway_timeout","message":"the upstream did not answer in time"}"#
            }
            Self::NoHealthyUpstream => {
                r#"{"error":"no_healthy_upstream","message":"every upstream target is failing; retry later"}"#
            }
            Self::Auth(AuthFailure::Missing) => {
                r#"{"error":"unauthorized","message":"this resource needs a bearer token"}"#
            }
            Self::Auth(AuthFailure::Invalid) => {
                r#"{"error":"invalid_token","message":"the bearer token is not valid"}"#
            }
            Self::Auth(AuthFailure::Insufficient) => {
                r#"{"error":"insufficient_privilege","message":"the token does not grant this method"}"#
            }
            Self::WebSocketDisabled => {
                r#"{"error":"websocket_disabled","message":"this route does not carry WebSocket upgrades"}"#
            }
            Self::WebSocketOriginNotAllowed => {
                r#"{"error":"websocket_origin_not_allowed","message":"WebSocket handshakes from this origin, or without one, are not allowed on this route"}"#
            }
            Self::BadWebSocketHandshake => {
                r#"{"error":"bad_websocket_handshake","message":"a WebSocket handshake is a GET over HTTP/1.1 with Connection: upgrade, one Sec-WebSocket-Key and no body"}"#
            }
            Self::WebSocketVersion => {
                r#"{"error":"websocket_version","message":"the gateway carries WebSocket version 13; see Sec-WebSocket-Version"}"#
            }
        }
    }

    /// The response, with `Allow` for a 405, `WWW-Authenticate` for a 401 or
    /// 403, and `Retry-After` for a 503.
    pub fn response(&self) -> Response<GatewayBody> {
        let mut response = Response::new(GatewayBody::full(Bytes::from_static(
            self.body().as_bytes(),
        )));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Self::MethodNotAllowed(allow) = self {
            headers.insert(ALLOW, allow.clone());
        }
        let challenge = match self {
            Self::Auth(AuthFailure::Missing) => Some("Bearer"),
            Self::Auth(AuthFailure::Invalid) => Some(r#"Bearer error="invalid_token""#),
            Self::Auth(AuthFailure::Insufficient) => Some(r#"Bearer error="insufficient_scope""#),
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if *self == Self::WebSocketVersion {
            headers.insert(
                http::header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        if matches!(self, Self::UpstreamBusy | Self::NoHealthyUpstream) {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<&UpstreamError> for GatewayError {
    fn from(error: &UpstreamError) -> Self {
        match error {
            UpstreamError::Timeout(_) => Self::GatewayTimeout,
            UpstreamError::BodyTooLarge(_) => Self::PayloadTooLarge,
            UpstreamError::MalformedBody(_) => Self::MalformedBody,
            UpstreamError::NoHealthyUpstream => Self::NoHealthyUpstream,
            UpstreamError::Unreachable(_)
            | UpstreamError::BadFraming(_)
            | UpstreamError::BadRequest(_) => Self::BadGateway,
        }
    }
}

/// An empty response with `status` (answered preflights, CORS refusals).
pub fn empty(status: StatusCode) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::empty());
    *response.status_mut() = status;
    response
}
