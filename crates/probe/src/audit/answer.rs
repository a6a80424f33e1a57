//! What one response says about CORS, and what the audit learns across
//! responses (`Vary`, wildcard with credentials, several allowed origins).

use super::findings::{finding, Finding, FindingClass, Severity};
use crate::exchange::Exchange;

/// What a response says about CORS.
pub(super) struct CorsAnswer<'a> {
    pub(super) exchange: Exchange,
    pub(super) origin: &'a str,
}

impl CorsAnswer<'_> {
    /// The `Access-Control-Allow-Origin` value a browser reads: the fields
    /// combined with `, ` as Fetch's "get" does, compared byte for byte.
    pub(super) fn allow_origin(&self) -> Option<Vec<u8>> {
        let mut fields = self
            .exchange
            .response_headers
            .get_all(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .iter();
        let mut combined = fields.next()?.as_bytes().to_vec();
        for field in fields {
            combined.extend_from_slice(b", ");
            combined.extend_from_slice(field.as_bytes());
        }
        Some(combined)
    }

    /// Several origins where browsers want one: repeated fields, or one field
    /// listing several (a comma that is not part of the probe origin itself).
    /// Browsers refuse both.
    pub(super) fn multiple_allow_origin(&self) -> bool {
        let fields = self
            .exchange
            .response_headers
            .get_all(http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .iter()
            .count();
        fields > 1 || (!self.accepted() && self.allow_origin().is_some_and(|v| v.contains(&b',')))
    }

    pub(super) fn accepted(&self) -> bool {
        self.allow_origin().as_deref() == Some(self.origin.as_bytes())
    }

    /// A finding of `class` proved by this answer to this probe origin.
    pub(super) fn finding(&self, class: FindingClass, severity: Severity) -> Finding {
        finding(class, severity, &self.exchange, self.origin)
    }

    pub(super) fn credentials(&self) -> bool {
        self.exchange
            .response_headers
            .get(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_some_and(|v| v.as_bytes() == b"true")
    }

    fn wildcard_with_credentials(&self) -> bool {
        self.allow_origin().as_deref() == Some(b"*") && self.credentials()
    }

    fn varies_on_origin(&self) -> bool {
        self.exchange
            .response_headers
            .get_all(http::header::VARY)
            .iter()
            .any(|v| {
                v.as_bytes()
                    .split(|&b| b == b',')
                    .map(|item| item.trim_ascii())
                    .any(|item| item.eq_ignore_ascii_case(b"origin") || item == b"*")
            })
    }
}

/// The CORS headers of an answer, to tell whether the answer depends on the Origin.
fn cors_headers(exchange: &Exchange) -> Vec<(String, Vec<u8>)> {
    exchange
        .response_headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("access-control-"))
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

/// What the audit learns across probes, besides origin acceptance.
#[derive(Default)]
pub(super) struct Observed {
    /// The distinct CORS header sets seen, the no-Origin answer included.
    cors_answers: Vec<Vec<(String, Vec<u8>)>>,
    /// The first echoed origin without `Vary: Origin`.
    unvaried_echo: Option<Finding>,
    wildcard_with_credentials: bool,
    multiple_allow_origin: bool,
}

impl Observed {
    pub(super) fn note_answer(&mut self, exchange: &Exchange) {
        let headers = cors_headers(exchange);
        if !self.cors_answers.contains(&headers) {
            self.cors_answers.push(headers);
        }
    }

    pub(super) fn note(&mut self, answer: &CorsAnswer<'_>, findings: &mut Vec<Finding>) {
        self.note_answer(&answer.exchange);
        if self.unvaried_echo.is_none() && answer.accepted() && !answer.varies_on_origin() {
            self.unvaried_echo =
                Some(answer.finding(FindingClass::MissingVaryOrigin, Severity::Medium));
        }
        if !self.wildcard_with_credentials && answer.wildcard_with_credentials() {
            self.wildcard_with_credentials = true;
            findings.push(answer.finding(FindingClass::WildcardWithCredentials, Severity::Medium));
        }
        if !self.multiple_allow_origin && answer.multiple_allow_origin() {
            self.multiple_allow_origin = true;
            findings.push(answer.finding(FindingClass::MultipleAllowOrigin, Severity::Low));
        }
    }

    /// A missing `Vary: Origin` matters only when the CORS answer really
    /// changes with the Origin (or its absence); a static answer is safe to cache.
    pub(super) fn missing_vary(self) -> Option<Finding> {
        if self.cors_answers.len() > 1 {
            self.unvaried_echo
        } else {
            None
        }
    }
}
