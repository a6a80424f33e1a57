//! Forwarding an actual request to its upstream: the URI, the forwarded and
//! hop-by-hop headers, timeouts, and what went wrong when it failed.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, TRANSFER_ENCODING};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;

use crate::config::Report;
use crate::proxy::body::{BodyTooLarge, LimitedBody, RequestBodyError};
use crate::proxy::client::{Origin, SendError, UpstreamBody, UpstreamClient};
use crate::proxy::forwarded::{ClientView, TrustedProxies};
use crate::proxy::framing::{
    check_response, is_expected_informational, normalize_content_length, FramingError,
};
use crate::proxy::pool::{InFlight, UpstreamPool};
use crate::proxy::upgrade;

/// A route's upstream, parsed once.
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// Path prefix without its trailing slash; empty for none.
    base_path: String,
    display: String,
}

impl Upstream {
    /// Checks and compiles `upstream = "http://host:port[/base]"` at `key`.
    pub(crate) fn compile(text: &str, key: &str, report: &mut Report) -> Option<Self> {
        let fix = "write it as http://host:port or https://host[:port], optionally with a base path: \"http://127.0.0.1:3000\"";
        let uri: Uri = match text.parse() {
            Ok(uri) => uri,
            Err(error) => {
                report.problem(key, format!("{text:?} is not a URL: {error}"), fix);
                return None;
            }
        };
        let scheme = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS => scheme.clone(),
            _ => {
                report.problem(
                    key,
                    format!("{text:?} must start with http:// or https://"),
                    fix,
                );
                return None;
            }
        };
        let Some(authority) = uri.authority().cloned() else {
            report.problem(key, format!("{text:?} has no host"), fix);
            return None;
        };
        if authority.as_str().contains('@') {
            report.problem(
                key,
                format!("{text:?} carries user information"),
                "remove the user:password@ part",
            );
            return None;
        }
        if uri.query().is_some() {
            report.problem(
                key,
                format!("{text:?} has a query string"),
                "remove the ?... part",
            );
            return None;
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        Some(Self {
            scheme,
            authority,
            base_path,
            display: text.to_owned(),
        })
    }

    /// The upstream as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    pub(crate) fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    pub(crate) fn uri_for(
        &self,
        path_and_query: Option<&PathAndQuery>,
    ) -> Result<Uri, http::Error> {
        let path_and_query = match (self.base_path.is_empty(), path_and_query) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => {
                let rest = pq.map_or("/", PathAndQuery::as_str);
                let mut joined = String::with_capacity(self.base_path.len() + rest.len());
                joined.push_str(&self.base_path);
                joined.push_str(rest);
                PathAndQuery::try_from(joined)?
            }
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

/// What the gateway knows about the client connection, formatted once when
/// it is accepted.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    view: ClientView,
}

impl ConnInfo {
    /// A connection from `peer`, over TLS or not.
    pub fn new(peer: SocketAddr, tls: bool) -> Self {
        Self {
            view: ClientView::new(peer, tls),
        }
    }
}

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No response head within the response timeout, or no connection within the connect timeout (504).
    #[error("upstream timed out: {0}")]
    Timeout(String),
    /// Connection refused, reset or closed before a response (502).
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The upstream's response head is ambiguous or unasked-for (502); the
    /// connection it came on is dropped, never reused.
    #[error("upstream response refused: {0}")]
    BadFraming(String),
    /// The request body exceeded the route's limit while streaming (413).
    #[error(transparent)]
    BodyTooLarge(BodyTooLarge),
    /// The client's body is malformed: a bad chunk, a short body, or an
    /// unusable `Content-Length` (400, the client's fault).
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    /// The request could not be turned into an upstream request (502).
    #[error("cannot build the upstream request: {0}")]
    BadRequest(#[from] http::Error),
    /// Every target of the pool is ejected or failing its health checks (503).
    #[error("no target of the upstream pool is in rotation")]
    NoHealthyUpstream,
}

impl UpstreamError {
    /// The log and metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "upstream_timeout",
            Self::Unreachable(_) => "upstream_unreachable",
            Self::BadFraming(_) => "upstream_bad_framing",
            Self::BodyTooLarge(_) => "body_too_large",
            Self::MalformedBody(_) => "malformed_request_body",
            Self::BadRequest(_) => "bad_upstream_request",
            Self::NoHealthyUpstream => "no_healthy_upstream",
        }
    }

    /// Whether the target is to blame (counted as its failure).
    fn is_upstream_fault(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_) | Self::Unreachable(_) | Self::BadFraming(_)
        )
    }
}

/// Per-request inputs of [`forward`].
pub struct Forward<'a> {
    /// The client connection.
    pub conn: &'a ConnInfo,
    /// Peers whose forwarding headers are kept.
    pub trusted_proxies: &'a TrustedProxies,
    /// The request id header and its value.
    pub request_id: (&'a HeaderName, &'a HeaderValue),
    /// How long to wait for the upstream's response head.
    pub response_timeout: Duration,
    /// The route's body limit.
    pub max_body_bytes: Option<u64>,
    /// Whether the request is an admitted WebSocket handshake, forwarded with
    /// its upgrade headers and allowed a `101` in answer.
    pub websocket: bool,
}

/// A response head from the upstream, its body still streaming.
pub struct Forwarded {
    /// Hop-by-hop headers removed.
    pub response: Response<UpstreamBody>,
    /// The time the head took, from the attempt that got it.
    pub elapsed: Duration,
    /// For `least_requests`, the target's in-flight count, to be held with the body.
    pub in_flight: Option<InFlight>,
}

/// Sends `request` to a target of `pool` and returns its response head with
/// the body still streaming, hop-by-hop headers removed.
///
/// A request that cannot have reached its target (the connection was refused
/// or timed out before any byte was sent) goes to another target, once per
/// target, when it is idempotent (RFC 9110 §9.2.2) and has no body: a body
/// that was streamed cannot be replayed.
pub async fn forward(
    client: &UpstreamClient,
    pool: &UpstreamPool,
    request: Request<Incoming>,
    options: Forward<'_>,
) -> Result<Forwarded, UpstreamError> {
    let (mut parts, body) = request.into_parts();
    normalize_content_length(&mut parts.headers)
        .map_err(|error| UpstreamError::MalformedBody(error.to_string()))?;
    let original_host = parts.headers.get(HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    // Taken, not cloned: each attempt builds its target's URI from it.
    let path_and_query = std::mem::take(&mut parts.uri).into_parts().path_and_query;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    remove_hop_by_hop(headers);
    if options.websocket {
        upgrade::restore_headers(headers);
    }
    headers.remove(HOST);
    options
        .conn
        .view
        .apply(headers, options.trusted_proxies, original_host);
    headers.insert(options.request_id.0.clone(), options.request_id.1.clone());

    // Only a pool can retry, so only a pool pays for keeping the head.
    let replayable =
        pool.has_alternatives() && is_idempotent(&parts.method) && body.is_end_stream();
    let (mut body, replay) = if replayable {
        (None, Some((parts.method.clone(), parts.headers.clone())))
    } else {
        (Some(body), None)
    };
    let mut tried = 0u64;
    let mut last_error = None;
    loop {
        let Some(index) = pool.pick(tried) else {
            return Err(last_error.unwrap_or(UpstreamError::NoHealthyUpstream));
        };
        tried |= 1 << index;
        let target = &pool.targets()[index];
        parts.uri = target.upstream.uri_for(path_and_query.as_ref())?;
        let request_body = match body.take() {
            Some(body) => LimitedBody::new(body, options.max_body_bytes),
            None => LimitedBody::empty(),
        };
        let in_flight = pool.begin(index);
        match send(
            client,
            target.origin(client),
            Request::from_parts(parts, request_body),
            options.response_timeout,
            options.websocket,
        )
        .await
        {
            Ok((response, elapsed)) => {
                pool.succeeded(index);
                return Ok(Forwarded {
                    response,
                    elapsed,
                    in_flight,
                });
            }
            Err(Attempt::NotSent(error)) => {
                pool.connect_failed(index);
                let Some((method, headers)) = &replay else {
                    return Err(error);
                };
                last_error = Some(error);
                parts = Request::new(()).into_parts().0;
                parts.method = method.clone();
                parts.version = Version::HTTP_11;
                parts.headers = headers.clone();
            }
            Err(Attempt::Failed(error)) => {
                if error.is_upstream_fault() {
                    pool.failed(index);
                }
                return Err(error);
            }
        }
    }
}

/// How one attempt failed.
enum Attempt {
    /// No connection: the request cannot have reached the target.
    NotSent(UpstreamError),
    /// After the request may have been sent.
    Failed(UpstreamError),
}

/// RFC 9110 §9.2.2; TRACE is never forwarded with a body either, but the
/// gateway does not route it specially, so it is left out.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

async fn send(
    client: &UpstreamClient,
    origin: &Arc<Origin>,
    mut request: Request<LimitedBody>,
    response_timeout: Duration,
    websocket: bool,
) -> Result<(Response<UpstreamBody>, Duration), Attempt> {
    // hyper's client consumes 1xx heads itself; this only notes a status the
    // gateway refuses, to be checked once the final head arrives.
    let unexpected_informational = Arc::new(AtomicU16::new(0));
    let seen = unexpected_informational.clone();
    hyper::ext::on_informational(&mut request, move |informational| {
        if !is_expected_informational(informational.status()) {
            seen.store(informational.status().as_u16(), Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    let sent = tokio::time::timeout(response_timeout, client.send(origin, request, started));
    let (response, connection) = match sent.await {
        Err(_) => {
            return Err(Attempt::Failed(UpstreamError::Timeout(format!(
                "no response within {response_timeout:?}"
            ))))
        }
        Ok(Err(error @ SendError::Connect(_))) => return Err(Attempt::NotSent(classify(&error))),
        Ok(Err(error)) => return Err(Attempt::Failed(classify(&error))),
        Ok(Ok(sent)) => sent,
    };
    let elapsed = started.elapsed();
    let (mut parts, body) = response.into_parts();
    let switched = websocket
        && parts.status == StatusCode::SWITCHING_PROTOCOLS
        && upgrade::switched_to_websocket(&parts.headers);
    let checked = match unexpected_informational.load(Ordering::Relaxed) {
        0 if switched => Ok(()),
        0 => check_response(parts.status, &mut parts.headers),
        status => Err(FramingError::UnexpectedInformational(status)),
    };
    // A refused answer may leave the upstream and the gateway disagreeing on
    // where it ends, so its connection is dropped here, never reused.
    if let Err(refusal) = checked {
        return Err(Attempt::Failed(UpstreamError::BadFraming(
            refusal.to_string(),
        )));
    }
    remove_hop_by_hop(&mut parts.headers);
    if switched {
        upgrade::restore_headers(&mut parts.headers);
    }
    // A WebSocket handshake's connection becomes its tunnel, or is refused.
    let connection = connection.filter(|_| !websocket);
    Ok((
        Response::from_parts(parts, UpstreamBody::new(body, connection)),
        elapsed,
    ))
}

fn classify(error: &SendError) -> UpstreamError {
    let error = error.as_error();
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    let mut detail = error.to_string();
    while let Some(current) = source {
        match current.downcast_ref::<RequestBodyError>() {
            Some(RequestBodyError::TooLarge(too_large)) => {
                return UpstreamError::BodyTooLarge(*too_large)
            }
            Some(RequestBodyError::Client(client)) => {
                return UpstreamError::MalformedBody(client.to_string())
            }
            None => {}
        }
        // hyper's parser refuses a response head no length can be read from
        // (differing or invalid `Content-Length`s) and closes the connection.
        if current
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse)
        {
            return UpstreamError::BadFraming(format!("{error}: {current}"));
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return UpstreamError::Timeout(format!("connect: {io}"));
            }
        }
        if current.source().is_none() && !std::ptr::addr_eq(current, error) {
            detail = format!("{error}: {current}");
        }
        source = current.source();
    }
    UpstreamError::Unreachable(detail)
}

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::UPGRADE,
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
/// Its value is split byte-wise, so a token that is not a header name (an
/// obs-text byte, say) is skipped without hiding the valid names around it.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none (HTTP/2 forbids them): one pass comparing the
    // names is much cheaper than ten hashed removals that find nothing.
    let is_hop_by_hop = |name: &HeaderName| *name == TRANSFER_ENCODING || HOP_BY_HOP.contains(name);
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
            .filter_map(|name| HeaderName::from_bytes(name.trim_ascii()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(TRANSFER_ENCODING);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;

    fn upstream(text: &str) -> Option<Upstream> {
        Upstream::compile(
            text,
            "routes[0].upstream",
            &mut Report::new(&ConfigSource::Demo),
        )
    }

    #[test]
    fn joins_base_path_and_request_path() {
        let plain = upstream("http://127.0.0.1:3000").expect("valid");
        let pq = PathAndQuery::from_static("/api/items?x=1");
        assert_eq!(
            plain.uri_for(Some(&pq)).expect("uri"),
            "http://127.0.0.1:3000/api/items?x=1"
        );
        let based = upstream("https://backend.internal/v1/").expect("valid");
        assert_eq!(
            based.uri_for(Some(&pq)).expect("uri"),
            "https://backend.internal/v1/api/items?x=1"
        );
    }

    #[test]
    fn refuses_non_http_upstreams() {
        assert!(upstream("ftp://x").is_none());
        assert!(upstream("127.0.0.1:3000").is_none());
        assert!(upstream("http://u:p@host").is_none());
        assert!(upstream("http://host/?q").is_none());
    }

    #[test]
    fn strips_hop_by_hop_and_connection_listed_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_removed() {
        for name in HOP_BY_HOP.iter().chain([&TRANSFER_ENCODING]) {
            let mut headers = HeaderMap::new();
            headers.insert(name.clone(), HeaderValue::from_static("x"));
            headers.insert("x-kept", HeaderValue::from_static("1"));
            remove_hop_by_hop(&mut headers);
            let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
            assert_eq!(names, ["x-kept"], "{name}");
        }
    }

    #[test]
    fn an_unparseable_connection_token_hides_no_other_name() {
        let mut headers = HeaderMap::new();
        let value =
            HeaderValue::from_bytes(b"x-a, bad\xffname, x-b").expect("obs-text is a valid value");
        headers.insert(CONNECTION, value);
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert("x-b", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut headers);
        assert!(headers.is_empty(), "{headers:?}");
    }
}
