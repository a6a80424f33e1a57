//! A per-second budget for the log lines a client can trigger at will (CORS
//! denials, `[auth]` refusals, upstream failures), per route and reason.
//!
//! A flood of denied requests must not become a flood of log lines (one WARN
//! line per denial filled 98 MB in 8 s), while metrics and `/decisions` keep
//! counting every one. Each route owns one budget per reason, allocated with
//! the route's metrics at config load, so memory is bounded by routes x
//! reasons whatever clients send. On the request path a budget is one atomic
//! word holding the current second and the lines logged in it, plus a counter
//! of suppressed lines; [`crate::ops::metrics::summarize_suppressed`] logs those counts once a
//! second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::Instant;

use crate::ops::reasons::{self, UPSTREAM_ERROR_COUNT};
use crate::proxy::auth::AuthFailure;

/// `[server] denial_log_rate` default: lines per second, route and reason.
pub const DEFAULT_DENIAL_LOG_RATE: u32 = 10;
/// `[server] denial_log_rate` bound; it must fit [`COUNT_BITS`].
pub const MAX_DENIAL_LOG_RATE: u32 = 100_000;

/// The budget of report-only difference lines, apart from the denials' so
/// that a candidate policy cannot silence the enforced policy's lines.
pub const REPORT_ONLY_DIFFERENCE: &str = "report_only_difference";

/// How many reasons get a budget of their own: the engine's denial kinds,
/// `[auth]`'s failures, the upstream failures, report-only differences, and
/// `other`.
const REASON_COUNT: usize = DENIAL_REASONS + AUTH_FAILURES.len() + UPSTREAM_ERROR_COUNT + 2;
const DENIAL_REASONS: usize = reasons::REASON_COUNT - 1;
const AUTH_FAILURES: [AuthFailure; 3] = [
    AuthFailure::Missing,
    AuthFailure::Invalid,
    AuthFailure::Insufficient,
];

/// The reasons budgets are kept for, taken from their sources (the engine's
/// `Denial::code()`s, `AuthFailure::code()`s and the metrics' upstream
/// codes) so that none is copied here. A code added later shares the `other`
/// budget rather than going unlimited.
static REASONS: LazyLock<[&'static str; REASON_COUNT]> = LazyLock::new(|| {
    let mut reasons = ["other"; REASON_COUNT];
    let sources = reasons::reasons()
        .into_iter()
        .take(DENIAL_REASONS)
        .chain(AUTH_FAILURES.map(AuthFailure::code))
        .chain(reasons::upstream_error_codes())
        .chain([REPORT_ONLY_DIFFERENCE]);
    for (slot, code) in reasons.iter_mut().zip(sources) {
        *slot = code;
    }
    reasons
});

/// Low bits of a budget's state: lines logged in its second. High bits: the second.
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

fn reason_index(code: &str) -> usize {
    REASONS
        .iter()
        .position(|known| *known == code)
        .unwrap_or(REASON_COUNT - 1)
}

/// Whole seconds since the first call in this process (monotonic).
fn current_second() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs()
}

#[derive(Default)]
struct Budget {
    /// `second << COUNT_BITS | lines logged in that second`.
    state: AtomicU64,
    /// Lines not written since the last summary.
    suppressed: AtomicU64,
}

impl Budget {
    fn admit(&self, second: u64, per_second: u32) -> bool {
        if per_second == 0 {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let per_second = u64::from(per_second);
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let next = if state >> COUNT_BITS < second {
                // First line of a new second (a thread whose clock read an
                // older second than the stored one counts in the stored one).
                (second << COUNT_BITS) | 1
            } else if state & COUNT_MASK < per_second {
                state + 1
            } else {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return false;
            };
            // Retries only while other lines are admitted: at most
            // `per_second` + 1 times per second.
            match self.state.compare_exchange_weak(
                state,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(current) => state = current,
            }
        }
    }
}

/// The budgets of one route, one per reason.
#[derive(Default)]
pub struct RouteLogBudget {
    budgets: [Budget; REASON_COUNT],
}

impl RouteLogBudget {
    /// Whether a line with this reason code may be written now; when not, it
    /// is counted for the next summary. Atomics only, no allocation.
    pub fn admit(&self, reason: &str, per_second: u32) -> bool {
        self.budgets[reason_index(reason)].admit(current_second(), per_second)
    }

    /// The lines suppressed since the last call, by reason, leaving zero.
    pub(crate) fn take_suppressed(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REASONS
            .iter()
            .zip(&self.budgets)
            .filter_map(
                |(reason, budget)| match budget.suppressed.swap(0, Ordering::Relaxed) {
                    0 => None,
                    count => Some((*reason, count)),
                },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suppressed(budget: &RouteLogBudget) -> Vec<(&'static str, u64)> {
        budget.take_suppressed().collect()
    }

    #[test]
    fn at_most_the_rate_per_second_then_counted() {
        let budget = Budget::default();
        let admitted = (0..25).filter(|_| budget.admit(7, 10)).count();
        assert_eq!(admitted, 10);
        assert_eq!(budget.suppressed.load(Ordering::Relaxed), 15);
        assert!(budget.admit(8, 10), "a new second has a new budget");
        assert!(
            budget.admit(7, 10),
            "a late clock reading counts in the stored second"
        );
        assert_eq!(budget.state.load(Ordering::Relaxed) & COUNT_MASK, 2);
    }

    #[test]
    fn zero_rate_logs_nothing_but_counts_everything() {
        let budget = Budget::default();
        assert_eq!((0..5).filter(|_| budget.admit(1, 0)).count(), 0);
        assert_eq!(budget.suppressed.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn reasons_have_their_own_budgets_and_unknown_ones_share_other() {
        let route = RouteLogBudget::default();
        for _ in 0..3 {
            route.admit("origin_not_allowed", 1);
            route.admit("token_invalid", 1);
            route.admit("some_future_code", 1);
            route.admit("another_future_code", 1);
        }
        let mut counts = suppressed(&route);
        counts.sort_unstable();
        assert_eq!(
            counts,
            [
                ("origin_not_allowed", 2),
                ("other", 5),
                ("token_invalid", 2)
            ]
        );
        assert!(suppressed(&route).is_empty(), "taking resets the counts");
    }

    #[test]
    fn concurrent_admission_never_exceeds_the_rate() {
        let budget = std::sync::Arc::new(Budget::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let budget = budget.clone();
                std::thread::spawn(move || (0..1_000).filter(|_| budget.admit(3, 50)).count())
            })
            .collect();
        let admitted: usize = threads
            .into_iter()
            .map(|thread| thread.join().expect("thread"))
            .sum();
        assert_eq!(admitted, 50);
        assert_eq!(budget.suppressed.load(Ordering::Relaxed), 4_000 - 50);
    }

    #[test]
    fn every_reason_the_gateway_logs_has_its_own_budget() {
        use crate::proxy::upstream::UpstreamError;
        use crossgate_cors::Denial;
        for code in [
            Denial::OriginNotAllowed.code(),
            Denial::PrivateNetworkNotAllowed.code(),
            AuthFailure::Missing.code(),
            AuthFailure::Invalid.code(),
            AuthFailure::Insufficient.code(),
            UpstreamError::Timeout(String::new()).code(),
            UpstreamError::BadFraming(String::new()).code(),
            UpstreamError::MalformedBody(String::new()).code(),
            REPORT_ONLY_DIFFERENCE,
        ] {
            assert_ne!(reason_index(code), REASON_COUNT - 1, "{code}");
        }
    }
}
