//! The HTTP(S) client of the probes: hyper-util's legacy client over
//! hyper-rustls with the `ring` provider, trusting the webpki (Mozilla) roots
//! or, like `curl --cacert`, only the certificates of one PEM file.
//!
//! The gateway has its own client for upstreams; this one keeps a small pool
//! and never follows redirects (hyper does not), so each answer is seen.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::exchange::ProbeError;

/// The client every probe sends with: `http://` and `https://`, bodies in one piece.
pub(crate) type ProbeClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A probe sends a handful of requests to one host: a few idle connections are enough.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_MAX_IDLE_PER_HOST: usize = 4;

/// A client whose connects give up after `connect_timeout`, trusting the
/// webpki roots, or only the PEM certificates of `ca_file` when given.
pub(crate) fn build(
    connect_timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<ProbeClient, ProbeError> {
    let tls = match ca_file {
        None => tls_with_webpki_roots()?,
        Some(path) => tls_with_ca(path)?,
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector))
}

fn tls_builder(
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, ProbeError> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Tls(e.to_string()))
}

fn tls_with_webpki_roots() -> Result<rustls::ClientConfig, ProbeError> {
    use hyper_rustls::ConfigBuilderExt;
    Ok(tls_builder()?.with_webpki_roots().with_no_client_auth())
}

/// Trusts only the certificates of `path`, as `curl --cacert` does.
fn tls_with_ca(path: &Path) -> Result<rustls::ClientConfig, ProbeError> {
    let fail = |e: &dyn std::fmt::Display| ProbeError::Tls(format!("{}: {e}", path.display()));
    let pem = std::fs::read(path).map_err(|e| fail(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.map_err(|e| fail(&e))?)
            .map_err(|e| fail(&e))?;
    }
    if roots.is_empty() {
        return Err(fail(&"no PEM certificate found"));
    }
    Ok(tls_builder()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
