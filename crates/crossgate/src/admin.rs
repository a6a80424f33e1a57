//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/decisions`.
//!
//! It runs on its own socket so that probes and scrapes keep working while
//! the gateway listeners are saturated or draining.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::accept::AcceptBackoff;
use crate::denials::DenialLog;
use crate::lifetime::{supervise, Activity, Deadlines, TrackedBody, WatchedIo};
use crate::metrics::Metrics;

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// Admin responses are small and immediate, so connections still open at
/// shutdown are idle or stuck; they get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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
    let known = matches!(path, "/healthz" | "/readyz" | "/metrics" | "/decisions");
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
        _ => body(
            StatusCode::OK,
            "application/json",
            state.denials.to_json().into(),
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
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::denials::DeniedRequest;
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
        let mut stream = TcpStream::connect(addr).await.expect("connect admin");
        let request =
            format!("{method} {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n");
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
        let (status, head, body) = get(admin.addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(
            body.contains("crossgate_requests_total{route=\"/api/\",code=\"200\"} 1\n"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn decisions_list_recorded_denials_as_json() {
        let admin = start().await;
        admin.denials.record(&DeniedRequest {
            origin: b"https://evil.test",
            route: "/api/",
            method: "OPTIONS",
            denial: &Denial::OriginNotAllowed,
        });
        let (status, head, body) = get(admin.addr, "GET", "/decisions").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/json"), "{head}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
        assert_eq!(json["denials"][0]["origin"], "https://evil.test");
        assert_eq!(json["denials"][0]["reason"], "origin_not_allowed");
    }

    #[tokio::test]
    async fn unknown_paths_are_404_and_other_methods_405() {
        let admin = start().await;
        assert_eq!(get(admin.addr, "GET", "/").await.0, 404);
        assert_eq!(get(admin.addr, "GET", "/metrics/extra").await.0, 404);
        let (status, head, _) = get(admin.addr, "POST", "/metrics").await;
        assert_eq!(status, 405);
        assert!(head.contains("allow: get, head"), "{head}");
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
