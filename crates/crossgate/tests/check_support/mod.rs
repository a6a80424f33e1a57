//! What the `check` and `audit` command-line tests share: small servers that
//! each answer with a closure, an example gateway, and the binary itself.
//! (The library-level tests of check and audit live in crates/probe/tests.)
#![allow(dead_code)] // each test binary uses a different subset

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use crossgate::ConfigSource;
use crossgate::DenialLog;
use crossgate::Gateway;
use crossgate::Metrics;
use crossgate::Server;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

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

type Handler = dyn Fn(&Asked<'_>) -> Response<Full<Bytes>> + Send + Sync;

/// A server on 127.0.0.1 answering with `handler`; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start<F>(handler: F) -> TestServer
    where
        F: Fn(&Asked<'_>) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind test server");
        let addr = listener.local_addr().expect("addr");
        let (stop, mut stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { return };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let handler = handler.clone();
                        async move {
                            let (parts, _) = request.into_parts();
                            let asked = Asked {
                                method: &parts.method,
                                path: parts.uri.path(),
                                headers: &parts.headers,
                            };
                            Ok::<_, Infallible>(handler(&asked))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer { addr, _stop: stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// The repository's examples/ directory.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A crossgate gateway serving the configuration file `path` on 127.0.0.1:0.
pub struct ExampleGateway {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl ExampleGateway {
    pub async fn start(path: &Path) -> ExampleGateway {
        let gateway = Gateway::load(
            ConfigSource::File(path.to_path_buf()),
            Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            Arc::new(Metrics::new()),
            Arc::new(DenialLog::new(DenialLog::DEFAULT_CAPACITY)),
        )
        .unwrap_or_else(|e| panic!("{} must load:\n{e}", path.display()));
        let server = Server::bind(Arc::new(gateway)).await.expect("bind gateway");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        ExampleGateway { addr, _stop: stop }
    }
}

/// The crossgate binary's output and exit code for `args`.
pub async fn crossgate(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    // Run off the async threads so the test's servers keep answering.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_crossgate"))
            .args(&args)
            .output()
            .expect("run crossgate")
    })
    .await
    .expect("join crossgate");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
