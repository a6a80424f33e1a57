//! `[[routes]]`: each route compiled key by key, with the problems that need
//! more than one key to see (a policy that does not exist, a private route
//! without `[auth]`, two routes on one host and path).

use std::collections::BTreeMap;

use http::header::HeaderValue;
use http::Method;

use super::file::{Access, FileConfig, ParsedRoute, PathNormalization, RouteFile};
use super::hosts::{check_unique, compile_hosts, Served};
use super::rewrite::compile_rewrite;
use super::Report;
use crate::ops::metrics::Metrics;
use crate::proxy::mock::MockResponse;
use crate::proxy::pool::UpstreamPool;
use crate::proxy::router::{route_label, NamedPolicy, Route, RouteMethods, Target};
use crossgate_cors::AllowedMethods;
use std::sync::Arc;

/// The compiled policies by name; `None` for one that did not compile (its
/// problems are already reported, so routes naming it add none).
pub(super) type Policies<'a> = BTreeMap<&'a str, Option<Arc<NamedPolicy>>>;

/// Every route that compiled; the others have their problems reported.
pub(super) fn compile_routes(
    file: &FileConfig,
    policies: &Policies<'_>,
    metrics: &Metrics,
    report: &mut Report,
) -> Vec<Route> {
    let mut routes = Vec::with_capacity(file.routes.len());
    let mut served = Served::new();
    for parsed in &file.routes {
        if let Some(route) = compile_route(parsed, file, policies, &mut served, metrics, report) {
            routes.push(route);
        }
    }
    if file.routes.is_empty() && !report.has_problems() {
        report.warning("routes", "there are no routes: every request gets 404");
    }
    routes
}

fn compile_route<'a>(
    parsed: &'a ParsedRoute,
    file: &FileConfig,
    policies: &Policies<'_>,
    served: &mut Served<'a>,
    metrics: &Metrics,
    report: &mut Report,
) -> Option<Route> {
    let key = format!("routes[{}]", parsed.index);
    let route = &parsed.route;
    let path = route_path(route, &key, report);
    let hosts = compile_hosts(route.host.as_ref(), &key, report);
    if let (Some(path), Some(hosts)) = (path, &hosts) {
        check_unique(hosts, path, served, &key, report);
    }
    // Known before the target, whose per-target metrics carry it too.
    let label = match (path, &hosts) {
        (Some(path), Some(hosts)) => route_label(hosts, path),
        _ => path.unwrap_or_default().to_owned(),
    };
    let target = route_target(parsed, &key, &label, metrics, report);
    let policy = route_policy(route, &key, policies, report);
    let report_only_policy =
        super::report_only::route_report_only_policy(route, &key, policies, report);
    let methods = route
        .methods
        .as_ref()
        .and_then(|methods| compile_methods(methods, &key, report));
    let access = route_access(route, file, &key, report);
    let max_body_bytes = route_max_body_bytes(route, &key, report);
    let path_normalization = route_path_normalization(route, &key, report);
    let websocket = crate::proxy::upgrade::WebSocketRule::compile(
        route.websocket,
        route.websocket_require_origin,
        &key,
        report,
    );
    let rewrite = compile_rewrite(route, path_normalization, &key, report);
    let (path, target, hosts) = (path?, target?, hosts?);
    Some(Route {
        path: path.to_owned(),
        target,
        policy,
        report_only_policy,
        methods,
        access,
        max_body_bytes,
        path_normalization,
        websocket,
        metrics: metrics.route(&label),
        hosts,
        label,
        rewrite,
    })
}

/// `path`: a prefix in the normal form requests are routed on.
fn route_path<'a>(route: &'a RouteFile, key: &str, report: &mut Report) -> Option<&'a str> {
    match route.path.as_deref() {
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
            match crate::proxy::path::normalize(path) {
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
            Some(path)
        }
    }
}

/// `upstream` or `mock`: exactly one of them.
fn route_target(
    parsed: &ParsedRoute,
    key: &str,
    label: &str,
    metrics: &Metrics,
    report: &mut Report,
) -> Option<Target> {
    match (&parsed.upstream, &parsed.mock) {
        (Some(_), Some(_)) => {
            report.problem(
                key,
                "the route has both `upstream` and `mock`",
                "keep only one of them",
            );
            None
        }
        (None, None) => {
            report.problem(
                key,
                "the route has neither `upstream` nor `mock`",
                "add upstream = \"http://127.0.0.1:3000\" or mock = { status = 200, body = \"...\" }",
            );
            None
        }
        (Some(upstream), None) => {
            UpstreamPool::compile(upstream, &format!("{key}.upstream"), label, metrics, report)
                .map(Target::Upstream)
        }
        (None, Some(mock)) => {
            MockResponse::compile(mock, &format!("{key}.mock"), report).map(Target::Mock)
        }
    }
}

/// `policy`: the name of a `[policies.*]` table.
fn route_policy(
    route: &RouteFile,
    key: &str,
    policies: &Policies<'_>,
    report: &mut Report,
) -> Option<Arc<NamedPolicy>> {
    let name = route.policy.as_deref()?;
    named_policy(
        name,
        &format!("{key}.policy"),
        "remove `policy` to leave CORS off on this route",
        policies,
        report,
    )
}

/// The compiled policy called `name`, or a problem at `key_path` listing the
/// known names (`removal` is the fix when there are none).
pub(super) fn named_policy(
    name: &str,
    key_path: &str,
    removal: &str,
    policies: &Policies<'_>,
    report: &mut Report,
) -> Option<Arc<NamedPolicy>> {
    if let Some(compiled) = policies.get(name) {
        return compiled.clone();
    }
    let known = policies
        .keys()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    report.problem(
        key_path,
        format!("there is no policy named `{name}`"),
        if known.is_empty() {
            format!("add a [policies.{name}] table, or {removal}")
        } else {
            format!("use one of {known}, or add a [policies.{name}] table")
        },
    );
    None
}

/// `access`: a private route needs `[auth]`, and without a policy its
/// refusals are unreadable to scripts.
fn route_access(route: &RouteFile, file: &FileConfig, key: &str, report: &mut Report) -> Access {
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
    access
}

/// `max_body_bytes`: a positive size.
fn route_max_body_bytes(route: &RouteFile, key: &str, report: &mut Report) -> Option<u64> {
    match route.max_body_bytes {
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
    }
}

/// `path_normalization`: `"off"` is accepted with a warning.
fn route_path_normalization(
    route: &RouteFile,
    key: &str,
    report: &mut Report,
) -> PathNormalization {
    let path_normalization = route.path_normalization.unwrap_or_default();
    if path_normalization == PathNormalization::Off {
        report.warning(
            format!("{key}.path_normalization"),
            "\"off\" forwards the path as received: an upstream that decodes %2F, ; or %25 may serve another resource than the one routed and authorized; use it only for an upstream that needs them, and keep private routes off its prefix",
        );
    }
    path_normalization
}

/// `routes[i].methods`: the 405 list, its `Allow` header and the preflight's
/// methods, all from one list.
fn compile_methods(
    methods: &[String],
    route_key: &str,
    report: &mut Report,
) -> Option<RouteMethods> {
    let key = &format!("{route_key}.methods");
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
            // The engine names the list `methods`, as the route's key does.
            report.engine_errors(route_key, &errors);
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
