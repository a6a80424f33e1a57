//! The most recent CORS denials, for `/decisions`, and the requests on which
//! a route's report-only policy decided otherwise (marked `report_only`, with
//! both decisions).
//!
//! A fixed ring of slots, each with inline fixed-size fields, allocated once.
//! Recording a denial claims the next slot with one atomic increment and
//! copies (truncated) bytes into it under that slot's own lock, so memory stays
//! bounded whatever clients send, and concurrent denials rarely contend.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crossgate_cors::Denial;
use serde::Serialize;

const ORIGIN_MAX: usize = 256;
const ROUTE_MAX: usize = 128;
const METHOD_MAX: usize = 32;
const REQUEST_ID_MAX: usize = 128;
const MESSAGE_MAX: usize = 256;
/// Policy names are at most 64 bytes (`is_valid_name`).
const POLICY_MAX: usize = 64;

/// Marks a field that was cut to fit its slot.
const TRUNCATION_MARK: &str = "…";

/// The request an entry is about, as the gateway saw it on the request path:
/// what a denial and a report-only difference record alike.
pub struct RecordedRequest<'a> {
    /// The raw `Origin` header value.
    pub origin: &'a [u8],
    /// The matched route's path, or [`crate::ops::metrics::NO_ROUTE_LABEL`].
    pub route: &'a str,
    /// The request's method as received.
    pub method: &'a str,
    /// The request id the gateway logged and sent upstream with it.
    pub request_id: &'a [u8],
}

/// One denied CORS decision.
pub struct DeniedRequest<'a> {
    /// The request denied.
    pub request: RecordedRequest<'a>,
    /// Why the engine denied it.
    pub denial: &'a Denial,
}

/// A request on which a route's report-only policy decided otherwise than
/// its enforced policy.
pub struct DifferingRequest<'a> {
    /// The request, on a matched route.
    pub request: RecordedRequest<'a>,
    /// The difference's metrics reason: the candidate's denial code, or `would_allow`.
    pub reason: &'static str,
    /// What answered the request.
    pub enforced: DecisionView<'a>,
    /// What the report-only policy would have answered.
    pub candidate: DecisionView<'a>,
}

/// One policy's decision, as `/decisions` shows it.
pub struct DecisionView<'a> {
    /// The policy's name; `None` when the route enforces no policy.
    pub policy: Option<&'a str>,
    /// The outcome's label, e.g. `preflight_denied`; `none` without a policy.
    pub outcome: &'static str,
    /// Why it denied, if it did.
    pub denial: Option<&'a Denial>,
}

/// A field stored inline, cut at `N` bytes.
struct InlineText<const N: usize> {
    bytes: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> InlineText<N> {
    const fn new() -> Self {
        InlineText {
            bytes: [0; N],
            len: 0,
            truncated: false,
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }

    fn set_bytes(&mut self, value: &[u8]) {
        self.clear();
        self.push_bytes(value);
    }

    /// Copies what fits. Cutting inside a UTF-8 sequence is harmless: the
    /// reader decodes lossily.
    fn push_bytes(&mut self, value: &[u8]) {
        let room = N - self.len;
        let taken = value.len().min(room);
        self.bytes[self.len..self.len + taken].copy_from_slice(&value[..taken]);
        self.len += taken;
        if taken < value.len() {
            self.truncated = true;
        }
    }

    fn to_display_string(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes[..self.len]).into_owned();
        if self.truncated {
            text.push_str(TRUNCATION_MARK);
        }
        text
    }
}

impl<const N: usize> fmt::Write for InlineText<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Never an error: a long message is cut, not refused.
        self.push_bytes(text.as_bytes());
        Ok(())
    }
}

/// One decision of a report-only difference, stored inline.
struct DecisionSlot {
    /// Meaningful when `has_policy`.
    policy: InlineText<POLICY_MAX>,
    has_policy: bool,
    outcome: &'static str,
    reason: Option<&'static str>,
    message: InlineText<MESSAGE_MAX>,
}

impl DecisionSlot {
    const fn empty() -> DecisionSlot {
        DecisionSlot {
            policy: InlineText::new(),
            has_policy: false,
            outcome: "",
            reason: None,
            message: InlineText::new(),
        }
    }

    fn set(&mut self, view: &DecisionView<'_>) {
        self.has_policy = view.policy.is_some();
        self.policy
            .set_bytes(view.policy.unwrap_or_default().as_bytes());
        self.outcome = view.outcome;
        self.reason = view.denial.map(Denial::code);
        self.message.clear();
        if let Some(denial) = view.denial {
            let _ = fmt::Write::write_fmt(&mut self.message, format_args!("{denial}"));
        }
    }

    fn to_entry(&self) -> DecisionEntry {
        DecisionEntry {
            policy: self.has_policy.then(|| self.policy.to_display_string()),
            outcome: self.outcome,
            reason: self.reason,
            message: self.reason.map(|_| self.message.to_display_string()),
        }
    }
}

struct Slot {
    /// 0 = never written; otherwise the record's sequence number (1-based).
    sequence: u64,
    unix_time: u64,
    origin: InlineText<ORIGIN_MAX>,
    route: InlineText<ROUTE_MAX>,
    method: InlineText<METHOD_MAX>,
    request_id: InlineText<REQUEST_ID_MAX>,
    reason: &'static str,
    message: InlineText<MESSAGE_MAX>,
    /// A report-only difference, whose two decisions follow.
    report_only: bool,
    enforced: DecisionSlot,
    candidate: DecisionSlot,
}

impl Slot {
    const fn empty() -> Slot {
        Slot {
            sequence: 0,
            unix_time: 0,
            origin: InlineText::new(),
            route: InlineText::new(),
            method: InlineText::new(),
            request_id: InlineText::new(),
            reason: "",
            message: InlineText::new(),
            report_only: false,
            enforced: DecisionSlot::empty(),
            candidate: DecisionSlot::empty(),
        }
    }

    /// Fills what every entry has: the request, its reason, and an empty message.
    fn set_request(&mut self, request: &RecordedRequest<'_>, reason: &'static str) {
        self.origin.set_bytes(request.origin);
        self.route.set_bytes(request.route.as_bytes());
        self.method.set_bytes(request.method.as_bytes());
        self.request_id.set_bytes(request.request_id);
        self.reason = reason;
        self.message.clear();
    }
}

/// One retained denial, as `/decisions` and the dashboard show it.
#[derive(Debug, Clone, Serialize)]
pub struct DenialEntry {
    /// Unix seconds.
    pub time: u64,
    /// The `Origin` header, decoded lossily, cut to a bound.
    pub origin: String,
    /// The route path.
    pub route: String,
    /// The request method.
    pub method: String,
    /// The request id.
    pub request_id: String,
    /// The engine's reason code.
    pub reason: &'static str,
    /// The engine's explanation.
    pub message: String,
    /// Whether this is a report-only difference rather than a denial: the
    /// request was answered by `enforced`; `candidate` would have decided
    /// otherwise, for `reason`.
    pub report_only: bool,
    /// The enforced policy's decision (report-only entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced: Option<DecisionEntry>,
    /// The report-only policy's decision (report-only entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<DecisionEntry>,
}

/// One policy's decision in a report-only entry.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionEntry {
    /// The policy's name; `null` when the route enforces none.
    pub policy: Option<String>,
    /// `not_cors`, `preflight_allowed`, `preflight_denied`, `actual_allowed`,
    /// `actual_denied`, `blocked`, or `none` without a policy.
    pub outcome: &'static str,
    /// The denial's reason code, when it denied.
    pub reason: Option<&'static str>,
    /// The denial's explanation, when it denied.
    pub message: Option<String>,
}

#[derive(Serialize)]
struct DecisionsJson {
    capacity: usize,
    denials: Vec<DenialEntry>,
}

/// A bounded log of the most recent CORS denials.
pub struct DenialLog {
    slots: Box<[Mutex<Slot>]>,
    recorded: AtomicU64,
}

impl DenialLog {
    /// The capacity the gateway uses.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// Creates a log that keeps the last `capacity` denials (at least one).
    pub fn new(capacity: usize) -> DenialLog {
        let slots = (0..capacity.max(1))
            .map(|_| Mutex::new(Slot::empty()))
            .collect();
        DenialLog {
            slots,
            recorded: AtomicU64::new(0),
        }
    }

    /// Records a denial, overwriting the oldest when full. Does not allocate.
    pub fn record(&self, denied: &DeniedRequest<'_>) {
        self.write(|slot| {
            slot.set_request(&denied.request, denied.denial.code());
            let _ = fmt::Write::write_fmt(&mut slot.message, format_args!("{}", denied.denial));
            slot.report_only = false;
        });
    }

    /// Records a report-only difference in the same ring as the denials.
    /// Does not allocate.
    pub fn record_difference(&self, difference: &DifferingRequest<'_>) {
        self.write(|slot| {
            slot.set_request(&difference.request, difference.reason);
            let candidate = difference.candidate.policy.unwrap_or_default();
            let _ = match difference.candidate.denial {
                Some(denial) => fmt::Write::write_fmt(
                    &mut slot.message,
                    format_args!("report-only policy `{candidate}` would deny: {denial}"),
                ),
                None => fmt::Write::write_fmt(
                    &mut slot.message,
                    format_args!("report-only policy `{candidate}` would allow"),
                ),
            };
            slot.report_only = true;
            slot.enforced.set(&difference.enforced);
            slot.candidate.set(&difference.candidate);
        });
    }

    /// Claims the next slot, overwriting the oldest, and fills it.
    fn write(&self, fill: impl FnOnce(&mut Slot)) {
        let sequence = self.recorded.fetch_add(1, Ordering::Relaxed) + 1;
        let index = ((sequence - 1) % self.slots.len() as u64) as usize;
        // Slot contents are plain bytes; a panic mid-write leaves at worst a
        // garbled entry, so a poisoned slot is still usable.
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A writer that lagged a full lap behind must not replace a newer entry.
        if slot.sequence > sequence {
            return;
        }
        slot.sequence = sequence;
        slot.unix_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs())
            .unwrap_or(0);
        fill(&mut slot);
    }

    /// The retained denials as JSON, newest first:
    /// `{"capacity":N,"denials":[{"time","origin","route","method","request_id","reason","message","report_only"}]}`,
    /// a report-only entry with `enforced` and `candidate`
    /// (`{"policy","outcome","reason","message"}`) besides.
    pub fn to_json(&self) -> String {
        let decisions = DecisionsJson {
            capacity: self.slots.len(),
            denials: self.entries(),
        };
        // Serializing plain strings and integers cannot fail.
        serde_json::to_string(&decisions).unwrap_or_else(|_| String::from("{}"))
    }

    /// How many denials are retained.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The retained denials, newest first.
    pub fn entries(&self) -> Vec<DenialEntry> {
        let mut entries: Vec<(u64, DenialEntry)> = self
            .slots
            .iter()
            .filter_map(|slot| {
                let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
                (slot.sequence != 0).then(|| {
                    (
                        slot.sequence,
                        DenialEntry {
                            time: slot.unix_time,
                            origin: slot.origin.to_display_string(),
                            route: slot.route.to_display_string(),
                            method: slot.method.to_display_string(),
                            request_id: slot.request_id.to_display_string(),
                            reason: slot.reason,
                            message: slot.message.to_display_string(),
                            report_only: slot.report_only,
                            enforced: slot.report_only.then(|| slot.enforced.to_entry()),
                            candidate: slot.report_only.then(|| slot.candidate.to_entry()),
                        },
                    )
                })
            })
            .collect();
        entries.sort_unstable_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
        entries.into_iter().map(|(_, entry)| entry).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn record(log: &DenialLog, origin: &[u8], denial: &Denial) {
        log.record(&DeniedRequest {
            request: RecordedRequest {
                origin,
                route: "/api/",
                method: "OPTIONS",
                request_id: b"req-1",
            },
            denial,
        });
    }

    fn denials(log: &DenialLog) -> Vec<Value> {
        let json: Value = serde_json::from_str(&log.to_json()).expect("valid JSON");
        json["denials"].as_array().expect("denials array").clone()
    }

    #[test]
    fn empty_log_is_an_empty_list() {
        let log = DenialLog::new(4);
        let json: Value = serde_json::from_str(&log.to_json()).expect("valid JSON");
        assert_eq!(json["capacity"], 4);
        assert_eq!(json["denials"], Value::Array(Vec::new()));
    }

    #[test]
    fn entries_carry_every_field_newest_first() {
        let log = DenialLog::new(8);
        record(&log, b"https://first.test", &Denial::OriginNotAllowed);
        record(
            &log,
            b"https://second.test",
            &Denial::PrivateNetworkNotAllowed,
        );
        let entries = denials(&log);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["origin"], "https://second.test");
        assert_eq!(entries[0]["reason"], "private_network_not_allowed");
        assert_eq!(
            entries[0]["message"],
            Denial::PrivateNetworkNotAllowed.to_string().as_str()
        );
        assert_eq!(entries[1]["origin"], "https://first.test");
        assert_eq!(entries[1]["route"], "/api/");
        assert_eq!(entries[1]["method"], "OPTIONS");
        assert_eq!(entries[1]["request_id"], "req-1");
        assert_eq!(entries[1]["reason"], "origin_not_allowed");
        let time = entries[1]["time"].as_u64().expect("unix time");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        assert!(time <= now && now - time < 60, "time {time} vs now {now}");
    }

    #[test]
    fn ring_keeps_only_the_most_recent_entries() {
        let log = DenialLog::new(3);
        for n in 0..10 {
            record(
                &log,
                format!("https://o{n}.test").as_bytes(),
                &Denial::OriginNotAllowed,
            );
        }
        let origins: Vec<_> = denials(&log)
            .iter()
            .map(|entry| entry["origin"].as_str().expect("origin").to_owned())
            .collect();
        assert_eq!(
            origins,
            ["https://o9.test", "https://o8.test", "https://o7.test"]
        );
    }

    #[test]
    fn huge_fields_are_truncated_and_marked() {
        let log = DenialLog::new(2);
        let huge_origin = format!("https://{}.test", "a".repeat(100_000));
        log.record(&DeniedRequest {
            request: RecordedRequest {
                origin: huge_origin.as_bytes(),
                route: &"/r".repeat(10_000),
                method: &"M".repeat(10_000),
                request_id: "i".repeat(10_000).as_bytes(),
            },
            denial: &Denial::OriginNotAllowed,
        });
        let entry = &denials(&log)[0];
        let origin = entry["origin"].as_str().expect("origin");
        assert!(origin.starts_with("https://aaa"));
        assert!(origin.ends_with(TRUNCATION_MARK));
        assert_eq!(origin.len(), ORIGIN_MAX + TRUNCATION_MARK.len());
        assert_eq!(
            entry["route"].as_str().expect("route").len(),
            ROUTE_MAX + TRUNCATION_MARK.len()
        );
        assert_eq!(
            entry["method"].as_str().expect("method").len(),
            METHOD_MAX + TRUNCATION_MARK.len()
        );
        assert_eq!(
            entry["request_id"].as_str().expect("request id").len(),
            REQUEST_ID_MAX + TRUNCATION_MARK.len()
        );
        assert!(log.to_json().len() < 4096);
    }

    #[test]
    fn non_utf8_origin_bytes_are_rendered_lossily() {
        let log = DenialLog::new(1);
        record(&log, b"https://\xff\xfe.test", &Denial::OriginNotAllowed);
        let entry = &denials(&log)[0];
        assert_eq!(entry["origin"], "https://\u{fffd}\u{fffd}.test");
    }

    #[test]
    fn differences_share_the_ring_with_both_decisions() {
        let log = DenialLog::new(2);
        let difference = |origin: &'static str, enforced: Option<&'static str>| DifferingRequest {
            request: RecordedRequest {
                origin: origin.as_bytes(),
                route: "/api/",
                method: "GET",
                request_id: b"req-2",
            },
            reason: "origin_not_allowed",
            enforced: DecisionView {
                policy: enforced,
                outcome: if enforced.is_some() {
                    "actual_allowed"
                } else {
                    "none"
                },
                denial: None,
            },
            candidate: DecisionView {
                policy: Some("next"),
                outcome: "actual_denied",
                denial: Some(&Denial::OriginNotAllowed),
            },
        };
        log.record_difference(&difference("https://a.test", Some("current")));
        record(&log, b"https://b.test", &Denial::OriginNotAllowed);
        let entries = denials(&log);
        assert_eq!(entries[0]["report_only"], false);
        assert!(entries[0].get("enforced").is_none());
        let entry = &entries[1];
        assert_eq!(entry["report_only"], true);
        assert_eq!(entry["reason"], "origin_not_allowed");
        assert_eq!(
            entry["message"],
            "report-only policy `next` would deny: origin not allowed"
        );
        assert_eq!(
            entry["enforced"],
            serde_json::json!({"policy": "current", "outcome": "actual_allowed", "reason": null, "message": null})
        );
        assert_eq!(
            entry["candidate"],
            serde_json::json!({"policy": "next", "outcome": "actual_denied",
                "reason": "origin_not_allowed", "message": "origin not allowed"})
        );
        // The slot of the first difference is reused by a denial, which
        // loses its report-only fields; the denial's slot by a difference
        // without an enforced policy, which keeps no policy name.
        record(&log, b"https://d.test", &Denial::OriginNotAllowed);
        log.record_difference(&difference("https://c.test", None));
        let entries = denials(&log);
        assert_eq!(entries[1]["origin"], "https://d.test");
        assert_eq!(entries[1]["report_only"], false);
        assert!(entries[1].get("candidate").is_none());
        assert_eq!(entries[0]["enforced"]["policy"], Value::Null);
        assert_eq!(entries[0]["enforced"]["outcome"], "none");
    }

    #[test]
    fn concurrent_recording_stays_bounded_and_ordered() {
        let log = std::sync::Arc::new(DenialLog::new(16));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for n in 0..1_000 {
                        record(
                            &log,
                            format!("https://t{thread}-{n}.test").as_bytes(),
                            &Denial::OriginNotAllowed,
                        );
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("recording thread");
        }
        assert_eq!(denials(&log).len(), 16);
        assert_eq!(log.recorded.load(Ordering::Relaxed), 4_000);
    }
}
