//! The forwarding headers an upstream receives. The gateway is the edge by
//! default: whatever a client claims in `Forwarded`, `X-Forwarded-*`,
//! `X-Real-IP` and their kin is replaced by what the gateway saw. Only a peer
//! inside `server.trusted_proxies` (another proxy in front of the gateway)
//! has its headers kept and appended to.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, HeaderValue, FORWARDED};
use http::HeaderMap;

use crate::config::Report;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers that upstreams commonly read as "the client's address, scheme or
/// host". From an untrusted peer they are all lies the gateway cannot check,
/// so every one is removed before the gateway's own view is set.
const CLIENT_CLAIMS: [HeaderName; 14] = [
    FORWARDED,
    X_FORWARDED_FOR,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-server"),
    HeaderName::from_static("x-forwarded-ssl"),
    X_REAL_IP,
    HeaderName::from_static("x-client-ip"),
    HeaderName::from_static("x-cluster-client-ip"),
    HeaderName::from_static("true-client-ip"),
    HeaderName::from_static("cf-connecting-ip"),
    HeaderName::from_static("fastly-client-ip"),
];

/// What the gateway says about one client connection, formatted once when the
/// connection is accepted.
#[derive(Debug, Clone)]
pub struct ClientView {
    peer_ip: IpAddr,
    /// The peer address as `X-Forwarded-For` and `X-Real-IP` carry it.
    address: HeaderValue,
    /// The RFC 7239 element: `for=192.0.2.1;proto=http`, IPv6 quoted.
    forwarded: HeaderValue,
    proto: HeaderValue,
}

impl ClientView {
    /// The view of a connection from `peer`, over TLS or not.
    pub fn new(peer: SocketAddr, tls: bool) -> Self {
        let peer_ip = peer.ip().to_canonical();
        let proto = if tls { "https" } else { "http" };
        let node = match peer_ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("\"[{ip}]\""),
        };
        // An IP address and these fixed strings are always valid header values.
        let value = |text: String| {
            HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown"))
        };
        Self {
            peer_ip,
            address: value(peer_ip.to_string()),
            forwarded: value(format!("for={node};proto={proto}")),
            proto: HeaderValue::from_static(proto),
        }
    }

    /// Sets the forwarding headers of a request from this client.
    /// `original_host` is the client's `Host` (or `:authority`).
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        trusted: &TrustedProxies,
        original_host: Option<HeaderValue>,
    ) {
        if trusted.contains(self.peer_ip) {
            append(headers, &X_FORWARDED_FOR, &self.address);
            append(headers, &FORWARDED, &self.forwarded);
            set_if_absent(headers, &X_FORWARDED_PROTO, self.proto.clone());
            set_if_absent(headers, &X_REAL_IP, self.address.clone());
            if let Some(host) = original_host {
                set_if_absent(headers, &X_FORWARDED_HOST, host);
            }
            return;
        }
        // Browsers send none of them: one pass comparing the names (by
        // length first) is much cheaper than fourteen hashed removals.
        if headers.keys().any(|name| CLIENT_CLAIMS.contains(name)) {
            for name in &CLIENT_CLAIMS {
                headers.remove(name);
            }
        }
        headers.insert(X_FORWARDED_FOR, self.address.clone());
        headers.insert(FORWARDED, self.forwarded.clone());
        headers.insert(X_FORWARDED_PROTO, self.proto.clone());
        headers.insert(X_REAL_IP, self.address.clone());
        if let Some(host) = original_host {
            headers.insert(X_FORWARDED_HOST, host);
        }
    }
}

/// Joins every existing line of `name` and `ours` into one comma-separated line.
fn append(headers: &mut HeaderMap, name: &HeaderName, ours: &HeaderValue) {
    let mut joined: Vec<u8> = Vec::new();
    for previous in headers.get_all(name) {
        let previous = previous.as_bytes().trim_ascii();
        if !previous.is_empty() {
            joined.extend_from_slice(previous);
            joined.extend_from_slice(b", ");
        }
    }
    let value = if joined.is_empty() {
        ours.clone()
    } else {
        joined.extend_from_slice(ours.as_bytes());
        // Joined from valid values with ", ": still a valid value.
        HeaderValue::from_bytes(&joined).unwrap_or_else(|_| ours.clone())
    };
    headers.insert(name.clone(), value);
}

fn set_if_absent(headers: &mut HeaderMap, name: &HeaderName, value: HeaderValue) {
    if !headers.contains_key(name) {
        headers.insert(name.clone(), value);
    }
}

/// `server.trusted_proxies`: the networks whose forwarding headers are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl TrustedProxies {
    /// Checks and compiles the CIDR list at `server.trusted_proxies`.
    pub(crate) fn compile(list: &[String], report: &mut Report) -> Self {
        let mut networks = Vec::with_capacity(list.len());
        for (index, text) in list.iter().enumerate() {
            let key = format!("server.trusted_proxies[{index}]");
            match Network::parse(text) {
                Ok(network) => networks.push(network),
                Err((why, fix)) => report.problem(key, why, fix),
            }
        }
        Self(networks)
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is inside a trusted network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }
}

impl Network {
    fn parse(text: &str) -> Result<Self, (String, String)> {
        let fix = || {
            "write a network as address/prefix, e.g. \"10.0.0.0/8\", \"fd00::/8\", or a single address \"192.0.2.10\"".to_owned()
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| (format!("{text:?} is not an IP address or network"), fix()))?;
        let address = address.to_canonical();
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(prefix) if prefix <= bits => prefix,
                _ => {
                    return Err((
                        format!("{text:?} has a prefix length outside 0..={bits}"),
                        fix(),
                    ))
                }
            },
        };
        if prefix == 0 {
            return Err((
                format!("{text:?} trusts every address, so any client could forge X-Forwarded-For"),
                "list only the networks of the proxies in front of the gateway, e.g. \"10.0.0.0/8\"".to_owned(),
            ));
        }
        let network = Network { address, prefix };
        if network.masked(address) != bits_of(address) {
            return Err((
                format!("{text:?} has address bits set beyond its /{prefix} prefix"),
                format!(
                    "write the network address, e.g. \"{}/{prefix}\"",
                    network.network_address()
                ),
            ));
        }
        Ok(network)
    }

    fn mask(self) -> u128 {
        let bits = if self.address.is_ipv4() { 32 } else { 128 };
        let host_bits = u32::from(bits - self.prefix);
        (u128::MAX.checked_shl(host_bits).unwrap_or(0)) & width_mask(bits)
    }

    fn masked(self, ip: IpAddr) -> u128 {
        bits_of(ip) & self.mask()
    }

    fn network_address(self) -> IpAddr {
        let masked = self.masked(self.address);
        match self.address {
            IpAddr::V4(_) => IpAddr::from(u32::try_from(masked).unwrap_or(0).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(masked.to_be_bytes()),
        }
    }

    fn contains(self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.address.is_ipv4() && self.masked(ip) == self.masked(self.address)
    }
}

fn width_mask(bits: u8) -> u128 {
    if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(ip) => u128::from(u32::from(ip)),
        IpAddr::V6(ip) => u128::from(ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;

    fn trusted(list: &[&str]) -> Result<TrustedProxies, String> {
        let mut report = Report::new(&ConfigSource::Demo);
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        let compiled = TrustedProxies::compile(&list, &mut report);
        if report.has_problems() {
            Err(report.into_problems().to_string())
        } else {
            Ok(compiled)
        }
    }

    #[test]
    fn networks_match_their_addresses_only() {
        let list = trusted(&["10.0.0.0/8", "192.0.2.7", "fd00::/8"]).expect("valid");
        for inside in ["10.1.2.3", "192.0.2.7", "fd12::1", "::ffff:10.9.9.9"] {
            assert!(list.contains(inside.parse().expect("ip")), "{inside}");
        }
        for outside in ["11.0.0.1", "192.0.2.8", "fe80::1", "::a00:1"] {
            assert!(!list.contains(outside.parse().expect("ip")), "{outside}");
        }
    }

    #[test]
    fn each_client_claim_alone_is_replaced_or_removed() {
        let view = ClientView::new("192.0.2.1:5000".parse().expect("addr"), false);
        let ours = [
            "x-forwarded-for",
            "forwarded",
            "x-forwarded-proto",
            "x-real-ip",
        ];
        for claim in &CLIENT_CLAIMS {
            let mut headers = HeaderMap::new();
            headers.insert(claim.clone(), HeaderValue::from_static("203.0.113.9"));
            view.apply(&mut headers, &TrustedProxies::default(), None);
            for (name, value) in &headers {
                assert!(ours.contains(&name.as_str()), "{claim}: {name} kept");
                assert_ne!(value, "203.0.113.9", "{claim}: {name} kept the claim");
            }
        }
    }

    #[test]
    fn bad_networks_name_their_key_and_a_fix() {
        let message = trusted(&["10.0.0.0/8", "10.0.0.1/8"]).expect_err("host bits");
        assert!(message.contains("server.trusted_proxies[1]"), "{message}");
        assert!(message.contains("\"10.0.0.0/8\""), "{message}");
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "10.0.0.0/33",
            "example.com",
            "10.0.0.0/x",
        ] {
            assert!(trusted(&[bad]).is_err(), "{bad}");
        }
    }
}
