//! The request path: route, CORS decision, limits, auth, then the mock or the
//! upstream, and finally the engine's CORS headers on whatever is answered.

use std::sync::Arc;

use crossgate_cors::{AllowedMethods, Decision, Denial, Outcome, Policy, RequestKind};
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, ORIGIN};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, Uri};
use hyper::body::Incoming;

use crate::config::Access;
use crate::config::Settings;
use crate::ops::denials::{DenialLog, DeniedRequest};
use crate::ops::metrics::RouteMetrics;
use crate::proxy::auth::AuthFailure;
use crate::proxy::body::GatewayBody;
use crate::proxy::responses::{self, GatewayError};
use crate::proxy::router::{ForwardPath, Resolved, Route, Target, GATEWAY_ALLOW};
use crate::proxy::upstream::{self, ConnInfo, Forward, UpstreamError};
use crate::server::generation::Generation;

/// Answers one request on the configuration it started with.
pub async fn handle(
    generation: Arc<Generation>,
    denials: Arc<DenialLog>,
    conn: ConnInfo,
    request: Request<Incoming>,
) -> Response<GatewayBody> {
    let config = &generation.config;
    let request_id = crate::proxy::request_id::for_request(
        request.headers(),
        &config.settings.request_id_header,
    );
    // CONNECT asks the gateway to become a tunnel, which it never is: it is
    // refused before routing, whatever its target.
    let resolved =
        (request.method() != Method::CONNECT).then(|| config.router.resolve(request.uri().path()));
    let route = resolved.as_ref().and_then(|resolved| resolved.route);
    let route_label = route.map_or(crate::ops::metrics::NO_ROUTE_LABEL, |r| r.path.as_str());
    let metrics = route.map_or(&config.no_route_metrics, |r| &r.metrics);
    let policy = match route {
        Some(route) => route.policy.as_deref(),
        None => config.fallback_policy.as_deref(),
    };

    let mut preflight_auth_failure = None;
    let decision = policy.map(|named| {
        let resource_methods = resource_methods(
            &generation,
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
            config.settings.denial_log_rate,
        );
    }

    let mut response = respond(
        &generation,
        resolved,
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
    generation: &'a Generation,
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
        return Some(&generation.config.gateway_methods);
    }
    if let Some(auth) = &generation.config.auth {
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
    log_rate: u32,
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
        request_id: request_id.as_bytes(),
    });
    if !metrics.log_budget().admit(denial.code(), log_rate) {
        return;
    }
    // Values from the request are recorded as `&str`: the text format writes
    // them quoted and escaped, the JSON format as JSON strings, so they cannot
    // forge fields or lines (`%` would write them raw).
    let origin = origin.map_or_else(Default::default, |o| String::from_utf8_lossy(o.as_bytes()));
    tracing::warn!(
        request_id = client_text(request_id).as_ref(),
        route,
        method = request.method().as_str(),
        origin = origin.as_ref(),
        kind = ?decision.kind(),
        reason = denial.code(),
        detail = denial.to_string().as_str(),
        "CORS request denied"
    );
}

/// A header value as log text (lossy: obs-text bytes become U+FFFD).
fn client_text(value: &HeaderValue) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
}

/// `resolved` is `None` for CONNECT (see [`crate::proxy::router::Router::resolve`]).
async fn respond(
    generation: &Generation,
    resolved: Option<Resolved<'_>>,
    decision: Option<&Decision>,
    preflight_auth_failure: Option<AuthFailure>,
    conn: &ConnInfo,
    request: Request<Incoming>,
    request_id: &HeaderValue,
) -> Response<GatewayBody> {
    let settings = &generation.config.settings;
    if header_bytes(&request) > settings.max_header_bytes {
        return GatewayError::HeadersTooLarge.response(None);
    }
    let Some(Resolved { route, path }) = resolved else {
        return GatewayError::MethodNotAllowed
            .response(Some(&HeaderValue::from_static(GATEWAY_ALLOW)));
    };
    let forward_path = match path {
        Err(rejection) => return GatewayError::BadPath(rejection).response(None),
        Ok(forward_path) => forward_path,
    };
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
                log_auth_failure(route, failure, request_id, settings.denial_log_rate);
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
        if let Some(auth) = &generation.config.auth {
            if let Err(failure) = auth.authorize(request.method(), request.headers()) {
                log_auth_failure(route, failure, request_id, settings.denial_log_rate);
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
            let mut request = request;
            if let ForwardPath::Normalized(normal) = forward_path {
                match with_path(request.uri(), &normal) {
                    Ok(uri) => *request.uri_mut() = uri,
                    Err(error) => {
                        tracing::warn!(
                            request_id = %String::from_utf8_lossy(request_id.as_bytes()),
                            route = route.path.as_str(),
                            error = %error,
                            "cannot build the normalized request target"
                        );
                        return GatewayError::BadGateway.response(None);
                    }
                }
            }
            // Held until the upstream's body ends: the bound covers sockets
            // and upstream work, not just waiting for the head.
            let Ok(slot) = generation.upstream_slots.clone().try_acquire_owned() else {
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
            match upstream::forward(&generation.client, upstream, request, forward).await {
                Ok((response, elapsed)) => {
                    route.metrics.upstream_latency(elapsed);
                    response.map(|body| GatewayBody::upstream(body, slot))
                }
                Err(error) => {
                    route.metrics.upstream_error(error.code());
                    log_upstream_failure(route, upstream.as_str(), &error, request_id, settings);
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

fn log_upstream_failure(
    route: &Route,
    upstream: &str,
    error: &UpstreamError,
    request_id: &HeaderValue,
    settings: &Settings,
) {
    if !route
        .metrics
        .log_budget()
        .admit(error.code(), settings.denial_log_rate)
    {
        return;
    }
    tracing::warn!(
        request_id = client_text(request_id).as_ref(),
        route = route.path.as_str(),
        upstream,
        reason = error.code(),
        error = error.to_string().as_str(),
        "upstream request failed"
    );
}

fn log_auth_failure(route: &Route, failure: AuthFailure, request_id: &HeaderValue, log_rate: u32) {
    if !route.metrics.log_budget().admit(failure.code(), log_rate) {
        return;
    }
    tracing::info!(
        request_id = client_text(request_id).as_ref(),
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

/// `uri` with its path replaced by `path` and everything else, the query
/// string included, unchanged: the upstream serves the path that was routed
/// and authorized.
fn with_path(uri: &Uri, path: &str) -> Result<Uri, http::Error> {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query)?);
    Ok(Uri::from_parts(parts)?)
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
