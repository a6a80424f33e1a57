//! Prometheus metrics for the gateway.
//!
//! The request path only ever touches atomics through a [`RouteMetrics`] handle
//! that the gateway obtains once per route at config load. Handles are keyed by
//! the route path in a registry that outlives any one config, so a reload that
//! keeps a path keeps its counters, and requests still running on the old
//! config keep counting into the same series. The registry's lock is taken only
//! at config load and when `/metrics` is scraped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossgate_cors::Denial;
use http::StatusCode;

mod exposition;

use crate::ops::log_limit::RouteLogBudget;
use crate::ops::reasons::{reason_index, DIFFERENCE_REASON_COUNT, REASON_COUNT, UPSTREAM_ERRORS};
use crate::proxy::upgrade::Handshake;

/// Label value for requests that matched no route. Route paths start with `/`,
/// so it cannot collide with a configured route.
pub const NO_ROUTE_LABEL: &str = "none";

/// Upper bounds of the upstream latency buckets, in microseconds (1 ms .. 10 s).
const LATENCY_BUCKETS_MICROS: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// Status codes 100..=599 get their own counter; anything else (hyper
/// accepts up to 999) shares the last slot, rendered as `code="other"`.
const STATUS_MIN: u16 = 100;
const STATUS_SLOTS: usize = 501;

fn handshake_index(handshake: Handshake) -> usize {
    match handshake {
        Handshake::Http1 => 0,
        Handshake::ExtendedConnect => 1,
    }
}

fn status_index(status: StatusCode) -> usize {
    let offset = usize::from(status.as_u16().saturating_sub(STATUS_MIN));
    offset.min(STATUS_SLOTS - 1)
}

fn counter_array<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

struct RouteCounters {
    responses: [AtomicU64; STATUS_SLOTS],
    preflights_allowed: AtomicU64,
    preflights_denied: [AtomicU64; REASON_COUNT],
    actual_denied: [AtomicU64; REASON_COUNT],
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MICROS.len() + 1],
    latency_sum_micros: AtomicU64,
    log_budget: RouteLogBudget,
    upstream_errors: [AtomicU64; UPSTREAM_ERRORS.len()],
    /// By [`Handshake`]: HTTP/1.1 `Upgrade`, then HTTP/2 extended CONNECT.
    websocket_upgrades: [AtomicU64; 2],
    websocket_active: AtomicU64,
    report_only_differences: [AtomicU64; DIFFERENCE_REASON_COUNT],
}

impl RouteCounters {
    fn new() -> RouteCounters {
        RouteCounters {
            responses: counter_array(),
            preflights_allowed: AtomicU64::new(0),
            preflights_denied: counter_array(),
            actual_denied: counter_array(),
            latency_buckets: counter_array(),
            latency_sum_micros: AtomicU64::new(0),
            log_budget: RouteLogBudget::default(),
            upstream_errors: counter_array(),
            websocket_upgrades: counter_array(),
            websocket_active: AtomicU64::new(0),
            report_only_differences: counter_array(),
        }
    }
}

/// The counters of one route. Cloning is cheap; every method is one or two
/// relaxed atomic additions, with no allocation and no lock.
#[derive(Clone)]
pub struct RouteMetrics(Arc<RouteCounters>);

impl RouteMetrics {
    /// Counts a response sent to the client on this route, whoever produced it.
    pub fn request(&self, status: StatusCode) {
        self.0.responses[status_index(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a preflight the policy allowed.
    pub fn preflight_allowed(&self) {
        self.0.preflights_allowed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a preflight the policy denied, by the denial's reason code.
    pub fn preflight_denied(&self, denial: &Denial) {
        self.0.preflights_denied[reason_index(denial)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a cross-origin actual request the policy denied (decorated with
    /// nothing, or blocked), by the denial's reason code.
    pub fn actual_denied(&self, denial: &Denial) {
        self.0.actual_denied[reason_index(denial)].fetch_add(1, Ordering::Relaxed);
    }

    /// This route's budget of denial log lines, kept with its counters so it
    /// lives as long and survives reloads the same way.
    pub fn log_budget(&self) -> &RouteLogBudget {
        &self.0.log_budget
    }

    /// Counts a request for the upstream that the gateway answered itself, by
    /// reason code (see [`UPSTREAM_ERRORS`]); an unknown code is not counted.
    pub fn upstream_error(&self, code: &str) {
        if let Some(index) = UPSTREAM_ERRORS.iter().position(|(known, _)| *known == code) {
            self.0.upstream_errors[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a WebSocket handshake the upstream accepted (`101` forwarded),
    /// by how the client asked for it.
    pub fn websocket_upgraded(&self, handshake: Handshake) {
        self.0.websocket_upgrades[handshake_index(handshake)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a WebSocket tunnel as open until the guard is dropped.
    pub fn websocket_opened(&self) -> OpenTunnel {
        self.0.websocket_active.fetch_add(1, Ordering::Relaxed);
        OpenTunnel(self.clone())
    }

    /// Counts a request on which the route's report-only policy decided
    /// otherwise than the enforced one: by the candidate's denial, or
    /// `would_allow` when it allows (`None`).
    pub fn report_only_difference(&self, candidate_denial: Option<&Denial>) {
        let index = candidate_denial.map_or(REASON_COUNT, reason_index);
        self.0.report_only_differences[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Records the time from sending a request upstream to receiving its response head.
    pub fn upstream_latency(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MICROS.len());
        self.0.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.0
            .latency_sum_micros
            .fetch_add(micros, Ordering::Relaxed);
    }
}

/// The counters of one target of an upstream pool, on one route.
struct TargetCounters {
    requests: AtomicU64,
    failures: AtomicU64,
    ejections: AtomicU64,
    /// 1 while the target is in rotation, 0 while it is ejected or unhealthy.
    healthy: AtomicU64,
}

/// A pool target's counters, labelled by route and target URL. Cloning is
/// cheap; every method is one relaxed atomic operation.
#[derive(Clone)]
pub struct TargetMetrics(Arc<TargetCounters>);

impl std::fmt::Debug for TargetMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetMetrics").finish_non_exhaustive()
    }
}

impl TargetMetrics {
    /// Counts a request sent (or attempted) to the target.
    pub fn request(&self) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an attempt that failed on the target's side (no connection, no
    /// answer in time, a refused answer).
    pub fn failure(&self) {
        self.0.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an ejection by passive health.
    pub fn ejection(&self) {
        self.0.ejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the health gauge.
    pub fn set_healthy(&self, healthy: bool) {
        self.0.healthy.store(u64::from(healthy), Ordering::Relaxed);
    }
}

/// An open WebSocket tunnel, counted in `crossgate_websocket_tunnels_open`.
pub struct OpenTunnel(RouteMetrics);

impl Drop for OpenTunnel {
    fn drop(&mut self) {
        self.0 .0.websocket_active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One route's cumulative counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTotals {
    /// The route path, or [`NO_ROUTE_LABEL`].
    pub route: String,
    /// Responses sent, any status.
    pub requests: u64,
    /// Denied preflights plus denied actual requests, by [`reasons`].
    pub denied_by_reason: [u64; REASON_COUNT],
}

/// All gateway metrics of one process.
pub struct Metrics {
    /// Keyed by route path; sorted so the exposition is stable between scrapes.
    /// Paths that disappear in a reload keep their series: counters must stay
    /// monotonic, and the set only grows with distinct paths ever configured.
    routes: Mutex<BTreeMap<String, RouteMetrics>>,
    /// Keyed by route path and target URL, kept across reloads like `routes`.
    targets: Mutex<BTreeMap<(String, String), TargetMetrics>>,
    no_route: RouteMetrics,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates an empty registry.
    pub fn new() -> Metrics {
        Metrics {
            routes: Mutex::new(BTreeMap::new()),
            targets: Mutex::new(BTreeMap::new()),
            no_route: RouteMetrics(Arc::new(RouteCounters::new())),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }

    /// The counters of the route with this path, created on first use. Call it
    /// at config load and keep the handle with the compiled route.
    pub fn route(&self, path: &str) -> RouteMetrics {
        // A panic while holding this lock cannot leave the map inconsistent
        // (insertions are atomic from the map's view), so poisoning is ignored.
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes
            .entry(path.to_owned())
            .or_insert_with(|| RouteMetrics(Arc::new(RouteCounters::new())))
            .clone()
    }

    /// The counters of `target` in the pool of the route with this path,
    /// created on first use (healthy: pools start with every target in
    /// rotation). Call it at config load and keep the handle with the target.
    pub fn target(&self, route: &str, target: &str) -> TargetMetrics {
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        targets
            .entry((route.to_owned(), target.to_owned()))
            .or_insert_with(|| {
                TargetMetrics(Arc::new(TargetCounters {
                    requests: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    ejections: AtomicU64::new(0),
                    healthy: AtomicU64::new(1),
                }))
            })
            .clone()
    }

    /// Every pool target's counters, copied out of the registry's lock.
    fn targets(&self) -> Vec<((String, String), TargetMetrics)> {
        let targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        targets
            .iter()
            .map(|(key, metrics)| (key.clone(), metrics.clone()))
            .collect()
    }

    /// The counters of requests that matched no route.
    pub fn no_route(&self) -> RouteMetrics {
        self.no_route.clone()
    }

    /// Every route's counters, [`NO_ROUTE_LABEL`] last, copied out so the
    /// caller does not hold the registry's lock.
    pub fn routes(&self) -> Vec<(String, RouteMetrics)> {
        let mut routes: Vec<(String, RouteMetrics)> = {
            let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            routes
                .iter()
                .map(|(path, metrics)| (path.clone(), metrics.clone()))
                .collect()
        };
        routes.push((NO_ROUTE_LABEL.to_owned(), self.no_route.clone()));
        routes
    }

    /// Counts a configuration reload that was validated and swapped in.
    pub fn reload_succeeded(&self) {
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a configuration reload that was rejected (the old config stays).
    pub fn reload_failed(&self) {
        self.reloads_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative totals per route (the no-route series last), for the
    /// dashboard's sampler; read without stopping the request path.
    pub fn totals(&self) -> Vec<RouteTotals> {
        self.routes()
            .into_iter()
            .map(|(route, metrics)| {
                let counters = &metrics.0;
                let denied_by_reason = std::array::from_fn(|index| {
                    counters.preflights_denied[index].load(Ordering::Relaxed)
                        + counters.actual_denied[index].load(Ordering::Relaxed)
                });
                RouteTotals {
                    route,
                    requests: counters
                        .responses
                        .iter()
                        .map(|counter| counter.load(Ordering::Relaxed))
                        .sum(),
                    denied_by_reason,
                }
            })
            .collect()
    }
}

/// Logs, once a second, one line per route and reason that had lines
/// suppressed, with their count. Runs until the process ends.
pub async fn summarize_suppressed(metrics: Arc<Metrics>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for (route, route_metrics) in metrics.routes() {
            for (reason, suppressed) in route_metrics.log_budget().take_suppressed() {
                tracing::warn!(
                    route = route.as_str(),
                    reason,
                    suppressed,
                    "log lines suppressed by denial_log_rate"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::reasons::reasons;

    /// One parsed sample line: metric name, labels in order, value.
    #[derive(Debug)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    /// A strict parser for the subset of the text format we emit: every line is
    /// a `# HELP`/`# TYPE` comment or `name{label="value",...} number`, and each
    /// sample's family was declared by a preceding `# TYPE`.
    fn parse(text: &str) -> Vec<Sample> {
        let mut declared: Vec<String> = Vec::new();
        let mut samples = Vec::new();
        assert!(text.ends_with('\n'), "exposition must end with a newline");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap_or_default();
                let kind = parts.next().unwrap_or_default();
                assert!(
                    ["counter", "gauge", "histogram"].contains(&kind),
                    "bad type line {line:?}"
                );
                assert!(!declared.iter().any(|d| d == name), "{name} declared twice");
                declared.push(name.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment {line:?}");
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let value: f64 = value.parse().expect("value is a float");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect("labels closed");
                    (name, parse_labels(labels))
                }
                None => (series, Vec::new()),
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "bad metric name {name:?}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| declared.iter().any(|d| d == base))
                .unwrap_or(name);
            assert!(
                declared.last().map(String::as_str) == Some(family),
                "sample {name} outside its family block"
            );
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
        samples
    }

    fn parse_labels(mut text: &str) -> Vec<(String, String)> {
        let mut labels = Vec::new();
        while !text.is_empty() {
            let (name, rest) = text.split_once("=\"").expect("label has =\"");
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next().expect("label value closed") {
                    (_, '\\') => match chars.next().expect("escape complete") {
                        (_, 'n') => value.push('\n'),
                        (_, other) => value.push(other),
                    },
                    (index, '"') => break index,
                    (_, other) => value.push(other),
                }
            };
            labels.push((name.to_owned(), value));
            text = &rest[end + 1..];
            text = text.strip_prefix(',').unwrap_or(text);
        }
        labels
    }

    fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples
            .iter()
            .find(|sample| {
                sample.name == name
                    && sample.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| sample.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|sample| sample.value)
    }

    /// A sample a test expects: its family, its labels and its value
    /// (`None`: no such sample).
    type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<f64>);

    /// Renders `metrics` once and checks each expected sample.
    fn assert_samples(metrics: &Metrics, expected: &[Expected]) {
        let samples = parse(&metrics.render());
        for (name, labels, want) in expected {
            assert_eq!(value(&samples, name, labels), *want, "{name} {labels:?}");
        }
    }

    /// Checks the one `crossgate_requests_total` sample of `route` and `code`.
    fn assert_requests(metrics: &Metrics, route: &str, code: &str, want: f64) {
        assert_samples(
            metrics,
            &[(
                "crossgate_requests_total",
                &[("route", route), ("code", code)],
                Some(want),
            )],
        );
    }

    /// Checks both reload counters.
    fn assert_reloads(metrics: &Metrics, ok: f64, failed: f64) {
        let reloads = "crossgate_config_reloads_total";
        assert_samples(
            metrics,
            &[
                (reloads, &[("result", "ok")], Some(ok)),
                (reloads, &[("result", "failed")], Some(failed)),
            ],
        );
    }

    #[test]
    fn empty_registry_renders_valid_exposition_with_reload_counters() {
        assert_reloads(&Metrics::new(), 0.0, 0.0);
    }

    #[test]
    fn requests_are_counted_by_route_and_status_code() {
        let metrics = Metrics::new();
        let api = metrics.route("/api/");
        api.request(StatusCode::OK);
        api.request(StatusCode::OK);
        api.request(StatusCode::BAD_GATEWAY);
        metrics.no_route().request(StatusCode::NOT_FOUND);
        let requests = "crossgate_requests_total";
        assert_samples(
            &metrics,
            &[
                (requests, &[("route", "/api/"), ("code", "200")], Some(2.0)),
                (requests, &[("route", "/api/"), ("code", "502")], Some(1.0)),
                (requests, &[("route", "none"), ("code", "404")], Some(1.0)),
                (requests, &[("route", "/api/"), ("code", "404")], None),
            ],
        );
    }

    #[test]
    fn unusual_status_codes_share_the_other_slot() {
        let metrics = Metrics::new();
        let route = metrics.route("/");
        route.request(StatusCode::from_u16(999).expect("hyper accepts 999"));
        route.request(StatusCode::from_u16(599).expect("valid"));
        let requests = "crossgate_requests_total";
        assert_samples(
            &metrics,
            &[
                (requests, &[("route", "/"), ("code", "other")], Some(1.0)),
                (requests, &[("route", "/"), ("code", "599")], Some(1.0)),
            ],
        );
    }

    #[test]
    fn same_path_keeps_its_counters_across_reloads() {
        let metrics = Metrics::new();
        let before_reload = metrics.route("/api/");
        before_reload.request(StatusCode::OK);
        // A reload builds new handles from the new config; an in-flight request
        // still holds the old one. Both must count into one series.
        let after_reload = metrics.route("/api/");
        after_reload.request(StatusCode::OK);
        before_reload.request(StatusCode::OK);
        assert_requests(&metrics, "/api/", "200", 3.0);
    }

    #[test]
    fn preflights_and_denials_are_counted_by_reason() {
        let metrics = Metrics::new();
        let api = metrics.route("/api/");
        api.preflight_allowed();
        api.preflight_denied(&Denial::OriginNotAllowed);
        api.preflight_denied(&Denial::OriginNotAllowed);
        api.preflight_denied(&Denial::PrivateNetworkNotAllowed);
        api.actual_denied(&Denial::OriginNotAllowed);
        let denied = "crossgate_preflights_denied_total";
        let origin = [("route", "/api/"), ("reason", "origin_not_allowed")];
        assert_samples(
            &metrics,
            &[
                (
                    "crossgate_preflights_allowed_total",
                    &[("route", "/api/")],
                    Some(1.0),
                ),
                (denied, &origin, Some(2.0)),
                (
                    denied,
                    &[
                        ("route", "/api/"),
                        ("reason", "private_network_not_allowed"),
                    ],
                    Some(1.0),
                ),
                ("crossgate_actual_denied_total", &origin, Some(1.0)),
            ],
        );
    }

    #[test]
    fn every_engine_reason_code_has_its_own_label() {
        for denial in [Denial::OriginNotAllowed, Denial::PrivateNetworkNotAllowed]
            .into_iter()
            .chain(crate::ops::reasons::DENIAL_KINDS.iter().copied())
        {
            assert_eq!(reasons()[reason_index(&denial)], denial.code());
        }
        assert_eq!(reasons()[REASON_COUNT - 1], "other");
        let labels = reasons();
        let distinct: std::collections::BTreeSet<_> = labels.iter().collect();
        assert_eq!(distinct.len(), REASON_COUNT, "{labels:?}");
    }

    #[test]
    fn latency_histogram_is_cumulative_and_consistent() {
        let metrics = Metrics::new();
        let api = metrics.route("/api/");
        api.upstream_latency(Duration::from_micros(500)); // <= 1 ms
        api.upstream_latency(Duration::from_millis(1)); // exactly on a bound: counted in it
        api.upstream_latency(Duration::from_millis(30)); // <= 50 ms
        api.upstream_latency(Duration::from_secs(60)); // +Inf only
        let bucket = "crossgate_upstream_latency_seconds_bucket";
        assert_samples(
            &metrics,
            &[
                (bucket, &[("route", "/api/"), ("le", "0.001")], Some(2.0)),
                (bucket, &[("route", "/api/"), ("le", "0.025")], Some(2.0)),
                (bucket, &[("route", "/api/"), ("le", "0.05")], Some(3.0)),
                (bucket, &[("route", "/api/"), ("le", "10")], Some(3.0)),
                (bucket, &[("route", "/api/"), ("le", "+Inf")], Some(4.0)),
                (
                    "crossgate_upstream_latency_seconds_count",
                    &[("route", "/api/")],
                    Some(4.0),
                ),
            ],
        );
        let samples = parse(&metrics.render());
        let sum = value(
            &samples,
            "crossgate_upstream_latency_seconds_sum",
            &[("route", "/api/")],
        )
        .expect("sum present");
        assert!((sum - 60.0315).abs() < 1e-9, "sum {sum}");
    }

    #[test]
    fn websocket_upgrades_and_open_tunnels_are_counted() {
        let metrics = Metrics::new();
        let ws = metrics.route("/ws/");
        ws.websocket_upgraded(Handshake::Http1);
        ws.websocket_upgraded(Handshake::ExtendedConnect);
        ws.websocket_upgraded(Handshake::ExtendedConnect);
        let open = ws.websocket_opened();
        let closed = ws.websocket_opened();
        drop(closed);
        let route = [("route", "/ws/")];
        let upgrades = "crossgate_websocket_upgrades_total";
        assert_samples(
            &metrics,
            &[
                (
                    upgrades,
                    &[("route", "/ws/"), ("handshake", "http1")],
                    Some(1.0),
                ),
                (
                    upgrades,
                    &[("route", "/ws/"), ("handshake", "http2")],
                    Some(2.0),
                ),
                ("crossgate_websocket_tunnels_open", &route, Some(1.0)),
            ],
        );
        drop(open);
        assert_samples(
            &metrics,
            &[("crossgate_websocket_tunnels_open", &route, Some(0.0))],
        );
    }

    /// The samples' text as scrapers and dashboards match it: label names
    /// and their order are part of the format, which the sample checks
    /// above (labels in any order) do not pin.
    #[test]
    fn per_route_samples_are_written_with_labels_in_a_fixed_order() {
        let metrics = Metrics::new();
        let ws = metrics.route("/ws/");
        ws.request(StatusCode::OK);
        ws.preflight_allowed();
        ws.preflight_denied(&Denial::OriginNotAllowed);
        ws.actual_denied(&Denial::OriginNotAllowed);
        ws.websocket_upgraded(Handshake::ExtendedConnect);
        let _open = ws.websocket_opened();
        let text = metrics.render();
        for line in [
            r#"crossgate_requests_total{route="/ws/",code="200"} 1"#,
            r#"crossgate_preflights_allowed_total{route="/ws/"} 1"#,
            r#"crossgate_preflights_denied_total{route="/ws/",reason="origin_not_allowed"} 1"#,
            r#"crossgate_actual_denied_total{route="/ws/",reason="origin_not_allowed"} 1"#,
            r#"crossgate_websocket_upgrades_total{route="/ws/",handshake="http2"} 1"#,
            r#"crossgate_websocket_tunnels_open{route="/ws/"} 1"#,
        ] {
            assert!(
                text.lines().any(|written| written == line),
                "{line} is not in\n{text}"
            );
        }
    }

    #[test]
    fn reload_results_are_counted() {
        let metrics = Metrics::new();
        metrics.reload_succeeded();
        metrics.reload_failed();
        metrics.reload_failed();
        assert_reloads(&metrics, 1.0, 2.0);
    }

    #[test]
    fn route_paths_are_escaped_in_labels() {
        let metrics = Metrics::new();
        metrics.route("/we\"ird\\path\n").request(StatusCode::OK);
        assert_requests(&metrics, "/we\"ird\\path\n", "200", 1.0);
    }

    #[test]
    fn counting_is_exact_under_concurrency() {
        let metrics = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let route = metrics.route("/api/");
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        route.request(StatusCode::OK);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("counting thread");
        }
        assert_requests(&metrics, "/api/", "200", 40_000.0);
    }
}
