//! The pooled HTTP(S) client used to reach upstreams: hyper-util's legacy
//! client over hyper-rustls with the `ring` provider and the webpki (Mozilla)
//! roots.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use http_body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

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

/// A client that trusts the webpki (Mozilla) roots.
pub fn build<B>(options: &ClientOptions) -> Result<Client<Connector, B>, ClientError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
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
pub fn build_with_tls<B>(options: &ClientOptions, tls: rustls::ClientConfig) -> Client<Connector, B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
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
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(options.pool_idle_timeout)
        .pool_max_idle_per_host(options.pool_max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}
