//! What the workspace's integration tests share (a dev-dependency only,
//! never published). At the root: the gateway tests' harness, which the
//! gateway binary knows as `support` (an in-process gateway, test
//! upstreams, a plain HTTP client, temp dirs and fixtures). In modules:
//! - [`config`]: the config files many tests share;
//! - [`process`]: the real `crossgate serve` binary, for signals, logs and
//!   the admin listener;
//! - [`probe_server`]: small servers answering with a closure, for `check`
//!   and `audit`;
//! - [`third_party`]: CORS servers we did not write (npm, PyPI, nginx);
//! - [`scenarios`]: the browser suite's gateway table, whose row names the
//!   seed documents cite.

pub mod client;
pub mod config;
pub mod gateway;
pub mod h2_frames;
pub mod probe_server;
pub mod process;
pub mod scenarios;
pub mod third_party;
pub mod upstream;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use client::*;
pub use gateway::TestGateway;
pub use upstream::{absent_upstream, closing_upstream, serve_each, Seen, TestUpstream};

/// Everything a test waits for is bounded by this. Longer than the
/// `shutdown_timeout = 10` of the `ops_*` tests' config, so waiting for a
/// drain to end never races its own timeout.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "crossgate-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The path of a file under crates/testkit/fixtures: the TLS certificates
/// (`localhost` signed by `ca.pem`, `other-localhost` by `other-ca.pem`), a
/// recorded HAR and the SARIF schema.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A loopback port no one listens on right now. Whatever binds it a moment
/// later may find another process took it in between: its readiness wait
/// then fails loudly, never a test pass.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The repository's examples/ directory.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The `crossgate` binary cargo built for this test run. A library cannot
/// read `CARGO_BIN_EXE_crossgate` (cargo sets it for integration tests
/// only), so it is found where cargo puts it: next to the `deps/` directory
/// holding the running test executable.
pub fn crossgate_binary() -> PathBuf {
    let test_executable = std::env::current_exe().expect("the test executable's path");
    let binary = test_executable
        .parent()
        .and_then(Path::parent)
        .map(|profile_dir| profile_dir.join(format!("crossgate{}", std::env::consts::EXE_SUFFIX)))
        .expect("the test executable lives in target/<profile>/deps");
    assert!(
        binary.exists(),
        "{} is missing: run the test with `cargo test -p crossgate`, which builds it",
        binary.display()
    );
    binary
}

/// Polls every 10 ms until a connection to `addr` is refused: its listener
/// has closed. Fails after [`PATIENCE`].
pub async fn listener_closed(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `condition` every 10 ms until it holds, failing after [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
