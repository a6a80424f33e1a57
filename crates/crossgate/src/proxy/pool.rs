//! A route's upstream as a pool of targets: choosing one per attempt, and
//! passive health (ejecting a target that keeps refusing connections).
//!
//! Everything a request touches here is an atomic: no lock, no allocation.
//! The string form `upstream = "http://..."` is a pool of one without health
//! tracking, so choosing its target is a field read, as before pools.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::config::{Balance, HealthFile, PoolFile, Report, UpstreamFile};
use crate::ops::metrics::{Metrics, TargetMetrics};
use crate::proxy::client::{Origin, UpstreamClient};
use crate::proxy::health::HealthCheck;
use crate::proxy::upstream::Upstream;

/// At most this many targets in one pool: an attempt's tried targets are a
/// bit set in one `u64`, so retries allocate nothing.
pub const MAX_TARGETS: usize = 64;
/// Consecutive connect failures that eject a target, by default.
pub const DEFAULT_EJECT_AFTER: u32 = 3;
/// The first ejection lasts this long; each one that follows without a
/// success in between lasts twice as long as the one before, up to
/// [`MAX_EJECTION`].
pub const FIRST_EJECTION: Duration = Duration::from_secs(1);
/// The longest ejection.
pub const MAX_EJECTION: Duration = Duration::from_secs(30);

/// A route's compiled upstream.
#[derive(Debug)]
pub struct UpstreamPool {
    targets: Box<[PoolTarget]>,
    balance: Balance,
    /// `None` for the string form: no passive health, as before pools.
    eject_after: Option<u32>,
    health: Option<HealthCheck>,
    cursor: AtomicUsize,
    /// Ejection deadlines are milliseconds since this instant.
    epoch: Instant,
    display: String,
}

/// One target of a pool.
#[derive(Debug)]
pub struct PoolTarget {
    /// Its base URL.
    pub upstream: Upstream,
    pub(crate) state: Arc<TargetState>,
    /// Its origin's connections, looked up when the target is first used.
    origin: OnceLock<Arc<Origin>>,
}

impl PoolTarget {
    fn new(upstream: Upstream, state: TargetState) -> Self {
        Self {
            upstream,
            state: Arc::new(state),
            origin: OnceLock::new(),
        }
    }

    /// The connections of the target's origin, from `client`: the
    /// generation's client, the only one its targets are used with.
    pub(crate) fn origin(&self, client: &UpstreamClient) -> &Arc<Origin> {
        self.origin.get_or_init(|| client.origin(&self.upstream))
    }
}

/// What passive and active health know of a target, shared with its health
/// checker.
#[derive(Debug)]
pub(crate) struct TargetState {
    /// Connect failures since the last success.
    failures: AtomicU32,
    /// Ejections since the last success: the back-off's exponent.
    ejections: AtomicU32,
    /// Milliseconds since the pool's epoch until which the target is out of
    /// rotation; 0 when it is not ejected.
    ejected_until: AtomicU64,
    /// Set by the active checker after `unhealthy` failed checks.
    unhealthy: AtomicBool,
    /// Requests whose response has not ended, for `least_requests`.
    in_flight: AtomicUsize,
    /// `None` for the string form, which has only the route's metrics.
    pub(crate) metrics: Option<TargetMetrics>,
}

impl TargetState {
    fn new(metrics: Option<TargetMetrics>) -> Self {
        Self {
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            unhealthy: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            metrics,
        }
    }

    fn available(&self, now: u64) -> bool {
        !self.unhealthy.load(Ordering::Relaxed) && self.ejected_until.load(Ordering::Relaxed) <= now
    }

    /// A response head arrived, or a health check passed: the target is
    /// back in rotation as far as passive health goes.
    pub(crate) fn succeeded(&self) {
        // Read first: the common case is a healthy target, and a load keeps
        // the cache line shared between cores.
        if self.failures.load(Ordering::Relaxed) != 0
            || self.ejected_until.load(Ordering::Relaxed) != 0
        {
            self.failures.store(0, Ordering::Relaxed);
            self.ejections.store(0, Ordering::Relaxed);
            self.ejected_until.store(0, Ordering::Relaxed);
            self.update_gauge();
        }
    }

    /// Sets what the active checker found.
    pub(crate) fn set_unhealthy(&self, unhealthy: bool) {
        self.unhealthy.store(unhealthy, Ordering::Relaxed);
        self.update_gauge();
    }

    pub(crate) fn is_unhealthy(&self) -> bool {
        self.unhealthy.load(Ordering::Relaxed)
    }

    /// Sets the target's health gauge from its state.
    pub(crate) fn publish(&self) {
        self.update_gauge();
    }

    fn update_gauge(&self) {
        if let Some(metrics) = &self.metrics {
            let ejected = self.ejected_until.load(Ordering::Relaxed) != 0;
            metrics.set_healthy(!ejected && !self.is_unhealthy());
        }
    }
}

/// A `least_requests` target's request in flight, counted until dropped
/// (with the response body, or when the attempt fails).
#[derive(Debug)]
pub struct InFlight(Arc<TargetState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl UpstreamPool {
    /// Compiles `upstream` at `key`; `route` labels the targets' metrics.
    pub(crate) fn compile(
        file: &UpstreamFile,
        key: &str,
        route: &str,
        metrics: &Metrics,
        report: &mut Report,
    ) -> Option<Self> {
        match file {
            UpstreamFile::Single(text) => {
                let upstream = Upstream::compile(text, key, report)?;
                Some(Self {
                    display: upstream.as_str().to_owned(),
                    targets: Box::new([PoolTarget::new(upstream, TargetState::new(None))]),
                    balance: Balance::RoundRobin,
                    eject_after: None,
                    health: None,
                    cursor: AtomicUsize::new(0),
                    epoch: Instant::now(),
                })
            }
            UpstreamFile::Pool {
                pool,
                health,
                listed,
            } => {
                let targets_key = if *listed {
                    key.to_owned()
                } else {
                    format!("{key}.targets")
                };
                Self::compile_pool(
                    pool,
                    health.as_ref(),
                    key,
                    &targets_key,
                    route,
                    metrics,
                    report,
                )
            }
        }
    }

    fn compile_pool(
        pool: &PoolFile,
        health: Option<&HealthFile>,
        key: &str,
        targets_key: &str,
        route: &str,
        metrics: &Metrics,
        report: &mut Report,
    ) -> Option<Self> {
        let texts = match pool.targets.as_deref() {
            None => {
                report.problem(
                    targets_key,
                    "the pool has no targets",
                    "add targets = [\"http://10.0.0.1:3000\", \"http://10.0.0.2:3000\"]",
                );
                return None;
            }
            Some([]) => {
                report.problem(
                    targets_key,
                    "the target list is empty, so every request would fail",
                    "list at least one base URL, e.g. [\"http://127.0.0.1:3000\"]",
                );
                return None;
            }
            Some(texts) if texts.len() > MAX_TARGETS => {
                report.problem(
                    targets_key,
                    format!("{} targets are more than a pool takes", texts.len()),
                    format!(
                        "list at most {MAX_TARGETS} targets, or put a load balancer behind one"
                    ),
                );
                return None;
            }
            Some(texts) => texts,
        };
        let mut targets = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let at = format!("{targets_key}[{i}]");
            if texts[..i].contains(text) {
                report.problem(
                    at,
                    format!("{text:?} is listed twice"),
                    "list each target once (a pool has no weights)",
                );
                continue;
            }
            if let Some(upstream) = Upstream::compile(text, &at, report) {
                targets.push(upstream);
            }
        }
        let eject_after = match pool.eject_after {
            None => Some(DEFAULT_EJECT_AFTER),
            Some(n @ 1..=1000) => u32::try_from(n).ok(),
            Some(n) => {
                report.problem(
                    format!("{key}.eject_after"),
                    format!("{n} is not a number of failures between 1 and 1000"),
                    format!("use e.g. eject_after = {DEFAULT_EJECT_AFTER} (the default)"),
                );
                None
            }
        };
        let health = match health {
            None => None,
            Some(_) if texts.len() < 2 => {
                report.problem(
                    format!("{key}.health"),
                    "health checks on a single target cannot steer traffic anywhere else",
                    "add targets or remove health",
                );
                None
            }
            Some(health) => Some(HealthCheck::compile(
                health,
                &format!("{key}.health"),
                report,
            )?),
        };
        if targets.len() != texts.len() {
            return None;
        }
        let targets: Box<[PoolTarget]> = targets
            .into_iter()
            .map(|upstream| {
                let metrics = metrics.target(route, upstream.as_str());
                PoolTarget::new(upstream, TargetState::new(Some(metrics)))
            })
            .collect();
        Some(Self {
            display: texts.join(", "),
            targets,
            balance: pool.balance.unwrap_or_default(),
            eject_after: Some(eject_after?),
            health,
            cursor: AtomicUsize::new(0),
            epoch: Instant::now(),
        })
    }

    /// The upstream as written: the URL, or the pool's URLs.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The targets, in the order written.
    pub fn targets(&self) -> &[PoolTarget] {
        &self.targets
    }

    /// The active health check, if configured.
    pub(crate) fn health(&self) -> Option<&HealthCheck> {
        self.health.as_ref()
    }

    /// Whether a failed attempt can go to another target.
    pub(crate) fn has_alternatives(&self) -> bool {
        self.targets.len() > 1
    }

    /// The target for the next attempt, skipping those in `tried` (a bit per
    /// index) and those out of rotation; `None` when none is left.
    pub(crate) fn pick(&self, tried: u64) -> Option<usize> {
        let count = self.targets.len();
        if self.eject_after.is_none() {
            return (tried == 0).then_some(0);
        }
        let now = self.now();
        let usable =
            |index: usize| tried & (1 << index) == 0 && self.targets[index].state.available(now);
        let start = match self.balance {
            Balance::RoundRobin | Balance::LeastRequests => {
                self.cursor.fetch_add(1, Ordering::Relaxed) % count
            }
            Balance::Random => random_below(&self.cursor, count),
        };
        let mut candidates = (0..count)
            .map(|offset| (start + offset) % count)
            .filter(|i| usable(*i));
        match self.balance {
            Balance::RoundRobin | Balance::Random => candidates.next(),
            // Ties go to the first from a rotating start, so idle targets
            // share the load instead of the first one taking it all.
            Balance::LeastRequests => candidates
                .min_by_key(|index| self.targets[*index].state.in_flight.load(Ordering::Relaxed)),
        }
    }

    /// Starts an attempt on target `index`: counts it, and for
    /// `least_requests` returns the guard that keeps it counted in flight.
    pub(crate) fn begin(&self, index: usize) -> Option<InFlight> {
        let state = &self.targets[index].state;
        if let Some(metrics) = &state.metrics {
            metrics.request();
        }
        (self.balance == Balance::LeastRequests && self.eject_after.is_some()).then(|| {
            state.in_flight.fetch_add(1, Ordering::Relaxed);
            InFlight(state.clone())
        })
    }

    /// The attempt on `index` got a response head, whatever its status.
    pub(crate) fn succeeded(&self, index: usize) {
        if self.eject_after.is_some() {
            self.targets[index].state.succeeded();
        }
    }

    /// The attempt on `index` failed after it may have reached the target
    /// (a response timeout, a reset, refused framing): counted, but not a
    /// reason to eject, since a slow or odd answer is not a dead target.
    pub(crate) fn failed(&self, index: usize) {
        if let Some(metrics) = &self.targets[index].state.metrics {
            metrics.failure();
        }
    }

    /// The attempt on `index` could not connect (refused, or the connect
    /// timeout): after `eject_after` in a row the target is ejected, for
    /// twice as long each time it fails again after coming back.
    pub(crate) fn connect_failed(&self, index: usize) {
        let Some(eject_after) = self.eject_after else {
            return;
        };
        self.failed(index);
        let state = &self.targets[index].state;
        let failures = state
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures < eject_after {
            return;
        }
        let now = self.now();
        let current = state.ejected_until.load(Ordering::Relaxed);
        if current > now {
            return; // Already out: a request that started before the ejection.
        }
        let exponent = state.ejections.load(Ordering::Relaxed).min(16);
        let period = FIRST_EJECTION
            .saturating_mul(1 << exponent)
            .min(MAX_EJECTION);
        let until = now.saturating_add(u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
        // Only one of several attempts failing at once ejects the target.
        if state
            .ejected_until
            .compare_exchange(current, until.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            state.ejections.fetch_add(1, Ordering::Relaxed);
            if let Some(metrics) = &state.metrics {
                metrics.ejection();
            }
            state.update_gauge();
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A number below `bound` from SplitMix64 over a shared counter: one atomic
/// addition and a few multiplications, spread well enough to balance load.
/// Hand-written because a random crate would be a new dependency for eight
/// lines, and balancing needs no unpredictability.
fn random_below(counter: &AtomicUsize, bound: usize) -> usize {
    let seed = counter.fetch_add(1, Ordering::Relaxed) as u64;
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The bound is at most MAX_TARGETS, so the modulo bias is negligible.
    (z % bound as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;

    fn pool(targets: &[&str], balance: Balance) -> UpstreamPool {
        let file = UpstreamFile::Pool {
            pool: PoolFile {
                targets: Some(targets.iter().map(|t| (*t).to_owned()).collect()),
                balance: Some(balance),
                ..PoolFile::default()
            },
            health: None,
            listed: true,
        };
        let mut report = Report::new(&ConfigSource::Demo);
        let pool = UpstreamPool::compile(&file, "u", "/", &Metrics::new(), &mut report);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        pool.expect("compiles")
    }

    const THREE: [&str; 3] = [
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
        "http://127.0.0.1:3",
    ];

    #[test]
    fn round_robin_takes_each_target_in_turn() {
        let pool = pool(&THREE, Balance::RoundRobin);
        let picks: Vec<_> = (0..6).filter_map(|_| pool.pick(0)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn random_reaches_every_target() {
        let pool = pool(&THREE, Balance::Random);
        let mut seen = [0; 3];
        for _ in 0..300 {
            seen[pool.pick(0).expect("a target")] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }

    #[test]
    fn tried_and_ejected_targets_are_skipped() {
        let pool = pool(&THREE, Balance::RoundRobin);
        assert_eq!(pool.pick(0b011), Some(2));
        assert_eq!(pool.pick(0b111), None);
        for _ in 0..DEFAULT_EJECT_AFTER {
            pool.connect_failed(1);
        }
        let picks: Vec<_> = (0..6).filter_map(|_| pool.pick(0)).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        pool.targets[1].state.succeeded();
        assert!(pool.targets[1].state.available(pool.now()));
    }

    #[test]
    fn ejections_double_while_the_target_stays_bad() {
        let pool = pool(&THREE, Balance::RoundRobin);
        let state = &pool.targets[0].state;
        for _ in 0..DEFAULT_EJECT_AFTER {
            pool.connect_failed(0);
        }
        let first = state.ejected_until.load(Ordering::Relaxed) - pool.now();
        // Come back, fail once more: ejected again, for twice as long.
        state.ejected_until.store(0, Ordering::Relaxed);
        pool.connect_failed(0);
        let second = state.ejected_until.load(Ordering::Relaxed) - pool.now();
        assert!(
            first <= 1000 && second > 1000 && second <= 2000,
            "{first} {second}"
        );
        assert_eq!(state.ejections.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_string_form_has_one_target_and_no_health() {
        let mut report = Report::new(&ConfigSource::Demo);
        let single = UpstreamFile::Single("http://127.0.0.1:1".to_owned());
        let pool = UpstreamPool::compile(&single, "u", "/", &Metrics::new(), &mut report)
            .expect("compiles");
        for _ in 0..10 {
            pool.connect_failed(0);
        }
        assert_eq!(pool.pick(0), Some(0));
        assert_eq!(pool.pick(1), None);
        assert!(pool.begin(0).is_none());
    }
}
