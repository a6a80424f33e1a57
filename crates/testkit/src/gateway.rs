//! A gateway running in this process on an ephemeral port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossgate::{ConfigSource, DenialLog, Drain, Gateway, Metrics, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{send, Reply, TempDir};

/// A gateway running in this process on an ephemeral port.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    pub metrics: Arc<Metrics>,
    pub config_path: PathBuf,
    /// Holds the config file written by [`TestGateway::start`]; removed
    /// when the gateway is dropped.
    _dir: Option<TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Drain>>,
}

impl TestGateway {
    /// Writes `config` to a temp file and serves it on 127.0.0.1:0.
    pub async fn start(config: &str) -> TestGateway {
        let dir = TempDir::new("gateway");
        let config_path = dir.write("crossgate.toml", config);
        Self::serve(config_path, Some(dir)).await
    }

    /// Serves the configuration file at `path` (an example, in place so its
    /// relative paths hold) on 127.0.0.1:0.
    pub async fn start_file(path: &Path) -> TestGateway {
        Self::serve(path.to_path_buf(), None).await
    }

    async fn serve(config_path: PathBuf, dir: Option<TempDir>) -> TestGateway {
        let metrics = Arc::new(Metrics::new());
        let gateway = Gateway::load(
            ConfigSource::File(config_path.clone()),
            Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            metrics.clone(),
            Arc::new(DenialLog::new(DenialLog::DEFAULT_CAPACITY)),
        )
        .unwrap_or_else(|e| panic!("{} must load:\n{e}", config_path.display()));
        let gateway = Arc::new(gateway);
        let server = Server::bind(gateway.clone()).await.expect("bind gateway");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestGateway {
            addr,
            gateway,
            metrics,
            config_path,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Sends one request to this gateway on a fresh connection; failing to
    /// get an answer fails the test.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        send(self.addr, method, path, headers, body).await
    }

    /// A GET without a body, as [`TestGateway::send`].
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, b"").await
    }

    /// Rewrites the config file and reloads it.
    pub fn reload_with(&self, config: &str) -> Result<(), crossgate::LoadError> {
        std::fs::write(&self.config_path, config).expect("rewrite config");
        self.gateway.reload()
    }

    /// Starts shutting down and returns the handle of the draining server.
    pub fn begin_shutdown(&mut self) -> JoinHandle<Drain> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("server task")
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
