//! Origins and sites: how a URL's origin is serialized, which origins a
//! page can have, and whether two of them are the same site.

use http::header::HeaderValue;
use http::Uri;

use super::request::CorsRequest;

/// `same-origin`, `same-site` or `cross-site`, as `Sec-Fetch-Site` says.
pub(super) fn fetch_site(request: &CorsRequest, target: &Uri) -> HeaderValue {
    let Some(target_origin) = serialize_origin(target) else {
        return HeaderValue::from_static("cross-site");
    };
    let origin = request.origin();
    if origin == target_origin {
        return HeaderValue::from_static("same-origin");
    }
    let site = |serialized: &str| -> Option<(String, String)> {
        let (scheme, rest) = serialized.split_once("://")?;
        let host = host_of_authority(rest);
        Some((
            scheme.to_owned(),
            registrable_domain(host).to_ascii_lowercase(),
        ))
    };
    match (site(origin), site(&target_origin)) {
        (Some(a), Some(b)) if a == b => HeaderValue::from_static("same-site"),
        _ => HeaderValue::from_static("cross-site"),
    }
}

/// The part of `host` that makes a site: its registrable domain per the
/// Public Suffix List (`api.example.co.uk` → `example.co.uk`), or the host
/// itself for IP addresses, `localhost` and public suffixes.
pub fn registrable_domain(host: &str) -> &str {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    psl::domain_str(host).unwrap_or(host)
}

fn host_of_authority(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// The serialized origin of `uri` (`scheme://host[:port]`, default port
/// left out), or `None` when it has no scheme or host.
pub fn serialize_origin(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    Some(match uri.port_u16() {
        Some(port) if Some(port) != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

pub(super) fn parse_serialized_origin(origin: &str) -> Option<HeaderValue> {
    if origin == "null" {
        return Some(HeaderValue::from_static("null"));
    }
    let uri: Uri = origin.parse().ok()?;
    let serialized = serialize_origin(&uri)?;
    // A browser serializes origins canonically; anything else (a path, a
    // trailing slash, upper case, a default port) is not what it would send.
    (serialized == origin)
        .then(|| HeaderValue::from_str(origin).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::browser::*;

    #[test]
    fn fetch_site_follows_registrable_domains() {
        let site = |origin: &str, target: &str| {
            let r = CorsRequest::new(origin, "GET", CredentialsMode::Omit).unwrap();
            actual_request_headers(&r, &target.parse().unwrap())["sec-fetch-site"].clone()
        };
        for (origin, target, expected) in [
            (
                "https://app.example.com",
                "https://app.example.com/x",
                "same-origin",
            ),
            (
                "https://app.example.com",
                "https://api.example.com/x",
                "same-site",
            ),
            (
                "http://app.example.com",
                "https://api.example.com/x",
                "cross-site",
            ),
            (
                "http://127.0.0.1:3000",
                "http://localhost:8080/",
                "cross-site",
            ),
            ("https://a.github.io", "https://b.github.io/", "cross-site"),
        ] {
            assert_eq!(site(origin, target), expected, "{origin} -> {target}");
        }
    }

    #[test]
    fn registrable_domains_use_the_public_suffix_list() {
        for (host, domain) in [
            ("api.example.co.uk", "example.co.uk"),
            ("a.b.example.com", "example.com"),
            ("user.github.io", "user.github.io"),
            ("127.0.0.1", "127.0.0.1"),
            ("localhost", "localhost"),
            ("[::1]", "[::1]"),
        ] {
            assert_eq!(registrable_domain(host), domain, "{host}");
        }
    }
}
