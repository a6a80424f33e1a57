//! The compiled configuration: everything the request path needs, built and
//! checked once at load so that answering a request does no parsing. Each
//! table is compiled by its own function; the file's tables go in, the live
//! form comes out, and every problem lands in one [`Report`].

use std::sync::Arc;

use crossgate_cors::AllowedMethods;

use super::file::FileConfig;
use super::routes::{compile_routes, Policies};
use super::settings::{compile_settings, compile_tls, Settings};
use super::{ConfigSource, Problems, Report, Warning};
use crate::ops::metrics::{Metrics, RouteMetrics};
use crate::proxy::auth::Auth;
use crate::proxy::router::{NamedPolicy, Router, GATEWAY_METHODS};

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
    pub no_route_metrics: RouteMetrics,
    /// Accepted but doubtful values.
    pub warnings: Vec<Warning>,
    policy_count: usize,
}

impl CompiledConfig {
    /// Reads and compiles the configuration of `source`.
    pub fn load(source: &ConfigSource, metrics: &Metrics) -> Result<Self, Problems> {
        let text = match source {
            ConfigSource::Demo => super::demo::CONFIG.to_owned(),
            ConfigSource::File(path) => read_bounded(path).map_err(|why| {
                let mut report = Report::new(source);
                report.problem("", why, "check the path given with --config");
                report.into_problems()
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
        let file = super::file::parse(text, &mut report);
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
    let policies = compile_policies(file, report);
    let auth = file
        .auth
        .as_ref()
        .and_then(|auth| Auth::compile(auth, &file.tokens, report));
    let routes = compile_routes(file, &policies, metrics, report);
    let fallback_policy = compile_fallback_policy(file, &policies, report);
    let gateway_methods = compile_gateway_methods(report)?;
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

/// `[policies.*]`: each compiled by the engine, whose errors and warnings
/// are placed under `policies.<name>`.
fn compile_policies<'a>(file: &'a FileConfig, report: &mut Report) -> Policies<'a> {
    let mut policies = Policies::new();
    for (name, policy) in &file.policies {
        let prefix = format!("policies.{name}");
        let compiled = policy.as_ref().and_then(|policy| match policy.compile() {
            Ok(compiled) => {
                for warning in compiled.warnings() {
                    report.warning(format!("{prefix}.{}", warning.key()), warning.message());
                }
                Some(Arc::new(NamedPolicy {
                    name: name.clone(),
                    policy: compiled,
                }))
            }
            Err(errors) => {
                report.engine_errors(&prefix, &errors);
                None
            }
        });
        policies.insert(name.as_str(), compiled);
    }
    policies
}

/// `server.fallback_policy`: the policy of requests no route matches.
fn compile_fallback_policy(
    file: &FileConfig,
    policies: &Policies<'_>,
    report: &mut Report,
) -> Option<Arc<NamedPolicy>> {
    match file.server.fallback_policy.as_deref() {
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
            // With a host-less catch-all `/` route no request is unrouted,
            // so the fallback never applies.
            let has_catch_all = file.routes.iter().any(|parsed| {
                parsed.route.path.as_deref() == Some("/") && parsed.route.host.is_none()
            });
            if policies.len() > 1 && !has_catch_all {
                report.warning(
                    "server.fallback_policy",
                    "not set and several policies exist: 404 answers to unrouted paths carry no CORS headers; name the policy to use",
                );
            }
            None
        }
    }
}

/// [`GATEWAY_METHODS`], compiled once for the preflights of private routes.
fn compile_gateway_methods(report: &mut Report) -> Option<AllowedMethods> {
    match AllowedMethods::new(GATEWAY_METHODS) {
        Ok(methods) => Some(methods),
        Err(errors) => {
            report.problem(
                "",
                format!("internal: the gateway's method list does not compile: {errors}"),
                "report this bug",
            );
            None
        }
    }
}
