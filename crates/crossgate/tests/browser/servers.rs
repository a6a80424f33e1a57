//! The small HTTP servers around the gateway: the page server the scripts
//! run on, the upstream behind the gateway, and a tap in front of the gateway
//! that records what the browser actually sent (preflights included).

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// One request as a server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, exactly as requested.
    pub path: String,
    pub cookie: Option<String>,
}

/// Requests a server has seen, shared with the test.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn record(&self, request: &Request<Incoming>) {
        let seen = Seen {
            method: request.method().as_str().to_owned(),
            path: request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            cookie: request
                .headers()
                .get(http::header::COOKIE)
                .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned()),
        };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(seen);
    }

    /// The requests for exactly this path and query.
    pub fn for_path(&self, path: &str) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|seen| seen.path == path)
            .cloned()
            .collect()
    }
}

pub async fn bind() -> (TcpListener, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap_or_else(|e| panic!("cannot bind an ephemeral port on 127.0.0.1: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("listener has no address: {e}"))
        .port();
    (listener, port)
}

/// Serves HTTP/1.1 on `listener` with `handler` until the runtime ends.
pub fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// The title of the page every script runs on.
pub const PAGE_TITLE: &str = "crossgate browser suite";

/// The page every script runs on: an empty document, whatever the host or path.
pub fn page_server(listener: TcpListener) {
    serve(listener, |_request| async {
        let mut response = Response::new(Full::new(Bytes::from(format!(
            "<!doctype html><title>{PAGE_TITLE}</title><p>page</p>"
        ))));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    });
}

/// How the upstream answers one request.
pub enum Reply {
    /// 200 with `x-visible`, `x-secret` and JSON, plus these extra headers.
    Ok(HeaderMap),
    /// As `Ok`, after this delay.
    Late(Duration),
}

/// The upstream behind the gateway: records every request, then answers as
/// `reply` says for its path and headers.
pub fn upstream<R>(listener: TcpListener, log: Log, reply: R)
where
    R: Fn(&str, &HeaderMap) -> Reply + Send + Sync + 'static,
{
    let reply = Arc::new(reply);
    serve(listener, move |request| {
        log.record(&request);
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let decision = reply(&path, request.headers());
        async move {
            let extra = match decision {
                Reply::Ok(extra) => extra,
                Reply::Late(delay) => {
                    tokio::time::sleep(delay).await;
                    HeaderMap::new()
                }
            };
            // Read the body so the client can reuse the connection.
            let _ = request.into_body().collect().await;
            let mut response = Response::new(Full::new(Bytes::from_static(b"{\"upstream\":true}")));
            let headers = response.headers_mut();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert("x-visible", HeaderValue::from_static("visible"));
            headers.insert("x-secret", HeaderValue::from_static("secret"));
            headers.extend(extra);
            response
        }
    });
}

/// Makes the tap remove every `Access-Control-*` response header, which is
/// what a browser would see if the gateway stopped decorating responses.
#[derive(Debug, Clone, Default)]
pub struct StripCors(Arc<AtomicBool>);

impl StripCors {
    pub fn set(&self, strip: bool) {
        self.0.store(strip, Ordering::SeqCst);
    }

    fn apply(&self, headers: &mut HeaderMap) {
        if !self.0.load(Ordering::SeqCst) {
            return;
        }
        let cors: Vec<_> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in cors {
            headers.remove(name);
        }
    }
}

/// Forwards everything to the gateway at `gateway` unchanged (the `Host`
/// header included), recording each request first.
pub fn tap(listener: TcpListener, log: Log, gateway: SocketAddr, strip: StripCors) {
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build_http();
    serve(listener, move |request: Request<Incoming>| {
        log.record(&request);
        let client = client.clone();
        let strip = strip.clone();
        async move {
            let (mut parts, body) = request.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            parts.uri = match format!("http://{gateway}{path}").parse() {
                Ok(uri) => uri,
                Err(e) => return tap_failure(format!("unusable path {path:?}: {e}")),
            };
            let response = match client.request(Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(e) => return tap_failure(format!("gateway at {gateway} failed: {e}")),
            };
            let (mut parts, body) = response.into_parts();
            let body = match body.collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => return tap_failure(format!("gateway's body broke off: {e}")),
            };
            // The body is re-framed here; the gateway's framing headers no longer apply.
            parts.headers.remove(http::header::TRANSFER_ENCODING);
            parts.headers.remove(http::header::CONNECTION);
            strip.apply(&mut parts.headers);
            Response::from_parts(parts, Full::new(body))
        }
    });
}

/// The body of `GET http://{address}{path}`, for the gateway's admin listener.
pub async fn get_text(address: SocketAddr, path: &str) -> String {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("http://{address}{path}")
        .parse()
        .unwrap_or_else(|e| panic!("bad admin path {path:?}: {e}"));
    let response = client
        .get(uri)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {address} failed: {e}"));
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {address}: body broke off: {e}"));
    String::from_utf8_lossy(&body.to_bytes()).into_owned()
}

/// A tap failure must never look like a CORS answer: 599 without CORS
/// headers reaches the script as a network error and shows in the report.
fn tap_failure(why: String) -> Response<Full<Bytes>> {
    eprintln!("browser suite tap: {why}");
    let mut response = Response::new(Full::new(Bytes::from(why)));
    *response.status_mut() = StatusCode::from_u16(599).unwrap_or(StatusCode::BAD_GATEWAY);
    response
}
