//! One request's life, in the order it happens:
//!
//! 1. [`Context`]: the request id and the route, read from one configuration
//!    generation held for the whole request;
//! 2. the CORS decision of the route's policy, with `[auth]` asked once;
//! 3. [`admit`]: every refusal the gateway makes, in one place;
//! 4. [`serve`]: the mock or the upstream;
//! 5. [`finish`]: the one place an [`Answer`] becomes a response, with the
//!    engine's CORS headers, the request id, metrics and rate-limited logs.

use std::sync::Arc;
use std::time::Duration;

use crossgate_cors::{AllowedMethods, Decision, Denial, Outcome, Policy, RequestKind};
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, ORIGIN};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

use crate::config::Access;
use crate::ops::denials::{DenialLog, DeniedRequest, RecordedRequest};
use crate::ops::metrics::{RouteMetrics, NO_ROUTE_LABEL};
use crate::proxy::auth::AuthFailure;
use crate::proxy::body::GatewayBody;
use crate::proxy::host::{self, HostBuf, HostRejection};
use crate::proxy::responses::{self, GatewayError};
use crate::proxy::router::{ForwardPath, NamedPolicy, Resolved, Route, Target, GATEWAY_ALLOW};
use crate::proxy::upgrade::{self, GatewayKey, Handshake, Tunnel, TunnelLimits, WebSocketRule};
use crate::proxy::upstream::{self, ConnInfo, Forward, UpstreamError};
use crate::server::generation::Generation;

/// Answers one request on the configuration generation it started with.
pub(crate) async fn handle(
    generation: Arc<Generation>,
    denials: &DenialLog,
    conn: &ConnInfo,
    mut request: Request<Incoming>,
) -> Response<GatewayBody> {
    let handshake = upgrade::requested(&request);
    // An extended CONNECT is the HTTP/2 form of RFC 6455's GET (RFC 8441
    // §5): routing, the methods of a route, `[auth]` and the logs see a GET,
    // as they do for the same WebSocket over HTTP/1.1.
    if handshake == Some(Handshake::ExtendedConnect) {
        *request.method_mut() = Method::GET;
    }
    let context = Context::new(&generation, &request, handshake);
    let credentials = Credentials::of(&generation, &context, &request);
    let decision = context.policy.map(|named| match context.websocket_rule() {
        Some(rule) => named
            .policy
            .decide_websocket(request.headers(), rule.require_origin),
        None => {
            let methods = resource_methods(&generation, &context, &credentials);
            named
                .policy
                .decide_for(request.method(), request.headers(), methods)
        }
    });
    if let Some(candidate) = context
        .route()
        .and_then(|r| r.report_only_policy.as_deref())
    {
        report_only(
            &generation,
            &context,
            &credentials,
            candidate,
            decision.as_ref(),
            denials,
            &request,
        );
    }
    let answer = match admit(&context, decision.as_ref(), &credentials, &request) {
        Ok(Admitted::Answered(status)) => Answer::Answered(status),
        Ok(Admitted::Serve(route, forward_path)) => {
            serve(&generation, &context, route, forward_path, conn, request).await
        }
        Err(refusal) => Answer::Refused(refusal),
    };
    finish(&generation, &context, decision.as_ref(), denials, answer)
}

/// What the pipeline knows about a request before deciding anything.
struct Context<'g> {
    request_id: HeaderValue,
    /// `None` for CONNECT (other than a WebSocket's extended CONNECT, by now
    /// a GET), which is never routed, and for an unusable host.
    resolved: Option<Resolved<'g>>,
    bad_host: Option<HostRejection>,
    /// The policy of the route, or the fallback policy when none matches.
    policy: Option<&'g NamedPolicy>,
    metrics: &'g RouteMetrics,
    route_label: &'g str,
    method: Method,
    origin: Option<HeaderValue>,
    head_too_large: bool,
    /// Whether and how the request asks for a WebSocket (see [`upgrade::requested`]).
    websocket: Option<Handshake>,
}

impl<'g> Context<'g> {
    fn new(
        generation: &'g Generation,
        request: &Request<Incoming>,
        websocket: Option<Handshake>,
    ) -> Self {
        let config = &generation.config;
        let request_id = crate::proxy::request_id::for_request(
            request.headers(),
            &config.settings.request_id_header,
        );
        // CONNECT asks the gateway to become a tunnel, which it never is: it
        // is refused before routing, whatever its target.
        let mut host_buf = HostBuf::new();
        let (resolved, bad_host) = if request.method() == Method::CONNECT {
            (None, None)
        } else {
            match host::of_request(request.uri(), request.headers(), &mut host_buf) {
                Ok(host) => (
                    Some(config.router.resolve(host, request.uri().path())),
                    None,
                ),
                Err(rejection) => (None, Some(rejection)),
            }
        };
        let route = resolved.as_ref().and_then(|resolved| resolved.route);
        let policy = match route {
            Some(route) => route.policy.as_deref(),
            None => config.fallback_policy.as_deref(),
        };
        Self {
            request_id,
            policy,
            metrics: route.map_or(&config.no_route_metrics, |r| &r.metrics),
            route_label: route.map_or(NO_ROUTE_LABEL, |r| r.label.as_str()),
            method: request.method().clone(),
            origin: request.headers().get(ORIGIN).cloned(),
            head_too_large: header_bytes(request) > config.settings.max_header_bytes,
            websocket,
            resolved,
            bad_host,
        }
    }

    fn route(&self) -> Option<&'g Route> {
        self.resolved.as_ref().and_then(|resolved| resolved.route)
    }

    /// The route's WebSocket rule when the request is a handshake the route
    /// carries: its origin is then decided as a handshake's.
    fn websocket_rule(&self) -> Option<WebSocketRule> {
        let rule = self.route()?.websocket;
        (self.websocket.is_some() && rule.enabled).then_some(rule)
    }
}

/// What `[auth]` says about a request, asked once.
enum Credentials {
    /// A public route, or no `[auth]`.
    NotRequired,
    /// A preflight for a private route without `Authorization`: it is
    /// answered with every method the gateway supports (Personium's table).
    PreflightWithout,
    /// The token was checked: for a preflight against OPTIONS, for an actual
    /// request against its method.
    Checked(Result<(), AuthFailure>),
}

impl Credentials {
    fn of(generation: &Generation, context: &Context<'_>, request: &Request<Incoming>) -> Self {
        let (Some(route), Some(auth)) = (context.route(), &generation.config.auth) else {
            return Self::NotRequired;
        };
        if route.access == Access::Public {
            return Self::NotRequired;
        }
        let headers = request.headers();
        let preflight = context.policy.is_some()
            && Policy::classify(request.method(), headers) == RequestKind::Preflight;
        if !preflight {
            return Self::Checked(auth.authorize(request.method(), headers));
        }
        if !headers.contains_key(AUTHORIZATION) {
            return Self::PreflightWithout;
        }
        Self::Checked(auth.authorize(&Method::OPTIONS, headers))
    }

    fn failure(&self) -> Option<AuthFailure> {
        match self {
            Self::Checked(Err(failure)) => Some(*failure),
            _ => None,
        }
    }
}

/// The methods a preflight is answered with: the route's own list (or the
/// policy's when it declares none), or every gateway method for a private
/// route asked without credentials.
fn resource_methods<'g>(
    generation: &'g Generation,
    context: &Context<'g>,
    credentials: &Credentials,
) -> Option<&'g AllowedMethods> {
    let route = context.route()?;
    match credentials {
        Credentials::PreflightWithout => Some(&generation.config.gateway_methods),
        _ => route.methods.as_ref().map(|methods| &methods.cors),
    }
}

/// Lets the route's report-only policy decide beside the enforced one, on
/// the requests whose enforced decision is recorded (not those refused for
/// their head's size), with the methods it would have as the route's
/// `policy`: the route's, or every gateway method for a preflight of a
/// private route without credentials.
fn report_only(
    generation: &Generation,
    context: &Context<'_>,
    credentials: &Credentials,
    candidate: &NamedPolicy,
    decision: Option<&Decision>,
    denials: &DenialLog,
    request: &Request<Incoming>,
) {
    if context.head_too_large {
        return;
    }
    let headers = request.headers();
    // Without an enforced policy no preflight was classified for `[auth]`;
    // the candidate, enforced, would see this one as its policy would.
    let preflight_without = context.policy.is_none()
        && generation.config.auth.is_some()
        && context
            .route()
            .is_some_and(|route| route.access == Access::Private)
        && Policy::classify(request.method(), headers) == RequestKind::Preflight
        && !headers.contains_key(AUTHORIZATION);
    let methods = if preflight_without {
        Some(&generation.config.gateway_methods)
    } else {
        resource_methods(generation, context, credentials)
    };
    let observed = crate::proxy::report_only::Observed {
        route: context.route_label,
        metrics: context.metrics,
        method: request.method(),
        headers,
        origin: context.origin.as_ref(),
        request_id: &context.request_id,
    };
    crate::proxy::report_only::observe(
        candidate,
        context.policy.zip(decision),
        methods,
        &observed,
        denials,
        generation.config.settings.denial_log_rate,
    );
}

/// A request the gateway lets through.
enum Admitted<'g> {
    /// The CORS decision answers it: a preflight, or a request the policy blocks.
    Answered(StatusCode),
    /// For the route's target, with the path to forward.
    Serve(&'g Route, ForwardPath),
}

/// Every refusal, in the order the gateway makes them.
fn admit<'g>(
    context: &Context<'g>,
    decision: Option<&Decision>,
    credentials: &Credentials,
    request: &Request<Incoming>,
) -> Result<Admitted<'g>, GatewayError> {
    if context.head_too_large {
        return Err(GatewayError::HeadersTooLarge);
    }
    if let Some(rejection) = context.bad_host {
        return Err(GatewayError::BadHost(rejection));
    }
    let Some(resolved) = &context.resolved else {
        return Err(GatewayError::MethodNotAllowed(HeaderValue::from_static(
            GATEWAY_ALLOW,
        )));
    };
    let forward_path = resolved.path.clone().map_err(GatewayError::BadPath)?;
    let route = resolved.route.ok_or(GatewayError::NoRoute)?;
    if let Some(status) = decision.and_then(Decision::short_circuit) {
        let preflight_allowed = decision.map(Decision::outcome) == Some(&Outcome::PreflightAllowed);
        return match credentials.failure() {
            Some(failure) if preflight_allowed => Err(GatewayError::Auth(failure)),
            _ => Ok(Admitted::Answered(status)),
        };
    }
    if let Some(handshake) = context.websocket {
        upgrade::admit(handshake, route.websocket, route.policy.is_some(), request)?;
    }
    if let Some(methods) = &route.methods {
        if !methods.accepts(request.method()) {
            return Err(GatewayError::MethodNotAllowed(methods.allow.clone()));
        }
    }
    if let Some(failure) = credentials.failure() {
        return Err(GatewayError::Auth(failure));
    }
    if let Some(limit) = route.max_body_bytes {
        if declared_length(request.headers()).is_some_and(|length| length > limit) {
            return Err(GatewayError::PayloadTooLarge);
        }
    }
    Ok(Admitted::Serve(route, forward_path))
}

/// How a request ended, before it is a response.
enum Answer {
    /// The target's response, with the upstream's time to its head.
    Served(Response<GatewayBody>, Option<Duration>),
    /// An empty answer of the CORS decision.
    Answered(StatusCode),
    /// The gateway refused the request.
    Refused(GatewayError),
    /// The upstream failed.
    Failed(UpstreamError),
}

/// The mock's answer, or the upstream's.
async fn serve(
    generation: &Generation,
    context: &Context<'_>,
    route: &Route,
    forward_path: ForwardPath,
    conn: &ConnInfo,
    mut request: Request<Incoming>,
) -> Answer {
    let upstream = match &route.target {
        Target::Mock(mock) => {
            let response = mock.respond(request.method());
            // A 2xx accepts an HTTP/2 handshake (RFC 8441 §5), which would
            // open the client's stream with no WebSocket behind it. (Over
            // HTTP/1.1 anything but a 101 refuses it.)
            if context.websocket == Some(Handshake::ExtendedConnect)
                && response.status().is_success()
            {
                return Answer::Refused(GatewayError::WebSocketDisabled);
            }
            return Answer::Served(response, None);
        }
        Target::Upstream(upstream) => upstream,
    };
    if let ForwardPath::Normalized(normal) = forward_path {
        match with_path(request.uri(), &normal) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(error) => {
                tracing::warn!(
                    request_id = client_text(&context.request_id).as_ref(),
                    route = route.label.as_str(),
                    error = %error,
                    "cannot build the normalized request target"
                );
                return Answer::Refused(GatewayError::BadGateway);
            }
        }
    }
    // Held until the upstream's body ends: the bound covers sockets and
    // upstream work, not just waiting for the head.
    let Ok(slot) = generation.upstream_slots.clone().try_acquire_owned() else {
        return Answer::Refused(GatewayError::UpstreamBusy);
    };
    // An HTTP/2 handshake has no key; the upstream gets the gateway's.
    let gateway_key = match context.websocket {
        Some(Handshake::ExtendedConnect) => match GatewayKey::insert(request.headers_mut()) {
            Some(key) => Some(key),
            None => {
                tracing::error!("the system's random source failed: no WebSocket key");
                return Answer::Refused(GatewayError::BadGateway);
            }
        },
        _ => None,
    };
    let settings = &generation.config.settings;
    let forward = Forward {
        conn,
        trusted_proxies: &settings.trusted_proxies,
        request_id: (&settings.request_id_header, &context.request_id),
        response_timeout: settings.response_timeout,
        max_body_bytes: route.max_body_bytes,
        websocket: context.websocket.is_some(),
    };
    let client_upgrade = context
        .websocket
        .is_some()
        .then(|| hyper::upgrade::on(&mut request));
    match upstream::forward(&generation.client, upstream, request, forward).await {
        Ok(forwarded) => {
            let mut response = forwarded.response;
            if let Some(key) = &gateway_key {
                if let Err(error) = check_extended_connect_answer(key, &response) {
                    return Answer::Failed(error);
                }
            }
            // `forward` lets a 101 through only to a WebSocket handshake.
            let body_slot = match client_upgrade
                .filter(|_| response.status() == StatusCode::SWITCHING_PROTOCOLS)
            {
                Some(client_upgrade) => {
                    let limits = TunnelLimits {
                        idle: settings.idle_timeout,
                        send: settings.send_timeout,
                        shutdown: settings.shutdown_timeout,
                    };
                    let upstream_upgrade = hyper::upgrade::on(&mut response);
                    if gateway_key.is_some() {
                        upgrade::into_extended_connect_acceptance(&mut response);
                    }
                    // The open tunnel is upstream work: it holds the slot,
                    // not the 101's empty body.
                    let tunnel = Tunnel::new(
                        client_upgrade,
                        upstream_upgrade,
                        limits,
                        route.metrics.clone(),
                        slot,
                    );
                    response.extensions_mut().insert(tunnel);
                    if let Some(handshake) = context.websocket {
                        route.metrics.websocket_upgraded(handshake);
                    }
                    None
                }
                None => Some(slot),
            };
            let in_flight = forwarded.in_flight;
            Answer::Served(
                response.map(|body| GatewayBody::upstream(body, body_slot, in_flight)),
                Some(forwarded.elapsed),
            )
        }
        Err(error) => Answer::Failed(error),
    }
}

/// Refuses an upstream's answer to an HTTP/2 handshake that the client
/// would misread: a `101` that does not prove it read the gateway's key, and
/// any other 2xx, which would open the client's stream as a tunnel with
/// nothing behind it (RFC 8441 §5: a 2xx accepts the extended CONNECT).
fn check_extended_connect_answer<B>(
    key: &GatewayKey,
    response: &Response<B>,
) -> Result<(), UpstreamError> {
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS && !key.accepted_by(response.headers()) {
        return Err(UpstreamError::BadFraming(
            "the upstream's Sec-WebSocket-Accept does not answer the gateway's key".into(),
        ));
    }
    if status.is_success() {
        return Err(UpstreamError::BadFraming(format!(
            "{status} to a WebSocket handshake, which asks for 101"
        )));
    }
    Ok(())
}

/// The one place an answer becomes a response: counted, logged within the
/// route's budget, with the CORS headers and the request id.
fn finish(
    generation: &Generation,
    context: &Context<'_>,
    decision: Option<&Decision>,
    denials: &DenialLog,
    answer: Answer,
) -> Response<GatewayBody> {
    let log_rate = generation.config.settings.denial_log_rate;
    // A request over the head limit is refused as such, not counted or
    // logged as a CORS denial.
    let over_limit = matches!(answer, Answer::Refused(GatewayError::HeadersTooLarge));
    if let (Some(decision), false) = (decision, over_limit) {
        record_outcome(decision, context, denials, log_rate);
    }
    let mut response = match answer {
        Answer::Served(response, elapsed) => {
            if let Some(elapsed) = elapsed {
                context.metrics.upstream_latency(elapsed);
            }
            response
        }
        Answer::Answered(status) => responses::empty(status),
        Answer::Refused(refusal) => {
            match &refusal {
                GatewayError::Auth(failure) => log_auth_failure(context, *failure, log_rate),
                GatewayError::UpstreamBusy => context.metrics.upstream_error(UPSTREAM_BUSY),
                GatewayError::WebSocketOriginNotAllowed => {
                    let denial = Denial::WebSocketOriginNotAllowed;
                    context.metrics.actual_denied(&denial);
                    record_denial(&denial, RequestKind::Actual, context, denials, log_rate);
                }
                _ => {}
            }
            refusal.response()
        }
        Answer::Failed(error) => {
            context.metrics.upstream_error(error.code());
            log_upstream_failure(context, &error, log_rate);
            GatewayError::from(&error).response()
        }
    };
    if let (Some(named), Some(decision)) = (context.policy, decision) {
        named.policy.apply(decision, response.headers_mut());
    }
    response.headers_mut().insert(
        generation.config.settings.request_id_header.clone(),
        context.request_id.clone(),
    );
    context.metrics.request(response.status());
    response
}

/// The metrics reason of a request refused at `max_upstream_requests`.
const UPSTREAM_BUSY: &str = "upstream_busy";

fn record_outcome(decision: &Decision, context: &Context<'_>, denials: &DenialLog, log_rate: u32) {
    let metrics = context.metrics;
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
    record_denial(denial, decision.kind(), context, denials, log_rate);
}

/// Records a denial in `/decisions` and logs it within the route's budget.
fn record_denial(
    denial: &Denial,
    kind: RequestKind,
    context: &Context<'_>,
    denials: &DenialLog,
    log_rate: u32,
) {
    let metrics = context.metrics;
    let origin = context.origin.as_ref();
    denials.record(&DeniedRequest {
        request: RecordedRequest {
            origin: origin.map_or(&[][..], HeaderValue::as_bytes),
            route: context.route_label,
            method: context.method.as_str(),
            request_id: context.request_id.as_bytes(),
        },
        denial,
    });
    if !metrics.log_budget().admit(denial.code(), log_rate) {
        return;
    }
    // Values from the request are recorded as `&str`: the text format writes
    // them quoted and escaped, the JSON format as JSON strings, so they cannot
    // forge fields or lines (`%` would write them raw).
    let origin = origin.map_or_else(Default::default, client_text);
    tracing::warn!(
        request_id = client_text(&context.request_id).as_ref(),
        route = context.route_label,
        method = context.method.as_str(),
        origin = origin.as_ref(),
        kind = ?kind,
        reason = denial.code(),
        detail = denial.to_string().as_str(),
        "CORS request denied"
    );
}

fn log_upstream_failure(context: &Context<'_>, error: &UpstreamError, log_rate: u32) {
    if !context.metrics.log_budget().admit(error.code(), log_rate) {
        return;
    }
    let upstream = match context.route().map(|route| &route.target) {
        Some(Target::Upstream(upstream)) => upstream.as_str(),
        _ => "",
    };
    tracing::warn!(
        request_id = client_text(&context.request_id).as_ref(),
        route = context.route_label,
        upstream,
        reason = error.code(),
        error = error.to_string().as_str(),
        "upstream request failed"
    );
}

fn log_auth_failure(context: &Context<'_>, failure: AuthFailure, log_rate: u32) {
    if !context.metrics.log_budget().admit(failure.code(), log_rate) {
        return;
    }
    tracing::info!(
        request_id = client_text(&context.request_id).as_ref(),
        route = context.route_label,
        reason = failure.code(),
        "request refused by [auth]"
    );
}

/// A header value as log text (lossy: obs-text bytes become U+FFFD).
pub(crate) fn client_text(value: &HeaderValue) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
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
