//! The client-facing listener: accepting within `max_connections`, TLS,
//! HTTP/1.1 and HTTP/2 (h2c and by ALPN), and draining on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::{self, HttpServerConnExec};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::proxy::upgrade::Tunnel;
use crate::proxy::upstream::ConnInfo;
use crate::server::accept::AcceptBackoff;
use crate::server::generation::Gateway;
use crate::server::lifetime::{supervise, Activity, Closed, Deadlines, TrackedBody, WatchedIo};

/// A bound gateway listener, not yet serving.
pub struct Server {
    gateway: Arc<Gateway>,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    connections: Arc<Semaphore>,
    max_connections: usize,
}

/// How shutting down went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Every connection finished its in-flight requests.
    Complete,
    /// `shutdown_timeout` passed with requests still in flight; they were cut off.
    TimedOut,
}

impl Server {
    /// Binds `server.listen` of the configuration in force.
    pub async fn bind(gateway: Arc<Gateway>) -> io::Result<Self> {
        let generation = gateway.current();
        let settings = &generation.config.settings;
        let listener = TcpListener::bind(settings.listen).await?;
        let local_addr = listener.local_addr()?;
        let tls = generation.config.tls.clone();
        let max_connections = settings.max_connections;
        let connections = Arc::new(Semaphore::new(max_connections));
        drop(generation);
        Ok(Self {
            gateway,
            listener,
            local_addr,
            tls,
            connections,
            max_connections,
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

    /// Serves until `shutdown` completes, then stops accepting, closes idle
    /// connections at once and waits up to `shutdown_timeout` for in-flight
    /// requests to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Drain {
        let (stopping, stop_signal) = watch::channel(false);
        let mut backoff = AcceptBackoff::new("gateway");
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
                        backoff.failed(&error).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            backoff.succeeded();
            let gateway = self.gateway.clone();
            let tls = self.tls.clone();
            let stop_signal = stop_signal.clone();
            tokio::spawn(async move {
                serve_connection(gateway, tls, stream, peer, stop_signal).await;
                drop(permit);
            });
        }
        drop(self.listener);
        // A failed send means no connection is listening: nothing to tell.
        let _ = stopping.send(true);
        let timeout = self.gateway.current().config.settings.shutdown_timeout;
        let slots = self.max_connections;
        tracing::info!(
            connections = slots - self.connections.available_permits(),
            ?timeout,
            "shutting down: closing idle connections, draining in-flight requests"
        );
        // Every connection holds a permit until it is closed, so holding them
        // all means every connection is gone.
        let all_closed = self
            .connections
            .acquire_many(u32::try_from(slots).unwrap_or(u32::MAX));
        match tokio::time::timeout(timeout, all_closed).await {
            Ok(_) => {
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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// HTTP/1 or HTTP/2 on one connection, plain or TLS alike, until it ends or
/// the gateway closes it (deadlines, shutdown).
async fn serve_http<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    activity: &Activity,
    deadlines: Deadlines,
    stop_signal: watch::Receiver<bool>,
) -> (Closed, Result<(), BoxError>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = http::Response<B>>,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + 'static,
    B::Error: Into<BoxError>,
    TokioExecutor: HttpServerConnExec<S::Future, B>,
{
    supervise(
        builder.serve_connection_with_upgrades(io, service),
        |connection| connection.graceful_shutdown(),
        activity,
        deadlines,
        stop_signal,
    )
    .await
}

async fn serve_connection(
    gateway: Arc<Gateway>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stream: TcpStream,
    peer: SocketAddr,
    stop_signal: watch::Receiver<bool>,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
    }
    let generation = gateway.current();
    let builder = generation.connections.clone();
    let deadlines = generation.config.settings.connection_deadlines();
    // Certificates may change on reload; the listener keeps TLS on as started.
    let tls = tls.map(|initial| generation.config.tls.clone().unwrap_or(initial));
    drop(generation);
    let conn = Arc::new(ConnInfo::new(peer, tls.is_some()));
    let activity = Activity::new();
    let requests = activity.clone();
    let denials = gateway.denials().clone();
    // An HTTP/1.1 WebSocket accepted on this connection, run once hyper hands the
    // connection over: inside this task, so it holds the connection's slot.
    let accepted_tunnel: Arc<Mutex<Option<Tunnel>>> = Arc::default();
    let tunnel_slot = accepted_tunnel.clone();
    let tunnel_stop_signal = stop_signal.clone();
    let service_stop_signal = stop_signal.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        // The generation in force when the request arrives serves all of it.
        let generation = gateway.current();
        let denials = denials.clone();
        let conn = conn.clone();
        let http2 = request.version() == http::Version::HTTP_2;
        let mut in_flight = requests.request_started(request.version());
        let tunnel_slot = tunnel_slot.clone();
        let requests = requests.clone();
        let stop_signal = service_stop_signal.clone();
        async move {
            let mut response =
                crate::proxy::pipeline::handle(generation, &denials, &conn, request).await;
            match response.extensions_mut().remove::<Tunnel>() {
                // One stream among the connection's others: it runs beside
                // them, as a request in flight, so the connection (and its
                // slot) is neither idle nor done while the tunnel is open.
                Some(tunnel) if http2 => {
                    let mut open = requests.request_started(http::Version::HTTP_2);
                    open.answered();
                    tokio::spawn(async move {
                        let end = tunnel.run(stop_signal).await;
                        tracing::debug!(?end, "WebSocket tunnel over HTTP/2 ended");
                        drop(open);
                    });
                }
                Some(tunnel) => {
                    *tunnel_slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(tunnel);
                }
                None => {}
            }
            in_flight.answered();
            Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, in_flight)))
        }
    });
    let (closed, result) = match tls {
        None => {
            let io = TokioIo::new(WatchedIo::new(stream, activity.clone()));
            serve_http(&builder, io, service, &activity, deadlines, stop_signal).await
        }
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            // The handshake counts against `header_read_timeout` from accept,
            // like everything else before the first request head.
            let handshake = tokio::time::timeout(
                deadlines.header_read,
                acceptor.accept(WatchedIo::new(stream, activity.clone())),
            );
            let stream = match handshake.await {
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
            let io = TokioIo::new(stream);
            serve_http(&builder, io, service, &activity, deadlines, stop_signal).await
        }
    };
    match (closed, result) {
        (Closed::Ended, Err(error)) => {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
        (Closed::Ended, Ok(())) => {}
        (closed, _) => tracing::debug!(%peer, ?closed, "connection closed by the gateway"),
    }
    let tunnel = accepted_tunnel
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let (Some(tunnel), Closed::Ended) = (tunnel, closed) {
        let end = tunnel.run(tunnel_stop_signal).await;
        tracing::debug!(%peer, ?end, "WebSocket tunnel ended");
    }
}
