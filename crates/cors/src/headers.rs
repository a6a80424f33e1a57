//! Response-header plumbing: values compiled once, `Vary` merging, and
//! removal of CORS headers set by someone else.

use http::header::Entry;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue};

pub(crate) const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");
pub(crate) const REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");

/// The CORS response headers an upstream or inner service may already have set.
const CORS_RESPONSE_HEADERS: [HeaderName; 7] = [
    ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE,
    ALLOW_PRIVATE_NETWORK,
];

/// A header value built at compile time that later clones without allocating.
///
/// `HeaderValue::from_str` stores a `Bytes` that allocates its shared
/// reference count on the first clone; cloning once here moves that one-time
/// cost out of the request path.
pub(crate) fn compiled_value(text: &str) -> Option<HeaderValue> {
    let value = HeaderValue::from_str(text).ok()?;
    drop(value.clone());
    Some(value)
}

/// Removes every CORS response header, so that the policy's are the only ones.
pub(crate) fn strip_cors_headers(headers: &mut HeaderMap) {
    // Most responses carry none: one pass over the names avoids seven hash lookups.
    if headers
        .keys()
        .any(|name| name.as_str().starts_with("access-control-"))
    {
        for name in &CORS_RESPONSE_HEADERS {
            headers.remove(name);
        }
    }
}

/// Adds `names` (comma-separated, as in `value`) to the response's `Vary`,
/// keeping every name already there and adding none twice. `Vary: *` already
/// covers everything and is left alone.
pub(crate) fn merge_vary(headers: &mut HeaderMap, value: &HeaderValue) {
    // The common case, a response without `Vary`, costs one hash lookup.
    if let Entry::Vacant(vacant) = headers.entry(VARY) {
        vacant.insert(value.clone());
        return;
    }
    let present = |wanted: &[u8]| {
        headers.get_all(VARY).iter().any(|line| {
            line.as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .any(|name| name == b"*" || name.eq_ignore_ascii_case(wanted))
        })
    };
    let missing: Vec<&[u8]> = value
        .as_bytes()
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|name| !present(name))
        .collect();
    if missing.is_empty() || present(b"*") {
        return;
    }
    let mut merged: Vec<u8> = Vec::new();
    for line in headers.get_all(VARY) {
        let line = line.as_bytes().trim_ascii();
        if line.is_empty() {
            continue;
        }
        if !merged.is_empty() {
            merged.extend_from_slice(b", ");
        }
        merged.extend_from_slice(line);
    }
    for name in missing {
        if !merged.is_empty() {
            merged.extend_from_slice(b", ");
        }
        merged.extend_from_slice(name);
    }
    // Every part came from a valid header value joined with ", ", so this
    // cannot fail; if it somehow did, a second line still carries the names.
    match HeaderValue::from_bytes(&merged) {
        Ok(merged) => {
            headers.insert(VARY, merged);
        }
        Err(_) => {
            headers.append(VARY, value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary(headers: &HeaderMap) -> Vec<&str> {
        headers
            .get_all(VARY)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// The `Vary` fields after merging `added` into a response with the `existing` ones.
    fn merged(existing: &[&'static str], added: &'static str) -> Vec<String> {
        let mut h = HeaderMap::new();
        for field in existing {
            h.append(VARY, HeaderValue::from_static(field));
        }
        merge_vary(&mut h, &HeaderValue::from_static(added));
        vary(&h).into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn vary_is_inserted_merged_and_never_duplicated() {
        let origin = HeaderValue::from_static("Origin");
        let mut h = HeaderMap::new();
        merge_vary(&mut h, &origin);
        assert_eq!(vary(&h), ["Origin"]);
        merge_vary(&mut h, &origin);
        assert_eq!(vary(&h), ["Origin"]);

        assert_eq!(
            merged(&["Accept-Encoding"], "Origin"),
            ["Accept-Encoding, Origin"]
        );
        assert_eq!(
            merged(&["accept-encoding", "origin"], "Origin"),
            ["accept-encoding", "origin"]
        );
        assert_eq!(merged(&["*"], "Origin"), ["*"]);
    }

    #[test]
    fn vary_adds_only_the_missing_names_of_a_list() {
        assert_eq!(
            merged(&["origin"], "Origin, Access-Control-Request-Method"),
            ["origin, Access-Control-Request-Method"]
        );
    }

    #[test]
    fn stripping_removes_only_cors_headers() {
        let mut h = HeaderMap::new();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        strip_cors_headers(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-type"));
    }
}
