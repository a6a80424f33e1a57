//! The request path: route, CORS decision, limits, auth, then the mock or the
//! upstream, and finally the engine's CORS headers on whatever is answered.

use std::sync::Arc;

use crossgate_cors::{AllowedMethods, Decision, Denial, Outcome, Policy, RequestKind};
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, ORIGIN};
use http::{HeaderMap, Method, Request, Response};
use hyper::body::Incoming;

use crate::auth::AuthFailure;
use crate::body::GatewayBody;
use crate::config::Access;
use crate::denials::{DenialLog, DeniedRequest};
use crate::gateway::Runtime;
use crate::metrics::RouteMetrics;
use crate::proxy::{self, ConnInfo, Forward, UpstreamError};
use crate::responses::{self, GatewayError};
use crate::router::{Route, Target};

/// Answers one request on the configuration it started with.
pub async fn handle(
    runtime: Arc<Runtime>,
    denials: Arc<DenialLog>,
    conn: ConnInfo,
    request: Request<Incoming>,
) -> Response<GatewayBody> {
    let config = &runtime.config;
    let request_id =
        crate::request_id::for_request(request.headers(), &config.settings.request_id_header);
    let route = config.router.find(request.uri().path());
    let route_label = route.map_or(crate::metrics::NO_ROUTE_LABEL, |r| r.path.as_str());
    let metrics = route.map_or(&config.no_route_metrics, |r| &r.metrics);
    let policy = match route {
        Some(route) => route.policy.as_deref(),
        None => config.fallback_policy.as_deref(),
    };

    let mut preflight_auth_failure = None;
    let decision = policy.map(|named| {
        let resource_methods = resource_methods(
            &runtime,
            route,
            request.method(),
            request.headers(),
            &mut preflight_auth_failure,
        );
        named
            .policy
            .decide_for(request.method(), request.headers(), resource_methods)
    });
    if let Some(decision) = &decision {
        record_outcome(
            decision,
            metrics,
            &denials,
            route_label,
            &request,
            &request_id,
        );
    }

    let mut response = respond(
        &runtime,
        route,
        decision.as_ref(),
        preflight_auth_failure,
        &conn,
        request,
        &request_id,
    )
    .await;

    if let (Some(named), Some(decision)) = (policy, &decision) {
        named.policy.apply(decision, response.headers_mut());
    }
    response
        .headers_mut()
        .insert(config.settings.request_id_header.clone(), request_id);
    metrics.request(response.status());
    response
}

/// The methods a preflight is answered with: the route's own list (or the
/// policy's when it declares none); for a private route asked without
/// credentials, every method the gateway supports (Personium's table).
fn resource_methods<'a>(
    runtime: &'a Runtime,
    route: Option<&'a Route>,
    method: &Method,
    headers: &HeaderMap,
    auth_failure: &mut Option<AuthFailure>,
) -> Option<&'a AllowedMethods> {
    let route = route?;
    let own = route.methods.as_ref().map(|m| &m.cors);
    if route.access == Access::Public || Policy::classify(method, headers) != RequestKind::Preflight
    {
        return own;
    }
    if !headers.contains_key(AUTHORIZATION) {
        return Some(&runtime.config.gateway_methods);
    }
    if let Some(auth) = &runtime.config.auth {
        if let Err(failure) = auth.authorize(&Method::OPTIONS, headers) {
            *auth_failure = Some(failure);
        }
    }
    own
}

fn record_outcome(
    decision: &Decision,
    metrics: &RouteMetrics,
    denials: &DenialLog,
    route: &str,
    request: &Request<Incoming>,
    request_id: &HeaderValue,
) {
    let denial: &Denial = match decision.outcome() {
        Outcome::PreflightAllowed => {
            metrics.preflight_allowed();
            return;
        }
        Outcome::PreflightDenied(denial) => {
            metrics.preflight_denied(denial);
            denial
        }
        Outcome::ActualDenied(denial) | Outcome::Blocked(denial) => {
            metrics.actual_denied(denial);
            denial
        }
        Outcome::NotCors | Outcome::ActualAllowed => return,
    };
    let origin = request.headers().get(ORIGIN);
    denials.record(&DeniedRequest {
        origin: origin.map_or(&[][..], HeaderValue::as_bytes),
        route,
        method: request.method().as_str(),
        denial,
    });
    tracing::warn!(
        request_id = %String::from_utf8_lossy(request_id.as_bytes()),
        route,
        method = %request.method(),
        origin = %origin.map(|o| String::from_utf8_lossy(o.as_bytes())).unwrap_or_default(),
        kind = ?decision.kind(),
        reason = denial.code(),
        detail = %denial,
        "CORS request denied"
    );
}

async fn respond(
    runtime: &Runtime,
    route: Option<&Route>,
    decision: Option<&Decision>,
    preflight_auth_failure: Option<AuthFailure>,
    conn: &ConnInfo,
    request: Request<Incoming>,
    request_id: &HeaderValue,
) -> Response<GatewayBody> {
    let settings = &runtime.config.settings;
    if header_bytes(&request) > settings.max_header_bytes {
        return GatewayError::HeadersTooLarge.response(None);
    }
    if has_dot_segment(request.uri().path()) {
        return GatewayError::DotSegments.response(None);
    }
    let Some(route) = route else {
        return GatewayError::NoRoute.response(None);
    };
    if let Some(status) = decision.and_then(Decision::short_circuit) {
        return match preflight_auth_failure {
            Some(failure)
                if matches!(
                    decision.map(Decision::outcome),
                    Some(Outcome::PreflightAllowed)
                ) =>
            {
                log_auth_failure(route, failure, request_id);
                GatewayError::Auth(failure).response(None)
            }
            _ => responses::empty(status),
        };
    }
    if let Some(methods) = &route.methods {
        if !methods.accepts(request.method()) {
            return GatewayError::MethodNotAllowed.response(Some(&methods.allow));
        }
    }
    if route.access == Access::Private {
        if let Some(auth) = &runtime.config.auth {
            if let Err(failure) = auth.authorize(request.method(), request.headers()) {
                log_auth_failure(route, failure, request_id);
                return GatewayError::Auth(failure).response(None);
            }
        }
    }
    if let Some(limit) = route.max_body_bytes {
        if declared_length(request.headers()).is_some_and(|length| length > limit) {
            return GatewayError::PayloadTooLarge.response(None);
        }
    }
    match &route.target {
        Target::Mock(mock) => mock.respond(request.method()),
        Target::Upstream(upstream) => {
            // Held until the upstream's body ends: the bound covers sockets
            // and upstream work, not just waiting for the head.
            let Ok(slot) = runtime.upstream_slots.clone().try_acquire_owned() else {
                route.metrics.upstream_error(UPSTREAM_BUSY);
                return GatewayError::UpstreamBusy.response(None);
            };
            let forward = Forward {
                conn,
                trusted_proxies: &settings.trusted_proxies,
                request_id: (&settings.request_id_header, request_id),
                response_timeout: settings.response_timeout,
                max_body_bytes: route.max_body_bytes,
            };
            match proxy::forward(&runtime.client, upstream, request, forward).await {
                Ok((response, elapsed)) => {
                    route.metrics.upstream_latency(elapsed);
                    response.map(|body| GatewayBody::upstream(body, slot))
                }
                Err(error) => {
                    route.metrics.upstream_error(error.code());
                    tracing::warn!(
                        request_id = %String::from_utf8_lossy(request_id.as_bytes()),
                        route = route.path.as_str(),
                        upstream = upstream.as_str(),
                        reason = error.code(),
                        error = %error,
                        "upstream request failed"
                    );
                    match error {
                        UpstreamError::Timeout(_) => GatewayError::GatewayTimeout,
                        UpstreamError::BodyTooLarge(_) => GatewayError::PayloadTooLarge,
                        UpstreamError::MalformedBody(_) => GatewayError::MalformedBody,
                        UpstreamError::Unreachable(_)
                        | UpstreamError::BadFraming(_)
                        | UpstreamError::BadRequest(_) => GatewayError::BadGateway,
                    }
                    .response(None)
                }
            }
        }
    }
}

/// The metrics reason of a request refused at `max_upstream_requests`.
const UPSTREAM_BUSY: &str = "upstream_busy";

fn log_auth_failure(route: &Route, failure: AuthFailure, request_id: &HeaderValue) {
    tracing::info!(
        request_id = %String::from_utf8_lossy(request_id.as_bytes()),
        route = route.path.as_str(),
        reason = failure.code(),
        "request refused by [auth]"
    );
}

/// The size of the request head as the limit counts it: request target plus
/// every header line.
fn header_bytes<B>(request: &Request<B>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |pq| pq.as_str().len());
    request.headers().iter().fold(target, |sum, (name, value)| {
        sum + name.as_str().len() + value.len() + 4
    })
}

/// Whether a path has a `.` or `..` segment, plain or percent-encoded, with
/// `/`, `\`, `%2F` or `%5C` as separators (upstreams differ in which they
/// honour). Routes match on the raw path, so `/public/../private/x` must not
/// reach an upstream that would resolve it to `/private/x`.
fn has_dot_segment(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut dots = 0;
    let mut only_dots = true;
    let mut i = 0;
    loop {
        let separator = match bytes.get(i) {
            None => true,
            Some(b'/' | b'\\') => {
                i += 1;
                true
            }
            Some(b'%') if is_encoded(bytes, i, b'2', b'f') || is_encoded(bytes, i, b'5', b'c') => {
                i += 3;
                true
            }
            _ => false,
        };
        if separator {
            if only_dots && (dots == 1 || dots == 2) {
                return true;
            }
            if i >= bytes.len() {
                return false;
            }
            dots = 0;
            only_dots = true;
        } else if bytes[i] == b'.' {
            dots += 1;
            i += 1;
        } else if is_encoded(bytes, i, b'2', b'e') {
            dots += 1;
            i += 3;
        } else {
            only_dots = false;
            i += 1;
        }
    }
}

/// Whether `bytes[at..]` starts with `%` and the hex byte `high low` (any case).
fn is_encoded(bytes: &[u8], at: usize, high: u8, low: u8) -> bool {
    bytes.get(at) == Some(&b'%')
        && bytes.get(at + 1) == Some(&high)
        && bytes
            .get(at + 2)
            .is_some_and(|b| b.to_ascii_lowercase() == low)
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::has_dot_segment;

    #[test]
    fn dot_segments_are_found_plain_and_encoded() {
        for path in [
            "/a/../b",
            "/a/./b",
            "/..",
            "/a/%2e%2E/b",
            "/a/.%2e",
            "/%2e",
            "/a/..%2Fb",
            "/a/..%2fb",
            "/a\\..\\b",
            "/a/..%5cb",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in [
            "/",
            "/a/b",
            "/a/...",
            "/a/.well-known/x",
            "/a/b.c",
            "/a/%2ex",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }
}
