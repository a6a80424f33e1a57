//! Active health checks: one tokio task per target of every pool with
//! `health`, probing `GET <target base><path>` through the gateway's own
//! upstream client and the target's own idle connections (same TLS roots,
//! connect timeout and pool).
//!
//! The tasks belong to one configuration generation: [`HealthCheckers`]
//! aborts them when it is dropped with its generation, that is once a reload
//! has replaced it and the last request that started on it has ended. They
//! hold no reference to the generation, so they cannot keep it alive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderValue, USER_AGENT};
use http::uri::PathAndQuery;
use http::{Request, Uri};
use http_body_util::{BodyExt, Limited};
use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use crate::config::file::Seconds;
use crate::config::{HealthFile, Report};
use crate::proxy::body::LimitedBody;
use crate::proxy::client::{Origin, UpstreamBody, UpstreamClient};
use crate::proxy::pool::TargetState;
use crate::proxy::router::{Router, Target};

/// Defaults of `health`.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_HEALTHY: u32 = 2;
const DEFAULT_UNHEALTHY: u32 = 3;
/// The longest interval accepted, in seconds.
const MAX_INTERVAL_SECS: f64 = 3600.0;
/// A health answer's body is read (so its connection can be reused) up to this size.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A pool's compiled `health` table.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    path: PathAndQuery,
    interval: Duration,
    timeout: Duration,
    healthy: u32,
    unhealthy: u32,
}

impl HealthCheck {
    /// Checks and compiles `health` at `key`.
    pub(crate) fn compile(file: &HealthFile, key: &str, report: &mut Report) -> Option<Self> {
        let before = report.problems.len();
        let field = |name: &str| format!("{key}.{name}");
        let path = match file.path.as_deref() {
            None => {
                report.problem(
                    field("path"),
                    "the health check has no path",
                    "add path = \"/healthz\" (appended to each target's base URL)",
                );
                None
            }
            Some(path) if !path.starts_with('/') => {
                report.problem(
                    field("path"),
                    format!("{path:?} does not start with `/`"),
                    format!("write \"/{}\"", path.trim_start_matches('/')),
                );
                None
            }
            Some(path) => match PathAndQuery::try_from(path) {
                Ok(path) => Some(path),
                Err(error) => {
                    report.problem(
                        field("path"),
                        format!("{path:?} is not a request path: {error}"),
                        "use a plain path such as \"/healthz\"",
                    );
                    None
                }
            },
        };
        let interval = seconds(file.interval, DEFAULT_INTERVAL, &field("interval"), report);
        let timeout = seconds(file.timeout, DEFAULT_TIMEOUT, &field("timeout"), report);
        if let (Some(interval), Some(timeout)) = (interval, timeout) {
            if timeout >= interval {
                report.problem(
                    field("timeout"),
                    format!(
                        "a timeout of {} s is not shorter than the interval of {} s, so checks would overlap",
                        timeout.as_secs_f64(),
                        interval.as_secs_f64()
                    ),
                    "make timeout shorter than interval, e.g. interval = 5, timeout = 1",
                );
            }
        }
        let healthy = count(file.healthy, DEFAULT_HEALTHY, &field("healthy"), report);
        let unhealthy = count(
            file.unhealthy,
            DEFAULT_UNHEALTHY,
            &field("unhealthy"),
            report,
        );
        if report.problems.len() != before {
            return None;
        }
        Some(Self {
            path: path?,
            interval: interval?,
            timeout: timeout?,
            healthy: healthy?,
            unhealthy: unhealthy?,
        })
    }
}

fn seconds(
    value: Option<Seconds>,
    default: Duration,
    key: &str,
    report: &mut Report,
) -> Option<Duration> {
    let Some(value) = value else {
        return Some(default);
    };
    value
        .within(MAX_INTERVAL_SECS)
        .map_err(|problem| {
            report.problem(
                key,
                problem,
                format!(
                    "use a positive number such as {} (the default)",
                    default.as_secs_f64()
                ),
            );
        })
        .ok()
}

fn count(value: Option<i64>, default: u32, key: &str, report: &mut Report) -> Option<u32> {
    match value {
        None => Some(default),
        Some(n @ 1..=100) => u32::try_from(n).ok(),
        Some(n) => {
            report.problem(
                key,
                format!("{n} is not a number of checks between 1 and 100"),
                format!("use a count of at least 1, e.g. {default} (the default)"),
            );
            None
        }
    }
}

/// The health-check tasks of one generation, aborted when it is dropped.
#[derive(Debug, Default)]
pub struct HealthCheckers(Vec<AbortHandle>);

impl HealthCheckers {
    /// Starts a checker for every target of every pool with `health`, once
    /// the generation is put in force. The targets' health gauges are set
    /// here too, not at compile time, so a reload that fails validation
    /// leaves the running pools' gauges alone. Outside a tokio runtime, no
    /// checker is started.
    pub fn start(router: &Router, client: &UpstreamClient) -> Self {
        let pools = router
            .routes()
            .iter()
            .filter_map(|route| match &route.target {
                Target::Upstream(pool) => Some((route, pool)),
                Target::Mock(_) => None,
            });
        for (_, pool) in pools.clone() {
            for target in pool.targets() {
                target.state.publish();
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Self::default();
        };
        let mut tasks = Vec::new();
        for (route, pool) in pools {
            let Some(check) = pool.health() else {
                continue;
            };
            for target in pool.targets() {
                let uri = match target.upstream.uri_for(Some(&check.path)) {
                    Ok(uri) => uri,
                    Err(error) => {
                        tracing::warn!(route = route.path.as_str(), target = target.upstream.as_str(), %error, "cannot build the health check URL; not checking this target");
                        continue;
                    }
                };
                let checker = Checker {
                    client: client.clone(),
                    origin: target.origin(client).clone(),
                    uri,
                    check: check.clone(),
                    state: target.state.clone(),
                    route: route.path.clone(),
                    target: target.upstream.as_str().to_owned(),
                };
                tasks.push(runtime.spawn(checker.run()).abort_handle());
            }
        }
        Self(tasks)
    }

    /// How many checkers run.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for HealthCheckers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

struct Checker {
    client: UpstreamClient,
    origin: Arc<Origin>,
    uri: Uri,
    check: HealthCheck,
    state: Arc<TargetState>,
    route: String,
    target: String,
}

impl Checker {
    async fn run(self) {
        let mut ticks = tokio::time::interval(self.check.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut passed, mut failed) = (0u32, 0u32);
        loop {
            ticks.tick().await;
            if self.probe().await {
                failed = 0;
                passed = passed.saturating_add(1);
                if passed >= self.check.healthy {
                    if self.state.is_unhealthy() {
                        tracing::info!(
                            route = self.route.as_str(),
                            target = self.target.as_str(),
                            "upstream target passed its health checks; back in rotation"
                        );
                        self.state.set_unhealthy(false);
                    }
                    self.state.succeeded();
                }
            } else {
                passed = 0;
                failed = failed.saturating_add(1);
                if failed >= self.check.unhealthy && !self.state.is_unhealthy() {
                    tracing::warn!(
                        route = self.route.as_str(),
                        target = self.target.as_str(),
                        "upstream target failed its health checks; out of rotation"
                    );
                    self.state.set_unhealthy(true);
                }
            }
        }
    }

    /// Whether the target answered 2xx within the timeout.
    async fn probe(&self) -> bool {
        let mut request = Request::new(LimitedBody::empty());
        *request.uri_mut() = self.uri.clone();
        request.headers_mut().insert(
            USER_AGENT,
            HeaderValue::from_static("crossgate-health-check"),
        );
        let exchange = async {
            let (response, connection) = self
                .client
                .send(&self.origin, request, Instant::now())
                .await
                .ok()?;
            let ok = response.status().is_success();
            // Read so the connection can be reused; a body beyond the bound
            // just closes it.
            let body = response.map(|body| UpstreamBody::new(body, connection));
            let _ = Limited::new(body.into_body(), MAX_BODY_BYTES)
                .collect()
                .await;
            Some(ok)
        };
        matches!(
            tokio::time::timeout(self.check.timeout, exchange).await,
            Ok(Some(true))
        )
    }
}
