//! WebSocket (RFC 6455) through the gateway: recognizing a handshake,
//! forwarding it with the upgrade headers every other request loses,
//! accepting the upstream's `101`, and relaying bytes both ways under the
//! gateway's timeouts.
//!
//! Only `websocket` is carried. Every other `Upgrade` token (`h2c`, `TLS/1.2`,
//! anything) stays a hop-by-hop header the gateway strips, which RFC 9110
//! §7.8 allows ("a server MAY ignore a received Upgrade header field"), and a
//! `101` to such a request is refused as a framing error.
//!
//! Over HTTP/2 a WebSocket is an extended CONNECT (RFC 8441) with
//! `:protocol = websocket`, which the listener offers with
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`. The gateway carries it to the
//! upstream as an HTTP/1.1 handshake with a key of its own, checks the
//! upstream's `Sec-WebSocket-Accept` against that key (the client, which sent
//! no key, cannot), and answers the client's stream with `200`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::header::{
    HeaderValue, CONNECTION, CONTENT_LENGTH, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use hyper::ext::Protocol;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::config::Report;
use crate::ops::metrics::RouteMetrics;
use crate::proxy::responses::GatewayError;

const WEBSOCKET: HeaderValue = HeaderValue::from_static("websocket");
const UPGRADE_TOKEN: HeaderValue = HeaderValue::from_static("upgrade");

/// A route's `websocket` and `websocket_require_origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketRule {
    /// Whether handshakes are carried (`websocket`, default true).
    pub enabled: bool,
    /// Whether a handshake without `Origin` is refused (default false).
    pub require_origin: bool,
}

impl WebSocketRule {
    /// Checks the two keys of the route at `key`.
    pub(crate) fn compile(
        enabled: Option<bool>,
        require_origin: Option<bool>,
        key: &str,
        report: &mut Report,
    ) -> Self {
        let rule = Self {
            enabled: enabled.unwrap_or(true),
            require_origin: require_origin.unwrap_or(false),
        };
        if !rule.enabled && rule.require_origin {
            report.problem(
                format!("{key}.websocket_require_origin"),
                "the route refuses WebSocket handshakes (websocket = false), so there is no origin to require",
                "remove websocket_require_origin, or set websocket = true",
            );
        }
        rule
    }
}

/// How a request asks for a WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// HTTP/1.1 with `websocket` among its `Upgrade` tokens (RFC 6455 §4.1).
    Http1,
    /// An HTTP/2 extended CONNECT with `:protocol = websocket` (RFC 8441 §4).
    ExtendedConnect,
}

impl Handshake {
    /// Both, in the order `/metrics` lists them.
    pub const ALL: [Handshake; 2] = [Handshake::Http1, Handshake::ExtendedConnect];

    /// The `handshake` label of `crossgate_websocket_upgrades_total`.
    pub fn label(self) -> &'static str {
        match self {
            Handshake::Http1 => "http1",
            Handshake::ExtendedConnect => "http2",
        }
    }
}

/// Whether `request` asks for a WebSocket, and how. (RFC 9110 §7.8: an
/// HTTP/1.0 `Upgrade` is ignored; HTTP/2 has no `Upgrade`.)
pub fn requested<B>(request: &Request<B>) -> Option<Handshake> {
    match request.version() {
        Version::HTTP_11 if has_token(request.headers(), &UPGRADE, b"websocket") => {
            Some(Handshake::Http1)
        }
        Version::HTTP_2
            if request.method() == Method::CONNECT
                && request
                    .extensions()
                    .get::<Protocol>()
                    .is_some_and(|protocol| {
                        protocol.as_str().eq_ignore_ascii_case("websocket")
                    }) =>
        {
            Some(Handshake::ExtendedConnect)
        }
        _ => None,
    }
}

/// Refuses a handshake the route does not carry, one from a browser the
/// gateway cannot check (a route without a policy lists no allowed
/// origins), and one RFC 6455 §4.1 (or RFC 8441 §5) does not allow. An
/// extended CONNECT arrives here already a GET (see
/// [`crate::proxy::pipeline`]).
pub(crate) fn admit<B>(
    handshake: Handshake,
    rule: WebSocketRule,
    has_policy: bool,
    request: &Request<B>,
) -> Result<(), GatewayError> {
    if !rule.enabled {
        return Err(GatewayError::WebSocketDisabled);
    }
    let headers = request.headers();
    if !has_policy && (headers.contains_key(ORIGIN) || rule.require_origin) {
        return Err(GatewayError::WebSocketOriginNotAllowed);
    }
    // A body would be bytes both parties read differently: the upstream as
    // the body, a tunnel as the first frames.
    let body = headers.contains_key(CONTENT_LENGTH) || headers.contains_key(TRANSFER_ENCODING);
    // An HTTP/2 handshake has neither `Connection` nor a key: the gateway
    // makes its own for the upstream.
    let http1_framed = handshake == Handshake::ExtendedConnect || {
        let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
        let one_key = keys.next().is_some_and(is_key) && keys.next().is_none();
        has_token(headers, &CONNECTION, b"upgrade") && one_key
    };
    if request.method() != Method::GET || !http1_framed || body {
        return Err(GatewayError::BadWebSocketHandshake);
    }
    let mut versions = headers.get_all(SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(version), None) if version == "13" => Ok(()),
        _ => Err(GatewayError::WebSocketVersion),
    }
}

/// The `Sec-WebSocket-Key` the gateway sends upstream for an HTTP/2
/// handshake, which has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayKey(HeaderValue);

impl GatewayKey {
    /// 16 fresh random bytes, in base64 (RFC 6455 §4.1), put in `headers`.
    /// `None` only when the system's random source fails.
    pub fn insert(headers: &mut HeaderMap) -> Option<Self> {
        let mut nonce = [0; 16];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let key = HeaderValue::from_str(&BASE64.encode(nonce)).ok()?;
        headers.insert(SEC_WEBSOCKET_KEY, key.clone());
        Some(Self(key))
    }

    /// Whether the upstream's `Sec-WebSocket-Accept` proves it read this key:
    /// base64 of the SHA-1 of the key and RFC 6455's GUID (§4.2.2). Without
    /// the check, a server that is no WebSocket server (a `101` from a
    /// misconfigured or cached answer) would get a client's frames.
    pub fn accepted_by(&self, headers: &HeaderMap) -> bool {
        const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        context.update(self.0.as_bytes());
        context.update(GUID);
        let expected = BASE64.encode(context.finish());
        let mut accepts = headers.get_all(SEC_WEBSOCKET_ACCEPT).iter();
        accepts
            .next()
            .is_some_and(|accept| accept == expected.as_str())
            && accepts.next().is_none()
    }
}

/// Turns the upstream's accepted `101` into the `200` that opens an HTTP/2
/// handshake's stream (RFC 8441 §5), keeping `Sec-WebSocket-Protocol` and
/// `Sec-WebSocket-Extensions`: HTTP/2 has no `Connection` or `Upgrade`, and
/// the accept answered the gateway's key, not the client's.
pub fn into_extended_connect_acceptance<B>(response: &mut Response<B>) {
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    for name in [CONNECTION, UPGRADE, SEC_WEBSOCKET_ACCEPT] {
        headers.remove(name);
    }
}

/// `Sec-WebSocket-Key`: 16 bytes in base64, so 22 base64 characters and
/// `==` (RFC 6455 §4.1). Checked by shape rather than decoded: the gateway
/// only needs to know the upstream will accept it.
fn is_key(key: &HeaderValue) -> bool {
    let key = key.as_bytes();
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: &http::header::HeaderName, token: &[u8]) -> bool {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .any(|member| member.trim_ascii().eq_ignore_ascii_case(token))
}

/// Puts back the two hop-by-hop headers that make a message a WebSocket
/// handshake or its acceptance, after every hop-by-hop header was removed.
pub fn restore_headers(headers: &mut HeaderMap) {
    headers.insert(CONNECTION, UPGRADE_TOKEN);
    headers.insert(UPGRADE, WEBSOCKET);
}

/// Whether an upstream's `101` switches to WebSocket, the one protocol the
/// gateway asked for: `Upgrade: websocket` alone and `Connection: upgrade`.
pub fn switched_to_websocket(headers: &HeaderMap) -> bool {
    let mut upgrades = headers.get_all(UPGRADE).iter();
    let only_websocket = upgrades.next().is_some_and(|value| {
        value
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"websocket")
    }) && upgrades.next().is_none();
    only_websocket && has_token(headers, &CONNECTION, b"upgrade")
}

/// The timeouts a tunnel lives by: the connection's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelLimits {
    /// No byte either way for this long closes the tunnel (`idle_timeout`).
    pub idle: Duration,
    /// A write to either side without progress for this long closes it (`send_timeout`).
    pub send: Duration,
    /// How long a tunnel outlives the start of a shutdown (`shutdown_timeout`).
    pub shutdown: Duration,
}

/// An accepted handshake whose two sides are not yet connected: the
/// listener runs it once the `101` has been written, inside the client
/// connection's task, so it holds the connection's `max_connections` slot.
#[derive(Clone)]
pub struct Tunnel {
    client: OnUpgrade,
    upstream: OnUpgrade,
    limits: TunnelLimits,
    metrics: RouteMetrics,
    /// The handshake's `max_upstream_requests` slot, held while the tunnel
    /// is open: its upstream socket stays open as long, and without the slot
    /// one HTTP/2 connection could open `http2_max_concurrent_streams`
    /// upstream sockets that no bound counts. Shared only because a
    /// response extension must be `Clone`.
    upstream_slot: Arc<OwnedSemaphorePermit>,
}

/// Why a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEnd {
    /// Both sides closed.
    Closed,
    /// No bytes either way for `idle_timeout`.
    Idle,
    /// A side did not take bytes for `send_timeout`.
    SendTimeout,
    /// `shutdown_timeout` passed after the gateway began to shut down.
    Shutdown,
    /// A side failed (reset, or the upgrade itself).
    Failed,
}

impl Tunnel {
    /// The tunnel between `client` and `upstream`, counted on `metrics`.
    pub(crate) fn new(
        client: OnUpgrade,
        upstream: OnUpgrade,
        limits: TunnelLimits,
        metrics: RouteMetrics,
        upstream_slot: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            client,
            upstream,
            limits,
            metrics,
            upstream_slot: Arc::new(upstream_slot),
        }
    }

    /// Relays until both sides close, a timeout passes, or shutdown ends it.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> TunnelEnd {
        let _upstream_slot = self.upstream_slot;
        let both = async { tokio::try_join!(self.client, self.upstream) };
        let (client, upstream) = match tokio::time::timeout(self.limits.send, both).await {
            Ok(Ok(sides)) => sides,
            Ok(Err(error)) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                return TunnelEnd::Failed;
            }
            Err(_) => return TunnelEnd::Failed,
        };
        let _active = self.metrics.websocket_opened();
        relay(
            TokioIo::new(client),
            TokioIo::new(upstream),
            self.limits,
            shutdown,
        )
        .await
    }
}

/// Copies bytes both ways until either side closes. Hand-written rather
/// than `tokio::io::copy_bidirectional`, which has no idle or write timeout
/// and waits for both sides: each direction records its last byte, one timer
/// watches both, and every write is bounded by the send timeout. A side's
/// end of stream is passed on as a write shutdown, and the other side then
/// has [`HALF_CLOSE_GRACE`] to end its own: in WebSocket both close frames
/// precede the TCP close (RFC 6455 §7.1.1), so nothing is left to carry,
/// and a client that never closes its half (after the upstream's) does not
/// hold the connection until `idle_timeout`.
async fn relay<C, U>(
    client: C,
    upstream: U,
    limits: TunnelLimits,
    mut shutdown: watch::Receiver<bool>,
) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let epoch = Instant::now();
    let last_byte = AtomicU64::new(0);
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, upstream_write) = tokio::io::split(upstream);
    let copying = async {
        let to_upstream = pump(client_read, upstream_write, limits.send, epoch, &last_byte);
        let to_client = pump(upstream_read, client_write, limits.send, epoch, &last_byte);
        tokio::pin!(to_upstream, to_client);
        let first_end = tokio::select! {
            result = &mut to_upstream => Ended::ClientSide(result),
            result = &mut to_client => Ended::UpstreamSide(result),
        };
        // Whatever the other side does now (its own end, a reset) closes
        // a tunnel that is over already.
        match first_end {
            Ended::ClientSide(result) => {
                result?;
                let _ = tokio::time::timeout(HALF_CLOSE_GRACE, to_client).await;
            }
            Ended::UpstreamSide(result) => {
                result?;
                let _ = tokio::time::timeout(HALF_CLOSE_GRACE, to_upstream).await;
            }
        }
        Ok::<_, io::Error>(())
    };
    let idle = async {
        loop {
            let since = Duration::from_millis(last_byte.load(Ordering::Relaxed));
            let deadline = epoch + since + limits.idle;
            if deadline <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    let shutdown_deadline = async {
        // A closed channel means no one can ask for a shutdown any more.
        if shutdown.wait_for(|stopping| *stopping).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(limits.shutdown).await;
    };
    tokio::select! {
        result = copying => match result {
            Ok(_) => TunnelEnd::Closed,
            Err(error) if error.kind() == io::ErrorKind::TimedOut => TunnelEnd::SendTimeout,
            Err(_) => TunnelEnd::Failed,
        },
        () = idle => TunnelEnd::Idle,
        () = shutdown_deadline => TunnelEnd::Shutdown,
    }
}

/// How long the side that did not end first may take to end its own half
/// once told of the other's end. Over HTTP/2 the client's stream is dropped
/// when the tunnel ends: before the client has closed its half that is a
/// `RST_STREAM`, which Chromium reports as an unclean close (1006) even
/// after both close frames and the gateway's `END_STREAM`.
const HALF_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Which direction of a tunnel ended first.
enum Ended {
    /// The client's end of stream (or failure), passed on to the upstream.
    ClientSide(io::Result<()>),
    /// The upstream's, passed on to the client.
    UpstreamSide(io::Result<()>),
}

/// Bytes one side may have in flight inside the gateway, per direction.
const PUMP_BUFFER: usize = 16 * 1024;

async fn pump<R, W>(
    mut from: R,
    mut to: W,
    send: Duration,
    epoch: Instant,
    last_byte: &AtomicU64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0; PUMP_BUFFER];
    let stamp = || {
        let elapsed = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_byte.fetch_max(elapsed, Ordering::Relaxed);
    };
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "send_timeout");
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return tokio::time::timeout(send, to.shutdown())
                .await
                .map_err(|_| timed_out())?;
        }
        stamp();
        tokio::time::timeout(send, to.write_all(&buffer[..read]))
            .await
            .map_err(|_| timed_out())??;
        stamp();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(pairs: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/ws");
        for (name, value) in pairs {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    const GOOD: [(&str, &str); 4] = [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];
    /// [`GOOD`] with one header more.
    fn good_and(header: (&str, &str)) -> Request<()> {
        let mut pairs = GOOD.to_vec();
        pairs.push(header);
        handshake(&pairs)
    }

    const ON: WebSocketRule = WebSocketRule {
        enabled: true,
        require_origin: false,
    };

    #[test]
    fn only_well_formed_http11_handshakes_are_admitted() {
        assert_eq!(requested(&handshake(&GOOD)), Some(Handshake::Http1));
        assert_eq!(admit(Handshake::Http1, ON, true, &handshake(&GOOD)), Ok(()));
        let mut http10 = handshake(&GOOD);
        *http10.version_mut() = Version::HTTP_10;
        assert_eq!(requested(&http10), None);
        assert_eq!(requested(&handshake(&[("upgrade", "h2c")])), None);
        let mut post = handshake(&GOOD);
        *post.method_mut() = Method::POST;
        let mut bad_key = GOOD;
        bad_key[2].1 = "short";
        let mut old = GOOD;
        old[3].1 = "8";
        for (request, refusal) in [
            (post, GatewayError::BadWebSocketHandshake),
            (
                good_and(("content-length", "5")),
                GatewayError::BadWebSocketHandshake,
            ),
            (handshake(&bad_key), GatewayError::BadWebSocketHandshake),
            (handshake(&old), GatewayError::WebSocketVersion),
        ] {
            assert_eq!(
                admit(Handshake::Http1, ON, true, &request),
                Err(refusal),
                "{request:?}"
            );
        }
    }

    fn extended_connect(protocol: Option<&'static str>, pairs: &[(&str, &str)]) -> Request<()> {
        let mut request = handshake(pairs);
        *request.method_mut() = Method::CONNECT;
        *request.version_mut() = Version::HTTP_2;
        if let Some(protocol) = protocol {
            request
                .extensions_mut()
                .insert(Protocol::from_static(protocol));
        }
        request
    }

    #[test]
    fn only_an_extended_connect_for_websocket_is_an_http2_handshake() {
        let version = [("sec-websocket-version", "13")];
        let mut connect = extended_connect(Some("websocket"), &version);
        assert_eq!(requested(&connect), Some(Handshake::ExtendedConnect));
        assert_eq!(requested(&extended_connect(None, &version)), None);
        assert_eq!(
            requested(&extended_connect(Some("connect-udp"), &version)),
            None
        );
        // Admitted as the GET the pipeline makes of it, with no key.
        *connect.method_mut() = Method::GET;
        assert_eq!(
            admit(Handshake::ExtendedConnect, ON, true, &connect),
            Ok(())
        );
        let mut no_version = extended_connect(Some("websocket"), &[]);
        *no_version.method_mut() = Method::GET;
        assert_eq!(
            admit(Handshake::ExtendedConnect, ON, true, &no_version),
            Err(GatewayError::WebSocketVersion)
        );
        let mut with_body = extended_connect(Some("websocket"), &[("content-length", "3")]);
        *with_body.method_mut() = Method::GET;
        assert_eq!(
            admit(Handshake::ExtendedConnect, ON, true, &with_body),
            Err(GatewayError::BadWebSocketHandshake)
        );
    }

    #[test]
    fn the_gateway_key_is_fresh_and_its_accept_is_checked() {
        let mut headers = HeaderMap::new();
        let key = GatewayKey::insert(&mut headers).expect("random source");
        let sent = headers[SEC_WEBSOCKET_KEY].clone();
        assert!(is_key(&sent), "{sent:?}");
        let other = GatewayKey::insert(&mut HeaderMap::new()).expect("random source");
        assert_ne!(key, other);
        // RFC 6455 §1.3's example.
        let sample = GatewayKey(HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        let mut answer = HeaderMap::new();
        answer.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        assert!(sample.accepted_by(&answer));
        assert!(!key.accepted_by(&answer));
        answer.append(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        assert!(!sample.accepted_by(&answer), "two accepts");
        assert!(!sample.accepted_by(&HeaderMap::new()));
    }

    #[test]
    fn an_accepted_101_becomes_a_200_keeping_the_subprotocol() {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        restore_headers(response.headers_mut());
        let headers = response.headers_mut();
        headers.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("x"));
        headers.insert("sec-websocket-protocol", HeaderValue::from_static("chat"));
        into_extended_connect_acceptance(&mut response);
        assert_eq!(response.status(), StatusCode::OK);
        let names: Vec<_> = response
            .headers()
            .keys()
            .map(|name| name.as_str())
            .collect();
        assert_eq!(names, ["sec-websocket-protocol"]);
    }

    #[test]
    fn requiring_an_origin_on_a_route_without_websocket_is_an_error() {
        let compile = |enabled, require_origin| {
            let mut report = Report::new(&crate::config::ConfigSource::Demo);
            let rule = WebSocketRule::compile(enabled, require_origin, "routes[2]", &mut report);
            let failed = report.has_problems();
            (rule, failed, report.into_problems().to_string())
        };
        let (rule, failed, problems) = compile(None, None);
        assert_eq!(rule, ON);
        assert!(!failed, "{problems}");
        let (_, failed, problems) = compile(Some(false), Some(true));
        assert!(failed);
        assert!(
            problems.contains("routes[2].websocket_require_origin"),
            "{problems}"
        );
        assert!(problems.contains("websocket = true"), "{problems}");
    }

    #[test]
    fn routes_refuse_what_they_cannot_check() {
        let off = WebSocketRule {
            enabled: false,
            require_origin: false,
        };
        assert_eq!(
            admit(Handshake::Http1, off, true, &handshake(&GOOD)),
            Err(GatewayError::WebSocketDisabled)
        );
        let from_page = good_and(("origin", "https://app.example"));
        assert_eq!(
            admit(Handshake::Http1, ON, false, &from_page),
            Err(GatewayError::WebSocketOriginNotAllowed)
        );
        assert_eq!(
            admit(Handshake::Http1, ON, false, &handshake(&GOOD)),
            Ok(())
        );
    }

    #[test]
    fn a_101_must_switch_to_websocket_alone() {
        let mut accepted = HeaderMap::new();
        restore_headers(&mut accepted);
        assert!(switched_to_websocket(&accepted));
        let mut other = accepted.clone();
        other.insert(UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!switched_to_websocket(&other));
        let mut two = accepted.clone();
        two.append(UPGRADE, HeaderValue::from_static("websocket"));
        assert!(!switched_to_websocket(&two));
        let mut no_connection = accepted;
        no_connection.remove(CONNECTION);
        assert!(!switched_to_websocket(&no_connection));
    }

    fn limits(idle: u64, shutdown: u64) -> TunnelLimits {
        TunnelLimits {
            idle: Duration::from_millis(idle),
            send: Duration::from_secs(5),
            shutdown: Duration::from_millis(shutdown),
        }
    }

    #[tokio::test]
    async fn relay_copies_both_ways_and_passes_on_the_close() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, mut upstream_peer) = tokio::io::duplex(64);
        let (_stop, stopping) = watch::channel(false);
        let relaying = tokio::spawn(relay(client, upstream, limits(5_000, 5_000), stopping));
        client_peer.write_all(b"ping").await.expect("write");
        let mut read = [0; 4];
        upstream_peer.read_exact(&mut read).await.expect("read");
        assert_eq!(&read, b"ping");
        upstream_peer.write_all(b"pong").await.expect("write");
        client_peer.read_exact(&mut read).await.expect("read");
        assert_eq!(&read, b"pong");
        drop(client_peer);
        let mut rest = Vec::new();
        upstream_peer.read_to_end(&mut rest).await.expect("eof");
        assert_eq!(relaying.await.expect("relay"), TunnelEnd::Closed);
        assert!(rest.is_empty());
        // The other way too: the upstream's close ends the tunnel although
        // the client keeps its half open.
        let (client, _client_peer) = tokio::io::duplex(64);
        let (upstream, upstream_peer) = tokio::io::duplex(64);
        let (_stop, stopping) = watch::channel(false);
        drop(upstream_peer);
        let end = tokio::time::timeout(
            Duration::from_secs(2),
            relay(client, upstream, limits(5_000, 5_000), stopping),
        )
        .await;
        assert_eq!(end, Ok(TunnelEnd::Closed));
    }

    #[tokio::test]
    async fn a_silent_tunnel_is_closed_after_the_idle_timeout() {
        let (client, _client_peer) = tokio::io::duplex(64);
        let (upstream, _upstream_peer) = tokio::io::duplex(64);
        let (_stop, stopping) = watch::channel(false);
        let started = Instant::now();
        let end = relay(client, upstream, limits(200, 5_000), stopping).await;
        assert_eq!(end, TunnelEnd::Idle);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn shutdown_closes_a_tunnel_after_shutdown_timeout() {
        let (client, _client_peer) = tokio::io::duplex(64);
        let (upstream, _upstream_peer) = tokio::io::duplex(64);
        let (stop, stopping) = watch::channel(false);
        let relay = tokio::spawn(relay(client, upstream, limits(60_000, 200), stopping));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = Instant::now();
        stop.send(true).expect("relay listens");
        assert_eq!(relay.await.expect("relay"), TunnelEnd::Shutdown);
        assert!(asked.elapsed() >= Duration::from_millis(200));
    }
}
