//! What the `check` and `audit` command-line tests share: the probe's small
//! servers that each answer with a closure, an example gateway, and the
//! binary itself.
//! (The library-level tests of check and audit live in crates/probe/tests.)
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossgate::ConfigSource;
use crossgate::DenialLog;
use crossgate::Gateway;
use crossgate::Metrics;
use crossgate::Server;
use tokio::sync::oneshot;

// The servers that answer with a closure are the probe's own test servers.
#[path = "../../../probe/tests/probe/support.rs"]
mod test_server;
pub use test_server::*;

/// The repository's examples/ directory.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A crossgate gateway serving the configuration file `path` on 127.0.0.1:0.
pub struct ExampleGateway {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl ExampleGateway {
    pub async fn start(path: &Path) -> ExampleGateway {
        let gateway = Gateway::load(
            ConfigSource::File(path.to_path_buf()),
            Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            Arc::new(Metrics::new()),
            Arc::new(DenialLog::new(DenialLog::DEFAULT_CAPACITY)),
        )
        .unwrap_or_else(|e| panic!("{} must load:\n{e}", path.display()));
        let server = Server::bind(Arc::new(gateway)).await.expect("bind gateway");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        ExampleGateway { addr, _stop: stop }
    }
}

/// The crossgate binary's output and exit code for `args`.
pub async fn crossgate(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    // Run off the async threads so the test's servers keep answering.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_crossgate"))
            .args(&args)
            .output()
            .expect("run crossgate")
    })
    .await
    .expect("join crossgate");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
