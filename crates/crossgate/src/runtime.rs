//! The compiled configuration: everything the request path needs, built and
//! checked once at load so that answering a request does no parsing.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossgate_cors::AllowedMethods;
use http::header::{HeaderName, HeaderValue};
use http::Method;

use crate::admin::AdminToken;
use crate::auth::Auth;
use crate::config::{
    self, Access, ConfigSource, FileConfig, PathNormalization, Problems, Report, Seconds, Warning,
};
use crate::forwarded::TrustedProxies;
use crate::metrics::Metrics;
use crate::mock::MockResponse;
use crate::proxy::Upstream;
use crate::router::{NamedPolicy, Route, RouteMethods, Router, Target};

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

/// The methods the gateway forwards; a private resource's preflight without
/// credentials lists them all (Personium's behaviour).
pub const GATEWAY_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// [`GATEWAY_METHODS`] as the `Allow` header of the 405 answered to `CONNECT`.
pub const GATEWAY_ALLOW: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

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
    pub fn connection_deadlines(&self) -> crate::lifetime::Deadlines {
        crate::lifetime::Deadlines {
            header_read: self.header_read_timeout,
            idle: self.idle_timeout,
            send: self.send_timeout,
        }
    }
}

/// A loaded, valid configuration.
pub struct CompiledConfig {
    /// Where it came from.
    pub source: ConfigSource,
    /// `[server]`.
    pub settings: Settings,
    /// The HTTPS listener's configuration, when `tls` is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The routes.
    pub router: Router,
    /// The policy of requests no route matches.
    pub fallback_policy: Option<Arc<NamedPolicy>>,
    /// `[auth]`.
    pub auth: Option<Auth>,
    /// [`GATEWAY_METHODS`], compiled.
    pub gateway_methods: AllowedMethods,
    /// Counters of requests no route matches.
    pub no_route_metrics: crate::metrics::RouteMetrics,
    /// Accepted but doubtful values.
    pub warnings: Vec<Warning>,
    policy_count: usize,
}

impl CompiledConfig {
    /// Reads and compiles the configuration of `source`.
    pub fn load(source: &ConfigSource, metrics: &Metrics) -> Result<Self, Problems> {
        let text = match source {
            ConfigSource::Demo => crate::demo::CONFIG.to_owned(),
            ConfigSource::File(path) => read_bounded(path).map_err(|why| {
                Problems(vec![config::Problem {
                    file: source.display_name(),
                    key: String::new(),
                    why,
                    fix: "check the path given with --config".to_owned(),
                }])
            })?,
        };
        Self::compile_text(&text, source, metrics)
    }

    /// Compiles configuration text; `source` names it in messages and anchors relative paths.
    pub fn compile_text(
        text: &str,
        source: &ConfigSource,
        metrics: &Metrics,
    ) -> Result<Self, Problems> {
        let mut report = Report::new(source);
        let file = config::parse(text, &mut report);
        let compiled = compile(&file, source, metrics, &mut report);
        match compiled {
            Some(config) if !report.has_problems() => Ok(Self {
                warnings: report.warnings,
                ..config
            }),
            _ => Err(report.into_problems()),
        }
    }

    /// One line for `validate` and the startup log.
    pub fn summary(&self) -> String {
        let routes = self.router.routes().len();
        format!(
            "{}: OK: {} polic{}, {} route{}, listening on {}{}{}",
            self.source.display_name(),
            self.policy_count,
            if self.policy_count == 1 { "y" } else { "ies" },
            routes,
            if routes == 1 { "" } else { "s" },
            if self.tls.is_some() {
                "https://"
            } else {
                "http://"
            },
            self.settings.listen,
            self.settings
                .admin
                .map(|admin| format!(", admin on {admin}"))
                .unwrap_or_default(),
        )
    }
}

impl std::fmt::Debug for CompiledConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledConfig")
            .field("source", &self.source)
            .field("settings", &self.settings)
            .field("tls", &self.tls.is_some())
            .field("router", &self.router)
            .field(
                "fallback_policy",
                &self.fallback_policy.as_ref().map(|p| &p.name),
            )
            .field("auth", &self.auth)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// Config files larger than this are refused.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if metadata.len() > MAX_CONFIG_BYTES {
        return Err("the file is larger than 4 MiB".to_owned());
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read the file: {e}"))
}

fn compile(
    file: &FileConfig,
    source: &ConfigSource,
    metrics: &Metrics,
    report: &mut Report,
) -> Option<CompiledConfig> {
    let settings = compile_settings(file, report);
    let tls = compile_tls(file, source, report);

    let mut policies: BTreeMap<&str, Option<Arc<NamedPolicy>>> = BTreeMap::new();
    for (name, policy) in &file.policies {
        let compiled = policy.as_ref().and_then(|policy| match policy.compile() {
            Ok(compiled) => {
                for warning in compiled.warnings() {
                    report.warning(
                        format!("policies.{name}.{}", warning.key()),
                        warning.message(),
                    );
                }
                Some(Arc::new(NamedPolicy {
                    name: name.clone(),
                    policy: compiled,
                }))
            }
            Err(errors) => {
                for error in errors.iter() {
                    let why = if error.value().is_empty() {
                        error.problem()
                    } else {
                        format!("{:?}: {}", error.value(), error.problem())
                    };
                    report.problem(format!("policies.{name}.{}", error.key()), why, error.fix());
                }
                None
            }
        });
        policies.insert(name.as_str(), compiled);
    }

    let auth = match &file.auth {
        Some(auth) => Auth::compile(auth, &file.tokens, report),
        None => None,
    };

    let mut routes = Vec::with_capacity(file.routes.len());
    let mut seen_paths: HashSet<&str> = HashSet::new();
    for parsed in &file.routes {
        let key = format!("routes[{}]", parsed.index);
        let route = &parsed.route;
        let path = match route.path.as_deref() {
            None => {
                report.problem(
                    format!("{key}.path"),
                    "the route has no path",
                    "add path = \"/api/\" (a prefix; \"/\" catches everything)",
                );
                None
            }
            Some(path)
                if !path.starts_with('/')
                    || path.bytes().any(|b| {
                        b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?' || b == b'#'
                    }) =>
            {
                report.problem(
                    format!("{key}.path"),
                    format!("{path:?} is not a path prefix"),
                    "start it with `/` and leave out spaces, `?` and `#`, e.g. \"/api/\"",
                );
                None
            }
            Some(path) => {
                // Requests are routed on their normal form, so a prefix
                // written otherwise would never match.
                match crate::path::normalize(path) {
                    Ok(normal) if normal == path => {}
                    Ok(normal) => report.problem(
                        format!("{key}.path"),
                        format!("{path:?} is not in normal form, so no request would match it"),
                        format!("write {normal:?} (docs/config.md, path normalization)"),
                    ),
                    Err(rejection) => report.problem(
                        format!("{key}.path"),
                        format!("{path:?}: {}, so every request for it is refused", rejection.message()),
                        "write the prefix as a browser sends it, decoded where possible, e.g. \"/api/\"",
                    ),
                }
                if !seen_paths.insert(path) {
                    report.problem(
                        format!("{key}.path"),
                        format!("another route already has the path {path:?}"),
                        "give each route its own path, or merge the two routes",
                    );
                }
                Some(path)
            }
        };

        let target = match (&route.upstream, &parsed.mock) {
            (Some(_), Some(_)) => {
                report.problem(
                    &key,
                    "the route has both `upstream` and `mock`",
                    "keep only one of them",
                );
                None
            }
            (None, None) => {
                report.problem(
                    &key,
                    "the route has neither `upstream` nor `mock`",
                    "add upstream = \"http://127.0.0.1:3000\" or mock = { status = 200, body = \"...\" }",
                );
                None
            }
            (Some(upstream), None) => {
                Upstream::compile(upstream, &format!("{key}.upstream"), report)
                    .map(Target::Upstream)
            }
            (None, Some(mock)) => {
                MockResponse::compile(mock, &format!("{key}.mock"), report).map(Target::Mock)
            }
        };

        let policy = match route.policy.as_deref() {
            None => None,
            Some(name) => match policies.get(name) {
                Some(compiled) => compiled.clone(),
                None => {
                    let known = policies
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    report.problem(
                        format!("{key}.policy"),
                        format!("there is no policy named `{name}`"),
                        if known.is_empty() {
                            format!("add a [policies.{name}] table, or remove `policy` to leave CORS off on this route")
                        } else {
                            format!("use one of {known}, or add a [policies.{name}] table")
                        },
                    );
                    None
                }
            },
        };

        let methods = route
            .methods
            .as_ref()
            .and_then(|methods| compile_methods(methods, &format!("{key}.methods"), report));

        let access = route.access.unwrap_or_default();
        if access == Access::Private && file.auth.is_none() {
            report.problem(
                format!("{key}.access"),
                "a private route needs tokens, and there is no [auth] section",
                "add [auth] with [[auth.tokens]] or jwt_secret, or make the route public",
            );
        }
        if route.policy.is_none() && access == Access::Private {
            report.warning(
                format!("{key}.access"),
                "a private route without a policy answers 401/403 without CORS headers, so browser scripts cannot read them",
            );
        }

        let max_body_bytes = match route.max_body_bytes {
            None => None,
            Some(n) if n > 0 => u64::try_from(n).ok(),
            Some(n) => {
                report.problem(
                    format!("{key}.max_body_bytes"),
                    format!("{n} is not a positive size"),
                    "use a number of bytes such as 1048576, or remove the key",
                );
                None
            }
        };

        let path_normalization = route.path_normalization.unwrap_or_default();
        if path_normalization == PathNormalization::Off {
            report.warning(
                format!("{key}.path_normalization"),
                "\"off\" forwards the path as received: an upstream that decodes %2F, ; or %25 may serve another resource than the one routed and authorized; use it only for an upstream that needs them, and keep private routes off its prefix",
            );
        }

        if let (Some(path), Some(target)) = (path, target) {
            routes.push(Route {
                path: path.to_owned(),
                target,
                policy,
                methods,
                access,
                max_body_bytes,
                path_normalization,
                metrics: metrics.route(path),
            });
        }
    }
    if file.routes.is_empty() && !report.has_problems() {
        report.warning("routes", "there are no routes: every request gets 404");
    }

    let fallback_policy = match file.server.fallback_policy.as_deref() {
        Some(name) => match policies.get(name) {
            Some(compiled) => compiled.clone(),
            None => {
                report.problem(
                    "server.fallback_policy",
                    format!("there is no policy named `{name}`"),
                    format!("add a [policies.{name}] table, or remove fallback_policy"),
                );
                None
            }
        },
        None if policies.len() == 1 => policies.values().next().cloned().flatten(),
        None => {
            // With a catch-all `/` route no path is unrouted, so the fallback never applies.
            let has_catch_all = file
                .routes
                .iter()
                .any(|parsed| parsed.route.path.as_deref() == Some("/"));
            if policies.len() > 1 && !has_catch_all {
                report.warning(
                    "server.fallback_policy",
                    "not set and several policies exist: 404 answers to unrouted paths carry no CORS headers; name the policy to use",
                );
            }
            None
        }
    };

    let gateway_methods = match AllowedMethods::new(GATEWAY_METHODS) {
        Ok(methods) => methods,
        Err(errors) => {
            report.problem(
                "",
                format!("internal: the gateway's method list does not compile: {errors}"),
                "report this bug",
            );
            return None;
        }
    };

    let settings = settings?;
    if report.has_problems() {
        return None;
    }
    Some(CompiledConfig {
        source: source.clone(),
        settings,
        tls,
        router: Router::new(routes),
        fallback_policy,
        auth,
        gateway_methods,
        no_route_metrics: metrics.no_route(),
        warnings: Vec::new(),
        policy_count: policies.len(),
    })
}

fn compile_methods(methods: &[String], key: &str, report: &mut Report) -> Option<RouteMethods> {
    if methods.is_empty() {
        report.problem(
            key,
            "an empty method list would refuse every request",
            "list the methods the resource supports, e.g. [\"GET\", \"POST\"], or remove the key",
        );
        return None;
    }
    let mut ok = true;
    let mut accepted: Vec<Method> = Vec::with_capacity(methods.len() + 1);
    for (i, name) in methods.iter().enumerate() {
        let at = format!("{key}[{i}]");
        match Method::from_bytes(name.as_bytes()) {
            Ok(_) if name.bytes().any(|b| b.is_ascii_lowercase()) => {
                ok = false;
                report.problem(
                    at,
                    format!(
                        "{name:?}: methods are case-sensitive and clients send them upper-case"
                    ),
                    format!("write {:?}", name.to_ascii_uppercase()),
                );
            }
            Ok(method) => {
                if accepted.contains(&method) {
                    report.warning(at, "listed twice");
                } else {
                    accepted.push(method);
                }
            }
            Err(_) => {
                ok = false;
                report.problem(
                    at,
                    format!("{name:?} is not a method name"),
                    "use a method such as \"GET\" or \"PUT\"",
                );
            }
        }
    }
    let cors = match AllowedMethods::new(methods) {
        Ok(cors) => Some(cors),
        Err(errors) => {
            for error in errors.iter() {
                let index = error.key().strip_prefix("methods").unwrap_or("");
                report.problem(format!("{key}{index}"), error.problem(), error.fix());
            }
            None
        }
    };
    if !ok {
        return None;
    }
    let cors = cors?;
    let mut allow_list: Vec<&str> = accepted.iter().map(Method::as_str).collect();
    if accepted.contains(&Method::GET) && !accepted.contains(&Method::HEAD) {
        allow_list.push("HEAD");
    }
    let allow = match HeaderValue::from_str(&allow_list.join(", ")) {
        Ok(value) => value,
        Err(_) => {
            report.problem(
                key,
                "the method list cannot form an Allow header",
                "use plain method names",
            );
            return None;
        }
    };
    if accepted.contains(&Method::GET) && !accepted.contains(&Method::HEAD) {
        accepted.push(Method::HEAD);
    }
    Some(RouteMethods {
        cors,
        accepted,
        allow,
    })
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
    let secs = value.as_f64();
    if !secs.is_finite() || secs <= 0.0 || secs > max_secs {
        report.problem(
            format!("server.{key}"),
            format!("{secs} is not a number of seconds between 0 and {max_secs}"),
            format!("use e.g. {key} = {} (the default)", default.as_secs_f64()),
        );
        return default;
    }
    Duration::from_secs_f64(secs)
}

fn compile_settings(file: &FileConfig, report: &mut Report) -> Option<Settings> {
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
        crate::log_limit::DEFAULT_DENIAL_LOG_RATE as usize,
        0,
        crate::log_limit::MAX_DENIAL_LOG_RATE as usize,
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
            .unwrap_or(crate::log_limit::MAX_DENIAL_LOG_RATE),
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

fn compile_tls(
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
    match crate::tls::load(&base.join(cert), &base.join(key)) {
        Ok(config) => Some(config),
        Err(why) => {
            report.problem("server.tls", why, "point cert at a PEM certificate chain and key at its PEM private key (paths are relative to the config file)");
            None
        }
    }
}
