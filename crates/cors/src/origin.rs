//! Origins: the patterns a policy allows, checked once, and the matcher that
//! decides for a request's `Origin` in time independent of the list's length.

// The tables are built from the configuration; a request's origin is only
// ever looked up, so it cannot lengthen probe sequences it did not build, and
// foldhash is several times faster than SipHash on origin-sized keys.
use foldhash::{HashMap, HashSet};
use regex::bytes::{RegexSet, RegexSetBuilder};

use crate::error::{ConfigError, ConfigErrorKind, ConfigWarning};

/// The longest DNS name, which bounds the host a subdomain pattern can match.
const MAX_HOST_LEN: usize = 253;
/// `:65535`.
const MAX_PORT_LEN: usize = 6;
/// Origins matched by regular expressions are bounded by what a browser can
/// send: a scheme, `://`, a DNS name and a port.
const MAX_REGEX_ORIGIN_LEN: usize = 32 + 3 + MAX_HOST_LEN + MAX_PORT_LEN;
/// Origins that no sane `origin_regex` should match; matching one means the
/// expression accepts arbitrary sites.
const UNRELATED_ORIGINS: [&str; 4] = [
    "https://attacker.example",
    "http://attacker.example",
    "https://crossgate-probe.invalid:8443",
    "null",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    /// `None`: the origin has no port (the scheme's default).
    Exact(Option<u16>),
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostSpec {
    Exact(String),
    /// One or more labels in front of this domain.
    Subdomains(String),
}

/// One entry of `origins`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginPattern {
    scheme: String,
    host: HostSpec,
    port: PortRule,
}

#[derive(Debug, Clone)]
struct HostPattern {
    scheme: Box<[u8]>,
    port: PortRule,
    subdomains: bool,
}

/// The origins allowed exactly as written. A list of a few is compared
/// (length first, then bytes), which costs less than hashing the request's
/// origin; a longer one is a hash set, whose lookup does not grow with it.
#[derive(Debug, Clone)]
enum ExactOrigins {
    Few(Vec<Box<[u8]>>),
    Many(HashSet<Box<[u8]>>),
}

/// Up to this many exact origins are compared one by one.
const FEW_EXACT_ORIGINS: usize = 8;

impl ExactOrigins {
    fn insert(&mut self, origin: Box<[u8]>) {
        match self {
            Self::Few(list) if !list.contains(&origin) => list.push(origin),
            Self::Few(_) => {}
            Self::Many(set) => {
                set.insert(origin);
            }
        }
    }

    /// Chooses the representation once every origin is in.
    fn settle(&mut self) {
        if let Self::Many(set) = self {
            if set.len() <= FEW_EXACT_ORIGINS {
                let list: Vec<Box<[u8]>> = set.drain().collect();
                *self = Self::Few(list);
            }
        }
    }

    fn contains(&self, origin: &[u8]) -> bool {
        match self {
            Self::Few(list) => list.iter().any(|allowed| **allowed == *origin),
            Self::Many(set) => set.contains(origin),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Self::Few(list) => list.len(),
            Self::Many(set) => set.len(),
        }
    }
}

/// Decides whether a request's origin is allowed.
#[derive(Debug, Clone)]
pub(crate) struct OriginMatcher {
    any: bool,
    exact: ExactOrigins,
    /// Keyed by the exact host (any-port patterns) or by the domain under
    /// which subdomains are allowed, so that a lookup costs one probe per
    /// label of the request's host, whatever the number of patterns.
    hosts: HashMap<Box<[u8]>, Vec<HostPattern>>,
    regexes: Option<RegexSet>,
    max_len: usize,
}

impl OriginMatcher {
    /// Whether every origin is allowed (`origins = ["*"]`).
    pub(crate) fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether `origin` (the raw `Origin` header value) is allowed.
    pub(crate) fn allows(&self, origin: &[u8]) -> bool {
        if self.any {
            return true;
        }
        if origin.len() > self.max_len {
            return false;
        }
        if self.exact.contains(origin) {
            return true;
        }
        if !self.hosts.is_empty() && self.allows_by_host(origin) {
            return true;
        }
        match &self.regexes {
            Some(set) => set.is_match(origin),
            None => false,
        }
    }

    fn allows_by_host(&self, origin: &[u8]) -> bool {
        let Some(parsed) = RequestOrigin::parse(origin) else {
            return false;
        };
        let fits = |patterns: &Vec<HostPattern>, subdomain: bool| {
            patterns.iter().any(|p| {
                p.subdomains == subdomain
                    && *p.scheme == *parsed.scheme
                    && match p.port {
                        PortRule::Any => true,
                        PortRule::Exact(port) => port == parsed.port,
                    }
            })
        };
        if let Some(patterns) = self.hosts.get(parsed.host) {
            if fits(patterns, false) {
                return true;
            }
        }
        // Each suffix that starts after a dot is a candidate parent domain; the
        // parser guarantees there is no empty label, so the part in front of
        // the dot is one or more real labels.
        parsed
            .host
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'.')
            .filter_map(|(i, _)| self.hosts.get(&parsed.host[i + 1..]))
            .any(|patterns| fits(patterns, true))
    }

    /// Checks `origins` and `origin_regex`, pushing every problem.
    pub(crate) fn compile(
        origins: &[String],
        regexes: &[String],
        credentials: bool,
        errors: &mut Vec<ConfigError>,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Self {
        let mut matcher = Self {
            any: false,
            exact: ExactOrigins::Many(HashSet::default()),
            hosts: HashMap::default(),
            regexes: None,
            max_len: 0,
        };
        if origins.is_empty() && regexes.is_empty() {
            errors.push(ConfigError::new("origins", "", ConfigErrorKind::NoOrigins));
            return matcher;
        }
        if origins.iter().any(|o| o == "*") {
            matcher.any = true;
            matcher.max_len = usize::MAX;
            if credentials {
                errors.push(ConfigError::new(
                    "origins",
                    "*",
                    ConfigErrorKind::WildcardWithCredentials,
                ));
            }
            if origins.len() > 1 || !regexes.is_empty() {
                errors.push(ConfigError::new(
                    "origins",
                    origins.join(", "),
                    ConfigErrorKind::WildcardNotAlone,
                ));
            }
            return matcher;
        }
        for (i, entry) in origins.iter().enumerate() {
            let key = format!("origins[{i}]");
            let pattern = match parse_pattern(entry) {
                Ok(pattern) => pattern,
                Err(kind) => {
                    errors.push(ConfigError::new(key, entry, kind));
                    continue;
                }
            };
            if credentials && pattern.scheme == "http" && !pattern.is_loopback() {
                errors.push(ConfigError::new(
                    &key,
                    entry,
                    ConfigErrorKind::InsecureOriginWithCredentials,
                ));
            }
            if let HostSpec::Subdomains(domain) = &pattern.host {
                if is_public_suffix(domain) {
                    if credentials {
                        errors.push(ConfigError::new(
                            &key,
                            entry,
                            ConfigErrorKind::PublicSuffixWildcard,
                        ));
                    } else {
                        warnings.push(ConfigWarning::new(
                            &key,
                            entry,
                            format!("`{domain}` is a public suffix: anyone can register a domain under it, so this is nearly `*`; name a domain you own, e.g. \"https://*.example.com\""),
                        ));
                    }
                }
            }
            matcher.add(pattern);
        }
        matcher.compile_regexes(regexes, credentials, errors, warnings);
        matcher.exact.settle();
        matcher
    }

    fn add(&mut self, pattern: OriginPattern) {
        let scheme_len = pattern.scheme.len() + 3;
        match (&pattern.host, pattern.port) {
            (HostSpec::Exact(host), PortRule::Exact(port)) => {
                let origin = match port {
                    Some(port) => format!("{}://{host}:{port}", pattern.scheme),
                    None => format!("{}://{host}", pattern.scheme),
                };
                self.max_len = self.max_len.max(origin.len());
                self.exact.insert(origin.into_bytes().into_boxed_slice());
            }
            (HostSpec::Exact(host), PortRule::Any) => {
                self.max_len = self.max_len.max(scheme_len + host.len() + MAX_PORT_LEN);
                self.insert_host(host, &pattern.scheme, PortRule::Any, false);
            }
            (HostSpec::Subdomains(domain), port) => {
                self.max_len = self.max_len.max(scheme_len + MAX_HOST_LEN + MAX_PORT_LEN);
                self.insert_host(domain, &pattern.scheme, port, true);
            }
        }
    }

    fn insert_host(&mut self, host: &str, scheme: &str, port: PortRule, subdomains: bool) {
        self.hosts
            .entry(host.as_bytes().into())
            .or_default()
            .push(HostPattern {
                scheme: scheme.as_bytes().into(),
                port,
                subdomains,
            });
    }

    fn compile_regexes(
        &mut self,
        regexes: &[String],
        credentials: bool,
        errors: &mut Vec<ConfigError>,
        warnings: &mut Vec<ConfigWarning>,
    ) {
        if regexes.is_empty() {
            return;
        }
        let anchored: Vec<String> = regexes.iter().map(|r| format!("^(?:{r})$")).collect();
        let mut valid = true;
        for (i, (regex, pattern)) in regexes.iter().zip(&anchored).enumerate() {
            let key = format!("origin_regex[{i}]");
            match RegexSetBuilder::new([pattern]).build() {
                Err(error) => {
                    valid = false;
                    errors.push(ConfigError::new(
                        key,
                        regex,
                        ConfigErrorKind::InvalidRegex(error.to_string()),
                    ));
                }
                Ok(single) => {
                    if let Some(probe) = UNRELATED_ORIGINS
                        .iter()
                        .find(|p| single.is_match(p.as_bytes()))
                    {
                        if credentials {
                            errors.push(ConfigError::new(
                                key,
                                regex,
                                ConfigErrorKind::RegexTooBroad,
                            ));
                        } else {
                            warnings.push(ConfigWarning::new(
                                key,
                                regex,
                                format!("matches unrelated origins such as `{probe}`, so it is nearly `*`; match only your own origins"),
                            ));
                        }
                    }
                }
            }
        }
        if valid {
            // Each expression compiled alone, so the set compiles too; keep the
            // error path anyway rather than assume it.
            match RegexSetBuilder::new(&anchored).build() {
                Ok(set) => self.regexes = Some(set),
                Err(error) => errors.push(ConfigError::new(
                    "origin_regex",
                    regexes.join(", "),
                    ConfigErrorKind::InvalidRegex(error.to_string()),
                )),
            }
            self.max_len = self.max_len.max(MAX_REGEX_ORIGIN_LEN);
        }
    }
}

impl OriginPattern {
    fn is_loopback(&self) -> bool {
        let host = match &self.host {
            HostSpec::Exact(host) | HostSpec::Subdomains(host) => host.as_str(),
        };
        host == "localhost"
            || host.ends_with(".localhost")
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Whether `domain` is on the public-suffix list. Unlisted top-level names
/// (`localhost`, `internal`, a company's own) fall under the list's implicit
/// `*` rule, which says nothing about who can register under them.
fn is_public_suffix(domain: &str) -> bool {
    psl::suffix(domain.as_bytes())
        .is_some_and(|suffix| suffix.is_known() && suffix.as_bytes() == domain.as_bytes())
}

fn malformed(problem: &'static str, suggestion: Option<String>) -> ConfigErrorKind {
    ConfigErrorKind::MalformedOrigin {
        problem,
        suggestion,
    }
}

/// Parses one entry of `origins` (other than `*`), explaining what is wrong
/// and, when it can, what the author meant.
fn parse_pattern(entry: &str) -> Result<OriginPattern, ConfigErrorKind> {
    if entry.eq_ignore_ascii_case("null") {
        return Err(ConfigErrorKind::NullOrigin);
    }
    if entry
        .as_bytes()
        .get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"file:"))
    {
        return Err(ConfigErrorKind::FileOrigin);
    }
    if entry.is_empty() {
        return Err(malformed("it is empty", None));
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let trimmed = entry.trim();
        let suggestion =
            (trimmed != entry && parse_pattern(trimmed).is_ok()).then(|| trimmed.to_owned());
        return Err(malformed("it contains whitespace", suggestion));
    }
    let Some((scheme, rest)) = entry.split_once("://") else {
        let suggestion = if entry.contains(':') || entry.contains('/') {
            None
        } else {
            suggest(&format!("https://{entry}"))
        };
        return Err(malformed("it has no `scheme://`", suggestion));
    };
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(malformed("the scheme is not valid", None));
    }
    if scheme.bytes().any(|b| b.is_ascii_uppercase()) {
        let fixed = format!("{}://{rest}", scheme.to_ascii_lowercase());
        return Err(malformed(
            "the scheme must be lowercase (browsers send it so)",
            suggest(&fixed),
        ));
    }
    if let Some(at) = rest.find(['/', '?', '#']) {
        let (authority, tail) = rest.split_at(at);
        let problem = match tail.as_bytes()[0] {
            b'/' if tail == "/" => "it ends with a slash (an origin has no path)",
            b'/' => "it has a path (an origin has none)",
            b'?' => "it has a query (an origin has none)",
            _ => "it has a fragment (an origin has none)",
        };
        return Err(malformed(
            problem,
            suggest(&format!("{scheme}://{authority}")),
        ));
    }
    if let Some(at) = rest.rfind('@') {
        let fixed = format!("{scheme}://{}", &rest[at + 1..]);
        return Err(malformed(
            "it has user information (an origin has none)",
            suggest(&fixed),
        ));
    }
    let (host, port) = split_host_port(rest)?;
    let port = parse_port(scheme, host, port)?;
    let (host_spec, bare) = match host.strip_prefix("*.") {
        Some(domain) => (HostSpec::Subdomains(domain.to_owned()), domain),
        None => (HostSpec::Exact(host.to_owned()), host),
    };
    if bare.contains('*') {
        return Err(malformed(
            "`*` may only stand for whole leftmost labels, as in https://*.example.com",
            None,
        ));
    }
    check_host(
        scheme,
        host,
        bare,
        port,
        matches!(host_spec, HostSpec::Subdomains(_)),
    )?;
    Ok(OriginPattern {
        scheme: scheme.to_owned(),
        host: host_spec,
        port,
    })
}

/// A suggestion is only offered when it is itself valid.
fn suggest(candidate: &str) -> Option<String> {
    parse_pattern(candidate).ok().map(|_| candidate.to_owned())
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), ConfigErrorKind> {
    if authority.starts_with('[') {
        let Some(end) = authority.find(']') else {
            return Err(malformed("the IPv6 address has no closing `]`", None));
        };
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(malformed("unexpected text after the IPv6 address", None)),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn parse_port(scheme: &str, host: &str, port: Option<&str>) -> Result<PortRule, ConfigErrorKind> {
    let Some(port) = port else {
        return Ok(PortRule::Exact(None));
    };
    if port == "*" {
        return Ok(PortRule::Any);
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("the port is not a number", None));
    }
    let number: u32 = port.parse().unwrap_or(u32::MAX);
    if number == 0 || number > 65535 {
        return Err(malformed("the port is out of range (1 to 65535)", None));
    }
    if port.starts_with('0') {
        return Err(malformed(
            "the port has leading zeros (browsers never send them)",
            suggest(&format!("{scheme}://{host}:{number}")),
        ));
    }
    let default = match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    if default == Some(number) {
        return Err(malformed(
            "the scheme's default port is written out (browsers omit it)",
            suggest(&format!("{scheme}://{host}")),
        ));
    }
    Ok(PortRule::Exact(Some(number as u16)))
}

fn check_host(
    scheme: &str,
    host: &str,
    bare: &str,
    port: PortRule,
    subdomains: bool,
) -> Result<(), ConfigErrorKind> {
    if bare.is_empty() {
        return Err(malformed("it has no host", None));
    }
    let rebuild = |new_host: &str| {
        let prefix = if subdomains { "*." } else { "" };
        let port = match port {
            PortRule::Any => ":*".to_owned(),
            PortRule::Exact(Some(p)) => format!(":{p}"),
            PortRule::Exact(None) => String::new(),
        };
        format!("{scheme}://{prefix}{new_host}{port}")
    };
    if !bare.is_ascii() {
        let punycode = url::Host::parse(bare).ok().map(|h| h.to_string());
        return Err(malformed(
            "the host is not in punycode (browsers send the ASCII form)",
            punycode.and_then(|p| suggest(&rebuild(&p))),
        ));
    }
    if bare.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(malformed(
            "the host must be lowercase (browsers send it so)",
            suggest(&rebuild(&bare.to_ascii_lowercase())),
        ));
    }
    match url::Host::parse(bare) {
        Err(_) => Err(malformed(
            "the host is not a valid domain name or IP address",
            None,
        )),
        Ok(url::Host::Domain(_)) if bare.split('.').any(str::is_empty) => {
            Err(malformed("the host has an empty label", None))
        }
        Ok(url::Host::Domain(_)) if bare.bytes().any(|b| !is_host_byte(b)) => Err(malformed(
            "the host has characters that are not allowed in a domain name",
            None,
        )),
        Ok(url::Host::Domain(_)) => Ok(()),
        Ok(_) if subdomains => Err(malformed(
            "a subdomain pattern needs a domain name, not an IP address",
            None,
        )),
        Ok(parsed) => {
            let canonical = parsed.to_string();
            if canonical == host {
                Ok(())
            } else {
                Err(malformed(
                    "the IP address is not written as browsers serialize it",
                    suggest(&rebuild(&canonical)),
                ))
            }
        }
    }
}

const fn is_host_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
}

/// A request's `Origin`, split without allocating.
struct RequestOrigin<'a> {
    scheme: &'a [u8],
    host: &'a [u8],
    port: Option<u16>,
}

impl<'a> RequestOrigin<'a> {
    /// Accepts only origins as browsers serialize them: lowercase scheme and
    /// host, no path, no default-free port with leading zeros. Anything else
    /// matches no host pattern.
    fn parse(origin: &'a [u8]) -> Option<Self> {
        let sep = origin.windows(3).take(33).position(|w| w == b"://")?;
        let scheme = &origin[..sep];
        if scheme.is_empty()
            || !scheme.iter().all(|&b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
            })
        {
            return None;
        }
        let authority = &origin[sep + 3..];
        let (host, port) = if authority.first() == Some(&b'[') {
            let end = authority.iter().position(|&b| b == b']')?;
            let (host, rest) = authority.split_at(end + 1);
            if !host[1..end]
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return None;
            }
            (host, rest)
        } else {
            let end = authority
                .iter()
                .position(|&b| b == b':')
                .unwrap_or(authority.len());
            let (host, rest) = authority.split_at(end);
            let labels_ok = !host.is_empty()
                && host.iter().all(|&b| is_host_byte(b))
                && host.first() != Some(&b'.')
                && host.last() != Some(&b'.')
                && !host.windows(2).any(|w| w == b"..");
            if !labels_ok {
                return None;
            }
            (host, rest)
        };
        let port = match port {
            [] => None,
            [b':', digits @ ..] => Some(parse_request_port(digits)?),
            _ => return None,
        };
        Some(Self { scheme, host, port })
    }
}

fn parse_request_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || digits[0] == b'0' {
        return None;
    }
    let mut value: u32 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    u16::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(origins: &[&str], regexes: &[&str]) -> OriginMatcher {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        let regexes: Vec<String> = regexes.iter().map(|s| s.to_string()).collect();
        let m = OriginMatcher::compile(&origins, &regexes, false, &mut errors, &mut warnings);
        assert!(errors.is_empty(), "{errors:?}");
        m
    }

    /// `m` allows every origin of `allowed` and none of `denied`.
    fn assert_allows(m: &OriginMatcher, allowed: &[&str], denied: &[&str]) {
        for origin in allowed {
            assert!(m.allows(origin.as_bytes()), "{origin} should be allowed");
        }
        for origin in denied {
            assert!(!m.allows(origin.as_bytes()), "{origin} should be denied");
        }
    }

    fn problem(entry: &str) -> ConfigErrorKind {
        parse_pattern(entry).expect_err(entry)
    }

    fn suggestion(entry: &str) -> Option<String> {
        match problem(entry) {
            ConfigErrorKind::MalformedOrigin { suggestion, .. } => suggestion,
            other => panic!("{entry}: {other:?}"),
        }
    }

    #[test]
    fn exact_matching_is_scheme_host_and_port_exact() {
        let m = matcher(&["https://foo.com", "https://bar.com"], &[]);
        assert_allows(
            &m,
            &["https://foo.com", "https://bar.com"],
            &[
                "https://barfoo.com",
                "https://foo.com.evil.com",
                "http://foo.com",
                "https://foo.com:8443",
                "https://FOO.com",
                "https://foo.com/",
                "null",
                "",
            ],
        );
    }

    #[test]
    fn subdomain_patterns_need_at_least_one_label() {
        let m = matcher(&["https://*.example.com"], &[]);
        assert_allows(
            &m,
            &["https://a.example.com", "https://a.b.example.com"],
            &[
                "https://example.com",
                "https://.example.com",
                "https://a..example.com",
                "https://aexample.com",
                "http://a.example.com",
                "https://a.example.com:8443",
                "https://a.example.com.evil.com",
                "https://a_b$.example.com",
                "https://a.example.com%60.evil",
            ],
        );
    }

    #[test]
    fn any_port_patterns() {
        let m = matcher(&["http://localhost:*", "https://*.example.com:*"], &[]);
        assert_allows(
            &m,
            &[
                "http://localhost",
                "http://localhost:3000",
                "https://a.example.com:8443",
                "https://a.example.com",
            ],
            &[
                "https://localhost:3000",
                "http://localhost.evil.com:3000",
                "http://localhost:03000",
                "http://localhost:99999",
                "http://localhost:",
                "https://example.com:8443",
            ],
        );
    }

    #[test]
    fn regexes_are_anchored() {
        let m = matcher(
            &[],
            &[
                r"https://app\.example\.com",
                r"https://pr-\d+\.example\.com",
            ],
        );
        assert_allows(
            &m,
            &["https://app.example.com", "https://pr-12.example.com"],
            &[
                "https://app.example.com.evil.com",
                "https://evil.com/https://app.example.com",
                "xhttps://app.example.com",
            ],
        );
    }

    #[test]
    fn overlong_origins_are_refused_before_parsing() {
        let m = matcher(&["https://foo.com"], &[]);
        let long = format!("https://foo.com{}", "a".repeat(10_000));
        assert!(!m.allows(long.as_bytes()));
        assert_eq!(m.max_len, "https://foo.com".len());
    }

    #[test]
    fn ipv6_and_ipv4_origins() {
        let m = matcher(&["http://[::1]:8080", "http://127.0.0.1:*"], &[]);
        assert_allows(
            &m,
            &["http://[::1]:8080", "http://127.0.0.1:9"],
            &["http://[::1]:8081"],
        );
    }

    #[test]
    fn malformed_origins_are_explained_with_a_fix() {
        assert_eq!(
            suggestion("https://example.com/"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("https://example.com/app"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("https://example.com?q"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("https://example.com#f"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("https://user@example.com"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion(" https://example.com"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("https://Example.com"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("HTTPS://example.com"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("https://example.com:443"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("http://example.com:80"),
            Some("http://example.com".into())
        );
        assert_eq!(
            suggestion("https://bücher.example"),
            Some("https://xn--bcher-kva.example".into())
        );
        assert_eq!(
            suggestion("example.com"),
            Some("https://example.com".into())
        );
        assert_eq!(
            suggestion("https://example.com:0080"),
            Some("https://example.com:80".into())
        );
        assert_eq!(suggestion("https://example.com:70000"), None);
        assert_eq!(suggestion("https://example.com:0"), None);
        assert_eq!(suggestion("https://foo*.example.com"), None);
        assert_eq!(suggestion("https://*"), None);
        assert_eq!(suggestion("https://*.127.0.0.1"), None);
        assert_eq!(suggestion("https://"), None);
        assert_eq!(problem("null"), ConfigErrorKind::NullOrigin);
        assert_eq!(problem("NULL"), ConfigErrorKind::NullOrigin);
        assert_eq!(
            problem("file:///home/me/index.html"),
            ConfigErrorKind::FileOrigin
        );
        // Found by fuzzing: a multi-byte character across the `file:` check.
        assert_eq!(suggestion("httpÑ//a.com"), None);
        assert_eq!(suggestion("Ñ"), None);
    }

    #[test]
    fn public_suffixes_come_from_the_list() {
        assert!(is_public_suffix("com"));
        assert!(is_public_suffix("co.uk"));
        assert!(is_public_suffix("github.io"));
        assert!(!is_public_suffix("example.com"));
        assert!(!is_public_suffix("user.github.io"));
        assert!(!is_public_suffix("localhost"));
        assert!(!is_public_suffix("corp"));
    }

    #[test]
    fn thousand_origins_are_one_lookup() {
        let origins: Vec<String> = (0..1000)
            .map(|i| format!("https://app{i}.example.com"))
            .collect();
        let refs: Vec<&str> = origins.iter().map(String::as_str).collect();
        let m = matcher(&refs, &[]);
        assert!(m.allows(b"https://app999.example.com"));
        assert!(!m.allows(b"https://app1000.example.com"));
        assert_eq!(m.exact.len(), 1000);
    }
}
