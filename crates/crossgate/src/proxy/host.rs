//! The host a request is for, and the `host` patterns routes match it with.
//!
//! Both sides are normalized the same way, so that matching is a byte
//! comparison: lower-case, no port, no trailing dot, IPv6 literals in their
//! canonical text (`[0:0::1]` is `[::1]`). Patterns are checked and
//! normalized at load; a request's host is normalized into a stack buffer, so
//! reading it allocates nothing.
//!
//! A request with no host (HTTP/1.0, or an empty `Host`) is matched by
//! host-less routes only. A host that is present but not a host name is
//! refused (400), as nginx and Envoy do, rather than read as "no host": a
//! value the gateway cannot read may still be read by the upstream, which
//! receives it as `X-Forwarded-Host`.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use http::header::HOST;
use http::{HeaderMap, Uri};

/// The longest DNS name (RFC 1035 §2.3.4, without the trailing dot); a
/// bracketed IPv6 literal is shorter.
const MAX_HOST_LEN: usize = 253;

/// The longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// Room for one normalized host, on the stack.
pub struct HostBuf {
    bytes: [u8; MAX_HOST_LEN],
    len: usize,
}

impl HostBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            bytes: [0; MAX_HOST_LEN],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever written (checked byte by byte, or formatted
        // from an `Ipv6Addr`), so this never fails.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl Default for HostBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Write for HostBuf {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Why a request's host is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRejection {
    /// The `Host` or `:authority` is not `name[:port]` or `[ipv6][:port]`.
    Malformed,
    /// More than one `Host` line (RFC 9112 §3.2: answered 400).
    Repeated,
    /// The request target's authority and the `Host` header name different
    /// hosts: which one the upstream reads is not known (RFC 9113 §8.3.1
    /// calls such a request malformed).
    Mismatch,
}

impl HostRejection {
    /// The JSON body of the gateway's 400.
    pub fn body(self) -> &'static str {
        match self {
            Self::Malformed => {
                r#"{"error":"bad_host","message":"the Host header or :authority is not a host name"}"#
            }
            Self::Repeated => {
                r#"{"error":"bad_host","message":"the request has more than one Host header"}"#
            }
            Self::Mismatch => {
                r#"{"error":"host_mismatch","message":"the request target and the Host header name different hosts"}"#
            }
        }
    }
}

/// The normalized host of a request: the URI's authority (HTTP/2's
/// `:authority`, or an HTTP/1 absolute-form target) or the `Host` header.
/// `Ok(None)` when there is neither, or the `Host` is empty.
pub fn of_request<'b>(
    uri: &Uri,
    headers: &HeaderMap,
    buf: &'b mut HostBuf,
) -> Result<Option<&'b str>, HostRejection> {
    let mut values = headers.get_all(HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return Err(HostRejection::Repeated);
    }
    let header = header
        .map(|value| value.as_bytes())
        .filter(|v| !v.is_empty());
    let Some(authority) = uri.authority() else {
        return match header {
            None => Ok(None),
            Some(value) => normalize_into(value, buf).map(|()| Some(buf.as_str())),
        };
    };
    normalize_into(authority.as_str().as_bytes(), buf)?;
    if let Some(value) = header {
        let mut other = HostBuf::new();
        normalize_into(value, &mut other)?;
        if other.as_str() != buf.as_str() {
            return Err(HostRejection::Mismatch);
        }
    }
    Ok(Some(buf.as_str()))
}

/// Writes the normal form of `authority` (`host[:port]`) into `buf`.
fn normalize_into(authority: &[u8], buf: &mut HostBuf) -> Result<(), HostRejection> {
    buf.len = 0;
    let host = without_port(authority).ok_or(HostRejection::Malformed)?;
    if let Some(literal) = host.strip_prefix(b"[") {
        let inner = literal.strip_suffix(b"]").ok_or(HostRejection::Malformed)?;
        // A zone id (`%25eth0`) or IPvFuture names nothing a route can.
        let address: Ipv6Addr = std::str::from_utf8(inner)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or(HostRejection::Malformed)?;
        return write!(buf, "[{address}]").map_err(|_| HostRejection::Malformed);
    }
    let name = host.strip_suffix(b".").unwrap_or(host);
    if !is_host_name(name) {
        return Err(HostRejection::Malformed);
    }
    buf.bytes[..name.len()].copy_from_slice(name);
    buf.bytes[..name.len()].make_ascii_lowercase();
    buf.len = name.len();
    Ok(())
}

/// `authority` without its `:port`, or `None` when the port is not digits.
fn without_port(authority: &[u8]) -> Option<&[u8]> {
    let port_at = match authority.iter().rposition(|&b| b == b':') {
        // The colons of an IPv6 literal are inside its brackets.
        Some(at) if !authority[at..].contains(&b']') => at,
        _ => return Some(authority),
    };
    let port = &authority[port_at + 1..];
    port.iter()
        .all(u8::is_ascii_digit)
        .then_some(&authority[..port_at])
}

/// Dot-separated labels of letters, digits, `-` and `_`, none empty, within
/// DNS lengths. `_` is not a host name character, but DNS names carry it
/// (`_acme-challenge`) and upstreams accept it. Non-ASCII is refused: IDNs
/// arrive in their punycode form (`xn--`), which browsers send.
fn is_host_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HOST_LEN
        && name.split(|&b| b == b'.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A route's `host` entry, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// `api.example.com`: that host only.
    Exact(String),
    /// `*.example.com`, kept as the suffix `.example.com`: any host that ends
    /// with it and has at least one label before it (`a.example.com`,
    /// `a.b.example.com`), not `example.com` itself.
    Wildcard(String),
}

impl HostPattern {
    /// Checks and normalizes one `host` entry; the error says what is wrong
    /// and how to write it.
    pub fn parse(text: &str) -> Result<Self, (String, String)> {
        if text.is_empty() {
            return Err((
                "the host is empty".into(),
                "write a host name such as \"api.example.com\", or remove `host` to match every host".into(),
            ));
        }
        if !text.is_ascii() {
            return Err((
                format!("{text:?} is not ASCII"),
                "write an internationalized name in its punycode form (xn--...), as browsers send it".into(),
            ));
        }
        if let Some(rest) = text.strip_prefix("*.") {
            if rest.is_empty() || rest.contains('*') {
                return Err(wildcard_error(text));
            }
            return match Self::parse(rest)? {
                Self::Exact(suffix) if !suffix.starts_with('[') => {
                    Ok(Self::Wildcard(format!(".{suffix}")))
                }
                _ => Err(wildcard_error(text)),
            };
        }
        if text.contains('*') {
            return Err(wildcard_error(text));
        }
        let mut buf = HostBuf::new();
        let normalized = normalize_into(text.as_bytes(), &mut buf).is_ok();
        if !normalized {
            return Err((
                format!("{text:?} is not a host name"),
                "write a name of letters, digits, `-` and dots such as \"api.example.com\", an IPv4 address, or an IPv6 address in brackets".into(),
            ));
        }
        if without_port(text.as_bytes()).map(<[u8]>::len) != Some(text.len()) {
            return Err((
                format!("{text:?} has a port"),
                format!(
                    "remove the port: hosts are matched without it (write {:?})",
                    buf.as_str()
                ),
            ));
        }
        Ok(Self::Exact(buf.as_str().to_owned()))
    }

    /// Whether `host` (normalized) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(exact) => host == exact,
            Self::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(exact) => f.write_str(exact),
            Self::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

fn wildcard_error(text: &str) -> (String, String) {
    (
        format!("{text:?}: a wildcard is allowed only as a whole first label"),
        "write \"*.example.com\" (any subdomain of example.com) or list the hosts".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn normal(authority: &str) -> Result<String, HostRejection> {
        let mut buf = HostBuf::new();
        normalize_into(authority.as_bytes(), &mut buf).map(|()| buf.as_str().to_owned())
    }

    fn request_host(uri: &str, hosts: &[&[u8]]) -> Result<Option<String>, HostRejection> {
        let uri: Uri = uri.parse().expect("uri");
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(HOST, HeaderValue::from_bytes(host).expect("value"));
        }
        let mut buf = HostBuf::new();
        of_request(&uri, &headers, &mut buf).map(|host| host.map(str::to_owned))
    }

    #[test]
    fn hosts_are_lowercased_without_port_or_trailing_dot() {
        assert_eq!(normal("API.Example.COM").as_deref(), Ok("api.example.com"));
        assert_eq!(
            normal("api.example.com:8443").as_deref(),
            Ok("api.example.com")
        );
        assert_eq!(normal("api.example.com.").as_deref(), Ok("api.example.com"));
        assert_eq!(
            normal("api.example.com.:80").as_deref(),
            Ok("api.example.com")
        );
        assert_eq!(normal("127.0.0.1:8080").as_deref(), Ok("127.0.0.1"));
        // RFC 3986 allows an empty port.
        assert_eq!(normal("a.test:").as_deref(), Ok("a.test"));
    }

    #[test]
    fn ipv6_literals_are_canonical() {
        assert_eq!(normal("[::1]").as_deref(), Ok("[::1]"));
        assert_eq!(normal("[0:0:0:0:0:0:0:1]:8080").as_deref(), Ok("[::1]"));
        assert_eq!(normal("[2001:DB8::A]").as_deref(), Ok("[2001:db8::a]"));
        for bad in ["[::1", "::1", "[::1]x", "[fe80::1%25eth0]", "[v1.x]", "[]"] {
            assert_eq!(normal(bad), Err(HostRejection::Malformed), "{bad}");
        }
    }

    #[test]
    fn what_is_not_a_host_name_is_malformed() {
        let long_label = format!("{}.test", "a".repeat(64));
        let long_name = format!("{}a", "a.".repeat(127));
        for bad in [
            "",
            ".",
            ".a.test",
            "a..test",
            "a.test..",
            "a test",
            "a/b",
            "user@a.test",
            "a.test:80x",
            "a.test:-1",
            "caf\u{e9}.test",
            "a%2etest",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert_eq!(normal(bad), Err(HostRejection::Malformed), "{bad:?}");
        }
        assert_eq!(normal("_acme.a-b.test").as_deref(), Ok("_acme.a-b.test"));
    }

    #[test]
    fn the_authority_is_read_before_the_host_header() {
        assert_eq!(
            request_host("/x", &[b"A.test:1"]),
            Ok(Some("a.test".into()))
        );
        assert_eq!(
            request_host("http://a.test/x", &[]),
            Ok(Some("a.test".into()))
        );
        assert_eq!(
            request_host("http://a.test:1/x", &[b"A.TEST."]),
            Ok(Some("a.test".into()))
        );
        assert_eq!(request_host("/x", &[]), Ok(None));
        assert_eq!(request_host("/x", &[b""]), Ok(None));
    }

    #[test]
    fn conflicting_or_repeated_hosts_are_refused() {
        assert_eq!(
            request_host("http://a.test/x", &[b"b.test"]),
            Err(HostRejection::Mismatch)
        );
        assert_eq!(
            request_host("/x", &[b"a.test", b"a.test"]),
            Err(HostRejection::Repeated)
        );
        assert_eq!(
            request_host("/x", &[b"a.test\xff"]),
            Err(HostRejection::Malformed)
        );
        assert_eq!(
            request_host("http://a.test/x", &[b"a test"]),
            Err(HostRejection::Malformed)
        );
    }

    #[test]
    fn patterns_are_normalized_or_refused() {
        assert_eq!(
            HostPattern::parse("API.example.com."),
            Ok(HostPattern::Exact("api.example.com".into()))
        );
        assert_eq!(
            HostPattern::parse("*.Example.com"),
            Ok(HostPattern::Wildcard(".example.com".into()))
        );
        assert_eq!(
            HostPattern::parse("[0::1]"),
            Ok(HostPattern::Exact("[::1]".into()))
        );
        for bad in [
            "",
            "*",
            "*.",
            "a.*.example.com",
            "*.*.example.com",
            "*example.com",
            "api.example.com:8080",
            "[::1]:80",
            "*.[::1]",
            "b\u{fc}cher.example",
            "a b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        let (why, fix) = HostPattern::parse("api.example.com:8080").expect_err("port");
        assert!(why.contains("has a port"), "{why}");
        assert!(fix.contains("\"api.example.com\""), "{fix}");
    }

    #[test]
    fn a_wildcard_matches_subdomains_at_any_depth_but_not_its_base() {
        let pattern = HostPattern::parse("*.example.com").expect("valid");
        assert!(pattern.matches("a.example.com"));
        assert!(pattern.matches("a.b.example.com"));
        assert!(!pattern.matches("example.com"));
        assert!(!pattern.matches("badexample.com"));
        assert!(!pattern.matches("a.example.com.evil"));
        assert_eq!(pattern.to_string(), "*.example.com");
    }
}
