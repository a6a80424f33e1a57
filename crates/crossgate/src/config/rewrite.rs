//! `routes[i].strip_prefix` and `routes[i].rewrite_prefix`: what replaces
//! the route's prefix in the normalized path before it is forwarded.

use super::file::{PathNormalization, RouteFile};
use super::Report;
use crate::proxy::router::PrefixRewrite;

/// The route's rewrite, if it has one. Its problems are reported; a route
/// with a bad rewrite still compiles, as one with a bad `methods` does.
pub(super) fn compile_rewrite(
    route: &RouteFile,
    path_normalization: PathNormalization,
    route_key: &str,
    report: &mut Report,
) -> Option<PrefixRewrite> {
    let strip = route.strip_prefix == Some(true);
    let (key, replacement) = match (strip, route.rewrite_prefix.as_deref()) {
        (false, None) => return None,
        (true, Some(_)) => {
            report.problem(
                format!("{route_key}.rewrite_prefix"),
                "the route has both `strip_prefix = true` and `rewrite_prefix`",
                "keep one: `strip_prefix = true` is `rewrite_prefix = \"/\"`",
            );
            return None;
        }
        (true, None) => (format!("{route_key}.strip_prefix"), "/"),
        (false, Some(replacement)) => (format!("{route_key}.rewrite_prefix"), replacement),
    };
    if route.mock.is_some() {
        report.problem(
            &key,
            "a mock route forwards nothing, so there is no path to rewrite",
            "remove the key, or give the route an upstream instead of the mock",
        );
        return None;
    }
    if path_normalization == PathNormalization::Off {
        report.problem(
            &key,
            "the prefix is rewritten in the normalized path, and `path_normalization = \"off\"` forwards the path as received",
            "remove path_normalization = \"off\", or the rewrite",
        );
        return None;
    }
    check_replacement(replacement, &key, report).then(|| PrefixRewrite::new(replacement))
}

/// A replacement is a path in the normal form the upstream receives, so that
/// rewriting cannot make a path the normalization would refuse.
fn check_replacement(replacement: &str, key: &str, report: &mut Report) -> bool {
    if !replacement.starts_with('/')
        || replacement
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?' || b == b'#')
    {
        report.problem(
            key,
            format!("{replacement:?} is not a path prefix"),
            "start it with `/` and leave out spaces, `?` and `#`, e.g. \"/v2/\"",
        );
        return false;
    }
    match crate::proxy::path::normalize(replacement) {
        Ok(normal) if normal == replacement => true,
        Ok(normal) => {
            report.problem(
                key,
                format!("{replacement:?} is not in normal form"),
                format!("write {normal:?} (docs/config.md, path normalization)"),
            );
            false
        }
        Err(rejection) => {
            report.problem(
                key,
                format!("{replacement:?}: {}", rejection.message()),
                "write the prefix decoded where possible, e.g. \"/v2/\"",
            );
            false
        }
    }
}
