//! Harness of the `ops_*` integration tests: the real `crossgate` binary
//! started on ephemeral loopback ports (signals need a process of its own),
//! its config, and readers for `/metrics`. The client, the reply and the test
//! upstream are the ones at the crate root.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::{crossgate_binary, try_send, Reply, TempDir, TestUpstream, PATIENCE};

pub const ALLOWED_ORIGIN: &str = "https://app.example.com";
pub const DENIED_ORIGIN: &str = "https://evil.example.net";

/// A gateway config with one proxied route (`/api/` to `upstream`), one mock
/// route (`/status` answering `mock_body`), both under policy `web`, and an
/// admin listener. Both listeners use port 0.
pub fn config(upstream: SocketAddr, mock_body: &str) -> String {
    let mock = format!(
        r#"mock = {{ status = 200, headers = {{ "content-type" = "text/plain" }}, body = "{mock_body}" }}"#
    );
    Config::server(&[r#"admin = "127.0.0.1:0""#, "shutdown_timeout = 10"])
        .policy(
            "web",
            &[ALLOWED_ORIGIN],
            &[
                r#"methods = ["PUT"]"#,
                r#"request_headers = ["content-type"]"#,
            ],
        )
        .proxy("/api/", &format!("http://{upstream}"), "web", &[])
        .route("/status", &[&mock, r#"policy = "web""#])
        .render()
}

/// The crossgate binary's output for `args`, with nothing on stdin.
pub fn run(args: &[&str]) -> Output {
    Command::new(crossgate_binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run crossgate")
}

/// `crossgate validate --config path`.
pub fn validate(path: &Path) -> Output {
    Command::new(crossgate_binary())
        .arg("validate")
        .arg("--config")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run crossgate validate")
}

/// Runs `crossgate validate --config path`, asserts that it accepts the
/// file and returns what it printed on stdout.
pub fn validate_accepts(path: &Path) -> String {
    let output = validate(path);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} refused:\n{stdout}{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The crossgate binary with `RUST_LOG=info`, nothing on stdin, `stdout` as
/// given and stderr piped: a process whose log lines the test reads.
pub fn logging_command(stdout: Stdio) -> Command {
    let mut command = Command::new(crossgate_binary());
    command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    command
}

/// The lines of `stream` as a thread reads them, until it ends.
pub fn collect_lines(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().expect("lines lock").push(line);
        }
    });
    lines
}

/// The counter of configuration reloads, labelled by `result`.
const RELOADS: &str = "crossgate_config_reloads_total";

/// The `crossgate serve` process under test. Killed on drop.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
    /// Holds the config file; removed when the gateway is dropped.
    _dir: TempDir,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    /// Writes `config_text` to a fresh temp dir and runs `crossgate serve` on
    /// it with JSON logs, returning once both listeners are bound.
    pub async fn start(config_text: &str) -> Gateway {
        Gateway::start_with_log_format(config_text, "json").await
    }

    /// A fresh [`TestUpstream`] and the gateway of [`config`] in front of
    /// it, its `/status` answering `mock_body`.
    pub async fn start_with_upstream(mock_body: &str) -> (TestUpstream, Gateway) {
        let upstream = TestUpstream::start().await;
        let gateway = Gateway::start(&config(upstream.addr, mock_body)).await;
        (upstream, gateway)
    }

    /// [`Gateway::start`] with `--log-format log_format` (`text` or `json`).
    pub async fn start_with_log_format(config_text: &str, log_format: &str) -> Gateway {
        let dir = TempDir::new("ops");
        let config_path = dir.write("crossgate.toml", config_text);
        Gateway::start_at(dir, config_path, log_format).await
    }

    /// Runs `crossgate --log-format log_format serve --config config_path`, a
    /// file the test laid out in `dir` (removed when the gateway is dropped).
    pub async fn start_at(dir: TempDir, config_path: PathBuf, log_format: &str) -> Gateway {
        let mut child = logging_command(Stdio::null())
            .args(["--log-format", log_format, "serve", "--config"])
            .arg(&config_path)
            .spawn()
            .expect("spawn crossgate");
        let logs = collect_lines(child.stderr.take().expect("piped stderr"));
        let mut gateway = Gateway {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            config_path,
            _dir: dir,
            logs,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let gateway_addr = gateway.logged_addr("gateway listening on ");
            let admin_addr = gateway.logged_addr("admin listening on ");
            if let (Some(addr), Some(admin)) = (gateway_addr, admin_addr) {
                gateway.addr = addr;
                gateway.admin = admin;
                return gateway;
            }
            if let Ok(Some(status)) = gateway.child.try_wait() {
                panic!(
                    "crossgate exited with {status} on start:\n{}",
                    gateway.logs().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "crossgate did not report its listeners:\n{}",
                gateway.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every log line the gateway wrote to stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("log lock").clone()
    }

    /// Whether some log line so far contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logs().iter().any(|line| line.contains(text))
    }

    /// Waits until a log line contains `text`: the gateway counts an event
    /// before it logs it, so a test that waited for a counter may be ahead
    /// of the line.
    pub async fn wait_logged(&self, text: &str) {
        crate::eventually(&format!("a log line with {text:?}"), || self.logged(text)).await;
    }

    /// The address in `PREFIX http://ADDR`, from a JSON line's message or a
    /// text line.
    fn logged_addr(&self, prefix: &str) -> Option<SocketAddr> {
        self.logs().iter().find_map(|line| {
            let (_, rest) = line.split_once(prefix)?;
            let addr = rest.split("://").nth(1)?;
            let end = addr.find(['"', ' ']).unwrap_or(addr.len());
            addr[..end].parse().ok()
        })
    }

    /// Sends a signal (`"HUP"`, `"TERM"`) to the gateway process.
    pub fn signal(&self, name: &str) {
        // The shell's built-in kill: no dependency on a procps binary.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -s {name} {}", self.child.id())])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Replaces the config file's content in place, as an editor would.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config_path, text).expect("rewrite config");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the process to exit: its status, and how
    /// long after the signal it came.
    pub async fn terminate(&mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        self.signal("TERM");
        let status = self
            .wait_exit(PATIENCE)
            .await
            .expect("the gateway exits after SIGTERM");
        (status, started.elapsed())
    }

    /// Waits for the process to exit, up to `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Sends a GET of `path` (a `/api/slow/` one) from [`ALLOWED_ORIGIN`]
    /// through this gateway and returns once `upstream` is answering it, as
    /// [`TestUpstream::request_in_flight`] does.
    pub async fn allowed_request_in_flight(
        &self,
        upstream: &TestUpstream,
        path: &str,
    ) -> JoinHandle<Result<Reply, String>> {
        upstream
            .request_in_flight(self.addr, path, &[("origin", ALLOWED_ORIGIN)])
            .await
    }

    /// A GET of `path` on the admin listener; no answer fails the test.
    pub async fn admin_get(&self, path: &str) -> Reply {
        get(self.admin, path, &[])
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the admin listener: {e}"))
    }

    /// The body `/status` (the mock route of [`config`]) answers now.
    pub async fn status_body(&self) -> String {
        get(self.addr, "/status", &[])
            .await
            .expect("GET /status")
            .text()
    }

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let reply = self.admin_get("/metrics").await;
        assert_eq!(reply.status, 200, "/metrics status");
        reply.text()
    }

    /// One sample of `/metrics`; 0 when the series is absent (counters that
    /// never moved are not all rendered).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        sample(&self.metrics().await, name, labels).unwrap_or(0.0)
    }

    /// Polls `/metrics` until the sample reaches `at_least`; returns its value.
    pub async fn wait_metric(&self, name: &str, labels: &[(&str, &str)], at_least: f64) -> f64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.metric(name, labels).await;
            if value >= at_least {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{name}{labels:?} stayed at {value}, expected >= {at_least}\nlogs:\n{}",
                self.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls `/status` (the mock route of [`config`]) until it answers
    /// `body`; returns how many requests that took.
    pub async fn wait_for_status(&self, body: &str) -> usize {
        let deadline = Instant::now() + PATIENCE;
        let mut requests = 0;
        loop {
            let reply = get(self.addr, "/status", &[]).await.expect("GET /status");
            requests += 1;
            if reply.text() == body {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "/status still answers {:?}, expected {body:?}\nlogs:\n{}",
                reply.text(),
                self.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The count of reloads that ended in `result` (`ok` or `failed`).
    pub async fn reloads(&self, result: &str) -> f64 {
        self.metric(RELOADS, &[("result", result)]).await
    }

    /// Polls until `at_least` reloads ended in `result`; returns the count.
    pub async fn wait_reloads(&self, result: &str, at_least: f64) -> f64 {
        self.wait_metric(RELOADS, &[("result", result)], at_least)
            .await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds `name{labels}` (exactly these labels, any order) in an exposition.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, label_text) = match series.split_once('{') {
                Some((series_name, rest)) => (series_name, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let found: Vec<(&str, &str)> = label_text
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once("=\"")?;
                    Some((key, value.trim_end_matches('"')))
                })
                .collect();
            let same =
                found.len() == labels.len() && labels.iter().all(|label| found.contains(label));
            if same {
                value.parse().ok()
            } else {
                None
            }
        })
}

/// A GET on a fresh connection; failing to get an answer is an `Err`.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
    try_send(addr, "GET", path, headers, b"").await
}
