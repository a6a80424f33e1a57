//! Compiled routes, and matching on host then longest path prefix.
//!
//! Hosts are tried from the most specific class to the least: the request's
//! exact host, then wildcards from the longest suffix, then host-less routes.
//! The first class with a route whose prefix matches the path wins, and within
//! it the longest prefix. So a host's routes take only the paths they name,
//! and the rest of that host's traffic is served as before by less specific
//! routes, as in Kong and Traefik; a host that must serve nothing else gets
//! its own catch-all `path = "/"` route (nginx server blocks, Envoy virtual
//! hosts).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crossgate_cors::{AllowedMethods, Policy};
use http::header::HeaderValue;
use http::Method;

use crate::config::{Access, PathNormalization};
use crate::ops::metrics::RouteMetrics;
use crate::proxy::host::HostPattern;
use crate::proxy::mock::MockResponse;
use crate::proxy::path::{self, PathRejection};
use crate::proxy::pool::UpstreamPool;

/// The methods the gateway forwards; a private resource's preflight without
/// credentials lists them all (Personium's behaviour).
pub const GATEWAY_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// [`GATEWAY_METHODS`] as the `Allow` header of the 405 answered to `CONNECT`.
pub const GATEWAY_ALLOW: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

/// A compiled policy with the name it has in the file.
#[derive(Debug)]
pub struct NamedPolicy {
    /// `web` for `[policies.web]`.
    pub name: String,
    /// The compiled engine policy.
    pub policy: Policy,
}

/// Where a route's actual requests go.
#[derive(Debug)]
pub enum Target {
    /// Proxied to an upstream: one base URL, or a pool of them.
    Upstream(UpstreamPool),
    /// Answered with a fixed response.
    Mock(MockResponse),
}

/// The methods a route declares, with everything precompiled.
#[derive(Debug)]
pub struct RouteMethods {
    /// For preflights: the resource's methods replace the policy's.
    pub cors: AllowedMethods,
    /// For the 405 check: the declared methods, plus HEAD when GET is declared.
    pub accepted: Vec<Method>,
    /// The `Allow` header of a 405.
    pub allow: HeaderValue,
}

impl RouteMethods {
    /// Whether a request with `method` may reach the route's target.
    pub fn accepts(&self, method: &Method) -> bool {
        self.accepted.contains(method)
    }
}

/// One compiled `[[routes]]` entry.
pub struct Route {
    /// The prefix, as written.
    pub path: String,
    /// Upstream or mock.
    pub target: Target,
    /// The CORS policy; `None` leaves CORS to the upstream.
    pub policy: Option<Arc<NamedPolicy>>,
    /// The candidate policy that decides beside `policy` without changing
    /// the response (`report_only_policy`).
    pub report_only_policy: Option<Arc<NamedPolicy>>,
    /// The declared methods, if any.
    pub methods: Option<RouteMethods>,
    /// Whether a token is required.
    pub access: Access,
    /// The request body limit.
    pub max_body_bytes: Option<u64>,
    /// How the request path is read and forwarded.
    pub path_normalization: PathNormalization,
    /// Whether WebSocket handshakes are carried, and how their origin is checked.
    pub websocket: crate::proxy::upgrade::WebSocketRule,
    /// This route's counters.
    pub metrics: RouteMetrics,
    /// The hosts the route serves; empty for every host.
    pub hosts: Vec<HostPattern>,
    /// The route's name in metrics, logs and the denial log: its path, or
    /// `host,host/path` when it has hosts (see [`route_label`]).
    pub label: String,
    /// What replaces the prefix before forwarding, if anything.
    pub rewrite: Option<PrefixRewrite>,
}

/// A route's name in metrics and logs: the path alone for a host-less route,
/// so that labels from before host routing are unchanged, and the hosts
/// before it otherwise, which keeps two routes on one path apart.
pub fn route_label(hosts: &[HostPattern], path: &str) -> String {
    if hosts.is_empty() {
        return path.to_owned();
    }
    let hosts: Vec<String> = hosts.iter().map(HostPattern::to_string).collect();
    format!("{}{path}", hosts.join(","))
}

/// `strip_prefix` or `rewrite_prefix`: the route's prefix replaced in the
/// normalized path, the rest of the path and the query kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRewrite {
    /// In normal form, starting with `/`; `/` for `strip_prefix`.
    replacement: String,
}

impl PrefixRewrite {
    /// Replaces the prefix with `replacement` (checked at load: normal form,
    /// starting with `/`).
    pub fn new(replacement: &str) -> Self {
        Self {
            replacement: replacement.to_owned(),
        }
    }

    /// `path` (normalized, matched by `prefix`) with the prefix replaced. The
    /// `/` that separates the prefix from the rest is kept once, whether the
    /// prefix or the replacement ends with one or not: `/api/` to `/v2`
    /// sends `/api/x` to `/v2/x`, never `/v2x`; and since both sides are in
    /// normal form, so is the result.
    fn apply(&self, prefix: &str, path: &str) -> String {
        let rest = match prefix.strip_suffix('/') {
            Some(without_slash) => &path[without_slash.len()..],
            None => &path[prefix.len()..],
        };
        if rest.is_empty() {
            return self.replacement.clone();
        }
        let base = self.replacement.trim_end_matches('/');
        let mut rewritten = String::with_capacity(base.len() + rest.len());
        rewritten.push_str(base);
        rewritten.push_str(rest);
        rewritten
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("path", &self.path)
            .field("target", &self.target)
            .field("policy", &self.policy.as_ref().map(|p| &p.name))
            .field(
                "report_only_policy",
                &self.report_only_policy.as_ref().map(|p| &p.name),
            )
            .field("methods", &self.methods)
            .field("access", &self.access)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("path_normalization", &self.path_normalization)
            .field("websocket", &self.websocket)
            .field("hosts", &self.hosts)
            .field("rewrite", &self.rewrite)
            .finish_non_exhaustive()
    }
}

/// The path to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// The path as received: already normal, or the route has `path_normalization = "off"`.
    AsReceived,
    /// The normal form, possibly with the route's prefix rewritten, which
    /// differs from what was received.
    Normalized(String),
}

/// A request path resolved once: the route it belongs to and what is sent upstream.
#[derive(Debug)]
pub struct Resolved<'a> {
    /// The route; for a refused path, the route of its widest reading, whose
    /// policy puts CORS headers on the 400.
    pub route: Option<&'a Route>,
    /// The path to forward, or why the path is refused.
    pub path: Result<ForwardPath, PathRejection>,
}

/// Routes grouped by host at load, each group longest prefix first, so that
/// matching a request only compares strings.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// By exact host: indexes into `routes`.
    exact: HashMap<String, Vec<usize>>,
    /// By wildcard suffix (`.example.com`), longest suffix first.
    wildcards: Vec<(String, Vec<usize>)>,
    host_less: Vec<usize>,
}

impl Router {
    /// Orders `routes` longest prefix first and groups them by host.
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then_with(|| a.path.cmp(&b.path))
        });
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcards: Vec<(String, Vec<usize>)> = Vec::new();
        let mut host_less = Vec::new();
        for (index, route) in routes.iter().enumerate() {
            if route.hosts.is_empty() {
                host_less.push(index);
            }
            for host in &route.hosts {
                let group = match host {
                    HostPattern::Exact(name) => exact.entry(name.clone()).or_default(),
                    HostPattern::Wildcard(suffix) => {
                        let at = match wildcards.iter().position(|(known, _)| known == suffix) {
                            Some(at) => at,
                            None => {
                                wildcards.push((suffix.clone(), Vec::new()));
                                wildcards.len() - 1
                            }
                        };
                        &mut wildcards[at].1
                    }
                };
                // A route listing one host twice is warned about at load.
                if group.last() != Some(&index) {
                    group.push(index);
                }
            }
        }
        wildcards.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Self {
            routes,
            exact,
            wildcards,
            host_less,
        }
    }

    /// The route for `host` (normalized, see [`crate::proxy::host`]) and
    /// `path`: in the most specific host class that has a route matching the
    /// path, the one whose prefix is the longest (see the module doc).
    ///
    /// A prefix matches at segment boundaries: `/api/` matches `/api/x`;
    /// `/status` matches `/status` and `/status/x` but not `/statusx`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Route> {
        let longest = |group: &[usize]| {
            group
                .iter()
                .map(|&index| &self.routes[index])
                .find(|route| prefix_matches(&route.path, path))
        };
        if let Some(host) = host {
            if let Some(route) = self.exact.get(host).and_then(|group| longest(group)) {
                return Some(route);
            }
            let wildcard = self
                .wildcards
                .iter()
                .filter(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
                .find_map(|(_, group)| longest(group));
            if wildcard.is_some() {
                return wildcard;
            }
        }
        longest(&self.host_less)
    }

    /// Resolves a raw request path (see [`crate::proxy::path`]). A path in normal
    /// form or normalizable is routed on its normal form. A path strict rules
    /// refuse is routed on its widest reading, so that it is refused with the
    /// policy of the route the most permissive upstream would serve it from;
    /// only when that route has `path_normalization = "off"` is it forwarded
    /// as received, and even then not with a dot segment in any spelling.
    /// Routing on the widest reading is what keeps `off` from reaching
    /// another route: `/files/%2561dmin` is `/files/admin` for a
    /// double-decoding upstream, so it belongs to a `/files/admin` route.
    ///
    /// A route's `strip_prefix` or `rewrite_prefix` is applied to the normal
    /// form (a route with either is never `off`, checked at load).
    pub fn resolve(&self, host: Option<&str>, raw: &str) -> Resolved<'_> {
        match path::normalize(raw) {
            Ok(normal) => {
                let route = self.find(host, &normal);
                let off = route.is_some_and(|r| r.path_normalization == PathNormalization::Off);
                let rewrite = route.and_then(|r| Some((r.rewrite.as_ref()?, r.path.as_str())));
                let path = match (normal, rewrite) {
                    (normal, Some((rewrite, prefix))) => {
                        ForwardPath::Normalized(rewrite.apply(prefix, &normal))
                    }
                    (Cow::Owned(normal), None) if !off => ForwardPath::Normalized(normal),
                    _ => ForwardPath::AsReceived,
                };
                Resolved {
                    route,
                    path: Ok(path),
                }
            }
            Err(rejection) => {
                let reading = path::widest_reading(raw);
                let route = self.find(host, &reading.path);
                let path = match route {
                    Some(r) if r.path_normalization == PathNormalization::Off => {
                        if reading.dot_segments {
                            Err(PathRejection::DotSegment)
                        } else {
                            Ok(ForwardPath::AsReceived)
                        }
                    }
                    _ => Err(rejection),
                };
                Resolved { route, path }
            }
        }
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_connect_allow_header_lists_the_gateway_methods() {
        assert_eq!(super::GATEWAY_ALLOW, super::GATEWAY_METHODS.join(", "));
    }
    use super::*;

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/api/", "/api/items"));
        assert!(!prefix_matches("/api/", "/api"));
        assert!(prefix_matches("/status", "/status"));
        assert!(prefix_matches("/status", "/status/deep"));
        assert!(!prefix_matches("/status", "/statusx"));
    }

    #[test]
    fn a_rewrite_replaces_the_prefix_and_keeps_one_slash() {
        let strip = PrefixRewrite::new("/");
        assert_eq!(strip.apply("/api/", "/api/items/1"), "/items/1");
        assert_eq!(strip.apply("/api/", "/api/"), "/");
        assert_eq!(strip.apply("/api", "/api"), "/");
        assert_eq!(strip.apply("/api", "/api/items"), "/items");
        assert_eq!(strip.apply("/", "/items"), "/items");
        let v2 = PrefixRewrite::new("/v2/");
        assert_eq!(v2.apply("/api/", "/api/items"), "/v2/items");
        assert_eq!(v2.apply("/api/", "/api/"), "/v2/");
        assert_eq!(v2.apply("/api", "/api"), "/v2/");
        assert_eq!(v2.apply("/", "/x"), "/v2/x");
        let bare = PrefixRewrite::new("/v2");
        assert_eq!(bare.apply("/api/", "/api/items"), "/v2/items");
        assert_eq!(bare.apply("/api", "/api"), "/v2");
    }

    #[test]
    fn host_labels_are_unique_and_host_less_ones_unchanged() {
        let hosts = [
            HostPattern::parse("api.example.com").expect("valid"),
            HostPattern::parse("*.example.com").expect("valid"),
        ];
        assert_eq!(route_label(&[], "/api/"), "/api/");
        assert_eq!(route_label(&hosts[..1], "/api/"), "api.example.com/api/");
        assert_eq!(
            route_label(&hosts, "/api/"),
            "api.example.com,*.example.com/api/"
        );
    }
}
