//! `crossgate serve`: load, bind, wire the admin listener and reloads, serve,
//! and drain on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::ConfigSource;
use crate::ops::admin::{self, AdminState, Readiness};
use crate::ops::denials::DenialLog;
use crate::ops::metrics::Metrics;
use crate::server::generation::{Gateway, LoadError};
use crate::server::listener::{Drain, Server};
use crate::server::reload::{self, ReloadHistory, ReloadOptions};

/// What `crossgate serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration file; without it the built-in demo runs.
    pub config: Option<PathBuf>,
    /// Listen on this address instead of the file's `server.listen`.
    pub listen: Option<SocketAddr>,
}

/// Runs the gateway until a termination signal; 1 when it cannot start.
pub fn run(args: ServeOptions) -> ExitCode {
    let tokio_runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(tokio_runtime) => tokio_runtime,
        Err(error) => {
            eprintln!("crossgate: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    tokio_runtime.block_on(serve(args))
}

async fn serve(args: ServeOptions) -> ExitCode {
    let source = args.config.map_or(ConfigSource::Demo, ConfigSource::File);
    let metrics = Arc::new(Metrics::new());
    let denials = Arc::new(DenialLog::new(DenialLog::DEFAULT_CAPACITY));
    let gateway = match Gateway::load(
        source.clone(),
        args.listen,
        metrics.clone(),
        denials.clone(),
    ) {
        Ok(gateway) => Arc::new(gateway),
        Err(LoadError::Invalid(problems)) => {
            eprintln!("{problems}");
            eprintln!("crossgate: refusing to start with an invalid configuration");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("crossgate: {error}");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(crate::ops::metrics::summarize_suppressed(metrics.clone()));
    let (settings, summary) = {
        let current = gateway.current();
        (current.config.settings.clone(), current.config.summary())
    };
    let server = match Server::bind(gateway.clone()).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("crossgate: cannot listen on {}: {error}", settings.listen);
            return ExitCode::FAILURE;
        }
    };
    let readiness = Readiness::new();
    let reloads = Arc::new(ReloadHistory::new());
    let admin_state = AdminState {
        metrics: metrics.clone(),
        denials: denials.clone(),
        readiness: readiness.clone(),
        reloads: reloads.clone(),
        series: Arc::default(),
        token: settings.admin_token.clone(),
        connection_deadlines: settings.connection_deadlines(),
    };
    let (admin_stop, admin_task) = match settings.admin {
        None => (None, None),
        Some(addr) => match start_admin(addr, admin_state).await {
            Ok((stop, task)) => (Some(stop), Some(task)),
            Err(error) => {
                eprintln!("crossgate: cannot listen on {addr} (admin): {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    let reload_gateway = gateway.clone();
    let _reloads = match reload::spawn(
        ReloadOptions::new(source.path().map(Into::into)),
        metrics.clone(),
        reloads,
        move || reload_gateway.reload(),
    ) {
        Ok(task) => task,
        Err(error) => {
            eprintln!("crossgate: cannot watch for reloads: {error}");
            return ExitCode::FAILURE;
        }
    };

    tracing::info!("{summary}");
    tracing::info!(
        "gateway listening on {}://{}",
        server.scheme(),
        server.local_addr()
    );
    if source == ConfigSource::Demo {
        println!("{}", crate::config::demo::instructions(server.local_addr()));
    }
    readiness.set_ready();

    let draining = readiness.clone();
    let drain = server
        .run(async move {
            termination().await;
            draining.set_draining();
        })
        .await;
    if let Some(stop) = admin_stop {
        // The admin listener reports "draining" until the drain is over. A
        // failed send means the admin task already ended: nothing to stop.
        let _ = stop.send(());
    }
    if let Some(task) = admin_task {
        drop(task.await);
    }
    match drain {
        Drain::Complete => ExitCode::SUCCESS,
        Drain::TimedOut => ExitCode::FAILURE,
    }
}

async fn start_admin(
    addr: SocketAddr,
    state: AdminState,
) -> std::io::Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(admin::serve(listener, state, async move {
        drop(stopped.await);
    }));
    tracing::info!("admin listening on http://{local}");
    Ok((stop, task))
}

/// Completes on SIGTERM or SIGINT (Ctrl-C). The gateway is Unix-only (reloads
/// listen for SIGHUP too), so there is no other branch.
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the gateway");
            drop(tokio::signal::ctrl_c().await);
        }
    }
}
