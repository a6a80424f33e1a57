//! The admin dashboard at the admin listener's `/`: one page, its script and
//! style embedded in the binary, and the JSON it polls (`/api/dashboard`).
//!
//! The charts come from a small ring of per-interval counts that a sampler
//! task takes from [`Metrics::totals`] every [`INTERVAL`]: the request path
//! does no extra work for the dashboard, and memory is bounded by
//! [`BUCKETS`] times the number of routes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::ops::denials::{DenialEntry, DenialLog};
use crate::ops::metrics::{Metrics, RouteTotals};
use crate::ops::reasons::{reasons, REASON_COUNT};
use crate::server::reload::{ReloadHistory, ReloadRecord};

/// Width of one chart bar.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Bars kept: ten minutes of history.
pub const BUCKETS: usize = 60;
/// Rows of the top denied origins table.
const TOP_ORIGINS: usize = 10;

/// The page, its script and its style, as (path, content type, body).
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("dashboard/index.html"),
    ),
    (
        "/dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/dashboard.js"),
    ),
    (
        "/dashboard.css",
        "text/css; charset=utf-8",
        include_str!("dashboard/dashboard.css"),
    ),
];

/// The path of the JSON the page polls.
pub const DATA_PATH: &str = "/api/dashboard";

/// The embedded asset at `path`: (content type, body). These carry no data
/// of the gateway, only the page that fetches it.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(asset_path, _, _)| *asset_path == path)
        .map(|(_, content_type, body)| (*content_type, *body))
}

/// Counts of one route over one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
struct Delta {
    requests: u64,
    denied: [u64; REASON_COUNT],
}

impl Delta {
    fn between(before: Option<&RouteTotals>, after: &RouteTotals) -> Delta {
        // Counters only grow; a route new since the last sample started at 0.
        let requests_before = before.map_or(0, |b| b.requests);
        Delta {
            requests: after.requests.saturating_sub(requests_before),
            denied: std::array::from_fn(|i| {
                after.denied_by_reason[i]
                    .saturating_sub(before.map_or(0, |b| b.denied_by_reason[i]))
            }),
        }
    }

    fn is_zero(&self) -> bool {
        *self == Delta::default()
    }

    fn add(&mut self, other: &Delta) {
        self.requests += other.requests;
        for (sum, count) in self.denied.iter_mut().zip(other.denied) {
            *sum += count;
        }
    }
}

/// One interval: when it ended and each route's counts (routes without
/// traffic left out).
#[derive(Debug, Clone)]
struct Bucket {
    end: u64,
    routes: BTreeMap<String, Delta>,
}

#[derive(Debug, Default)]
struct Ring {
    /// The totals at the last sample, by route.
    last: HashMap<String, RouteTotals>,
    buckets: VecDeque<Bucket>,
}

/// The per-interval history the charts draw.
#[derive(Debug, Default)]
pub struct Series(Mutex<Ring>);

impl Series {
    /// Closes the interval ending at `now` (unix seconds) with `totals`.
    fn sample(&self, totals: Vec<RouteTotals>, now: u64) {
        let mut ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let routes = deltas(&ring.last, &totals);
        if ring.buckets.len() == BUCKETS {
            ring.buckets.pop_front();
        }
        ring.buckets.push_back(Bucket { end: now, routes });
        ring.last = totals
            .into_iter()
            .map(|totals| (totals.route.clone(), totals))
            .collect();
    }

    /// The closed intervals plus the open one (up to `now`, from `totals`).
    fn with_open_interval(&self, totals: &[RouteTotals], now: u64) -> Vec<Bucket> {
        let ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut buckets: Vec<Bucket> = ring.buckets.iter().cloned().collect();
        buckets.push(Bucket {
            end: now,
            routes: deltas(&ring.last, totals),
        });
        buckets
    }
}

fn deltas(last: &HashMap<String, RouteTotals>, totals: &[RouteTotals]) -> BTreeMap<String, Delta> {
    totals
        .iter()
        .map(|after| {
            (
                after.route.clone(),
                Delta::between(last.get(&after.route), after),
            )
        })
        .filter(|(_, delta)| !delta.is_zero())
        .collect()
}

/// The running sampler; dropping it stops sampling.
#[must_use = "dropping the Sampler stops sampling"]
pub struct Sampler(JoinHandle<()>);

impl Drop for Sampler {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Samples `metrics` into `series` every [`INTERVAL`], on the current runtime.
pub fn spawn_sampler(series: Arc<Series>, metrics: Arc<Metrics>) -> Sampler {
    Sampler(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // The first tick is immediate: it takes the baseline.
            ticks.tick().await;
            series.sample(metrics.totals(), unix_now());
        }
    }))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[derive(Serialize)]
struct BucketJson<'a> {
    end: u64,
    /// Requests by route.
    requests: BTreeMap<&'a str, u64>,
    /// Denials by reason (all routes).
    denied: BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
struct RouteRow<'a> {
    route: &'a str,
    requests: u64,
    denied: u64,
}

#[derive(Serialize)]
struct ReasonRow {
    reason: &'static str,
    denied: u64,
}

#[derive(Serialize)]
struct OriginRow {
    origin: String,
    denied: usize,
}

#[derive(Serialize)]
struct DashboardJson<'a> {
    now: u64,
    interval_seconds: u64,
    buckets: Vec<BucketJson<'a>>,
    routes: Vec<RouteRow<'a>>,
    reasons: Vec<ReasonRow>,
    top_denied_origins: Vec<OriginRow>,
    recent_denials: Vec<DenialEntry>,
    recent_denials_capacity: usize,
    generation: u64,
    reloads: Vec<ReloadRecord>,
    /// The retained report-only differences, newest first; null while there
    /// are none, which keeps the page's section hidden.
    report_only: Option<Vec<DenialEntry>>,
    /// Not produced yet: the page keeps its section hidden while null.
    upstream_health: Option<()>,
}

/// What the page polls: the charts' intervals, the window's totals by route
/// and by reason, the top denied origins and the recent denials (of the
/// denial log), and the configuration generation with its reloads.
pub fn data_json(
    series: &Series,
    metrics: &Metrics,
    denials: &DenialLog,
    reloads: &ReloadHistory,
) -> String {
    let now = unix_now();
    let buckets = series.with_open_interval(&metrics.totals(), now);
    let mut window: BTreeMap<&str, Delta> = BTreeMap::new();
    for bucket in &buckets {
        for (route, delta) in &bucket.routes {
            window.entry(route.as_str()).or_default().add(delta);
        }
    }
    let mut rows: Vec<ReasonRow> = reasons()
        .into_iter()
        .enumerate()
        .map(|(i, reason)| ReasonRow {
            reason,
            denied: window.values().map(|delta| delta.denied[i]).sum(),
        })
        .filter(|row| row.denied > 0)
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.denied));
    let routes = window
        .iter()
        .map(|(route, delta)| RouteRow {
            route,
            requests: delta.requests,
            denied: delta.denied.iter().sum(),
        })
        .collect();
    let (report_only, recent_denials): (Vec<DenialEntry>, Vec<DenialEntry>) = denials
        .entries()
        .into_iter()
        .partition(|entry| entry.report_only);
    let history = reloads.snapshot();
    let data = DashboardJson {
        now,
        interval_seconds: INTERVAL.as_secs(),
        buckets: buckets.iter().map(bucket_json).collect(),
        routes,
        reasons: rows,
        top_denied_origins: top_origins(&recent_denials),
        recent_denials_capacity: denials.capacity(),
        recent_denials,
        generation: history.generation,
        reloads: history.reloads.into_iter().collect(),
        report_only: (!report_only.is_empty()).then_some(report_only),
        upstream_health: None,
    };
    // Strings and integers only: serializing cannot fail.
    serde_json::to_string(&data).unwrap_or_else(|_| String::from("{}"))
}

fn bucket_json(bucket: &Bucket) -> BucketJson<'_> {
    let mut denied = BTreeMap::new();
    for delta in bucket.routes.values() {
        for (reason, count) in reasons().iter().zip(delta.denied) {
            if count > 0 {
                *denied.entry(*reason).or_insert(0) += count;
            }
        }
    }
    BucketJson {
        end: bucket.end,
        requests: bucket
            .routes
            .iter()
            .filter(|(_, delta)| delta.requests > 0)
            .map(|(route, delta)| (route.as_str(), delta.requests))
            .collect(),
        denied,
    }
}

/// The origins denied most often among the retained denials.
fn top_origins(entries: &[DenialEntry]) -> Vec<OriginRow> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for entry in entries {
        *counts.entry(entry.origin.as_str()).or_default() += 1;
    }
    let mut rows: Vec<OriginRow> = counts
        .into_iter()
        .map(|(origin, denied)| OriginRow {
            origin: origin.to_owned(),
            denied,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.denied
            .cmp(&a.denied)
            .then_with(|| a.origin.cmp(&b.origin))
    });
    rows.truncate(TOP_ORIGINS);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(route: &str, requests: u64, origin_denied: u64) -> RouteTotals {
        let mut denied_by_reason = [0; REASON_COUNT];
        denied_by_reason[0] = origin_denied;
        RouteTotals {
            route: route.to_owned(),
            requests,
            denied_by_reason,
        }
    }

    #[test]
    fn buckets_hold_differences_between_samples_and_stay_bounded() {
        let series = Series::default();
        series.sample(vec![totals("/api/", 5, 1)], 100);
        series.sample(vec![totals("/api/", 12, 4), totals("/new/", 2, 0)], 110);
        let buckets = series.with_open_interval(&[totals("/api/", 13, 4)], 115);
        assert_eq!(buckets.len(), 3);
        // The first sample is measured from zero (the process start).
        assert_eq!(buckets[0].routes["/api/"].requests, 5);
        assert_eq!(buckets[1].routes["/api/"].requests, 7);
        assert_eq!(buckets[1].routes["/api/"].denied[0], 3);
        assert_eq!(buckets[1].routes["/new/"].requests, 2);
        assert_eq!(buckets[2].routes["/api/"].requests, 1);
        assert!(
            !buckets[2].routes.contains_key("/new/"),
            "no traffic, no entry"
        );

        for n in 0..(BUCKETS as u64 * 2) {
            series.sample(vec![totals("/api/", 13 + n, 4)], 120 + n * 10);
        }
        assert_eq!(series.with_open_interval(&[], 10_000).len(), BUCKETS + 1);
    }

    #[test]
    fn report_only_differences_have_their_own_section() {
        use crate::ops::denials::{DecisionView, DeniedRequest, DifferingRequest, RecordedRequest};
        use crossgate_cors::Denial;
        let get_api = |origin: &'static [u8]| RecordedRequest {
            origin,
            route: "/api/",
            method: "GET",
            request_id: b"",
        };
        let denials = DenialLog::new(8);
        denials.record(&DeniedRequest {
            request: get_api(b"https://denied.test"),
            denial: &Denial::OriginNotAllowed,
        });
        denials.record_difference(&DifferingRequest {
            request: get_api(b"https://observed.test"),
            reason: "origin_not_allowed",
            enforced: DecisionView {
                policy: Some("current"),
                outcome: "actual_allowed",
                denial: None,
            },
            candidate: DecisionView {
                policy: Some("next"),
                outcome: "actual_denied",
                denial: Some(&Denial::OriginNotAllowed),
            },
        });
        let json: serde_json::Value = serde_json::from_str(&data_json(
            &Series::default(),
            &Metrics::new(),
            &denials,
            &ReloadHistory::new(),
        ))
        .expect("JSON");
        let origins = |key: &str| -> Vec<String> {
            json[key]
                .as_array()
                .expect("array")
                .iter()
                .map(|row| row["origin"].as_str().expect("origin").to_owned())
                .collect()
        };
        assert_eq!(origins("report_only"), ["https://observed.test"]);
        assert_eq!(origins("recent_denials"), ["https://denied.test"]);
        assert_eq!(origins("top_denied_origins"), ["https://denied.test"]);
        assert_eq!(json["report_only"][0]["candidate"]["policy"], "next");
    }

    #[test]
    fn top_origins_are_counted_and_ordered() {
        let entry = |origin: &str| DenialEntry {
            time: 0,
            origin: origin.to_owned(),
            route: "/".to_owned(),
            method: "GET".to_owned(),
            request_id: String::new(),
            reason: "origin_not_allowed",
            message: String::new(),
            report_only: false,
            enforced: None,
            candidate: None,
        };
        let entries: Vec<DenialEntry> = ["b", "a", "b", "c", "a", "b"]
            .iter()
            .map(|o| entry(o))
            .collect();
        let rows = top_origins(&entries);
        let got: Vec<(&str, usize)> = rows.iter().map(|r| (r.origin.as_str(), r.denied)).collect();
        assert_eq!(got, [("b", 3), ("a", 2), ("c", 1)]);
    }

    #[test]
    fn every_asset_is_served_and_others_are_not() {
        assert!(
            asset("/").is_some_and(
                |(ty, body)| ty.starts_with("text/html") && body.contains("dashboard.js")
            )
        );
        assert!(asset("/dashboard.js").is_some());
        assert!(asset("/dashboard.css").is_some());
        assert!(asset("/index.html").is_none());
    }

    #[test]
    fn the_script_never_parses_data_as_html() {
        let (_, script) = asset("/dashboard.js").expect("script");
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!script.contains(sink), "dashboard.js uses {sink}");
        }
    }
}
