//! Small servers for the `check` and `audit` tests: each answers with a
//! closure, so a test states exactly which wrong (or right) CORS answer it
//! gives, and records every request it saw. The probe crate's tests and the
//! binary's command-line tests (crates/crossgate/tests/cli) use them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

use crate::fixture;
use crate::upstream::loopback_listener;

/// What a test server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
}

/// The request a handler answers.
pub struct Asked<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

impl Asked<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }

    pub fn is_preflight(&self) -> bool {
        self.method == Method::OPTIONS && self.headers.contains_key("access-control-request-method")
    }
}

/// A status and headers, empty body.
pub fn answer(status: u16, headers: &[(&str, &str)]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    for (name, value) in headers {
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    response
}

/// A CORS server's answer with `headers`: 204 to a preflight, 200 to anything else.
pub fn answer_cors(asked: &Asked<'_>, headers: &[(&str, &str)]) -> Response<Full<Bytes>> {
    answer(if asked.is_preflight() { 204 } else { 200 }, headers)
}

/// Echoes any origin with credentials allowed: the worst CORS answer.
pub fn reflect_with_credentials(asked: &Asked<'_>) -> Response<Full<Bytes>> {
    let origin = asked.origin().unwrap_or("").to_owned();
    answer(
        200,
        &[
            ("access-control-allow-origin", &origin),
            ("access-control-allow-credentials", "true"),
            ("vary", "Origin"),
        ],
    )
}

type Handler = dyn Fn(&Asked<'_>) -> Response<Full<Bytes>> + Send + Sync;

/// A server on 127.0.0.1 answering with `handler`; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    seen: Arc<Mutex<Vec<Seen>>>,
    _stop: oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start<F>(handler: F) -> TestServer
    where
        F: Fn(&Asked<'_>) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        Self::start_inner(Arc::new(handler), None).await
    }

    /// The same over TLS, with the `localhost` certificate of the fixtures.
    pub async fn start_tls<F>(handler: F) -> TestServer
    where
        F: Fn(&Asked<'_>) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        Self::start_inner(Arc::new(handler), Some(localhost_tls())).await
    }

    async fn start_inner(
        handler: Arc<Handler>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> TestServer {
        let (listener, addr) = loopback_listener().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let recorded = seen.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { return };
                let handler = handler.clone();
                let recorded = recorded.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let handler = handler.clone();
                        let recorded = recorded.clone();
                        async move {
                            let (parts, _) = request.into_parts();
                            recorded.lock().expect("seen").push(Seen {
                                method: parts.method.clone(),
                                path: parts.uri.path().to_owned(),
                                headers: parts.headers.clone(),
                            });
                            let asked = Asked {
                                method: &parts.method,
                                path: parts.uri.path(),
                                headers: &parts.headers,
                            };
                            Ok::<_, Infallible>(handler(&asked))
                        }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            scheme,
            seen,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        let host = if self.scheme == "https" {
            format!("localhost:{}", self.addr.port())
        } else {
            self.addr.to_string()
        };
        format!("{}://{host}{path}", self.scheme)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    pub fn methods_seen(&self) -> Vec<String> {
        self.seen().iter().map(|s| s.method.to_string()).collect()
    }
}

/// A TLS acceptor with [`localhost_server_config`].
fn localhost_tls() -> tokio_rustls::TlsAcceptor {
    tokio_rustls::TlsAcceptor::from(Arc::new(localhost_server_config()))
}

/// A rustls server configuration with the fixtures' `localhost` certificate
/// (signed by `ca.pem`, which [`crate::tls_connect`] trusts), offering HTTP/2
/// and HTTP/1.1 by ALPN: what any test TLS server needs.
pub fn localhost_server_config() -> rustls::ServerConfig {
    let read = |name: &str| std::fs::read(fixture(name)).expect("fixture");
    let chain = rustls_pemfile::certs(&mut read("localhost.pem").as_slice())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate chain");
    let key = rustls_pemfile::private_key(&mut read("localhost.key").as_slice())
        .expect("private key")
        .expect("a key in localhost.key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("TLS config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}
