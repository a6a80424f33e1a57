//! Compiled routes and longest-prefix matching.

use std::sync::Arc;

use crossgate_cors::{AllowedMethods, Policy};
use http::header::HeaderValue;
use http::Method;

use crate::config::Access;
use crate::metrics::RouteMetrics;
use crate::mock::MockResponse;
use crate::proxy::Upstream;

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
    /// Proxied to an upstream.
    Upstream(Upstream),
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
    /// The declared methods, if any.
    pub methods: Option<RouteMethods>,
    /// Whether a token is required.
    pub access: Access,
    /// The request body limit.
    pub max_body_bytes: Option<u64>,
    /// This route's counters.
    pub metrics: RouteMetrics,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("path", &self.path)
            .field("target", &self.target)
            .field("policy", &self.policy.as_ref().map(|p| &p.name))
            .field("methods", &self.methods)
            .field("access", &self.access)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
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
