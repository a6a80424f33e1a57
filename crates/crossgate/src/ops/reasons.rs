//! The reason codes counted and budgeted apart, each list taken from its
//! source: the engine's `Denial::code()`s, and the codes of the requests for
//! an upstream that the gateway answered itself. [`super::metrics`] labels
//! its counters with them and [`super::log_limit`] keeps a budget for each.

use std::sync::LazyLock;

use crossgate_cors::{Denial, Malformed, TokenText};

/// One denial of each kind the engine has, in label order. The labels are
/// their `Denial::code()`s, so the engine holds the only copy of the codes;
/// a kind the engine adds later is counted under `other` rather than dropped.
pub(crate) static DENIAL_KINDS: LazyLock<[Denial; REASON_COUNT - 1]> = LazyLock::new(|| {
    [
        Denial::OriginNotAllowed,
        Denial::MethodNotAllowed(TokenText::new(b"")),
        Denial::HeaderNotAllowed(TokenText::new(b"")),
        Denial::PrivateNetworkNotAllowed,
        Denial::Malformed(Malformed::SeveralOrigins),
        Denial::WebSocketOriginNotAllowed,
    ]
});

/// How many denial reasons are counted apart: the engine's kinds and `other`.
pub const REASON_COUNT: usize = 7;

/// The denial reason labels, in counter order: the engine's codes, then `other`.
pub fn reasons() -> [&'static str; REASON_COUNT] {
    let mut labels = ["other"; REASON_COUNT];
    for (label, kind) in labels.iter_mut().zip(DENIAL_KINDS.iter()) {
        *label = kind.code();
    }
    labels
}

/// The reason a report-only difference is counted under when the candidate
/// policy would allow what the enforced one denies; when it would deny, the
/// reason is its denial's code.
pub const WOULD_ALLOW: &str = "would_allow";

/// How many report-only difference reasons are counted apart: the
/// candidate's denial reasons, then [`WOULD_ALLOW`].
pub const DIFFERENCE_REASON_COUNT: usize = REASON_COUNT + 1;

/// The report-only difference labels, in counter order.
pub fn difference_reasons() -> [&'static str; DIFFERENCE_REASON_COUNT] {
    let mut labels = [WOULD_ALLOW; DIFFERENCE_REASON_COUNT];
    labels[..REASON_COUNT].copy_from_slice(&reasons());
    labels
}

/// The reason codes of requests for an upstream that the gateway answered
/// itself (`UpstreamError::code()` plus `upstream_busy`), with whose fault
/// each is: the client's (4xx), the upstream's, or the gateway's own limit.
pub const UPSTREAM_ERRORS: [(&str, &str); UPSTREAM_ERROR_COUNT] = [
    ("malformed_request_body", "client"),
    ("body_too_large", "client"),
    ("upstream_busy", "gateway"),
    ("bad_upstream_request", "gateway"),
    ("upstream_timeout", "upstream"),
    ("upstream_unreachable", "upstream"),
    ("upstream_bad_framing", "upstream"),
    ("no_healthy_upstream", "upstream"),
];

/// How many upstream error reasons are counted (and budgeted) apart.
pub const UPSTREAM_ERROR_COUNT: usize = 8;

/// The reason codes of [`UPSTREAM_ERRORS`].
pub fn upstream_error_codes() -> impl Iterator<Item = &'static str> {
    UPSTREAM_ERRORS.iter().map(|(code, _)| *code)
}

/// The index of `denial`'s kind in [`reasons`]; `other` for a kind the
/// engine added later.
pub fn reason_index(denial: &Denial) -> usize {
    let kind = std::mem::discriminant(denial);
    DENIAL_KINDS
        .iter()
        .position(|known| std::mem::discriminant(known) == kind)
        .unwrap_or(REASON_COUNT - 1)
}
