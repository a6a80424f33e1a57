//! The real gateway, from the built binary, with a configuration generated
//! from the scenario table: one policy and one route per scenario.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};

use super::scenarios::{Access, Backend, Ports, Scenario, SCENARIOS, TOKENS};
use crossgate_testkit::free_port;

use super::servers::Reply;

/// The gateway's response timeout in the generated configuration; the
/// upstream's slow answers take [`SLOW_UPSTREAM`], well past it.
const RESPONSE_TIMEOUT_SECONDS: u64 = 1;
pub const SLOW_UPSTREAM: Duration = Duration::from_secs(3);

/// A running `crossgate serve`; dropping it stops the process.
pub struct Gateway {
    process: Child,
    pub address: SocketAddr,
    /// The admin listener, whose `/metrics` counts preflights per route.
    pub admin: SocketAddr,
    dir: PathBuf,
}

impl Gateway {
    pub fn start(scenarios: &[Scenario], ports: &Ports, upstream_port: u16) -> Gateway {
        let port = free_port();
        let admin_port = free_port();
        let unreachable_port = free_port();
        let listen = Listen {
            port,
            admin_port,
            upstream_port,
            unreachable_port,
        };
        let config = config(scenarios, ports, &listen);
        let dir = std::env::temp_dir().join(format!(
            "crossgate-browser-gateway-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let config_path = dir.join("browser-suite.toml");
        std::fs::write(&config_path, &config)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
        let log_path = dir.join("gateway.log");
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", log_path.display()));
        let process = Command::new(env!("CARGO_BIN_EXE_crossgate"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the crossgate binary: {e}"));
        let mut gateway = Gateway {
            process,
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            admin: SocketAddr::from((Ipv4Addr::LOCALHOST, admin_port)),
            dir,
        };
        gateway.wait_until_listening(&config);
        gateway
    }

    /// What the gateway printed, for failure reports.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    fn wait_until_listening(&mut self, config: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(status)) = self.process.try_wait() {
                panic!(
                    "crossgate serve exited ({status}) before listening.\n--- its output:\n{}\n--- the generated config:\n{config}",
                    self.log()
                );
            }
            if TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "crossgate serve did not listen on {} within 20 s.\n--- its output:\n{}",
            self.address,
            self.log()
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The configuration file: `[policies.<scenario>]` and a route
/// `/s/<scenario>/` for each scenario; the 404 scenario's policy is the
/// fallback for paths no route matches.
/// The ports of a generated configuration.
pub struct Listen {
    pub port: u16,
    pub admin_port: u16,
    pub upstream_port: u16,
    /// Nothing listens here: the 502 route's upstream.
    pub unreachable_port: u16,
}

pub fn config(scenarios: &[Scenario], ports: &Ports, listen: &Listen) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "[server]");
    let _ = writeln!(text, "listen = \"127.0.0.1:{}\"", listen.port);
    let _ = writeln!(text, "admin = \"127.0.0.1:{}\"", listen.admin_port);
    let _ = writeln!(text, "response_timeout = {RESPONSE_TIMEOUT_SECONDS}");
    if let Some(fallback) = scenarios.iter().find(|s| s.backend == Backend::NoRoute) {
        let _ = writeln!(text, "fallback_policy = \"{}\"", fallback.name);
    }
    for scenario in scenarios {
        if let Some(policy) = scenario.policy_toml(ports) {
            let _ = writeln!(text, "\n[policies.{}]\n{}", scenario.name, policy.trim());
        }
    }
    for scenario in scenarios {
        let upstream_port = match scenario.backend {
            Backend::NoRoute => continue,
            Backend::Unreachable => listen.unreachable_port,
            Backend::Upstream | Backend::UpstreamWithOwnCors { .. } | Backend::Slow => {
                listen.upstream_port
            }
        };
        let _ = writeln!(text, "\n[[routes]]");
        let _ = writeln!(text, "path = \"{}\"", scenario.route_path());
        let _ = writeln!(text, "upstream = \"http://127.0.0.1:{upstream_port}\"");
        if scenario.policy.is_some() {
            let _ = writeln!(text, "policy = \"{}\"", scenario.name);
        }
        if scenario.access == Access::Private {
            let _ = writeln!(text, "access = \"private\"");
        }
        if let Some(methods) = scenario.route_methods {
            let list: Vec<String> = methods.iter().map(|m| format!("\"{m}\"")).collect();
            let _ = writeln!(text, "methods = [{}]", list.join(", "));
        }
    }
    if scenarios.iter().any(|s| s.access == Access::Private) {
        let _ = writeln!(text, "\n[auth]");
        for (token, privileges) in TOKENS {
            let list: Vec<String> = privileges.iter().map(|p| format!("\"{p}\"")).collect();
            let _ = writeln!(
                text,
                "[[auth.tokens]]\ntoken = \"{token}\"\nprivileges = [{}]",
                list.join(", ")
            );
        }
    }
    text
}

/// Preflights the gateway says it answered (allowed or denied), by route,
/// from its Prometheus text.
pub fn preflights_by_route(metrics: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line
            .strip_prefix("crossgate_preflights_allowed_total{")
            .or_else(|| line.strip_prefix("crossgate_preflights_denied_total{"))
        else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let route = labels
            .split(',')
            .find_map(|label| label.strip_prefix("route=\""))
            .map(|route| route.trim_end_matches('"').to_owned());
        if let (Some(route), Ok(value)) = (route, value.trim().parse::<u32>()) {
            *counts.entry(route).or_insert(0) += value;
        }
    }
    counts
}

/// The test upstream's answer for a scenario's request, shared by the browser
/// suite and the `crossgate check` agreement test so both see one backend.
pub fn upstream_reply(path: &str, request: &HeaderMap) -> Reply {
    let Some(scenario) = SCENARIOS.iter().find(|s| path.starts_with(&s.route_path())) else {
        return Reply::Ok(HeaderMap::new());
    };
    match scenario.backend {
        Backend::Slow => Reply::Late(SLOW_UPSTREAM),
        Backend::UpstreamWithOwnCors { allow_origin } => {
            let mut headers = HeaderMap::new();
            let origin = request
                .get(http::header::ORIGIN)
                .and_then(|o| o.to_str().ok())
                .unwrap_or("null");
            let allow_origin = allow_origin.replace("{origin}", origin);
            if let Ok(value) = HeaderValue::from_str(&allow_origin) {
                headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            }
            headers.insert(
                http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("x-secret"),
            );
            Reply::Ok(headers)
        }
        Backend::Upstream | Backend::Unreachable | Backend::NoRoute => Reply::Ok(HeaderMap::new()),
    }
}
