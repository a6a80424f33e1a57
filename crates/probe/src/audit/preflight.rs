//! The preflight probes, judged by the browser model: a finding only where
//! Chromium would let the preflight pass.

use crossgate_cors::browser::{self, CorsRequest, CredentialsMode, Engine};
use http::{HeaderValue, Method, Uri};

use super::findings::{finding, Finding, FindingClass, Severity};
use super::origins::Trusted;
use super::{probe_headers, AuditError};
use crate::exchange::{Exchange, Prober};

/// The method and header a sane preflight policy never allows.
const PROBE_METHOD: &str = "CROSSGATE-PROBE";
const PROBE_HEADER: &str = "x-crossgate-probe";

/// Whether a browser would pass this preflight answer for a request from
/// `origin` with `method` (and `header`, if any), judged by the browser model.
pub(super) fn preflight_passes(
    origin: &str,
    method: &str,
    header: Option<&str>,
    credentials: CredentialsMode,
    exchange: &Exchange,
) -> bool {
    // Judged as the default engine judges it: a preflight finding stands only
    // where Chromium would let the preflight pass.
    let request = CorsRequest::new(origin, method, credentials)
        .map(|r| r.in_engine(Engine::Chromium))
        .and_then(|r| match header {
            Some(name) => r.with_header(name, "1"),
            None => Ok(r),
        });
    match request {
        Ok(request) => {
            browser::check_preflight_response(&request, exchange.status, &exchange.response_headers)
                .is_ok()
        }
        Err(_) => false,
    }
}

/// Two credentialed preflights from `trusted`: one asking for a method no
/// API uses, one for a header no API reads (with `POST`, which needs no
/// method grant). A finding only when a browser would pass the preflight.
/// Returns how many were sent.
pub(super) async fn preflight_probes(
    prober: &Prober,
    target: &Uri,
    trusted: &Trusted,
    findings: &mut Vec<Finding>,
) -> Result<usize, AuditError> {
    let asks = [
        (PROBE_METHOD, None, FindingClass::PreflightAllowsAnyMethod),
        (
            "POST",
            Some(PROBE_HEADER),
            FindingClass::PreflightAllowsAnyHeader,
        ),
    ];
    for (method, header, class) in asks {
        let mut headers = probe_headers(Some(&trusted.serialized));
        headers.insert(
            http::header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static(method),
        );
        if let Some(header) = header {
            headers.insert(
                http::header::ACCESS_CONTROL_REQUEST_HEADERS,
                HeaderValue::from_static(header),
            );
        }
        let exchange = prober.send(&Method::OPTIONS, target, &headers).await?;
        if preflight_passes(
            &trusted.serialized,
            method,
            header,
            CredentialsMode::Include,
            &exchange,
        ) {
            findings.push(finding(
                class,
                Severity::Medium,
                &exchange,
                &trusted.serialized,
            ));
        }
    }
    Ok(asks.len())
}
