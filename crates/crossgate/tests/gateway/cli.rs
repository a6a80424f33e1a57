//! The real `crossgate` binary: `validate`, `serve` refusing invalid files,
//! the built-in demo and its printed curl commands, JSON logs, and SIGTERM.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::config::single_route;
use crate::support::process::{collect_lines, logging_command, run, validate_accepts};
use crate::support::{absent_upstream, examples_dir, send, TempDir, PATIENCE};

const APP: &str = "https://app.example.com";

/// One policy, one route and an admin listener.
fn good() -> String {
    single_route(
        r#"admin = "127.0.0.1:0""#,
        APP,
        "/api/",
        r#"upstream = "http://127.0.0.1:3000""#,
    )
}

/// One problem of each kind the issue names, and more.
const BAD: &str = r#"
[server]
listen = "localhost:8080"
lisen = "127.0.0.1:1"

[policies.web]
origins = ["https://app.example.com", "https://app.example.com/"]

[policies.typo]
orgins = ["https://app.example.com"]

[[routes]]
path = "/api/"
upstream = "http://127.0.0.1:3000"
mock = { status = 200 }
policy = "missing"

[[routes]]
path = "/api/"
policy = "web"
"#;

#[test]
fn validate_accepts_a_good_file_with_a_one_line_summary() {
    let dir = TempDir::new("cli");
    let path = dir.write("good.toml", &good());
    let stdout = validate_accepts(&path);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("OK: 1 policy, 1 route"), "{stdout}");
}

/// Two policies and routes under `/api/` only: an unrouted path's 404 has no
/// policy to take its CORS headers from, which `validate` points out, unless
/// a catch-all `/` route leaves no path unrouted.
#[test]
fn validate_warns_about_a_missing_fallback_policy_only_when_paths_can_be_unrouted() {
    let two_policies = good().replace(
        "[[routes]]",
        "[policies.admin]\norigins = [\"https://admin.example.com\"]\n\n[[routes]]",
    );
    let catch_all = format!(
        "{two_policies}\n[[routes]]\npath = \"/\"\nupstream = \"http://127.0.0.1:3000\"\npolicy = \"admin\"\n"
    );
    let dir = TempDir::new("cli-fallback");
    for (name, config, warned) in [
        ("unrouted.toml", two_policies.as_str(), true),
        ("catch-all.toml", catch_all.as_str(), false),
    ] {
        let path = dir.write(name, config);
        let output = run(&["validate", "--config", path.to_str().expect("utf-8 path")]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{name}: {stdout}");
        assert_eq!(
            stdout.contains("server.fallback_policy"),
            warned,
            "{name}: {stdout}"
        );
    }
}

#[test]
fn validate_reports_every_problem_with_its_key_and_a_fix() {
    let dir = TempDir::new("cli");
    let path = dir.write("bad.toml", BAD);
    let output = run(&["validate", "--config", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "server.listen: \"localhost:8080\" is not an IP address with a port",
        "fix: write \"127.0.0.1:8080\"",
        "server.lisen: unknown key `lisen`",
        "did you mean `listen`?",
        "policies.web.origins[1]",
        "policies.typo.orgins: unknown key `orgins`",
        "routes[0]: the route has both `upstream` and `mock`",
        "routes[0].policy: there is no policy named `missing`",
        "routes[1].path: another route already has the path \"/api/\"",
        "routes[1]: the route has neither `upstream` nor `mock`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(path.to_str().expect("utf-8 path")),
        "problems name the file"
    );
    let problems = stderr
        .lines()
        .filter(|line| line.trim_start().starts_with("fix: "))
        .count();
    assert!(problems >= 8, "every problem has a fix:\n{stderr}");
}

#[test]
fn serve_refuses_an_invalid_file_with_the_same_messages() {
    let dir = TempDir::new("cli");
    let path = dir.write("bad.toml", BAD);
    let path = path.to_str().expect("utf-8 path");
    let validate =
        String::from_utf8_lossy(&run(&["validate", "--config", path]).stderr).into_owned();
    let output = run(&["serve", "--config", path]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(validate.trim_end()),
        "serve:\n{stderr}\nvalidate:\n{validate}"
    );
    assert!(stderr.contains("refusing to start"));
}

#[test]
fn shipped_demo_config_is_valid_and_listens_on_8080() {
    let demo = examples_dir().join("demo.toml");
    let stdout = validate_accepts(&demo);
    assert!(
        stdout.contains("listening on http://127.0.0.1:8080"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(demo).expect("read demo"),
        crossgate::DEMO_CONFIG
    );
}

/// A `crossgate serve` process whose output is collected line by line; killed on drop.
struct Serving {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Serving {
    fn start(args: &[&str]) -> Serving {
        let mut child = logging_command(Stdio::piped())
            .args(args)
            .spawn()
            .expect("spawn crossgate");
        let stdout = collect_lines(child.stdout.take().expect("stdout"));
        let stderr = collect_lines(child.stderr.take().expect("stderr"));
        Serving {
            child,
            stdout,
            stderr,
        }
    }

    fn wait_for_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self
                .stderr
                .lock()
                .expect("lines")
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "crossgate exited with {status}: {:?}",
                    self.stderr.lock().expect("lines")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}: {:?}",
                self.stderr.lock().expect("lines")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn listening_addr(&mut self) -> SocketAddr {
        let line = self.wait_for_stderr("gateway listening on http://");
        let rest = line
            .split("gateway listening on http://")
            .nth(1)
            .expect("address");
        let addr: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect();
        addr.parse().expect("a socket address")
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "crossgate did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits a printed curl command into method, URL and headers.
fn parse_curl(line: &str) -> (String, String, Vec<(String, String)>) {
    let mut words = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'').expect("closing quote");
            words.push(quoted[..end].to_owned());
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            words.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
    }
    let mut method = "GET".to_owned();
    let mut url = String::new();
    let mut headers = Vec::new();
    let mut iter = words.into_iter().skip(1);
    while let Some(word) = iter.next() {
        match word.as_str() {
            "-X" => method = iter.next().expect("method"),
            "-H" => {
                let header = iter.next().expect("header");
                let (name, value) = header.split_once(':').expect("name: value");
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "-i" => {}
            other if other.starts_with("http://") => url = other.to_owned(),
            other => panic!("unexpected curl argument {other:?}"),
        }
    }
    (method, url, headers)
}

#[tokio::test]
async fn demo_prints_three_curl_commands_that_show_cors_at_work() {
    let mut demo = Serving::start(&["serve", "--listen", "127.0.0.1:0"]);
    let addr = demo.listening_addr();
    let deadline = Instant::now() + PATIENCE;
    let commands = loop {
        let commands: Vec<String> = demo
            .stdout
            .lock()
            .expect("lines")
            .iter()
            .filter(|line| line.starts_with("curl "))
            .cloned()
            .collect();
        if commands.len() == 3 {
            break commands;
        }
        assert!(Instant::now() < deadline, "the demo printed {commands:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut replies = Vec::new();
    for command in &commands {
        let (method, url, headers) = parse_curl(command);
        let path = url
            .strip_prefix(&format!("http://{addr}"))
            .unwrap_or_else(|| panic!("{url} is not on {addr}"));
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        replies.push(send(addr, &method, path, &headers, b"").await);
    }
    let (allowed, denied, actual) = (&replies[0], &replies[1], &replies[2]);
    assert_eq!(allowed.status, 204);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(allowed
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("PUT")));
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("access-control-allow-origin"), None);
    assert_eq!(actual.status, 200);
    assert_eq!(
        actual.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        actual.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert!(!actual.body.is_empty());
    demo.wait_for_stderr("CORS request denied");
    assert!(demo.terminate().success(), "SIGTERM drains and exits 0");
}

#[tokio::test]
async fn json_logs_have_a_line_per_denial_and_per_upstream_error() {
    let absent = absent_upstream().await;
    let dir = TempDir::new("cli");
    let config = dir.write(
        "logs.toml",
        &single_route("", APP, "/", &format!("upstream = \"http://{absent}\"")),
    );
    let mut serving = Serving::start(&[
        "--log-format",
        "json",
        "serve",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    let line = serving.wait_for_stderr("gateway listening on");
    let json: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    let addr: SocketAddr = json["message"]
        .as_str()
        .and_then(|m| m.strip_prefix("gateway listening on http://"))
        .and_then(|a| a.parse().ok())
        .expect("address in the message");

    let denied = crate::support::preflight(addr, "/x", "https://evil.example", "PUT", "").await;
    assert_eq!(denied.status, 403);
    let failed = send(addr, "GET", "/x", &[("origin", APP)], b"").await;
    assert_eq!(failed.status, 502);

    let denial: serde_json::Value =
        serde_json::from_str(&serving.wait_for_stderr("CORS request denied"))
            .expect("JSON denial line");
    assert_eq!(denial["reason"], "origin_not_allowed");
    assert_eq!(denial["origin"], "https://evil.example");
    assert_eq!(denial["route"], "/");
    assert_eq!(denial["level"], "WARN");
    let upstream: serde_json::Value =
        serde_json::from_str(&serving.wait_for_stderr("upstream request failed"))
            .expect("JSON upstream line");
    assert_eq!(upstream["reason"], "upstream_unreachable");
    assert_eq!(upstream["upstream"], format!("http://{absent}"));
    assert_eq!(
        upstream["request_id"],
        failed.header("x-request-id").expect("request id")
    );
}

#[test]
fn serve_exits_with_a_clear_error_when_the_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = TempDir::new("cli");
    let path = dir.write("good.toml", &good());
    let output = run(&[
        "serve",
        "--config",
        path.to_str().expect("utf-8 path"),
        "--listen",
        &addr,
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}
