//! Forwarding an actual request to its upstream: the URI, the forwarded and
//! hop-by-hop headers, timeouts, and what went wrong when it failed.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;

use crate::body::{BodyTooLarge, LimitedBody, RequestBodyError};
use crate::client::Connector;
use crate::config::Report;

/// The client the gateway forwards with.
pub type UpstreamClient = Client<Connector, LimitedBody>;

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

    fn uri_for(&self, path_and_query: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
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

/// What the gateway knows about the client connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the client connected over TLS.
    pub tls: bool,
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
    /// The request body exceeded the route's limit while streaming (413).
    #[error(transparent)]
    BodyTooLarge(BodyTooLarge),
    /// The request could not be turned into an upstream request (502).
    #[error("cannot build the upstream request: {0}")]
    BadRequest(#[from] http::Error),
}

impl UpstreamError {
    /// The log label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "upstream_timeout",
            Self::Unreachable(_) => "upstream_unreachable",
            Self::BodyTooLarge(_) => "body_too_large",
            Self::BadRequest(_) => "bad_upstream_request",
        }
    }
}

/// Per-request inputs of [`forward`].
pub struct Forward<'a> {
    /// The client connection.
    pub conn: ConnInfo,
    /// The request id header and its value.
    pub request_id: (&'a HeaderName, &'a HeaderValue),
    /// How long to wait for the upstream's response head.
    pub response_timeout: Duration,
    /// The route's body limit.
    pub max_body_bytes: Option<u64>,
}

/// Sends `request` to `upstream` and returns its response head with the body
/// still streaming, hop-by-hop headers removed, and the time the head took.
pub async fn forward(
    client: &UpstreamClient,
    upstream: &Upstream,
    request: Request<Incoming>,
    options: Forward<'_>,
) -> Result<(Response<Incoming>, Duration), UpstreamError> {
    let (mut parts, body) = request.into_parts();
    let original_host = parts.headers.get(HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    parts.uri = upstream.uri_for(parts.uri.path_and_query())?;
    parts.version = Version::HTTP_11;
    let headers = &mut parts.headers;
    remove_hop_by_hop(headers);
    headers.remove(HOST);
    add_forwarded(headers, options.conn, original_host);
    headers.insert(options.request_id.0.clone(), options.request_id.1.clone());

    let request = Request::from_parts(parts, LimitedBody::new(body, options.max_body_bytes));
    let started = Instant::now();
    let response =
        match tokio::time::timeout(options.response_timeout, client.request(request)).await {
            Err(_) => {
                return Err(UpstreamError::Timeout(format!(
                    "no response within {:?}",
                    options.response_timeout
                )))
            }
            Ok(Err(error)) => return Err(classify(&error)),
            Ok(Ok(response)) => response,
        };
    let elapsed = started.elapsed();
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    Ok((Response::from_parts(parts, body), elapsed))
}

fn classify(error: &hyper_util::client::legacy::Error) -> UpstreamError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    let mut detail = error.to_string();
    while let Some(current) = source {
        if let Some(RequestBodyError::TooLarge(too_large)) =
            current.downcast_ref::<RequestBodyError>()
        {
            return UpstreamError::BodyTooLarge(*too_large);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return UpstreamError::Timeout(format!("connect: {io}"));
            }
        }
        if current.source().is_none() {
            detail = format!("{error}: {current}");
        }
        source = current.source();
    }
    UpstreamError::Unreachable(detail)
}

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(http::header::TRANSFER_ENCODING);
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

fn add_forwarded(headers: &mut HeaderMap, conn: ConnInfo, original_host: Option<HeaderValue>) {
    let client_ip = conn.peer.ip().to_string();
    let forwarded_for = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(previous) if !previous.trim().is_empty() => format!("{previous}, {client_ip}"),
        _ => client_ip,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    let proto = if conn.tls {
        HeaderValue::from_static("https")
    } else {
        HeaderValue::from_static("http")
    };
    headers.insert(X_FORWARDED_PROTO.clone(), proto);
    match original_host {
        Some(host) => {
            headers.insert(X_FORWARDED_HOST.clone(), host);
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
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
}
