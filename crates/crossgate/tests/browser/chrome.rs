//! One headless Chromium, driven over WebDriver by a chromedriver child process.
//!
//! Every failure here panics with what to do about it: the suite must fail
//! loudly when the browser cannot start, never skip.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::servers::free_port;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str =
    "install them with `apt-get update && apt-get install -y chromium chromium-driver` \
     (the README's test command does this on a fresh machine)";

/// The browser session plus the processes and profile it lives on; dropping
/// it kills chromedriver (which takes Chromium with it) and removes the profile.
pub struct Browser {
    pub client: Client,
    _driver: DriverProcess,
    _profile: ProfileDir,
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium in which every
    /// `*.test` host resolves to 127.0.0.1, so patterns such as
    /// `http://*.example.test:PORT` can be exercised on loopback.
    pub async fn start() -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: the browser suite needs Debian's Chromium and ChromeDriver; {INSTALL_HINT}"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            // Its own process group, which the Chromium it starts joins, so
            // that both can be stopped together even when a test panics.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}; {INSTALL_HINT}"));
        let driver = DriverProcess(driver);
        wait_for_port(port, Duration::from_secs(20));

        let profile = std::env::temp_dir().join(format!(
            "crossgate-browser-suite-{}-{}",
            std::process::id(),
            port
        ));
        std::fs::create_dir_all(&profile).unwrap_or_else(|e| {
            panic!(
                "cannot create a Chromium profile at {}: {e}",
                profile.display()
            )
        });
        let profile = ProfileDir(profile);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": chromium_args(&profile.0) }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!("chromedriver could not start Chromium ({CHROMIUM}): {e}; {INSTALL_HINT}")
            });
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Loads an empty document from `origin`, so scripts run there with that origin.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("Chromium could not load {url}: {e}"));
    }

    /// Runs an async script (its last argument is the completion callback)
    /// and returns what it passed to the callback.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed in Chromium: {e}\n{script}"))
    }

    /// Ends the WebDriver session, which makes chromedriver quit Chromium;
    /// dropping the rest then stops chromedriver and removes the profile.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Stops chromedriver and the Chromium it started on every exit path,
/// panics included: Chromium outlives a killed chromedriver otherwise.
struct DriverProcess(Child);

impl Drop for DriverProcess {
    fn drop(&mut self) {
        // The group id is chromedriver's pid (`process_group(0)`).
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the throwaway Chromium profile on every exit path.
struct ProfileDir(PathBuf);

impl Drop for ProfileDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chromium_args(profile: &std::path::Path) -> Vec<String> {
    vec![
        "--headless=new".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        // Without these, Chromium dials Google services, which this closed
        // network refuses, and the refused connections disturb the test's.
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        // Keep plain-http test origins plain http: no automatic https upgrade.
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable".into(),
        format!("--user-data-dir={}", profile.display()),
        // Every *.test host is this machine, so subdomain patterns are testable.
        "--host-resolver-rules=MAP *.test 127.0.0.1".into(),
    ]
}

fn wait_for_port(port: u16, limit: Duration) {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("chromedriver did not listen on {address} within {limit:?}; {INSTALL_HINT}");
}
