//! The `[server]` table: listeners, timeouts, limits, TLS and the admin
//! token, each key checked in its own function with its default applied.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;

use super::file::{FileConfig, Seconds};
use super::{ConfigSource, Report};
use crate::ops::admin::AdminToken;
use crate::proxy::forwarded::TrustedProxies;

/// Defaults of the `[server]` keys, documented in docs/config.md.
pub mod defaults {
    use std::time::Duration;

    /// `request_id_header`.
    pub const REQUEST_ID_HEADER: &str = "x-request-id";
    /// `connect_timeout`.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// `response_timeout`.
    pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
    /// `header_read_timeout`.
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// `shutdown_timeout`.
    pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
    /// `max_connections`.
    pub const MAX_CONNECTIONS: usize = 4096;
    /// `max_header_bytes`.
    pub const MAX_HEADER_BYTES: usize = 32 * 1024;
    /// `idle_timeout` (nginx's `keepalive_timeout` is 75 s).
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// `send_timeout` (nginx's default).
    pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
    /// `http2_max_concurrent_streams` (nginx's default).
    pub const HTTP2_MAX_CONCURRENT_STREAMS: usize = 128;
    /// `max_upstream_requests`: half the common soft limit of 1024 file
    /// descriptors, so upstream sockets alone cannot exhaust it.
    pub const MAX_UPSTREAM_REQUESTS: usize = 512;
}

/// The `[server]` table, with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `listen`.
    pub listen: SocketAddr,
    /// `admin`.
    pub admin: Option<SocketAddr>,
    /// `request_id_header`.
    pub request_id_header: HeaderName,
    /// `connect_timeout`.
    pub connect_timeout: Duration,
    /// `response_timeout`.
    pub response_timeout: Duration,
    /// `header_read_timeout`.
    pub header_read_timeout: Duration,
    /// `shutdown_timeout`.
    pub shutdown_timeout: Duration,
    /// `max_connections`.
    pub max_connections: usize,
    /// `max_header_bytes`.
    pub max_header_bytes: usize,
    /// `admin_token`.
    pub admin_token: Option<AdminToken>,
    /// `denial_log_rate`: per-request log lines per second, route and reason.
    pub denial_log_rate: u32,
    /// `idle_timeout`.
    pub idle_timeout: Duration,
    /// `send_timeout`.
    pub send_timeout: Duration,
    /// `http2_max_concurrent_streams`.
    pub http2_max_concurrent_streams: u32,
    /// `max_upstream_requests`.
    pub max_upstream_requests: usize,
    /// `trusted_proxies`.
    pub trusted_proxies: TrustedProxies,
}

impl Settings {
    /// The timeouts every client connection lives by.
    pub fn connection_deadlines(&self) -> crate::server::lifetime::Deadlines {
        crate::server::lifetime::Deadlines {
            header_read: self.header_read_timeout,
            idle: self.idle_timeout,
            send: self.send_timeout,
        }
    }
}

fn seconds(
    value: Option<Seconds>,
    default: Duration,
    key: &str,
    max_secs: f64,
    report: &mut Report,
) -> Duration {
    let Some(value) = value else {
        return default;
    };
    value.within(max_secs).unwrap_or_else(|problem| {
        report.problem(
            format!("server.{key}"),
            problem,
            format!("use e.g. {key} = {} (the default)", default.as_secs_f64()),
        );
        default
    })
}

pub(super) fn compile_settings(file: &FileConfig, report: &mut Report) -> Option<Settings> {
    let server = &file.server;
    let listen = match server.listen.as_deref() {
        None => {
            report.problem(
                "server.listen",
                "the address to listen on is missing",
                "add listen = \"127.0.0.1:8080\"",
            );
            None
        }
        Some(text) => parse_addr(text, "server.listen", report),
    };
    let admin = server
        .admin
        .as_deref()
        .and_then(|text| parse_addr(text, "server.admin", report));
    if let (Some(listen), Some(admin)) = (listen, admin) {
        if listen == admin && listen.port() != 0 {
            report.problem(
                "server.admin",
                "the admin listener uses the same address as `listen`",
                "give it its own port, e.g. \"127.0.0.1:9090\"",
            );
        }
    }
    let request_id_header = match server.request_id_header.as_deref() {
        None => HeaderName::from_static(defaults::REQUEST_ID_HEADER),
        Some(name) => match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => name,
            Err(_) => {
                report.problem(
                    "server.request_id_header",
                    format!("{name:?} is not a header name"),
                    "use a token such as \"x-request-id\"",
                );
                HeaderName::from_static(defaults::REQUEST_ID_HEADER)
            }
        },
    };
    let connect_timeout = seconds(
        server.connect_timeout,
        defaults::CONNECT_TIMEOUT,
        "connect_timeout",
        300.0,
        report,
    );
    let response_timeout = seconds(
        server.response_timeout,
        defaults::RESPONSE_TIMEOUT,
        "response_timeout",
        3600.0,
        report,
    );
    let header_read_timeout = seconds(
        server.header_read_timeout,
        defaults::HEADER_READ_TIMEOUT,
        "header_read_timeout",
        300.0,
        report,
    );
    let shutdown_timeout = seconds(
        server.shutdown_timeout,
        defaults::SHUTDOWN_TIMEOUT,
        "shutdown_timeout",
        3600.0,
        report,
    );
    let max_connections = bounded(
        server.max_connections,
        defaults::MAX_CONNECTIONS,
        1,
        1_000_000,
        "max_connections",
        report,
    );
    let max_header_bytes = bounded(
        server.max_header_bytes,
        defaults::MAX_HEADER_BYTES,
        1024,
        1 << 20,
        "max_header_bytes",
        report,
    );
    let admin_token = server
        .admin_token
        .as_deref()
        .and_then(|text| match AdminToken::parse(text) {
            Ok(token) => Some(token),
            Err(why) => {
                report.problem(
                    "server.admin_token",
                    why,
                    "use 32 to 8192 random characters from A-Z a-z 0-9 - . _ ~ + / =, e.g. the output of `openssl rand -base64 32`",
                );
                None
            }
        });
    let denial_log_rate = bounded(
        server.denial_log_rate,
        crate::ops::log_limit::DEFAULT_DENIAL_LOG_RATE as usize,
        0,
        crate::ops::log_limit::MAX_DENIAL_LOG_RATE as usize,
        "denial_log_rate",
        report,
    );
    let idle_timeout = seconds(
        server.idle_timeout,
        defaults::IDLE_TIMEOUT,
        "idle_timeout",
        3600.0,
        report,
    );
    let send_timeout = seconds(
        server.send_timeout,
        defaults::SEND_TIMEOUT,
        "send_timeout",
        3600.0,
        report,
    );
    let http2_max_concurrent_streams = bounded(
        server.http2_max_concurrent_streams,
        defaults::HTTP2_MAX_CONCURRENT_STREAMS,
        1,
        1000,
        "http2_max_concurrent_streams",
        report,
    );
    let max_upstream_requests = bounded(
        server.max_upstream_requests,
        defaults::MAX_UPSTREAM_REQUESTS,
        1,
        1_000_000,
        "max_upstream_requests",
        report,
    );
    let trusted_proxies = TrustedProxies::compile(
        server.trusted_proxies.as_deref().unwrap_or_default(),
        report,
    );
    Some(Settings {
        listen: listen?,
        admin,
        request_id_header,
        connect_timeout,
        response_timeout,
        header_read_timeout,
        shutdown_timeout,
        max_connections,
        max_header_bytes,
        admin_token,
        // Bounded by MAX_DENIAL_LOG_RATE just above.
        denial_log_rate: u32::try_from(denial_log_rate)
            .unwrap_or(crate::ops::log_limit::MAX_DENIAL_LOG_RATE),
        idle_timeout,
        send_timeout,
        // `bounded` keeps it within 1..=1000.
        http2_max_concurrent_streams: u32::try_from(http2_max_concurrent_streams)
            .unwrap_or(u32::MAX),
        max_upstream_requests,
        trusted_proxies,
    })
}

fn bounded(
    value: Option<i64>,
    default: usize,
    min: usize,
    max: usize,
    key: &str,
    report: &mut Report,
) -> usize {
    let Some(value) = value else {
        return default;
    };
    match usize::try_from(value) {
        Ok(n) if (min..=max).contains(&n) => n,
        _ => {
            report.problem(
                format!("server.{key}"),
                format!("{value} is outside {min}..={max}"),
                format!("use e.g. {key} = {default} (the default)"),
            );
            default
        }
    }
}

fn parse_addr(text: &str, key: &str, report: &mut Report) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            let fix = if text.starts_with("localhost:") {
                format!(
                    "write \"127.0.0.1:{}\"",
                    text.trim_start_matches("localhost:")
                )
            } else {
                "write an IP address and port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"".to_owned()
            };
            report.problem(
                key,
                format!("{text:?} is not an IP address with a port"),
                fix,
            );
            None
        }
    }
}

pub(super) fn compile_tls(
    file: &FileConfig,
    source: &ConfigSource,
    report: &mut Report,
) -> Option<Arc<rustls::ServerConfig>> {
    let tls = file.tls.as_ref()?;
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        report.problem(
            "server.tls",
            "TLS needs both `cert` and `key`",
            "write tls = { cert = \"cert.pem\", key = \"key.pem\" }",
        );
        return None;
    };
    let base = source.base_dir();
    match crate::server::tls::load(&base.join(cert), &base.join(key)) {
        Ok(config) => Some(config),
        Err(why) => {
            report.problem("server.tls", why, "point cert at a PEM certificate chain and key at its PEM private key (paths are relative to the config file)");
            None
        }
    }
}
