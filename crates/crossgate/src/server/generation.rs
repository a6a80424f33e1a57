//! The gateway's live state: the compiled configuration in force, swapped
//! atomically on reload so that every request finishes on the configuration
//! it started with.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::Semaphore;

use crate::config::{CompiledConfig, Settings};
use crate::config::{ConfigSource, Problems};
use crate::ops::denials::DenialLog;
use crate::ops::metrics::Metrics;
use crate::proxy::client::{self, ClientError, ClientOptions, UpstreamClient};
use crate::proxy::health::HealthCheckers;

/// One generation of configuration with what was built from it.
pub struct Generation {
    /// The compiled file.
    pub config: CompiledConfig,
    /// The upstream client (its pool is kept across reloads that keep `connect_timeout`).
    pub client: UpstreamClient,
    /// How client connections are served (HTTP/1.1 and HTTP/2, limits, timeouts).
    pub connections: auto::Builder<TokioExecutor>,
    /// `max_upstream_requests` slots, shared across reloads that keep the limit.
    pub upstream_slots: Arc<Semaphore>,
    /// The pools' health checks, stopped when this generation is dropped.
    pub health_checkers: HealthCheckers,
}

/// Why a configuration could not be put in force.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file has problems; each names its key and a fix.
    #[error("{0}")]
    Invalid(Problems),
    /// The upstream client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The gateway: the configuration in force and the process-wide counters.
pub struct Gateway {
    current: ArcSwap<Generation>,
    source: ConfigSource,
    listen_override: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    denials: Arc<DenialLog>,
    reloading: Mutex<()>,
}

impl Gateway {
    /// Loads `source`; `listen_override` replaces `server.listen` (also on reloads).
    pub fn load(
        source: ConfigSource,
        listen_override: Option<SocketAddr>,
        metrics: Arc<Metrics>,
        denials: Arc<DenialLog>,
    ) -> Result<Self, LoadError> {
        let config = compile(&source, listen_override, &metrics)?;
        log_warnings(&config);
        let generation = build_generation(config, None)?;
        Ok(Self {
            current: ArcSwap::from_pointee(generation),
            source,
            listen_override,
            metrics,
            denials,
            reloading: Mutex::new(()),
        })
    }

    /// The configuration in force; hold the `Arc` for the whole request.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Reads, validates and compiles the source again, then puts it in force.
    /// On error the running configuration stays in force. Settings that only
    /// apply at startup (`listen`, `admin`, `max_connections`, turning TLS on
    /// or off) are logged as needing a restart.
    pub fn reload(&self) -> Result<(), LoadError> {
        // One reload at a time, so two quick triggers cannot swap out of order.
        let _guard = self
            .reloading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let config = compile(&self.source, self.listen_override, &self.metrics)?;
        let previous = self.current();
        warn_restart_only(&previous.config, &config);
        log_warnings(&config);
        let generation = build_generation(config, Some(&previous))?;
        self.current.store(Arc::new(generation));
        Ok(())
    }

    /// The recent-denials ring buffer.
    pub fn denials(&self) -> &Arc<DenialLog> {
        &self.denials
    }
}

fn compile(
    source: &ConfigSource,
    listen_override: Option<SocketAddr>,
    metrics: &Metrics,
) -> Result<CompiledConfig, LoadError> {
    let mut config = CompiledConfig::load(source, metrics).map_err(LoadError::Invalid)?;
    if let Some(listen) = listen_override {
        config.settings.listen = listen;
    }
    Ok(config)
}

fn log_warnings(config: &CompiledConfig) {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
}

fn build_generation(
    config: CompiledConfig,
    previous: Option<&Generation>,
) -> Result<Generation, ClientError> {
    let client = match previous {
        Some(previous)
            if previous.config.settings.connect_timeout == config.settings.connect_timeout =>
        {
            previous.client.clone()
        }
        _ => client::build(&ClientOptions::with_connect_timeout(
            config.settings.connect_timeout,
        ))?,
    };
    let connections = connection_builder(&config.settings);
    let upstream_slots = match previous {
        Some(previous)
            if previous.config.settings.max_upstream_requests
                == config.settings.max_upstream_requests =>
        {
            previous.upstream_slots.clone()
        }
        _ => Arc::new(Semaphore::new(config.settings.max_upstream_requests)),
    };
    let health_checkers = HealthCheckers::start(&config.router, &client);
    Ok(Generation {
        config,
        client,
        connections,
        upstream_slots,
        health_checkers,
    })
}

/// How far beyond `max_header_bytes` a head may grow in hyper's buffers
/// before hyper cuts it off with its own bare 431: far enough that every head
/// a client would plausibly send reaches the handler, which answers 431 with
/// CORS headers a script can read, while one connection's buffer stays bounded.
const HEAD_BUFFER_FACTOR: usize = 4;
/// hyper's own default HTTP/1 buffer; the cap is never lower.
const MIN_HEAD_BUFFER: usize = 400 * 1024;
/// Streams reset by the client before the gateway accepted them, per
/// connection, before GOAWAY (h2's guard against CVE-2023-44487).
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the gateway itself reset because of a client's protocol errors,
/// per connection, before GOAWAY (RUSTSEC-2024-0003; hyper's default).
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

fn connection_builder(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let head_buffer = (settings.max_header_bytes * HEAD_BUFFER_FACTOR).max(MIN_HEAD_BUFFER);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // `lifetime` times request heads and keep-alive pauses separately;
        // hyper's timer would close keep-alive connections after
        // `header_read_timeout`.
        .header_read_timeout(None)
        .max_buf_size(head_buffer);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(head_buffer).unwrap_or(u32::MAX))
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        // SETTINGS_ENABLE_CONNECT_PROTOCOL: browsers open WebSockets over
        // HTTP/2 (RFC 8441); plain CONNECT is still refused by the pipeline.
        .enable_connect_protocol()
        // A peer that goes quiet for `idle_timeout` is asked for a PING ack;
        // without one within `header_read_timeout` it is gone, even with
        // streams open (which the idle deadline does not cover).
        .keep_alive_interval(settings.idle_timeout)
        .keep_alive_timeout(settings.header_read_timeout);
    builder
}

fn warn_restart_only(running: &CompiledConfig, next: &CompiledConfig) {
    let (a, b) = (&running.settings, &next.settings);
    let mut changed = Vec::new();
    if a.listen != b.listen {
        changed.push("server.listen");
    }
    if a.admin != b.admin {
        changed.push("server.admin");
    }
    if a.max_connections != b.max_connections {
        changed.push("server.max_connections");
    }
    if a.admin_token != b.admin_token {
        changed.push("server.admin_token");
    }
    if running.tls.is_some() != next.tls.is_some() {
        changed.push("server.tls (on/off)");
    }
    if !changed.is_empty() {
        tracing::warn!(keys = ?changed, "these settings changed but apply only after a restart; the rest of the new configuration is in force");
    }
}
