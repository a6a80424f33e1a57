//! Compiled routes and longest-prefix matching.

use std::borrow::Cow;
use std::sync::Arc;

use crossgate_cors::{AllowedMethods, Policy};
use http::header::HeaderValue;
use http::Method;

use crate::config::{Access, PathNormalization};
use crate::ops::metrics::RouteMetrics;
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
            .finish_non_exhaustive()
    }
}

/// The path to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// The path as received: already normal, or the route has `path_normalization = "off"`.
    AsReceived,
    /// The normal form, which differs from what was received.
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

/// Routes ordered so that the first match is the longest prefix.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Orders `routes` longest prefix first.
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then_with(|| a.path.cmp(&b.path))
        });
        Self { routes }
    }

    /// The route whose prefix is the longest one matching `path`.
    ///
    /// A prefix matches at segment boundaries: `/api/` matches `/api/x`;
    /// `/status` matches `/status` and `/status/x` but not `/statusx`.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|route| prefix_matches(&route.path, path))
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
    pub fn resolve(&self, raw: &str) -> Resolved<'_> {
        match path::normalize(raw) {
            Ok(normal) => {
                let route = self.find(&normal);
                let off = route.is_some_and(|r| r.path_normalization == PathNormalization::Off);
                let path = match normal {
                    Cow::Owned(normal) if !off => ForwardPath::Normalized(normal),
                    _ => ForwardPath::AsReceived,
                };
                Resolved {
                    route,
                    path: Ok(path),
                }
            }
            Err(rejection) => {
                let reading = path::widest_reading(raw);
                let route = self.find(&reading.path);
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
}
