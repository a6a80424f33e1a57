//! The configuration file as written: TOML parsing and every check that can be
//! made on the text alone, collecting *all* problems instead of stopping at
//! the first one.
//!
//! Each key is deserialized on its own before its table is deserialized whole,
//! so that one typo does not hide the next one. The result is a [`FileConfig`]
//! whose values are known to have the right types; [`super::compile`] turns it
//! into the compiled configuration and reports the problems that need more
//! than one key to see (a route naming a missing policy, say).

use super::Report;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crossgate_cors::PolicyConfig;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A number of seconds, written as an integer or a float (`5`, `0.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(f64);

impl Seconds {
    /// The duration, when it is finite, above zero and at most `max_secs`;
    /// otherwise the problem to report under the key that holds it.
    pub(crate) fn within(self, max_secs: f64) -> Result<Duration, String> {
        let secs = self.0;
        if secs.is_finite() && secs > 0.0 && secs <= max_secs {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(format!(
                "{secs} is not a number of seconds between 0 and {max_secs}"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds such as 5 or 0.5")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[server]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerFile {
    pub listen: Option<String>,
    pub admin: Option<String>,
    pub tls: Option<toml::Value>,
    pub request_id_header: Option<String>,
    pub connect_timeout: Option<Seconds>,
    pub response_timeout: Option<Seconds>,
    pub header_read_timeout: Option<Seconds>,
    pub shutdown_timeout: Option<Seconds>,
    pub max_connections: Option<i64>,
    pub max_header_bytes: Option<i64>,
    pub fallback_policy: Option<String>,
    pub admin_token: Option<String>,
    pub denial_log_rate: Option<i64>,
    pub idle_timeout: Option<Seconds>,
    pub send_timeout: Option<Seconds>,
    pub http2_max_concurrent_streams: Option<i64>,
    pub max_upstream_requests: Option<i64>,
    pub trusted_proxies: Option<Vec<String>>,
}

/// `[server] tls = { cert = .., key = .. }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsFile {
    pub cert: Option<String>,
    pub key: Option<String>,
}

/// Whether a route needs a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Anyone may call it (default).
    #[default]
    Public,
    /// A valid token from `[auth]` with the method's privilege is required.
    Private,
}

/// How a route reads the request path (`path_normalization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathNormalization {
    /// Route, authorize and forward the normal form; refuse what an upstream
    /// could reinterpret (default). See [`crate::proxy::path`].
    #[default]
    Strict,
    /// Forward the path as received. Dangerous: the upstream may decode it
    /// into another resource. For upstreams that need `%2F` or `;` kept.
    Off,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteFile {
    pub path: Option<String>,
    pub upstream: Option<toml::Value>,
    pub mock: Option<toml::Value>,
    pub policy: Option<String>,
    pub report_only_policy: Option<String>,
    pub methods: Option<Vec<String>>,
    pub access: Option<Access>,
    pub max_body_bytes: Option<i64>,
    pub path_normalization: Option<PathNormalization>,
    pub websocket: Option<bool>,
    pub websocket_require_origin: Option<bool>,
    pub host: Option<super::hosts::HostsFile>,
    pub strip_prefix: Option<bool>,
    pub rewrite_prefix: Option<String>,
}

/// `mock = { status, headers, body }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockFile {
    pub status: Option<i64>,
    pub headers: Option<BTreeMap<String, String>>,
    pub body: Option<String>,
}

/// `upstream`: one base URL as a string, or a pool (a list of base URLs, or
/// a [`PoolFile`] table).
#[derive(Debug, Clone)]
pub enum UpstreamFile {
    /// `upstream = "http://127.0.0.1:3000"`: today's single upstream.
    Single(String),
    /// `upstream = [...]` or `upstream = { targets = [...], ... }`.
    Pool {
        pool: PoolFile,
        health: Option<HealthFile>,
        /// Written as a list: its targets are `upstream[i]`, not `upstream.targets[i]`.
        listed: bool,
    },
}

/// `upstream = { targets, balance, eject_after, health }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolFile {
    pub targets: Option<Vec<String>>,
    pub balance: Option<Balance>,
    pub eject_after: Option<i64>,
    pub health: Option<toml::Value>,
}

/// How a pool picks a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each target in turn (default).
    #[default]
    RoundRobin,
    /// The target with the fewest requests in flight.
    LeastRequests,
    /// A target at random.
    Random,
}

/// `upstream.health = { path, interval, timeout, healthy, unhealthy }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthFile {
    pub path: Option<String>,
    pub interval: Option<Seconds>,
    pub timeout: Option<Seconds>,
    pub healthy: Option<i64>,
    pub unhealthy: Option<i64>,
}

/// A privilege a bearer token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Privilege {
    /// GET, HEAD and OPTIONS.
    Read,
    /// Every other method.
    Write,
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthFile {
    pub tokens: Option<Vec<toml::Value>>,
    pub jwt_secret: Option<String>,
    pub jwt_leeway: Option<i64>,
    pub jwt_audience: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_allow_missing_exp: Option<bool>,
}

/// One `[[auth.tokens]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenFile {
    pub token: Option<String>,
    pub privileges: Option<Vec<Privilege>>,
}

/// A route as parsed, with its index in the file for messages.
#[derive(Debug, Clone)]
pub struct ParsedRoute {
    pub index: usize,
    pub route: RouteFile,
    pub upstream: Option<UpstreamFile>,
    pub mock: Option<MockFile>,
}

/// A file whose keys all have the right types.
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    pub server: ServerFile,
    pub tls: Option<TlsFile>,
    /// Policies in file order; `None` when the policy's table had problems
    /// (its name still counts as defined, so routes naming it are not
    /// reported twice).
    pub policies: Vec<(String, Option<PolicyConfig>)>,
    pub routes: Vec<ParsedRoute>,
    pub auth: Option<AuthFile>,
    pub tokens: Vec<(usize, TokenFile)>,
}

const TOP_LEVEL_KEYS: [&str; 4] = ["server", "policies", "routes", "auth"];

/// Parses `text` and checks every key's type, collecting problems in `report`.
pub(crate) fn parse(text: &str, report: &mut Report) -> FileConfig {
    let document: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            report.problem(
                "",
                format!("not valid TOML: {}", one_line(&error.to_string())),
                "fix the syntax at the line and column shown",
            );
            return FileConfig::default();
        }
    };
    let mut config = FileConfig::default();
    for (key, value) in &document {
        match key.as_str() {
            "server" => {
                if let Some(server) = parse_table::<ServerFile>(value, "server", report) {
                    config.tls = server
                        .tls
                        .as_ref()
                        .and_then(|tls| parse_table::<TlsFile>(tls, "server.tls", report));
                    config.server = server;
                }
            }
            "policies" => config.policies = parse_policies(value, report),
            "routes" => config.routes = parse_routes(value, report),
            "auth" => {
                if let Some(auth) = parse_table::<AuthFile>(value, "auth", report) {
                    for (i, token) in auth.tokens.iter().flatten().enumerate() {
                        // A token with a bad key is left out rather than
                        // reported again as missing its privileges.
                        let before = report.problems.len();
                        let parsed =
                            parse_table::<TokenFile>(token, &format!("auth.tokens[{i}]"), report);
                        if let Some(parsed) = parsed.filter(|_| report.problems.len() == before) {
                            config.tokens.push((i, parsed));
                        }
                    }
                    config.auth = Some(auth);
                }
            }
            other => report.problem(
                other,
                format!("unknown top-level key `{other}`"),
                unknown_key_fix(other, &TOP_LEVEL_KEYS),
            ),
        }
    }
    if !document.contains_key("server") {
        report.problem(
            "server",
            "the [server] table is missing",
            "add [server] with at least listen = \"127.0.0.1:8080\"",
        );
    }
    config
}

fn parse_policies(value: &toml::Value, report: &mut Report) -> Vec<(String, Option<PolicyConfig>)> {
    let Some(table) = value.as_table() else {
        report.problem(
            "policies",
            format!(
                "expected tables [policies.NAME], found {}",
                value.type_str()
            ),
            "write each policy as a table: [policies.web] with origins = [...]",
        );
        return Vec::new();
    };
    let mut policies = Vec::with_capacity(table.len());
    for (name, body) in table {
        let path = format!("policies.{name}");
        if !is_valid_name(name) {
            report.problem(
                &path,
                format!("the policy name `{name}` is not a plain name"),
                "use letters, digits, `-` and `_` only, e.g. [policies.web]",
            );
        }
        // A policy with a bad key is not compiled: its other checks would
        // mostly repeat the same mistake ("no origins" after `orgins`).
        let before = report.problems.len();
        let parsed = parse_table::<PolicyConfig>(body, &path, report);
        policies.push((
            name.clone(),
            parsed.filter(|_| report.problems.len() == before),
        ));
    }
    policies
}

fn parse_routes(value: &toml::Value, report: &mut Report) -> Vec<ParsedRoute> {
    let Some(array) = value.as_array() else {
        report.problem(
            "routes",
            format!("expected an array of tables [[routes]], found {}", value.type_str()),
            "write each route as [[routes]] with path = \"/api/\" and upstream = \"http://127.0.0.1:3000\"",
        );
        return Vec::new();
    };
    let mut routes = Vec::with_capacity(array.len());
    for (index, entry) in array.iter().enumerate() {
        let path = format!("routes[{index}]");
        let Some(route) = parse_table::<RouteFile>(entry, &path, report) else {
            continue;
        };
        let mock = route
            .mock
            .as_ref()
            .and_then(|mock| parse_table::<MockFile>(mock, &format!("{path}.mock"), report));
        if route.mock.is_some() && mock.is_none() {
            continue;
        }
        let upstream = route
            .upstream
            .as_ref()
            .and_then(|upstream| parse_upstream(upstream, &format!("{path}.upstream"), report));
        if route.upstream.is_some() && upstream.is_none() {
            continue;
        }
        routes.push(ParsedRoute {
            index,
            route,
            upstream,
            mock,
        });
    }
    routes
}

/// `upstream` in any of its three forms; `None` once its problems are reported.
fn parse_upstream(value: &toml::Value, path: &str, report: &mut Report) -> Option<UpstreamFile> {
    match value {
        toml::Value::String(text) => Some(UpstreamFile::Single(text.clone())),
        toml::Value::Array(items) => {
            let mut targets = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(text) => targets.push(text.to_owned()),
                    None => report.problem(
                        format!("{path}[{i}]"),
                        format!("expected a base URL, found {}", item.type_str()),
                        "write each target as a string, e.g. \"http://127.0.0.1:3000\"",
                    ),
                }
            }
            (targets.len() == items.len()).then(|| UpstreamFile::Pool {
                pool: PoolFile {
                    targets: Some(targets),
                    ..PoolFile::default()
                },
                health: None,
                listed: true,
            })
        }
        toml::Value::Table(_) => {
            let before = report.problems.len();
            let pool = parse_table::<PoolFile>(value, path, report)?;
            let health = pool.health.as_ref().and_then(|health| {
                parse_table::<HealthFile>(health, &format!("{path}.health"), report)
            });
            (report.problems.len() == before).then_some(UpstreamFile::Pool {
                pool,
                health,
                listed: false,
            })
        }
        other => {
            report.problem(
                path,
                format!("expected a base URL, a list of them or a table, found {}", other.type_str()),
                "write upstream = \"http://127.0.0.1:3000\", a list [\"http://10.0.0.1:3000\", \"http://10.0.0.2:3000\"] or { targets = [...] }",
            );
            None
        }
    }
}

/// Deserializes a table into `T`, first key by key so that every bad key is
/// reported, then whole from the good keys, so that the checks that follow
/// still see the rest of the table. `T` must give every field a default.
fn parse_table<T: DeserializeOwned>(
    value: &toml::Value,
    path: &str,
    report: &mut Report,
) -> Option<T> {
    let Some(table) = value.as_table() else {
        report.problem(
            path,
            format!("expected a table, found {}", value.type_str()),
            format!("write `{path}` as a table, e.g. {{ key = value }} or a [section]"),
        );
        return None;
    };
    let mut good = toml::Table::new();
    for (key, item) in table {
        let mut single = toml::Table::new();
        single.insert(key.clone(), item.clone());
        match toml::Value::Table(single).try_into::<T>() {
            Ok(_) => {
                good.insert(key.clone(), item.clone());
            }
            Err(error) => {
                report_serde_error(&format!("{path}.{key}"), key, &error.to_string(), report)
            }
        }
    }
    match toml::Value::Table(good).try_into::<T>() {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            report_serde_error(path, "", &error.to_string(), report);
            None
        }
    }
}

fn report_serde_error(key_path: &str, key: &str, message: &str, report: &mut Report) {
    let message = one_line(message);
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let expected = rest
            .split_once("expected ")
            .map(|(_, list)| list)
            .unwrap_or("");
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        report.problem(
            key_path,
            format!("unknown key `{key}`"),
            unknown_key_fix(key, &known),
        );
    } else if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected
            .split_once("expected ")
            .map(|(_, list)| without_location(list))
            .unwrap_or_default();
        report.problem(
            key_path,
            format!("`{value}` is not an accepted value"),
            format!("use {expected}"),
        );
    } else {
        report.problem(
            key_path,
            without_location(&message),
            "see docs/config.md for the type and allowed values of this key",
        );
    }
}

/// The message without the ` in `key`` suffix toml adds: the key path is shown already.
fn without_location(message: &str) -> String {
    match message.rfind(" in `") {
        Some(at) if message.ends_with('`') => message[..at].to_owned(),
        _ => message.to_owned(),
    }
}

fn unknown_key_fix(key: &str, known: &[&str]) -> String {
    let list = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match closest(key, known) {
        Some(guess) => format!("did you mean `{guess}`? (known keys: {list})"),
        None => format!("remove it; known keys: {list}"),
    }
}

/// The known key within edit distance 2 of `key`, if any.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (edit_distance(key, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, Problem};

    fn check(text: &str) -> (FileConfig, Vec<Problem>) {
        let mut report = Report::new(&ConfigSource::File("t.toml".into()));
        let config = parse(text, &mut report);
        (config, report.problems)
    }

    #[test]
    fn every_unknown_key_is_reported_with_a_suggestion() {
        let (_, problems) = check(
            r#"
            [server]
            lisen = "127.0.0.1:1"
            admn = "127.0.0.1:2"
            [policies.web]
            orgins = ["https://a.com"]
            "#,
        );
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["policies.web.orgins", "server.admn", "server.lisen"]);
        assert!(
            problems[0].fix.contains("did you mean `origins`"),
            "{}",
            problems[0].fix
        );
        assert!(
            problems[2].fix.contains("did you mean `listen`"),
            "{}",
            problems[2].fix
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let (_, problems) = check(
            r#"
            [server]
            listen = 8080
            [[routes]]
            path = "/a"
            mock = { status = "ok" }
            "#,
        );
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["routes[0].mock.status", "server.listen"]);
    }

    #[test]
    fn syntax_errors_are_one_problem() {
        let (_, problems) = check("[server\nlisten = 1");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].why.starts_with("not valid TOML"));
    }

    #[test]
    fn seconds_refuse_strings_with_a_clear_message() {
        let (_, problems) = check("[server]\nlisten = \"127.0.0.1:1\"\nconnect_timeout = \"5s\"");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "server.connect_timeout");
        assert!(
            problems[0]
                .why
                .contains("a number of seconds such as 5 or 0.5"),
            "{}",
            problems[0].why
        );
    }

    #[test]
    fn seconds_accept_integers_and_fractions() {
        let (config, problems) = check(
            "[server]\nlisten = \"127.0.0.1:1\"\nconnect_timeout = 0.25\nresponse_timeout = 3",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            config.server.connect_timeout.map(|seconds| seconds.0),
            Some(0.25)
        );
        assert_eq!(
            config.server.response_timeout.map(|seconds| seconds.0),
            Some(3.0)
        );
    }

    #[test]
    fn seconds_within_a_bound_are_positive_finite_and_at_most_the_bound() {
        assert_eq!(Seconds(0.5).within(10.0), Ok(Duration::from_millis(500)));
        assert_eq!(Seconds(10.0).within(10.0), Ok(Duration::from_secs(10)));
        for refused in [0.0, -1.0, 10.5, f64::INFINITY, f64::NAN] {
            let problem = Seconds(refused).within(10.0).unwrap_err();
            assert_eq!(
                problem,
                format!("{refused} is not a number of seconds between 0 and 10")
            );
        }
    }
}
