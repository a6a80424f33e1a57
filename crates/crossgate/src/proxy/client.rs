//! Connections to upstreams, over hyper-rustls with the `ring` provider and
//! the webpki (Mozilla) roots.
//!
//! Each origin (scheme and authority) keeps a stack of its idle HTTP/1.1
//! connections and, for an `https://` origin that chose HTTP/2 through ALPN,
//! its one shared HTTP/2 connection. A pool target looks its origin up once,
//! when it is first used; after that a request takes a connection with a pop
//! under a lock held for the pop alone, and an HTTP/1.1 connection goes back
//! on the stack when its response body has ended. This replaces hyper-util's
//! legacy pooled client, which hashed a pool key (SipHash) at every checkout
//! and put, and spawned a task per request to put the connection back.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

use crate::proxy::body::LimitedBody;
use crate::proxy::upstream::Upstream;

/// The connector of every client built here: `http://` and `https://`.
pub type Connector = HttpsConnector<HttpConnector>;

/// Timeouts and pool sizes of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// How many idle connections are kept per upstream host.
    pub pool_max_idle_per_host: usize,
}

impl ClientOptions {
    /// Options with `connect_timeout` and the gateway's pool defaults
    /// (idle connections kept 90 s, at most 256 per host).
    pub fn with_connect_timeout(connect_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
        }
    }
}

/// The TLS setup could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS for upstream connections: {0}")]
pub struct ClientError(#[from] rustls::Error);

/// The gateway's upstream client; clones share the connections.
#[derive(Clone)]
pub struct UpstreamClient(Arc<Shared>);

struct Shared {
    connector: Connector,
    options: ClientOptions,
    http2: http2::Builder<TokioExecutor>,
    /// Looked up once per pool target, never per request, so that routes and
    /// reloads naming the same origin share its connections.
    origins: Mutex<HashMap<(Scheme, Authority), Weak<Origin>>>,
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("options", &self.0.options)
            .finish_non_exhaustive()
    }
}

/// A client that trusts the webpki (Mozilla) roots.
pub fn build(options: &ClientOptions) -> Result<UpstreamClient, ClientError> {
    use hyper_rustls::ConfigBuilderExt;
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_webpki_roots()
    .with_no_client_auth();
    Ok(build_with_tls(options, tls))
}

/// A client with a TLS configuration of the caller's (custom roots, say).
pub fn build_with_tls(options: &ClientOptions, tls: rustls::ClientConfig) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(options.connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new());
    UpstreamClient(Arc::new(Shared {
        connector,
        options: *options,
        http2,
        origins: Mutex::new(HashMap::new()),
    }))
}

/// Why a request got no response head.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made, so nothing was sent.
    Connect(Box<dyn StdError + Send + Sync>),
    /// The request failed on its connection.
    Request(hyper::Error),
}

impl SendError {
    pub(crate) fn as_error(&self) -> &(dyn StdError + 'static) {
        match self {
            Self::Connect(error) => error.as_ref(),
            Self::Request(error) => error,
        }
    }
}

impl UpstreamClient {
    /// The connections of `upstream`'s origin. Takes a lock and hashes: call
    /// it once per target, not per request.
    pub(crate) fn origin(&self, upstream: &Upstream) -> Arc<Origin> {
        let key = (upstream.scheme().clone(), upstream.authority().clone());
        let mut origins = lock(&self.0.origins);
        if let Some(origin) = origins.get(&key).and_then(Weak::upgrade) {
            return origin;
        }
        origins.retain(|_, origin| origin.strong_count() > 0);
        let origin = Arc::new(Origin::new(&key.0, &key.1, &self.0.options));
        origins.insert(key, Arc::downgrade(&origin));
        Origin::reap_idle(&origin, self.0.options.pool_idle_timeout);
        origin
    }

    /// Sends `request`, whose URI is absolute, on an idle connection of
    /// `origin` or a new one, and returns the response head with the
    /// connection to give back once its body has ended (HTTP/1.1 only).
    ///
    /// A request that an idle connection returned unsent (it closed just
    /// then) is sent again on the next one, or a new one.
    pub(crate) async fn send(
        &self,
        origin: &Arc<Origin>,
        mut request: Request<LimitedBody>,
        now: Instant,
    ) -> Result<(Response<Incoming>, Option<Reusable>), SendError> {
        loop {
            let (sender, reused) = match origin.take_idle(now) {
                Some(sender) => (sender, true),
                None => (self.connect(origin).await?, false),
            };
            let returned = match sender {
                Sender::Http1(mut sender) => {
                    request
                        .headers_mut()
                        .entry(HOST)
                        .or_insert_with(|| origin.host.clone());
                    let absolute = std::mem::take(request.uri_mut());
                    *request.uri_mut() = origin_form(&absolute);
                    match sender.try_send_request(request).await {
                        Ok(response) => {
                            let reusable = Reusable {
                                sender,
                                origin: origin.clone(),
                            };
                            return Ok((response, Some(reusable)));
                        }
                        Err(mut error) => match error.take_message() {
                            Some(mut returned) if reused => {
                                *returned.uri_mut() = absolute;
                                returned
                            }
                            _ => return Err(SendError::Request(error.into_error())),
                        },
                    }
                }
                Sender::Http2(mut sender) => match sender.try_send_request(request).await {
                    Ok(response) => return Ok((response, None)),
                    Err(mut error) => match error.take_message() {
                        Some(returned) if reused => returned,
                        _ => return Err(SendError::Request(error.into_error())),
                    },
                },
            };
            request = returned;
        }
    }

    /// A new connection to `origin`, its task spawned; HTTP/2 when ALPN
    /// chose it, and then shared through the origin.
    async fn connect(&self, origin: &Origin) -> Result<Sender, SendError> {
        let mut connector = self.0.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(SendError::Connect)?;
        let io = connector
            .call(origin.uri.clone())
            .await
            .map_err(SendError::Connect)?;
        if io.connected().is_negotiated_h2() {
            let (sender, connection) = self
                .0
                .http2
                .handshake(io)
                .await
                .map_err(SendError::Request)?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "upstream HTTP/2 connection ended");
                }
            });
            lock(&origin.idle).http2 = Some((sender.clone(), Instant::now()));
            return Ok(Sender::Http2(sender));
        }
        let (sender, connection) = http1::handshake(io).await.map_err(SendError::Request)?;
        tokio::spawn(async move {
            // With upgrades, so that a WebSocket handshake's 101 hands over the socket.
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "upstream HTTP/1.1 connection ended");
            }
        });
        Ok(Sender::Http1(sender))
    }
}

/// One origin's connections.
pub struct Origin {
    /// `scheme://authority/`, what the connector dials.
    uri: Uri,
    /// The `Host` header of HTTP/1.1 requests, without a default port.
    host: HeaderValue,
    idle_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    /// Most recently used last, with the time each was put back.
    http1: Vec<(http1::SendRequest<LimitedBody>, Instant)>,
    /// Shared by every request, with the time it was last taken.
    http2: Option<(http2::SendRequest<LimitedBody>, Instant)>,
}

enum Sender {
    Http1(http1::SendRequest<LimitedBody>),
    Http2(http2::SendRequest<LimitedBody>),
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl Origin {
    fn new(scheme: &Scheme, authority: &Authority, options: &ClientOptions) -> Self {
        let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
        let host = match authority.port_u16() {
            Some(port) if port != default_port => authority.as_str(),
            _ => authority.host(),
        };
        Self {
            uri: Uri::builder()
                .scheme(scheme.clone())
                .authority(authority.clone())
                .path_and_query("/")
                .build()
                .unwrap_or_default(),
            // An authority is always a valid header value.
            host: HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("")),
            idle_timeout: options.pool_idle_timeout,
            max_idle: options.pool_max_idle_per_host,
            idle: Mutex::new(Idle::default()),
        }
    }

    /// The most recently used connection that can take a request now.
    /// Connections still busy (their request body still streaming, or the
    /// end of their response not yet seen by their task) stay for later;
    /// closed and expired ones are dropped.
    fn take_idle(&self, now: Instant) -> Option<Sender> {
        let mut idle = lock(&self.idle);
        if let Some((sender, taken)) = &mut idle.http2 {
            if sender.is_ready() {
                *taken = now;
                return Some(Sender::Http2(sender.clone()));
            }
            idle.http2 = None;
        }
        let stack = &mut idle.http1;
        let mut index = stack.len();
        while index > 0 {
            index -= 1;
            let (sender, since) = &stack[index];
            if sender.is_ready() && now.saturating_duration_since(*since) < self.idle_timeout {
                return Some(Sender::Http1(stack.remove(index).0));
            }
            if sender.is_closed() || now.saturating_duration_since(*since) >= self.idle_timeout {
                stack.remove(index);
            }
        }
        None
    }

    fn put_back(&self, sender: http1::SendRequest<LimitedBody>) {
        if sender.is_closed() {
            return;
        }
        let since = Instant::now();
        let mut idle = lock(&self.idle);
        if idle.http1.len() < self.max_idle {
            idle.http1.push((sender, since));
        }
    }

    /// Drops the connections idle longer than `timeout`, every `timeout`,
    /// until the origin is gone: without requests to find them, they would
    /// otherwise stay open as long as the upstream keeps them.
    fn reap_idle(origin: &Arc<Self>, timeout: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let origin = Arc::downgrade(origin);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(timeout);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(origin) = origin.upgrade() else {
                    return;
                };
                let now = Instant::now();
                let expired = |since: Instant| now.saturating_duration_since(since) >= timeout;
                let mut idle = lock(&origin.idle);
                idle.http1
                    .retain(|(sender, since)| !sender.is_closed() && !expired(*since));
                if idle
                    .http2
                    .as_ref()
                    .is_some_and(|(sender, taken)| sender.is_closed() || expired(*taken))
                {
                    idle.http2 = None;
                }
            }
        });
    }
}

/// The origin-form request target of an HTTP/1.1 request (RFC 9112 §3.2.1).
fn origin_form(absolute: &Uri) -> Uri {
    match absolute.path_and_query() {
        Some(path) if path.as_str() != "/" => Uri::from(path.clone()),
        _ => Uri::default(),
    }
}

/// The lock is held for a push or a pop only, so a panic while it is held
/// leaves the stack consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An HTTP/1.1 connection whose response is streaming, to be given back to
/// its origin once the body has ended. Dropped instead, it closes, which is
/// how a connection with a refused response is never used again.
pub(crate) struct Reusable {
    sender: http1::SendRequest<LimitedBody>,
    origin: Arc<Origin>,
}

/// An upstream response body that gives its connection back when it ends.
#[derive(Debug)]
pub struct UpstreamBody {
    body: Incoming,
    connection: Option<Reusable>,
}

impl fmt::Debug for Reusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reusable").field(&self.origin).finish()
    }
}

impl UpstreamBody {
    /// `body`, giving `connection` back once it has ended.
    pub(crate) fn new(body: Incoming, connection: Option<Reusable>) -> Self {
        Self { body, connection }
    }

    fn give_back(&mut self) {
        if let Some(Reusable { sender, origin }) = self.connection.take() {
            origin.put_back(sender);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.give_back(),
            Some(Ok(_)) if this.body.is_end_stream() => this.give_back(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.connection = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for UpstreamBody {
    /// An empty body is never polled: it has ended all the same.
    fn drop(&mut self) {
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}
