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
use std::sync::atomic::{AtomicBool, Ordering};
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
use crate::proxy::upstream::{is_idempotent, Upstream};

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
    /// then) is sent again on the next one, or a new one. An idempotent
    /// request without a body that an idle connection took but closed on
    /// before any answer (the upstream ended the keep-alive as it was
    /// written) is sent once more, on a new connection, as RFC 9112 §9.3.1
    /// allows and nginx does.
    pub(crate) async fn send(
        &self,
        origin: &Arc<Origin>,
        mut request: Request<LimitedBody>,
        now: Instant,
    ) -> Result<(Response<Incoming>, Option<Reusable>), SendError> {
        let mut may_reuse = true;
        loop {
            let idle = if may_reuse {
                origin.take_idle(now)
            } else {
                None
            };
            let (sender, reused) = match idle {
                Some(sender) => (sender, true),
                // Boxed: the handshakes' futures are several kilobytes, which
                // every request's future would otherwise carry, and copy
                // whenever it moves (an HTTP/2 stream's future is moved
                // into its task). Only a request that connects pays.
                None => Box::pin(self.connect_or_share(origin, now, may_reuse)).await?,
            };
            let returned = match sender {
                Sender::Http1(mut sender) => {
                    request
                        .headers_mut()
                        .entry(HOST)
                        .or_insert_with(|| origin.host.clone());
                    let absolute = std::mem::take(request.uri_mut());
                    *request.uri_mut() = origin_form(&absolute);
                    // Kept only where a resend may follow, the body being
                    // empty: a copy of the head, extensions included (the
                    // caller's check of 1xx answers is one).
                    let resendable = (reused
                        && is_idempotent(request.method())
                        && request.body().is_end_stream())
                    .then(|| copy_head(&request));
                    match sender.try_send_request(request).await {
                        Ok(response) => {
                            let reusable = Reusable {
                                sender,
                                origin: origin.clone(),
                            };
                            return Ok((response, Some(reusable)));
                        }
                        Err(mut error) => match (error.take_message(), resendable) {
                            (Some(mut returned), _) if reused => {
                                *returned.uri_mut() = absolute;
                                // Set again for HTTP/1.1; HTTP/2 has :authority.
                                returned.headers_mut().remove(HOST);
                                returned
                            }
                            (None, Some(head)) if closed_before_answering(error.error()) => {
                                may_reuse = false;
                                let mut resent = head.map(|()| LimitedBody::empty());
                                *resent.uri_mut() = absolute;
                                resent.headers_mut().remove(HOST);
                                resent
                            }
                            _ => return Err(SendError::Request(error.into_error())),
                        },
                    }
                }
                Sender::Http2(mut sender) => match sender.try_send_request(request).await {
                    Ok(response) => return Ok((response, None)),
                    Err(mut error) => match error.take_message() {
                        Some(returned) if reused => {
                            // Closing: it may still look ready for a moment,
                            // and taking it again would only return the
                            // request again.
                            lock(&origin.idle).http2 = None;
                            returned
                        }
                        _ => return Err(SendError::Request(error.into_error())),
                    },
                },
            };
            request = returned;
        }
    }

    /// A new connection to `origin`, or, when the origin chose HTTP/2 last
    /// time, the one another request is making: without waiting for it, a
    /// burst of requests arriving while the origin has no HTTP/2 connection
    /// (the first ones after the upstream closed it) would each open one.
    /// Returns whether the sender came from the origin rather than a new
    /// connection of this request's.
    async fn connect_or_share(
        &self,
        origin: &Origin,
        now: Instant,
        may_reuse: bool,
    ) -> Result<(Sender, bool), SendError> {
        if !may_reuse || !origin.chose_http2.load(Ordering::Relaxed) {
            return Ok((self.connect(origin).await?, false));
        }
        let _connecting = origin.connecting_http2.lock().await;
        if let Some(sender) = origin.take_idle(now) {
            return Ok((sender, true));
        }
        Ok((self.connect(origin).await?, false))
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
            origin.chose_http2.store(true, Ordering::Relaxed);
            return Ok(Sender::Http2(sender));
        }
        origin.chose_http2.store(false, Ordering::Relaxed);
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
    /// Whether the origin's last new connection was HTTP/2 (ALPN).
    chose_http2: AtomicBool,
    /// Held while an HTTP/2 connection is being made, so that it is the only one.
    connecting_http2: tokio::sync::Mutex<()>,
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
            chose_http2: AtomicBool::new(false),
            connecting_http2: tokio::sync::Mutex::new(()),
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
        if timeout.is_zero() {
            // Nothing is kept: `take_idle` finds every connection expired.
            return;
        }
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

/// `request`'s method, version, headers and extensions, without its URI
/// (taken by then) or body.
fn copy_head<B>(request: &Request<B>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.version_mut() = request.version();
    *head.headers_mut() = request.headers().clone();
    *head.extensions_mut() = request.extensions().clone();
    head
}

/// Whether `error` says the connection ended, or was reset, before a complete
/// response head (a head cut off, or a 1xx and then the end, count too): the
/// upstream closed it. A malformed answer is a parse error, never resent. A
/// TLS upstream that drops the socket without a close_notify alert reads as
/// an unexpected end of file.
fn closed_before_answering(error: &hyper::Error) -> bool {
    if error.is_incomplete_message() {
        return true;
    }
    let io = error
        .source()
        .and_then(|source| source.downcast_ref::<std::io::Error>());
    io.is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        )
    })
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Future;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;

    use futures_util::future::join_all;
    use http::Method;
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::config::{ConfigSource, Report};

    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    /// An HTTP/1.1 upstream on OS threads that answers every request head
    /// with [`ANSWER`] and counts its connections.
    struct ThreadUpstream {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
    }

    impl ThreadUpstream {
        fn start() -> Self {
            Self::answering_per_connection(usize::MAX)
        }

        /// Answers the first `answers` heads of each connection, then
        /// closes it on reading the next one, unanswered: an upstream ending
        /// a keep-alive connection as a request arrives.
        fn answering_per_connection(answers: usize) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let connections = Arc::new(AtomicUsize::new(0));
            let accepted = connections.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { return };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    std::thread::spawn(move || answer_heads(stream, answers));
                }
            });
            Self { addr, connections }
        }

        fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    fn answer_heads(mut stream: TcpStream, mut answers: usize) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                buffer.drain(..end + 4);
                if answers == 0 {
                    return;
                }
                answers -= 1;
                if stream.write_all(ANSWER).is_err() {
                    return;
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// A TLS upstream offering HTTP/2 and HTTP/1.1 through ALPN, with the
    /// `localhost` certificate of the fixtures.
    struct TlsUpstream {
        port: u16,
        connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
        accepting: JoinHandle<()>,
    }

    impl TlsUpstream {
        async fn start() -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls()));
            let connections = Arc::new(Mutex::new(Vec::new()));
            let accepted = connections.clone();
            let accepting = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    lock(&accepted).push(tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let answer = service_fn(|_| async {
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), answer)
                            .await;
                    }));
                }
            });
            Self {
                port,
                connections,
                accepting,
            }
        }

        fn url(&self) -> String {
            format!("https://localhost:{}", self.port)
        }

        fn connections(&self) -> usize {
            lock(&self.connections).len()
        }

        fn close_all(&self) {
            lock(&self.connections).iter().for_each(JoinHandle::abort);
        }
    }

    impl Drop for TlsUpstream {
        fn drop(&mut self) {
            self.accepting.abort();
            self.close_all();
        }
    }

    fn pem(name: &str) -> Vec<u8> {
        std::fs::read(crossgate_testkit::fixture(name)).expect("fixture")
    }

    fn server_tls() -> rustls::ServerConfig {
        let chain = rustls_pemfile::certs(&mut pem("localhost.pem").as_slice())
            .collect::<Result<Vec<_>, _>>()
            .expect("certificates");
        let key = rustls_pemfile::private_key(&mut pem("localhost.key").as_slice())
            .expect("key")
            .expect("a key");
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server TLS");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }

    fn trusting_test_ca() -> UpstreamClient {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_pemfile::certs(&mut pem("ca.pem").as_slice()) {
            roots.add(certificate.expect("CA")).expect("root");
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        build_with_tls(&options(), tls)
    }

    fn options() -> ClientOptions {
        ClientOptions::with_connect_timeout(Duration::from_secs(5))
    }

    fn origin_of(client: &UpstreamClient, url: &str) -> Arc<Origin> {
        let report = &mut Report::new(&ConfigSource::Demo);
        let upstream = Upstream::compile(url, "upstream", report).expect("upstream");
        client.origin(&upstream)
    }

    /// A GET's answer, its body unread.
    async fn get(client: &UpstreamClient, origin: &Arc<Origin>) -> UpstreamBody {
        let request = Request::get(format!("{}ok", origin.uri))
            .body(LimitedBody::empty())
            .expect("request");
        let (response, connection) = client
            .send(origin, request, Instant::now())
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200);
        UpstreamBody::new(response.into_body(), connection)
    }

    async fn read(body: UpstreamBody) {
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(bytes, "ok");
    }

    fn idle_http1(origin: &Origin) -> usize {
        lock(&origin.idle).http1.len()
    }

    /// Lets the connections' tasks see their answers end.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn a_connection_is_reused_only_once_its_answer_was_read() {
        let upstream = ThreadUpstream::start();
        let client = build(&options()).expect("client");
        let origin = origin_of(&client, &upstream.url());
        let first = get(&client, &origin).await;
        let second = get(&client, &origin).await;
        assert_eq!(upstream.connections(), 2, "the first answer was unread");
        read(first).await;
        read(second).await;
        assert_eq!(idle_http1(&origin), 2);
        settle().await;
        drop(get(&client, &origin).await);
        assert_eq!(upstream.connections(), 2);
        assert_eq!(
            idle_http1(&origin),
            1,
            "an unread answer's connection is not given back"
        );
    }

    #[tokio::test]
    async fn idle_connections_are_capped_per_origin() {
        let upstream = ThreadUpstream::start();
        let options = ClientOptions {
            pool_max_idle_per_host: 1,
            ..options()
        };
        let client = build(&options).expect("client");
        let origin = origin_of(&client, &upstream.url());
        let first = get(&client, &origin).await;
        let second = get(&client, &origin).await;
        read(first).await;
        read(second).await;
        assert_eq!(idle_http1(&origin), 1);
    }

    #[tokio::test]
    async fn idle_connections_expire_without_requests() {
        let upstream = ThreadUpstream::start();
        let options = ClientOptions {
            pool_idle_timeout: Duration::from_millis(100),
            ..options()
        };
        let client = build(&options).expect("client");
        let origin = origin_of(&client, &upstream.url());
        read(get(&client, &origin).await).await;
        assert_eq!(idle_http1(&origin), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(idle_http1(&origin), 0);
        read(get(&client, &origin).await).await;
        assert_eq!(upstream.connections(), 2);
    }

    /// The upstream closed an idle connection, and its task saw that only
    /// after the connection was taken: hyper hands the request back unsent,
    /// and it goes on a new connection.
    #[tokio::test]
    async fn a_request_an_idle_connection_hands_back_goes_on_a_new_one() {
        let upstream = ThreadUpstream::start();
        let client = build(&options()).expect("client");
        let origin = origin_of(&client, &upstream.url());
        // An idle connection whose task the test polls itself.
        let (near, far) = tokio::io::duplex(1024);
        let (sender, connection) = http1::handshake(TokioIo::new(near))
            .await
            .expect("handshake");
        let mut connection = pin!(connection);
        assert!(poll_once(connection.as_mut()).await.is_pending());
        assert!(sender.is_ready());
        origin.put_back(sender);
        drop(far);
        let sending = get(&client, &origin);
        let mut sending = pin!(sending);
        assert!(poll_once(sending.as_mut()).await.is_pending());
        assert!(
            poll_once(connection.as_mut()).await.is_ready(),
            "the task saw the close before the request"
        );
        read(sending.await).await;
        assert_eq!(upstream.connections(), 1);
    }

    /// A client with one idle connection to an upstream that closes each
    /// connection, unanswered, on its second request.
    async fn one_idle_connection_closing_on_reuse() -> (ThreadUpstream, UpstreamClient, Arc<Origin>)
    {
        let upstream = ThreadUpstream::answering_per_connection(1);
        let client = build(&options()).expect("client");
        let origin = origin_of(&client, &upstream.url());
        read(get(&client, &origin).await).await;
        settle().await;
        assert_eq!(idle_http1(&origin), 1);
        let ready = lock(&origin.idle).http1[0].0.is_ready();
        assert!(ready, "the idle connection can take the next request");
        (upstream, client, origin)
    }

    /// Sends a bodiless `method` request, which must fail on its connection.
    async fn assert_unanswered(client: &UpstreamClient, origin: &Arc<Origin>, method: Method) {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}ok", origin.uri))
            .body(LimitedBody::empty())
            .expect("request");
        let refused = client.send(origin, request, Instant::now()).await;
        assert!(matches!(refused, Err(SendError::Request(_))), "{refused:?}");
    }

    /// The upstream closed an idle connection as the request was written on
    /// it, before answering: an idempotent request without a body goes once
    /// more, on a new connection.
    #[tokio::test]
    async fn a_get_an_idle_connection_closed_on_unanswered_is_sent_again() {
        let (upstream, client, origin) = one_idle_connection_closing_on_reuse().await;
        read(get(&client, &origin).await).await;
        assert_eq!(upstream.connections(), 2);
    }

    /// Over TLS the upstream drops its socket without a close_notify alert,
    /// as many servers do: the same resend.
    #[tokio::test]
    async fn an_https_get_an_idle_connection_dropped_on_is_sent_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut tls = server_tls();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    answer_first_head_then_drop(stream).await;
                });
            }
        });
        let client = trusting_test_ca();
        let origin = origin_of(&client, &format!("https://localhost:{port}"));
        read(get(&client, &origin).await).await;
        settle().await;
        assert_eq!(idle_http1(&origin), 1);
        read(get(&client, &origin).await).await;
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        accepting.abort();
    }

    /// Answers the first request head on `stream`, then drops it (TCP FIN,
    /// no TLS close_notify) when the second has arrived.
    async fn answer_first_head_then_drop<S>(mut stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 1024];
        let mut heads = 0;
        loop {
            while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                buffer.drain(..end + 4);
                heads += 1;
                if heads > 1 || stream.write_all(ANSWER).await.is_err() {
                    return;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// What may not be sent twice is not: a POST, and a GET on a connection
    /// of its own (no idle connection was involved, so the upstream saw it).
    #[tokio::test]
    async fn an_unanswered_post_or_fresh_connection_is_not_sent_again() {
        let (upstream, client, origin) = one_idle_connection_closing_on_reuse().await;
        assert_unanswered(&client, &origin, Method::POST).await;
        assert_eq!(upstream.connections(), 1);

        let silent = ThreadUpstream::answering_per_connection(0);
        let origin = origin_of(&client, &silent.url());
        assert_unanswered(&client, &origin, Method::GET).await;
        assert_eq!(silent.connections(), 1);
    }

    async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
    }

    #[tokio::test]
    async fn an_http2_origin_shares_one_connection_and_makes_one_at_a_time() {
        let upstream = TlsUpstream::start().await;
        let client = trusting_test_ca();
        let origin = origin_of(&client, &upstream.url());
        read(get(&client, &origin).await).await;
        for body in join_all((0..8).map(|_| get(&client, &origin))).await {
            read(body).await;
        }
        assert_eq!(upstream.connections(), 1);

        upstream.close_all();
        for _ in 0..100 {
            if lock(&origin.idle)
                .http2
                .as_ref()
                .is_none_or(|(sender, _)| sender.is_closed())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for body in join_all((0..8).map(|_| get(&client, &origin))).await {
            read(body).await;
        }
        assert_eq!(
            upstream.connections(),
            2,
            "one new connection for the burst"
        );
    }
}
