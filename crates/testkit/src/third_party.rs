//! Third-party CORS servers we did not write, for tests of both crates:
//! express + cors and hono (npm), flask-cors and Starlette (PyPI), and two
//! nginx recipes, each in a correct and a broken configuration.
//!
//! `scripts/third-party-servers.sh` (run by `scripts/test.sh`) installs the
//! npm packages into `target/third-party/node` and the PyPI ones into the
//! venv `target/third-party/venv`, at the versions pinned in
//! crates/testkit/third_party/ beside the servers' sources.
//! [`ThirdPartyServer::start`] runs one on an ephemeral loopback port, waits
//! until it accepts connections and kills it on drop.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The trusted origin every correct configuration allows.
pub const TRUSTED_ORIGIN: &str = "https://app.example.com";

/// How long a server may take to accept connections (Python imports are slow on a busy machine).
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A server implementation and the recipe it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// express 5 + cors 2.8 (npm).
    ExpressCors,
    /// hono 4 `hono/cors` on @hono/node-server (npm).
    Hono,
    /// Flask + flask-cors 6 (PyPI).
    FlaskCors,
    /// Starlette's CORSMiddleware on uvicorn (PyPI).
    Starlette,
    /// nginx: an allow-list in a `map`.
    NginxMap,
    /// nginx: the `add_header Access-Control-Allow-Origin` one-liner.
    NginxOneLiner,
}

/// Correct or deliberately broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// What a careful deployment does.
    Correct,
    /// A common mistake (each fixture file says which).
    Broken,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Self::Correct => "correct",
            Self::Broken => "broken",
        }
    }
}

impl Implementation {
    /// Every implementation.
    pub const ALL: [Implementation; 6] = [
        Self::ExpressCors,
        Self::Hono,
        Self::FlaskCors,
        Self::Starlette,
        Self::NginxMap,
        Self::NginxOneLiner,
    ];

    /// A short name for test output.
    pub fn name(self) -> &'static str {
        match self {
            Self::ExpressCors => "express+cors",
            Self::Hono => "hono",
            Self::FlaskCors => "flask-cors",
            Self::Starlette => "starlette",
            Self::NginxMap => "nginx-map",
            Self::NginxOneLiner => "nginx-one-liner",
        }
    }
}

/// A running third-party server; killed (and its files removed) on drop.
pub struct ThirdPartyServer {
    child: Child,
    addr: SocketAddr,
    scratch: Option<PathBuf>,
    /// What runs.
    pub implementation: Implementation,
    /// Which configuration.
    pub config: Config,
}

fn workspace_root() -> PathBuf {
    // This crate lives at crates/testkit.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("third_party")
}

fn installed(path: &Path) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/third-party-servers.sh (scripts/test.sh does) to install the third-party CORS servers",
        path.display()
    );
    path.to_owned()
}

impl ThirdPartyServer {
    /// Starts `implementation` with `config` on 127.0.0.1 and waits until it accepts connections.
    pub fn start(implementation: Implementation, config: Config) -> ThirdPartyServer {
        Self::start_trusting(implementation, config, TRUSTED_ORIGIN)
    }

    /// [`start`](Self::start), with `trusted` in place of [`TRUSTED_ORIGIN`]
    /// in the correct configurations (a real browser's page lives on a
    /// loopback origin); the broken ones keep their own origin patterns.
    pub fn start_trusting(
        implementation: Implementation,
        config: Config,
        trusted: &str,
    ) -> ThirdPartyServer {
        let port = free_port();
        let root = workspace_root().join("target/third-party");
        let mut scratch = None;
        let mut command = match implementation {
            Implementation::ExpressCors | Implementation::Hono => {
                let script = match implementation {
                    Implementation::ExpressCors => "express_cors.cjs",
                    _ => "hono_cors.cjs",
                };
                let mut c = Command::new("node");
                c.env("NODE_PATH", installed(&root.join("node/node_modules")))
                    .arg(fixtures().join("node").join(script));
                c
            }
            Implementation::FlaskCors | Implementation::Starlette => {
                let script = match implementation {
                    Implementation::FlaskCors => "flask_cors_app.py",
                    _ => "starlette_app.py",
                };
                let mut c = Command::new(installed(&root.join("venv/bin/python")));
                c.arg(fixtures().join("python").join(script));
                c
            }
            Implementation::NginxMap | Implementation::NginxOneLiner => {
                let recipe = match implementation {
                    Implementation::NginxMap => "map-allowlist",
                    _ => "one-liner",
                };
                let dir = nginx_prefix(recipe, config, port, trusted);
                let mut c = Command::new(nginx_binary());
                c.arg("-p").arg(&dir).arg("-c").arg(dir.join("nginx.conf"));
                scratch = Some(dir);
                c
            }
        };
        if !matches!(
            implementation,
            Implementation::NginxMap | Implementation::NginxOneLiner
        ) {
            command
                .arg(config.name())
                .arg(port.to_string())
                .arg(trusted);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", implementation.name()));
        let mut server = ThirdPartyServer {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            scratch,
            implementation,
            config,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < READY_WITHIN {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited early: {status}", self.implementation.name());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} did not accept connections on {} within {READY_WITHIN:?}",
            self.implementation.name(),
            self.addr
        );
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`; every fixture serves `/api`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ThirdPartyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is not installed (Debian package nginx)")
}

/// A prefix directory of nginx's own (config, pid, logs, temp dirs) so that
/// it runs unprivileged, in the foreground, without touching /etc/nginx or /var.
fn nginx_prefix(recipe: &str, config: Config, port: u16, trusted: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "crossgate-nginx-{recipe}-{}-{port}-{}",
        config.name(),
        std::process::id()
    ));
    std::fs::create_dir_all(dir.join("logs")).expect("nginx prefix");
    let server = std::fs::read_to_string(
        fixtures()
            .join("nginx")
            .join(format!("{recipe}.{}.conf", config.name())),
    )
    .expect("nginx recipe")
    .replace("@PORT@", &port.to_string())
    .replace(
        &format!("~^{}$", nginx_literal(TRUSTED_ORIGIN)),
        &format!("~^{}$", nginx_literal(trusted)),
    );
    let temp = |name: &str| dir.join(name).display().to_string();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\nerror_log {log} warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {cb};\n    proxy_temp_path {pt};\n    \
         fastcgi_temp_path {ft};\n    uwsgi_temp_path {ut};\n    scgi_temp_path {st};\n{server}\n}}\n",
        pid = temp("nginx.pid"),
        log = temp("logs/error.log"),
        cb = temp("client_body"),
        pt = temp("proxy"),
        ft = temp("fastcgi"),
        ut = temp("uwsgi"),
        st = temp("scgi"),
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    dir
}

/// `origin` as an nginx (PCRE) regex matching exactly it.
fn nginx_literal(origin: &str) -> String {
    origin
        .chars()
        .flat_map(|c| {
            let escape = !(c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '-'));
            escape.then_some('\\').into_iter().chain([c])
        })
        .collect()
}
