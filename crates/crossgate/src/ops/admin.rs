//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/decisions` and
//! the dashboard (`/`, its assets, `/api/dashboard`).
//!
//! It runs on its own socket so that probes and scrapes keep working while
//! the gateway listeners are saturated or draining. It is read-only and must
//! not be exposed publicly; with `admin_token` set, everything except the
//! probes and the dashboard's static page needs `Authorization: Bearer`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    REFERRER_POLICY, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::ops::dashboard::{self, Series};
use crate::ops::denials::DenialLog;
use crate::ops::metrics::Metrics;
use crate::proxy::auth::{bearer_token, constant_time_eq, is_token68};
use crate::server::accept::AcceptBackoff;
use crate::server::lifetime::{supervise, Activity, Deadlines, TrackedBody, WatchedIo};
use crate::server::reload::ReloadHistory;

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// Admin responses are small and immediate, so connections still open at
/// shutdown are idle or stuck; they get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The dashboard loads only its own script, style and data; no inline
/// script runs, nothing is framed.
const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const ADMIN_TOKEN_MIN: usize = 32;
const ADMIN_TOKEN_MAX: usize = 8192;

/// `server.admin_token`: the bearer token the admin listener requires.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(Box<[u8]>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// Accepts 32 to 8192 RFC 7235 token68 characters.
    pub fn parse(text: &str) -> Result<AdminToken, &'static str> {
        if !text.bytes().all(is_token68) {
            return Err("not a usable bearer token");
        }
        if !(ADMIN_TOKEN_MIN..=ADMIN_TOKEN_MAX).contains(&text.len()) {
            return Err(
                "a token shorter than 32 characters is easy to guess (or longer than 8192)",
            );
        }
        Ok(AdminToken(text.as_bytes().into()))
    }

    /// Whether `authorization` carries this token (compared in constant time).
    fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        authorization
            .and_then(|value| bearer_token(value.as_bytes()))
            .is_some_and(|token| constant_time_eq(token, &self.0))
    }
}

/// Whether the gateway should receive traffic: set by the gateway, read by `/readyz`.
#[derive(Clone)]
pub struct Readiness(Arc<AtomicU8>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new()
    }
}

impl Readiness {
    /// Not ready until [`Readiness::set_ready`].
    pub fn new() -> Readiness {
        Readiness(Arc::new(AtomicU8::new(STARTING)))
    }

    /// The listeners are bound and the config is loaded. Has no effect once draining.
    pub fn set_ready(&self) {
        let _ = self
            .0
            .compare_exchange(STARTING, READY, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Shutdown has begun; `/readyz` answers 503 from now on.
    pub fn set_draining(&self) {
        self.0.store(DRAINING, Ordering::SeqCst);
    }
}

/// What the admin endpoints report on.
pub struct AdminState {
    /// Rendered by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Rendered by `/decisions`.
    pub denials: Arc<DenialLog>,
    /// Reported by `/readyz`.
    pub readiness: Readiness,
    /// The configuration generation and reloads, for the dashboard.
    pub reloads: Arc<ReloadHistory>,
    /// The dashboard's intervals, filled while [`serve`] runs.
    pub series: Arc<Series>,
    /// `server.admin_token`.
    pub token: Option<AdminToken>,
    /// The gateway's connection timeouts, applied to admin connections too.
    pub connection_deadlines: Deadlines,
}

/// Serves the admin endpoints on `listener` until `shutdown` completes, then
/// stops accepting and gives open admin connections a short grace period.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send,
) {
    let _sampler = dashboard::spawn_sampler(state.series.clone(), state.metrics.clone());
    let deadlines = state.connection_deadlines;
    let state = Arc::new(state);
    let (stopping, stop_signal) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = AcceptBackoff::new("admin");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    backoff.failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        backoff.succeeded();
        let state = Arc::clone(&state);
        let activity = Activity::new();
        let requests = activity.clone();
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let mut in_flight = requests.request_started(request.version());
            in_flight.answered();
            let response = respond(&state, &request).map(|body| TrackedBody::new(body, in_flight));
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            // `lifetime` times heads and keep-alive pauses.
            .header_read_timeout(None)
            .serve_connection(
                TokioIo::new(WatchedIo::new(stream, activity.clone())),
                service,
            );
        let stop_signal = stop_signal.clone();
        connections.spawn(async move {
            let (closed, result) = supervise(
                connection,
                |connection| connection.graceful_shutdown(),
                &activity,
                deadlines,
                stop_signal,
            )
            .await;
            if let Err(error) = result {
                tracing::debug!(%error, ?closed, "admin connection ended with an error");
            }
        });
    }
    drop(listener);
    // A failed send means no connection is open: nothing to tell.
    let _ = stopping.send(true);
    let all_closed = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all_closed)
        .await
        .is_err()
    {
        tracing::warn!("admin connections still open after the shutdown grace period");
    }
}

fn respond<B>(state: &AdminState, request: &Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let page = dashboard::asset(path);
    let known = page.is_some()
        || matches!(
            path,
            "/healthz" | "/readyz" | "/metrics" | "/decisions" | dashboard::DATA_PATH
        );
    if !known {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    // Probes carry no token (kubelet, load balancers); the page's bytes are
    // public in the binary and it asks for the token itself.
    let public = page.is_some() || matches!(path, "/healthz" | "/readyz");
    if let Some(token) = &state.token {
        if !public && !token.admits(request.headers().get(AUTHORIZATION)) {
            let mut response = text(StatusCode::UNAUTHORIZED, "bearer token required\n");
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"crossgate-admin\""),
            );
            return response;
        }
    }
    if let Some((content_type, content)) = page {
        return body(
            StatusCode::OK,
            content_type,
            Bytes::from_static(content.as_bytes()),
        );
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match state.readiness.0.load(Ordering::SeqCst) {
            READY => text(StatusCode::OK, "ready\n"),
            DRAINING => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
            _ => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
        },
        "/metrics" => body(
            StatusCode::OK,
            METRICS_CONTENT_TYPE,
            state.metrics.render().into(),
        ),
        "/decisions" => body(
            StatusCode::OK,
            "application/json",
            state.denials.to_json().into(),
        ),
        _ => body(
            StatusCode::OK,
            "application/json",
            dashboard::data_json(
                &state.series,
                &state.metrics,
                &state.denials,
                &state.reloads,
            )
            .into(),
        ),
    }
}

fn text(status: StatusCode, message: &'static str) -> Response<Full<Bytes>> {
    body(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(message.as_bytes()),
    )
}

fn body(status: StatusCode, content_type: &'static str, content: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(content));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Probes and scrapes must see the current state, never a cached one.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::denials::{DeniedRequest, RecordedRequest};
    use crossgate_cors::Denial;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    struct Running {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
        metrics: Arc<Metrics>,
        denials: Arc<DenialLog>,
        readiness: Readiness,
    }

    async fn start() -> Running {
        start_with_token(None).await
    }

    async fn start_with_token(token: Option<&str>) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let metrics = Arc::new(Metrics::new());
        let denials = Arc::new(DenialLog::new(8));
        let readiness = Readiness::new();
        let state = AdminState {
            metrics: metrics.clone(),
            denials: denials.clone(),
            readiness: readiness.clone(),
            reloads: Arc::default(),
            series: Arc::default(),
            token: token.map(|t| AdminToken::parse(t).expect("test token")),
            connection_deadlines: Deadlines {
                header_read: Duration::from_secs(10),
                idle: Duration::from_secs(60),
                send: Duration::from_secs(60),
            },
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop,
            task,
            metrics,
            denials,
            readiness,
        }
    }

    /// Sends one HTTP/1.1 request and returns (status, lower-cased head, body).
    async fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
        get_with(addr, method, path, "").await
    }

    /// [`get`] with extra header lines (each ending in `\r\n`).
    async fn get_with(
        addr: SocketAddr,
        method: &str,
        path: &str,
        extra: &str,
    ) -> (u16, String, String) {
        let mut stream = TcpStream::connect(addr).await.expect("connect admin");
        let request =
            format!("{method} {path} HTTP/1.1\r\nhost: admin\r\n{extra}connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
            .await
            .expect("response within 5 s")
            .expect("read response");
        let raw = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
        let status = head[9..12].parse().expect("status code");
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    /// GETs `path`, checks that it is a 200 of `content_type`, and returns
    /// (lower-cased head, body).
    async fn get_ok(addr: SocketAddr, path: &str, content_type: &str) -> (String, String) {
        let (status, head, body) = get(addr, "GET", path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            head.contains(&format!("content-type: {content_type}")),
            "{head}"
        );
        (head, body)
    }

    #[tokio::test]
    async fn healthz_is_ok_and_readyz_follows_readiness() {
        let admin = start().await;
        assert_eq!(get(admin.addr, "GET", "/healthz").await.0, 200);
        let (status, _, body) = get(admin.addr, "GET", "/readyz").await;
        assert_eq!((status, body.as_str()), (503, "starting\n"));
        admin.readiness.set_ready();
        assert_eq!(get(admin.addr, "GET", "/readyz").await.0, 200);
        admin.readiness.set_draining();
        let (status, _, body) = get(admin.addr, "GET", "/readyz").await;
        assert_eq!((status, body.as_str()), (503, "draining\n"));
        admin.readiness.set_ready();
        assert_eq!(
            get(admin.addr, "GET", "/readyz").await.0,
            503,
            "draining is final"
        );
        assert_eq!(get(admin.addr, "GET", "/healthz").await.0, 200);
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text() {
        let admin = start().await;
        admin.metrics.route("/api/").request(StatusCode::OK);
        let (_, body) = get_ok(admin.addr, "/metrics", "text/plain; version=0.0.4").await;
        assert!(
            body.contains("crossgate_requests_total{route=\"/api/\",code=\"200\"} 1\n"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn decisions_list_recorded_denials_as_json() {
        let admin = start().await;
        admin.denials.record(&DeniedRequest {
            request: RecordedRequest {
                origin: b"https://evil.test",
                route: "/api/",
                method: "OPTIONS",
                request_id: b"req-7",
            },
            denial: &Denial::OriginNotAllowed,
        });
        let (_, body) = get_ok(admin.addr, "/decisions", "application/json").await;
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
        assert_eq!(json["denials"][0]["origin"], "https://evil.test");
        assert_eq!(json["denials"][0]["reason"], "origin_not_allowed");
    }

    #[tokio::test]
    async fn unknown_paths_are_404_and_other_methods_405() {
        let admin = start().await;
        assert_eq!(get(admin.addr, "GET", "/index.html").await.0, 404);
        assert_eq!(get(admin.addr, "GET", "/metrics/extra").await.0, 404);
        let (status, head, _) = get(admin.addr, "POST", "/metrics").await;
        assert_eq!(status, 405);
        assert!(head.contains("allow: get, head"), "{head}");
    }

    #[tokio::test]
    async fn dashboard_page_and_data_are_served_under_a_strict_csp() {
        let admin = start().await;
        admin.metrics.route("/api/").request(StatusCode::OK);
        let (head, page) = get_ok(admin.addr, "/", "text/html").await;
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(page.contains("<script src=\"/dashboard.js\""), "{page}");
        get_ok(admin.addr, "/dashboard.js", "text/javascript").await;
        let (status, _, data) = get(admin.addr, "GET", "/api/dashboard").await;
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&data).expect("JSON body");
        assert_eq!(json["generation"], 1);
        assert_eq!(json["interval_seconds"], 10);
        assert_eq!(json["routes"][0]["route"], "/api/");
        assert_eq!(json["routes"][0]["requests"], 1);
        assert!(json["report_only"].is_null() && json["upstream_health"].is_null());
    }

    const TOKEN: &str = "0123456789abcdefghijklmnopqrstuvwxyz";

    #[tokio::test]
    async fn admin_token_guards_all_but_the_probes_and_the_static_page() {
        let admin = start_with_token(Some(TOKEN)).await;
        admin.readiness.set_ready();
        for path in [
            "/healthz",
            "/readyz",
            "/",
            "/dashboard.js",
            "/dashboard.css",
        ] {
            assert_eq!(get(admin.addr, "GET", path).await.0, 200, "{path}");
        }
        let wrong = format!("authorization: Bearer {}x\r\n", &TOKEN[..TOKEN.len() - 1]);
        let prefix = format!("authorization: Bearer {}\r\n", &TOKEN[..TOKEN.len() - 1]);
        let right = format!("authorization: Bearer {TOKEN}\r\n");
        let basic = format!("authorization: Basic {TOKEN}\r\n");
        for path in ["/metrics", "/decisions", "/api/dashboard"] {
            let (status, head, _) = get(admin.addr, "GET", path).await;
            assert_eq!(status, 401, "{path} without a token");
            assert!(head.contains("www-authenticate: bearer"), "{head}");
            for bad in [&wrong, &prefix, &basic] {
                assert_eq!(
                    get_with(admin.addr, "GET", path, bad).await.0,
                    401,
                    "{path} {bad}"
                );
            }
            assert_eq!(
                get_with(admin.addr, "GET", path, &right).await.0,
                200,
                "{path}"
            );
        }
    }

    #[test]
    fn admin_tokens_must_be_long_bearer_tokens() {
        assert!(AdminToken::parse(TOKEN).is_ok());
        assert!(AdminToken::parse("short-token").is_err());
        assert!(AdminToken::parse(&format!("{TOKEN} with spaces")).is_err());
        assert!(AdminToken::parse(&"a".repeat(ADMIN_TOKEN_MAX + 1)).is_err());
        assert_eq!(
            format!("{:?}", AdminToken::parse(TOKEN).expect("valid")),
            "AdminToken(<redacted>)"
        );
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_returns() {
        let admin = start().await;
        assert_eq!(get(admin.addr, "GET", "/healthz").await.0, 200);
        admin.stop.send(()).expect("server still running");
        tokio::time::timeout(Duration::from_secs(5), admin.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task did not panic");
        assert!(
            TcpStream::connect(admin.addr).await.is_err(),
            "listener must be closed after shutdown"
        );
    }
}
