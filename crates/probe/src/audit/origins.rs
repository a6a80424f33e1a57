//! The probe origins: look-alikes of each trusted origin (the way CORScanner
//! and Corsy derive them), `null`, and shared hosting, keeping only origins
//! a browser can send.

use crossgate_cors::browser;
use http::Uri;

use super::{AuditError, FindingClass};

/// The attacker-controlled domain every probe origin is built on.
pub(super) const ATTACKER: &str = "crossgate-audit.example";

/// Characters that sloppy origin checks let through after the host
/// (`https://trusted.com_.attacker.example`). Only those the URL standard
/// allows in a domain (Safari sends them all, Chromium and Firefox `_` and
/// `-`); `^`, `|` and `%` are forbidden domain code points, so no browser
/// can send an origin holding them and probing with them proves nothing.
const SPECIAL_CHARACTERS: [&str; 17] = [
    "_", "-", "{", "}", "`", "!", "~", ";", "&", "'", "(", ")", "*", ",", "$", "=", "+",
];

/// Shared hosting where anyone can publish a page, hence run script.
const THIRD_PARTY_ORIGINS: [&str; 14] = [
    "https://crossgate-audit.github.io",
    "https://crossgate-audit.gitlab.io",
    "https://codepen.io",
    "https://cdpn.io",
    "https://jsfiddle.net",
    "https://fiddle.jshell.net",
    "https://jsbin.com",
    "https://output.jsbin.com",
    "https://stackblitz.com",
    "https://crossgate-audit.glitch.me",
    "https://crossgate-audit.netlify.app",
    "https://crossgate-audit.vercel.app",
    "https://crossgate-audit.herokuapp.com",
    "https://crossgate-audit.pages.dev",
];

/// A trusted origin taken apart.
#[derive(Debug, Clone)]
pub(super) struct Trusted {
    pub(super) serialized: String,
    pub(super) scheme: String,
    pub(super) host: String,
    /// `:port`, or empty for the default port.
    pub(super) port: String,
}

impl Trusted {
    pub(super) fn parse(origin: &str) -> Result<Self, AuditError> {
        let bad = || AuditError::Origin(origin.to_owned());
        let uri: Uri = origin.parse().map_err(|_| bad())?;
        if browser::serialize_origin(&uri).as_deref() != Some(origin) {
            return Err(bad());
        }
        let scheme = uri.scheme_str().ok_or_else(bad)?.to_owned();
        let host = uri.host().ok_or_else(bad)?.to_owned();
        let port = match origin.rsplit_once(':') {
            Some((_, port))
                if !port.starts_with("//") && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!(":{port}")
            }
            _ => String::new(),
        };
        Ok(Self {
            serialized: origin.to_owned(),
            scheme,
            host,
            port,
        })
    }

    pub(super) fn is_ip(&self) -> bool {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok()
    }

    pub(super) fn with_host(&self, host: &str) -> String {
        format!("{}://{host}{}", self.scheme, self.port)
    }
}

/// One probe origin and the class it reveals when accepted.
pub(super) struct OriginProbe {
    pub(super) origin: String,
    pub(super) class: FindingClass,
}

pub(super) fn origin_probes(bases: &[Trusted], trusted: &[Trusted]) -> Vec<OriginProbe> {
    let mut probes = vec![
        OriginProbe {
            origin: format!("https://{ATTACKER}"),
            class: FindingClass::AnyOriginReflected,
        },
        OriginProbe {
            origin: "null".to_owned(),
            class: FindingClass::NullOriginTrusted,
        },
    ];
    for t in bases {
        let mut add = |origin: String, class| {
            if !probes.iter().any(|p: &OriginProbe| p.origin == origin) {
                probes.push(OriginProbe { origin, class });
            }
        };
        add(
            t.with_host(&format!("{}.{ATTACKER}", t.host)),
            FindingClass::PrefixMatch,
        );
        let registrable = browser::registrable_domain(&t.host);
        add(
            t.with_host(&format!("crossgateaudit{registrable}")),
            FindingClass::SuffixMatch,
        );
        if !t.is_ip() {
            for (i, _) in t.host.match_indices('.').take(3) {
                let mut host = t.host.clone();
                host.replace_range(i..=i, "x");
                add(t.with_host(&host), FindingClass::UnescapedDot);
            }
            add(
                t.with_host(&format!("crossgate-audit.{}", t.host)),
                FindingClass::AnySubdomainTrusted,
            );
        }
        for c in SPECIAL_CHARACTERS {
            add(
                t.with_host(&format!("{}{c}.{ATTACKER}", t.host)),
                FindingClass::SpecialCharacters,
            );
        }
        if t.scheme == "https" {
            add(
                format!("http://{}{}", t.host, t.port),
                FindingClass::InsecureOriginTrusted,
            );
        }
    }
    for origin in THIRD_PARTY_ORIGINS {
        probes.push(OriginProbe {
            origin: origin.to_owned(),
            class: FindingClass::ThirdPartyOriginTrusted,
        });
    }
    // A probe equal to a trusted origin proves nothing, and one no browser
    // can send (a suffix probe glued to an IP address) proves nothing either.
    probes.retain(|p| {
        !trusted.iter().any(|t| t.serialized == p.origin) && browser_can_send(&p.origin)
    });
    probes
}

/// Whether a browser can send `origin` in an `Origin` header: `null`, or
/// `scheme://host[:port]` whose host the URL standard's host parser accepts
/// unchanged (an IP literal, or an ASCII domain without forbidden domain code
/// points whose last label is not a number unless the whole host is IPv4).
fn browser_can_send(origin: &str) -> bool {
    if origin == "null" {
        return true;
    }
    let Some((_, rest)) = origin.split_once("://") else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(inner) => {
            return inner.split_once(']').is_some_and(|(ip, port)| {
                ip.parse::<std::net::Ipv6Addr>().is_ok() && valid_port(port)
            });
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) if valid_port(&format!(":{port}")) => host,
            Some(_) => return false,
            None => rest,
        },
    };
    // The URL standard's forbidden domain code points, for an ASCII host.
    let forbidden = |b: u8| b <= 0x20 || b >= 0x7f || b"#%/:<>?@[\\]^|".contains(&b);
    if host.is_empty() || host.bytes().any(forbidden) {
        return false;
    }
    let last_label = host
        .strip_suffix('.')
        .unwrap_or(host)
        .rsplit('.')
        .next()
        .unwrap_or("");
    let numeric = !last_label.is_empty() && last_label.bytes().all(|b| b.is_ascii_digit())
        || last_label.starts_with("0x")
        || last_label.starts_with("0X");
    !numeric || host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// An empty port or `:digits` below 65536.
fn valid_port(port: &str) -> bool {
    port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        })
}
