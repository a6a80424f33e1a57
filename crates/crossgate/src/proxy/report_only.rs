//! Report-only policies: a route's `report_only_policy` decides on every
//! request beside the enforced `policy`, like CSP's
//! `Content-Security-Policy-Report-Only`, and where the two differ the
//! request is counted (`crossgate_report_only_differences_total`), recorded in
//! `/decisions` with both decisions, and logged within a budget. The
//! candidate's decision is dropped afterwards: it never reaches the response.

use crossgate_cors::{AllowedMethods, Decision, Denial, Outcome};
use http::header::HeaderValue;
use http::{HeaderMap, Method};

use crate::ops::denials::{DecisionView, DenialLog, DifferingRequest, RecordedRequest};
use crate::ops::log_limit::REPORT_ONLY_DIFFERENCE;
use crate::ops::metrics::RouteMetrics;
use crate::proxy::pipeline::client_text;
use crate::proxy::router::NamedPolicy;

/// How the candidate's decision differs from the enforced one, as a browser
/// sees it: whether the request is allowed, and when both deny, why. Allowed
/// answers that differ only in their headers (another `Max-Age`, a longer
/// method list) are not differences: the browser lets the request through
/// either way. Nor is a denial that one policy answers 403
/// (`block_disallowed`) and the other passes undecorated: the script cannot
/// read the response either way, and `crossgate_actual_denied_total` counts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Difference<'d> {
    /// The candidate denies what the enforced policy allows (or, on a route
    /// without `policy`, lets through), or denies it for another reason.
    WouldDeny(&'d Denial),
    /// The candidate allows what the enforced policy denies.
    WouldAllow,
}

/// The difference between two decisions on one request, if any. `enforced`
/// is `None` on a route without `policy`, where the gateway lets every
/// request through. Matches on two outcomes: no allocation.
pub(crate) fn difference<'d>(
    enforced: Option<&Decision>,
    candidate: &'d Decision,
) -> Option<Difference<'d>> {
    match (enforced.and_then(Decision::denial), candidate.denial()) {
        (None, None) => None,
        (Some(_), None) => Some(Difference::WouldAllow),
        (None, Some(denial)) => Some(Difference::WouldDeny(denial)),
        (Some(was), Some(denial)) if was.code() != denial.code() => {
            Some(Difference::WouldDeny(denial))
        }
        (Some(_), Some(_)) => None,
    }
}

/// The request as the record of a difference names it.
pub(crate) struct Observed<'a> {
    pub route: &'a str,
    pub metrics: &'a RouteMetrics,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub origin: Option<&'a HeaderValue>,
    pub request_id: &'a HeaderValue,
}

/// Lets `candidate` decide on the request with the same `resource_methods`
/// the enforced policy had, and records a difference from `enforced`.
/// Allocates only when a difference is recorded and logged.
pub(crate) fn observe(
    candidate: &NamedPolicy,
    enforced: Option<(&NamedPolicy, &Decision)>,
    resource_methods: Option<&AllowedMethods>,
    request: &Observed<'_>,
    denials: &DenialLog,
    log_rate: u32,
) {
    let decision = candidate
        .policy
        .decide_for(request.method, request.headers, resource_methods);
    let Some(difference) = difference(enforced.map(|(_, decision)| decision), &decision) else {
        return;
    };
    let candidate_denial = match difference {
        Difference::WouldDeny(denial) => Some(denial),
        Difference::WouldAllow => None,
    };
    request.metrics.report_only_difference(candidate_denial);
    let reason = candidate_denial.map_or(crate::ops::reasons::WOULD_ALLOW, Denial::code);
    let enforced_view = DecisionView {
        policy: enforced.map(|(named, _)| named.name.as_str()),
        outcome: enforced.map_or(NO_POLICY, |(_, decision)| label(decision.outcome())),
        denial: enforced.and_then(|(_, decision)| decision.denial()),
    };
    let candidate_view = DecisionView {
        policy: Some(candidate.name.as_str()),
        outcome: label(decision.outcome()),
        denial: candidate_denial,
    };
    let record = DifferingRequest {
        request: RecordedRequest {
            origin: request.origin.map_or(&[][..], HeaderValue::as_bytes),
            route: request.route,
            method: request.method.as_str(),
            request_id: request.request_id.as_bytes(),
        },
        reason,
        enforced: enforced_view,
        candidate: candidate_view,
    };
    denials.record_difference(&record);
    if !request
        .metrics
        .log_budget()
        .admit(REPORT_ONLY_DIFFERENCE, log_rate)
    {
        return;
    }
    let origin = request.origin.map_or_else(Default::default, client_text);
    tracing::info!(
        request_id = client_text(request.request_id).as_ref(),
        route = request.route,
        method = request.method.as_str(),
        origin = origin.as_ref(),
        enforced_policy = record.enforced.policy.unwrap_or_default(),
        enforced_outcome = record.enforced.outcome,
        candidate_policy = candidate.name.as_str(),
        candidate_outcome = record.candidate.outcome,
        reason,
        "report-only policy decided otherwise"
    );
}

/// The enforced outcome of a route without a policy.
const NO_POLICY: &str = "none";

/// An outcome's label in `/decisions` and the log.
fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::NotCors => "not_cors",
        Outcome::PreflightAllowed => "preflight_allowed",
        Outcome::PreflightDenied(_) => "preflight_denied",
        Outcome::ActualAllowed => "actual_allowed",
        Outcome::ActualDenied(_) => "actual_denied",
        Outcome::Blocked(_) => "blocked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossgate_cors::{Policy, PolicyConfig};

    fn policy(origins: &[&str], block: bool) -> Policy {
        PolicyConfig::builder()
            .origins(origins.iter().copied())
            .methods(["GET", "PUT"])
            .request_headers(["content-type"])
            .block_disallowed(block)
            .compile()
            .expect("valid policy")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    const A: &str = "https://a.example";
    const B: &str = "https://b.example";

    /// The difference between `enforced` and `candidate` on one request.
    fn compare(
        enforced: &Policy,
        candidate: &Policy,
        method: Method,
        request: &[(&'static str, &'static str)],
    ) -> Option<&'static str> {
        let request = headers(request);
        let enforced = enforced.decide(&method, &request);
        let candidate = candidate.decide(&method, &request);
        difference(Some(&enforced), &candidate).map(|difference| match difference {
            Difference::WouldDeny(denial) => denial.code(),
            Difference::WouldAllow => "would_allow",
        })
    }

    #[test]
    fn differences_are_the_verdict_and_the_denial_reason() {
        let (only_a, only_b) = (policy(&[A], false), policy(&[B], false));
        let get = |origin| [("origin", origin)];
        assert_eq!(
            compare(&only_a, &only_b, Method::GET, &get(A)),
            Some("origin_not_allowed")
        );
        assert_eq!(
            compare(&only_a, &only_b, Method::GET, &get(B)),
            Some("would_allow")
        );
        assert_eq!(
            compare(&only_a, &only_b, Method::GET, &[]),
            None,
            "not CORS: neither policy decides"
        );
        // Both deny the origin, one with 403: the script sees the same.
        let blocking = policy(&[B], true);
        assert_eq!(
            compare(&only_a, &blocking, Method::GET, &get("https://c.example")),
            None
        );
        // Both deny, for different reasons: the candidate's is counted.
        let default_methods = PolicyConfig::builder()
            .origins([A])
            .compile()
            .expect("valid policy");
        let put_from = |origin| [("origin", origin), ("access-control-request-method", "PUT")];
        assert_eq!(
            compare(&only_b, &default_methods, Method::OPTIONS, &put_from(A)),
            Some("method_not_allowed")
        );
        assert_eq!(
            compare(&default_methods, &only_a, Method::OPTIONS, &put_from(B)),
            None,
            "both deny the origin"
        );
    }

    #[test]
    fn without_an_enforced_policy_only_denials_differ() {
        let candidate = policy(&[A], false);
        let allowed = candidate.decide(&Method::GET, &headers(&[("origin", A)]));
        assert_eq!(difference(None, &allowed), None);
        let denied = candidate.decide(&Method::GET, &headers(&[("origin", B)]));
        assert_eq!(
            difference(None, &denied),
            Some(Difference::WouldDeny(&Denial::OriginNotAllowed))
        );
    }
}
