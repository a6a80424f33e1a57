//! One WebDriver abstraction over fantoccini for Chromium, Firefox and
//! WebKit, started as `/work/shared/notes/browsers.md` and docs/browsers.md
//! describe: fresh profile and `HOME`/`TMPDIR`/`XDG_*` per engine, the proxy
//! pointed at the `*.test` proxy ([`super::test_hosts`], which sends every
//! `*.test` host to 127.0.0.1 and refuses the rest) or a test's own, so
//! nothing leaves the machine,
//! and a timeout on New Session (WebKit hangs there without a display).
//! Every session accepts the testkit's untrusted certificate
//! (`acceptInsecureCerts`) for the WebSocket-over-HTTPS page. A
//! missing browser panics with the install command: the suite never skips.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crossgate_cors::browser::Engine;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crossgate_testkit::free_port;

use super::servers::PAGE_TITLE;

const INSTALL: &str = "run scripts/test.sh as root once, or: apt-get install -y chromium chromium-driver firefox-esr webkit2gtk-driver xvfb && cargo install geckodriver --locked";
const MINIBROWSER: &str = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

/// A running browser session and everything it lives on; dropping it stops
/// the driver's process group (the browser included) and removes the folders.
pub struct EngineBrowser {
    pub engine: Engine,
    pub client: Client,
    _processes: Vec<Group>,
    _home: Home,
}

fn geckodriver() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    [
        home.join(".cargo/bin/geckodriver"),
        PathBuf::from("/usr/local/bin/geckodriver"),
        PathBuf::from("/usr/bin/geckodriver"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("geckodriver is missing: the browser suite runs Firefox; {INSTALL}"))
}

fn require(path: &str, what: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the browser suite runs {what}; {INSTALL}"
    );
}

impl EngineBrowser {
    /// Starts `engine`; `test_proxy` is the port of the HTTP proxy every non-loopback request goes to ([`super::test_hosts`]'s, or a test's own).
    pub async fn start(engine: Engine, test_proxy: u16) -> EngineBrowser {
        let home = Home::new(engine);
        let port = free_port();
        let mut processes = Vec::new();
        let mut display_env = None;
        let (program, args, capabilities): (PathBuf, Vec<String>, Value) = match engine {
            Engine::Chromium => {
                require("/usr/bin/chromium", "Chromium");
                require("/usr/bin/chromedriver", "Chromium");
                (
                    PathBuf::from("/usr/bin/chromedriver"),
                    vec![format!("--port={port}"), "--allowed-ips=127.0.0.1".into()],
                    json!({"browserName": "chrome", "acceptInsecureCerts": true, "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                        "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--disable-quic", format!("--proxy-server=http://127.0.0.1:{test_proxy}"),
                        // Plain-http test origins stay plain http.
                        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
                        format!("--user-data-dir={}", home.0.join("profile").display())]}}),
                )
            }
            Engine::Firefox => {
                require("/usr/bin/firefox-esr", "Firefox ESR");
                (
                    geckodriver(),
                    vec![
                        "--port".into(),
                        port.to_string(),
                        "--binary".into(),
                        "/usr/bin/firefox-esr".into(),
                    ],
                    json!({"browserName": "firefox", "acceptInsecureCerts": true, "moz:firefoxOptions": {"binary": "/usr/bin/firefox-esr", "args": ["-headless"], "prefs": {
                        "network.proxy.type": 1, "network.proxy.http": "127.0.0.1", "network.proxy.http_port": test_proxy,
                        "dom.security.https_first": false,
                        "network.proxy.ssl": "127.0.0.1", "network.proxy.ssl_port": 9,
                        "app.update.enabled": false, "browser.shell.checkDefaultBrowser": false}}}),
                )
            }
            Engine::WebKit => {
                require("/usr/bin/WebKitWebDriver", "WebKit");
                require(MINIBROWSER, "WebKit");
                require("/usr/bin/Xvfb", "WebKit (under Xvfb)");
                let display = free_display();
                processes.push(Group::spawn(
                    Command::new("/usr/bin/Xvfb").args([
                        &format!(":{display}"),
                        "-screen",
                        "0",
                        "1280x1024x24",
                        "-nolisten",
                        "tcp",
                    ]),
                    &home,
                ));
                for _ in 0..100 {
                    if Path::new(&format!("/tmp/.X11-unix/X{display}")).exists() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                display_env = Some(format!(":{display}"));
                (
                    PathBuf::from("/usr/bin/WebKitWebDriver"),
                    vec![format!("--port={port}")],
                    json!({"browserName": "MiniBrowser", "acceptInsecureCerts": true, "webkitgtk:browserOptions": {"binary": MINIBROWSER, "args": [
                        "--automation", format!("--proxy=http://127.0.0.1:{test_proxy}"), "--ignore-host=localhost", "--ignore-host=127.0.0.1", "--ignore-host=::1"]}}),
                )
            }
            Engine::Spec => panic!("the standard is not a browser"),
        };
        let mut command = Command::new(&program);
        command.args(&args);
        if let Some(display) = &display_env {
            command.env("DISPLAY", display);
        }
        processes.push(Group::spawn(&mut command, &home));
        wait_for_port(port, &program).await;
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!("capabilities are an object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let connect = builder.connect(&url);
        let client = tokio::time::timeout(Duration::from_secs(90), connect)
            .await
            .unwrap_or_else(|_| panic!("{engine:?}: New Session took over 90 s (for WebKit: is Xvfb running?); {INSTALL}"))
            .unwrap_or_else(|e| panic!("{engine:?}: {} could not start the browser: {e}; {INSTALL}", program.display()));
        // The tables run many fetches in one script: give it four minutes.
        client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(Duration::from_secs(240)),
                None,
                None,
            ))
            .await
            .unwrap_or_else(|e| panic!("{engine:?}: cannot set the script timeout: {e}"));
        EngineBrowser {
            engine,
            client,
            _processes: processes,
            _home: home,
        }
    }

    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{:?} could not load {url}: {e}", self.engine));
    }

    /// Loads the page server's document from `origin`, and makes sure it is
    /// that document on that origin: an error page (say, a `*.test` host
    /// that did not resolve) would otherwise run the scripts somewhere else.
    pub async fn show_page(&self, origin: &str) {
        self.open(&format!("{origin}/")).await;
        let loaded = self
            .run(
                "arguments[0]([location.origin, document.title])",
                Vec::new(),
            )
            .await;
        assert_eq!(
            loaded,
            json!([origin, PAGE_TITLE]),
            "{:?} did not load the suite's page from {origin}",
            self.engine
        );
    }

    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed in {:?}: {e}", self.engine))
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

fn free_display() -> u32 {
    (100..400)
        .map(|n| n + std::process::id() % 300)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .unwrap_or_else(|| panic!("no free X display number for Xvfb"))
}

async fn wait_for_port(port: u16, program: &Path) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} did not listen on 127.0.0.1:{port} within 20 s; {INSTALL}",
        program.display()
    );
}

/// A child in its own process group, stopped with everything it started.
struct Group(Child);

impl Group {
    fn spawn(command: &mut Command, home: &Home) -> Group {
        let dir = home.0.display().to_string();
        command
            .env("HOME", &dir)
            .env("TMPDIR", &dir)
            .env("XDG_CONFIG_HOME", format!("{dir}/config"))
            .env("XDG_CACHE_HOME", format!("{dir}/cache"))
            .env("XDG_DATA_HOME", format!("{dir}/data"))
            .env("XDG_RUNTIME_DIR", &dir)
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let program = command.get_program().to_string_lossy().into_owned();
        Group(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {program}: {e}; {INSTALL}")),
        )
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
        // The browser's own processes may outlive the driver; they must be
        // gone before the profile folder is removed, or they write it anew.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
    }
}

/// The engine's own `HOME`, `TMPDIR` and `XDG_*`, removed afterwards.
struct Home(PathBuf);

impl Home {
    fn new(engine: Engine) -> Home {
        let dir = std::env::temp_dir().join(format!(
            "crossgate-{}-{}-{}",
            engine.name(),
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        Home(dir)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
