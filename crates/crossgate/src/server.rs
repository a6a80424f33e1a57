//! The client-facing listener: accepting within `max_connections`, TLS,
//! HTTP/1.1 and HTTP/2 (h2c and by ALPN), and draining on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::gateway::Gateway;
use crate::proxy::ConnInfo;

/// A bound gateway listener, not yet serving.
pub struct Server {
    gateway: Arc<Gateway>,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    connections: Arc<Semaphore>,
}

/// How shutting down went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every connection finished its in-flight requests.
    Complete,
    /// `shutdown_timeout` passed with connections still busy; they were dropped.
    TimedOut,
}

/// Pause after a failed accept (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

impl Server {
    /// Binds `server.listen` of the configuration in force.
    pub async fn bind(gateway: Arc<Gateway>) -> io::Result<Self> {
        let runtime = gateway.current();
        let settings = &runtime.config.settings;
        let listener = TcpListener::bind(settings.listen).await?;
        let local_addr = listener.local_addr()?;
        let tls = runtime.config.tls.clone();
        let connections = Arc::new(Semaphore::new(settings.max_connections));
        drop(runtime);
        Ok(Self {
            gateway,
            listener,
            local_addr,
            tls,
            connections,
        })
    }

    /// The bound address (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https` when the listener speaks TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Serves until `shutdown` completes, then stops accepting and waits up to
    /// `shutdown_timeout` for in-flight requests to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Drain {
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            // Waiting for a permit before accepting leaves excess clients in the
            // kernel's backlog instead of consuming memory here.
            let permit = tokio::select! {
                permit = self.connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let gateway = self.gateway.clone();
            let tls = self.tls.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                serve_connection(gateway, tls, stream, peer, watcher).await;
                drop(permit);
            });
        }
        drop(self.listener);
        let timeout = self.gateway.current().config.settings.shutdown_timeout;
        tracing::info!(
            connections = graceful.count(),
            ?timeout,
            "shutting down: draining in-flight requests"
        );
        match tokio::time::timeout(timeout, graceful.shutdown()).await {
            Ok(()) => {
                tracing::info!("drained");
                Drain::Complete
            }
            Err(_) => {
                tracing::warn!(
                    ?timeout,
                    "shutdown timeout passed with requests still in flight"
                );
                Drain::TimedOut
            }
        }
    }
}

async fn serve_connection(
    gateway: Arc<Gateway>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stream: TcpStream,
    peer: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let runtime = gateway.current();
    let builder = runtime.connections.clone();
    let handshake_timeout = runtime.config.settings.header_read_timeout;
    // Certificates may change on reload; the listener keeps TLS on as started.
    let tls = tls.map(|initial| runtime.config.tls.clone().unwrap_or(initial));
    drop(runtime);
    let conn = ConnInfo::new(peer, tls.is_some());
    let service = service_fn(move |request| {
        let gateway = gateway.clone();
        let conn = conn.clone();
        async move {
            let response =
                crate::handler::handle(gateway.current(), gateway.denials().clone(), conn, request)
                    .await;
            Ok::<_, Infallible>(response)
        }
    });
    let result = match tls {
        None => {
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned(),
                )
                .await
        }
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let stream =
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned(),
                )
                .await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
