//! `routes[i].host`: one host pattern or a list, each checked and normalized
//! (see [`crate::proxy::host`]), and each host and path pair served by one
//! route only.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use super::Report;
use crate::proxy::host::HostPattern;

/// `host = "api.example.com"` or `host = ["a.example.com", "*.example.com"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsFile(Vec<String>);

impl<'de> Deserialize<'de> for HostsFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = HostsFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a host such as \"api.example.com\" or a list of hosts")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HostsFile, E> {
                Ok(HostsFile(vec![v.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<HostsFile, A::Error> {
                let mut hosts = Vec::new();
                while let Some(host) = seq.next_element::<String>()? {
                    hosts.push(host);
                }
                Ok(HostsFile(hosts))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The route's host patterns, normalized and without repeats: empty when
/// the route has no `host` (it serves every host); `None` when one is invalid.
pub(super) fn compile_hosts(
    hosts: Option<&HostsFile>,
    route_key: &str,
    report: &mut Report,
) -> Option<Vec<HostPattern>> {
    let Some(HostsFile(hosts)) = hosts else {
        return Some(Vec::new());
    };
    let key = format!("{route_key}.host");
    if hosts.is_empty() {
        report.problem(
            &key,
            "an empty host list matches no request",
            "list the hosts, e.g. [\"api.example.com\"], or remove `host` to match every host",
        );
        return None;
    }
    let mut patterns: Vec<HostPattern> = Vec::with_capacity(hosts.len());
    let mut ok = true;
    for (i, text) in hosts.iter().enumerate() {
        let at = if hosts.len() == 1 {
            key.clone()
        } else {
            format!("{key}[{i}]")
        };
        match HostPattern::parse(text) {
            Ok(pattern) if patterns.contains(&pattern) => {
                report.warning(at, format!("{pattern} is listed twice"));
            }
            Ok(pattern) => patterns.push(pattern),
            Err((why, fix)) => {
                ok = false;
                report.problem(at, why, fix);
            }
        }
    }
    ok.then_some(patterns)
}

/// The host and path pairs seen so far, `None` standing for a host-less route.
pub(super) type Served<'a> = HashSet<(Option<HostPattern>, &'a str)>;

/// Reports a host and path pair another route already serves: only the
/// first of the two could ever match.
pub(super) fn check_unique<'a>(
    hosts: &[HostPattern],
    path: &'a str,
    served: &mut Served<'a>,
    route_key: &str,
    report: &mut Report,
) {
    if hosts.is_empty() {
        if !served.insert((None, path)) {
            report.problem(
                format!("{route_key}.path"),
                format!("another route already has the path {path:?}"),
                "give each route its own path, or merge the two routes",
            );
        }
        return;
    }
    for host in hosts {
        if !served.insert((Some(host.clone()), path)) {
            report.problem(
                format!("{route_key}.host"),
                format!("another route already serves {host} with the path {path:?}, so this one could never match it"),
                "serve each host and path from one route: remove the host here or there, or merge the two routes",
            );
        }
    }
}
