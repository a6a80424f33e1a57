//! `/metrics`: the registry rendered in the Prometheus text exposition
//! format 0.0.4. Runs only when scraped, never on the request path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    handshake_index, Metrics, RouteMetrics, TargetMetrics, LATENCY_BUCKETS_MICROS, STATUS_MIN,
    STATUS_SLOTS,
};
use crate::ops::reasons::{difference_reasons, reasons, UPSTREAM_ERRORS};
use crate::proxy::upgrade::Handshake;

impl Metrics {
    /// Renders every metric in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let routes: Vec<(String, RouteMetrics)> = self
            .routes()
            .into_iter()
            .map(|(path, metrics)| (escape_label(&path), metrics))
            .collect();
        let status_codes: Vec<String> = (0..STATUS_SLOTS).map(status_label).collect();
        let reasons = reason_labels(&reasons());
        let upstream_errors: Vec<String> = UPSTREAM_ERRORS
            .iter()
            .map(|(reason, fault)| format!("reason=\"{reason}\",fault=\"{fault}\""))
            .collect();

        let mut out = String::with_capacity(1024 + routes.len() * 1024);
        render_labelled(
            &mut out,
            &routes,
            LabelledFamily {
                name: "crossgate_requests_total",
                help: "Responses sent to clients, by route and HTTP status code.",
                labels: &status_codes,
                counters: |metrics| &metrics.0.responses,
            },
        );
        render_per_route(
            &mut out,
            &routes,
            (
                "crossgate_preflights_allowed_total",
                "counter",
                "CORS preflights answered as allowed, by route.",
            ),
            |metrics| &metrics.0.preflights_allowed,
        );
        render_labelled(
            &mut out,
            &routes,
            LabelledFamily {
                name: "crossgate_preflights_denied_total",
                help: "CORS preflights denied, by route and reason.",
                labels: &reasons,
                counters: |metrics| &metrics.0.preflights_denied,
            },
        );
        render_labelled(
            &mut out,
            &routes,
            LabelledFamily {
                name: "crossgate_actual_denied_total",
                help: "Cross-origin actual requests from disallowed origins (undecorated or blocked), by route and reason.",
                labels: &reasons,
                counters: |metrics| &metrics.0.actual_denied,
            },
        );
        render_latency(&mut out, &routes);
        render_labelled(
            &mut out,
            &routes,
            LabelledFamily {
                name: "crossgate_upstream_errors_total",
                help: "Requests for an upstream that the gateway answered itself, by route, reason and whose fault it was (client, upstream, gateway).",
                labels: &upstream_errors,
                counters: |metrics| &metrics.0.upstream_errors,
            },
        );
        render_targets(&mut out, &self.targets());
        render_websocket_upgrades(&mut out, &routes);
        render_per_route(
            &mut out,
            &routes,
            (
                "crossgate_websocket_tunnels_open",
                "gauge",
                "WebSocket tunnels open now, by route.",
            ),
            |metrics| &metrics.0.websocket_active,
        );
        render_labelled(
            &mut out,
            &routes,
            LabelledFamily {
                name: "crossgate_report_only_differences_total",
                help: "Requests on which a route's report_only_policy decided otherwise than its enforced policy, by route and reason (the candidate's denial, or would_allow).",
                labels: &reason_labels(&difference_reasons()),
                counters: |metrics| &metrics.0.report_only_differences,
            },
        );
        header(
            &mut out,
            "crossgate_config_reloads_total",
            "counter",
            "Configuration reloads, by result (failed: the running config was kept).",
        );
        let ok = self.reloads_ok.load(Ordering::Relaxed);
        let failed = self.reloads_failed.load(Ordering::Relaxed);
        // Writing to a String cannot fail; the fmt::Result is ignored on purpose here and below.
        let _ = writeln!(out, "crossgate_config_reloads_total{{result=\"ok\"}} {ok}");
        let _ = writeln!(
            out,
            "crossgate_config_reloads_total{{result=\"failed\"}} {failed}"
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The `code` label of a status slot; the last slot holds every unusual code.
fn status_label(index: usize) -> String {
    if index == STATUS_SLOTS - 1 {
        "code=\"other\"".to_owned()
    } else {
        format!("code=\"{}\"", usize::from(STATUS_MIN) + index)
    }
}

fn reason_labels(reasons: &[&str]) -> Vec<String> {
    reasons
        .iter()
        .map(|reason| format!("reason=\"{reason}\""))
        .collect()
}

/// A counter family with one sample per route and label.
struct LabelledFamily<'a> {
    name: &'static str,
    help: &'static str,
    /// The labels after `route`, one per counter of a route.
    labels: &'a [String],
    counters: fn(&RouteMetrics) -> &[AtomicU64],
}

/// One sample line per counter that is not zero: `name{route="…",label} count`.
fn render_labelled(
    out: &mut String,
    routes: &[(String, RouteMetrics)],
    family: LabelledFamily<'_>,
) {
    let name = family.name;
    header(out, name, "counter", family.help);
    for (route, metrics) in routes {
        for (label, counter) in family.labels.iter().zip((family.counters)(metrics)) {
            let count = counter.load(Ordering::Relaxed);
            if count != 0 {
                let _ = writeln!(out, "{name}{{route=\"{route}\",{label}}} {count}");
            }
        }
    }
}

/// One sample line per route, zero or not: `name{route="…"} value`.
fn render_per_route(
    out: &mut String,
    routes: &[(String, RouteMetrics)],
    (name, kind, help): (&str, &str, &str),
    value: fn(&RouteMetrics) -> &AtomicU64,
) {
    header(out, name, kind, help);
    for (route, metrics) in routes {
        let value = value(metrics).load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}{{route=\"{route}\"}} {value}");
    }
}

fn render_websocket_upgrades(out: &mut String, routes: &[(String, RouteMetrics)]) {
    let name = "crossgate_websocket_upgrades_total";
    header(
        out,
        name,
        "counter",
        "WebSocket handshakes the upstream accepted, by route and handshake (http1: Upgrade, http2: extended CONNECT).",
    );
    for (route, metrics) in routes {
        for handshake in Handshake::ALL {
            let count =
                metrics.0.websocket_upgrades[handshake_index(handshake)].load(Ordering::Relaxed);
            let label = handshake.label();
            let _ = writeln!(
                out,
                "{name}{{route=\"{route}\",handshake=\"{label}\"}} {count}"
            );
        }
    }
}

/// A per-target family: name, type, help, and its counter in [`TargetMetrics`].
type TargetFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TargetMetrics) -> &AtomicU64,
);

fn render_targets(out: &mut String, targets: &[((String, String), TargetMetrics)]) {
    let families: [TargetFamily; 4] = [
        (
            "crossgate_upstream_target_requests_total",
            "counter",
            "Requests sent to a target of an upstream pool, retries included, by route and target.",
            |metrics| &metrics.0.requests,
        ),
        (
            "crossgate_upstream_target_failures_total",
            "counter",
            "Requests to a pool target that got no usable answer (no connection, timeout, refused framing), by route and target.",
            |metrics| &metrics.0.failures,
        ),
        (
            "crossgate_upstream_target_ejections_total",
            "counter",
            "Times passive health took a pool target out of rotation, by route and target.",
            |metrics| &metrics.0.ejections,
        ),
        (
            "crossgate_upstream_target_healthy",
            "gauge",
            "1 while a pool target is in rotation, 0 while it is ejected or failing its health checks.",
            |metrics| &metrics.0.healthy,
        ),
    ];
    for (name, kind, help, counter) in families {
        header(out, name, kind, help);
        for ((route, target), metrics) in targets {
            let value = counter(metrics).load(Ordering::Relaxed);
            let (route, target) = (escape_label(route), escape_label(target));
            let _ = writeln!(
                out,
                "{name}{{route=\"{route}\",target=\"{target}\"}} {value}"
            );
        }
    }
}

fn render_latency(out: &mut String, routes: &[(String, RouteMetrics)]) {
    let name = "crossgate_upstream_latency_seconds";
    header(
        out,
        name,
        "histogram",
        "Time from sending a request upstream to receiving its response head, by route.",
    );
    for (route, metrics) in routes {
        let counters = &metrics.0;
        // Loaded once so the buckets, the +Inf bucket and _count agree.
        let counts: Vec<u64> = counters
            .latency_buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            continue;
        }
        let mut cumulative = 0u64;
        for (bound, count) in LATENCY_BUCKETS_MICROS.iter().zip(&counts) {
            cumulative += count;
            let seconds = *bound as f64 / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"{seconds}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {total}"
        );
        let sum = counters.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {total}");
    }
}

/// Escapes a label value as the text format requires (backslash, quote, newline).
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}
