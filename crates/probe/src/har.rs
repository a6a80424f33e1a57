//! `crossgate check --har FILE`: every cross-origin request of a HAR
//! recorded in DevTools, judged by the browser model from the answers the
//! browser recorded (offline), or sent again (`--live`).
//!
//! A request is cross-origin when it carries an `Origin` other than its
//! URL's and is not a navigation (`Sec-Fetch-Mode`, when recorded, is
//! `cors`). Its preflight is the `OPTIONS` entry before it with the same URL,
//! Origin and `Access-Control-Request-Method`. The script's headers are the
//! recorded ones minus those the browser sets itself (as for `--curl`); a
//! `Cookie` header means `credentials: 'include'`. When the HAR records the
//! browser's own outcome (`_error`, `_corsError` on a failed entry, as our
//! Chromium capture and DevTools write), the report says whether the model agrees.

use std::path::Path;
use std::process::ExitCode;

use crossgate_cors::browser::{self, CorsRequest, CredentialsMode, Engine};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use serde::{Deserialize, Serialize};

use crate::check::{check_with, CheckError, CheckInput, CheckOptions, Problem, Verdict};
use crate::run::{could_not_run, run_report};

#[derive(Deserialize)]
struct Har {
    log: HarLog,
}

#[derive(Deserialize)]
struct HarLog {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    request: HarRequest,
    response: HarResponse,
    #[serde(rename = "_error", default)]
    error: Option<String>,
    #[serde(rename = "_corsError", default)]
    cors_error: Option<String>,
    #[serde(rename = "_resourceType", default)]
    resource_type: Option<String>,
}

#[derive(Deserialize)]
struct HarRequest {
    method: String,
    url: String,
    headers: Vec<NameValue>,
    #[serde(rename = "postData", default)]
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
struct PostData {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct HarResponse {
    status: u16,
    headers: Vec<NameValue>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

fn header<'a>(list: &'a [NameValue], name: &str) -> Option<&'a str> {
    list.iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Recorded headers as a map; HTTP/2 pseudo-headers and invalid ones are skipped.
fn header_map(list: &[NameValue]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for h in list {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_str(&h.value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// One cross-origin request of the HAR and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct HarCheck {
    /// The entry's index in the HAR (0-based).
    pub entry: usize,
    /// The method.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The page's origin.
    pub origin: String,
    /// `include` (a Cookie was sent) or `omit`.
    pub credentials: &'static str,
    /// The model's verdict.
    pub verdict: Verdict,
    /// Which answer decided: `preflight` or `actual`.
    pub decided_by: &'static str,
    /// Why it is blocked (empty when allowed).
    pub problems: Vec<Problem>,
    /// What the browser recorded, when the HAR says (`blocked: …` or `allowed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_recorded: Option<String>,
    /// Whether the model agrees with what the browser recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agrees: Option<bool>,
    /// Anything the reader should know (a preflight not recorded, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The verdicts of every cross-origin request of a HAR.
#[derive(Debug, Clone, Serialize)]
pub struct HarReport {
    /// How many entries the HAR has.
    pub entries: usize,
    /// The cross-origin requests (preflights are part of their request).
    pub checks: Vec<HarCheck>,
    /// With `--live`: each request sent again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live: Vec<crate::check::CheckReport>,
}

/// Why a HAR could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HarError {
    /// Unreadable or not a HAR.
    #[error("--har {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// `--live` could not send a request.
    #[error("{0}")]
    Check(#[from] CheckError),
}

impl From<crate::exchange::ProbeError> for HarError {
    fn from(e: crate::exchange::ProbeError) -> Self {
        Self::Check(CheckError::Probe(e))
    }
}

/// A recorded cross-origin request, ready to judge or resend.
struct CorsEntry<'a> {
    index: usize,
    entry: &'a Entry,
    request: CorsRequest,
    input: CheckInput,
}

/// Reads `text` (a HAR) and judges each cross-origin request from its recorded answers.
pub fn check_har(text: &str, engine: Engine) -> Result<HarReport, String> {
    let har: Har = serde_json::from_str(text).map_err(|e| format!("not a HAR file: {e}"))?;
    let entries = &har.log.entries;
    let checks = cors_entries(entries, engine)
        .iter()
        .map(|c| judge(c, entries))
        .collect();
    Ok(HarReport {
        entries: entries.len(),
        checks,
        live: Vec::new(),
    })
}

/// The cross-origin requests of `text` (a HAR) as fetches to send again
/// (`--live`), in the order of [`check_har`]'s checks.
pub fn har_fetches(text: &str, engine: Engine) -> Result<Vec<CheckInput>, String> {
    let har: Har = serde_json::from_str(text).map_err(|e| format!("not a HAR file: {e}"))?;
    Ok(cors_entries(&har.log.entries, engine)
        .into_iter()
        .map(|c| c.input)
        .collect())
}

fn cors_entries(entries: &[Entry], engine: Engine) -> Vec<CorsEntry<'_>> {
    let mut found = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let r = &entry.request;
        let Ok(url) = r.url.parse::<Uri>() else {
            continue;
        };
        // A request the browser never sent (its preflight failed) keeps only
        // provisional headers, without Origin: a script's fetch then has its
        // page's origin in Referer.
        let referer_origin = header(&r.headers, "referer")
            .and_then(|r| r.parse::<Uri>().ok())
            .and_then(|u| browser::serialize_origin(&u));
        let origin = match (header(&r.headers, "origin"), entry.resource_type.as_deref()) {
            (Some(origin), _) => origin.to_owned(),
            (None, Some("fetch" | "xhr")) => match referer_origin {
                Some(origin) => origin,
                None => continue,
            },
            _ => continue,
        };
        let origin = origin.as_str();
        let is_preflight =
            r.method == "OPTIONS" && header(&r.headers, "access-control-request-method").is_some();
        let mode = header(&r.headers, "sec-fetch-mode");
        if is_preflight
            || mode.is_some_and(|m| m != "cors")
            || browser::serialize_origin(&url).as_deref() == Some(origin)
        {
            continue;
        }
        let credentials = header(&r.headers, "cookie").is_some();
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|h| !h.name.starts_with(':'))
            .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
            .filter(|(n, v)| crate::curl::browser_set(n, v).is_none())
            .collect();
        let mode = if credentials {
            CredentialsMode::Include
        } else {
            CredentialsMode::Omit
        };
        // A request fetch() itself would refuse is no CORS request to judge.
        let request = headers.iter().fold(
            CorsRequest::new(origin, &r.method, mode),
            |request, (name, value)| request.and_then(|r| r.with_header(name, value)),
        );
        let Ok(request) = request else { continue };
        let request = request.in_engine(engine);
        let body = r.post_data.as_ref().and_then(|p| p.text.clone());
        found.push(CorsEntry {
            index,
            entry,
            request,
            input: CheckInput {
                url: r.url.clone(),
                origin: origin.to_owned(),
                method: r.method.clone(),
                headers,
                body,
                credentials,
                engine,
            },
        });
    }
    found
}

fn judge(c: &CorsEntry<'_>, entries: &[Entry]) -> HarCheck {
    let r = &c.entry.request;
    let mut check = HarCheck {
        entry: c.index,
        method: c.request.method().to_string(),
        url: r.url.clone(),
        origin: c.request.origin().to_owned(),
        credentials: if c.input.credentials {
            "include"
        } else {
            "omit"
        },
        verdict: Verdict::Allowed,
        decided_by: "actual",
        problems: Vec::new(),
        browser_recorded: recorded(c.entry),
        agrees: None,
        notes: Vec::new(),
    };
    let needs_preflight = !browser::preflight_reasons(&c.request).is_empty();
    if needs_preflight {
        // DevTools lists a preflight after the request it serves, sometimes
        // before: the nearest matching one.
        let mut candidates: Vec<(usize, &Entry)> = entries.iter().enumerate().collect();
        candidates.sort_by_key(|(i, _)| i.abs_diff(c.index));
        let preflight = candidates.into_iter().map(|(_, e)| e).find(|e| {
            let p = &e.request;
            p.method == "OPTIONS"
                && p.url == r.url
                && header(&p.headers, "origin") == Some(check.origin.as_str())
                && header(&p.headers, "access-control-request-method")
                    == Some(check.method.as_str())
        });
        match preflight {
            Some(p) => {
                let status = StatusCode::from_u16(p.response.status).unwrap_or(StatusCode::OK);
                if p.response.status == 0 {
                    check
                        .notes
                        .push("the preflight has no recorded answer".to_owned());
                } else if let Err(blocked) = browser::check_preflight_response(
                    &c.request,
                    status,
                    &header_map(&p.response.headers),
                ) {
                    check.verdict = Verdict::Blocked;
                    check.decided_by = "preflight";
                    check.problems = problems(blocked.reasons());
                }
            }
            None => check.notes.push(
                "a preflight was needed but is not in the HAR; judged by the actual answer alone"
                    .to_owned(),
            ),
        }
    }
    if check.verdict == Verdict::Allowed {
        if c.entry.response.status == 0 {
            check
                .notes
                .push("the request has no recorded answer".to_owned());
            if check.decided_by == "actual" && !needs_preflight {
                check.verdict = Verdict::Blocked;
                check
                    .notes
                    .push("no answer reached the page (a network error)".to_owned());
            }
        } else {
            let reasons = browser::cors_check(&c.request, &header_map(&c.entry.response.headers));
            if !reasons.is_empty() {
                check.verdict = Verdict::Blocked;
                check.problems = problems(&reasons);
            }
        }
    }
    check.agrees = check.browser_recorded.as_ref().map(|rec| {
        let blocked = rec.starts_with("blocked");
        blocked == (check.verdict == Verdict::Blocked)
    });
    check
}

fn problems(reasons: &[browser::BlockReason]) -> Vec<Problem> {
    reasons
        .iter()
        .map(|reason| Problem {
            code: reason.code().to_owned(),
            message: reason.to_string(),
            fix: reason.fix().to_string(),
        })
        .collect()
}

/// The browser's own outcome, when the HAR records one.
fn recorded(entry: &Entry) -> Option<String> {
    match (&entry.cors_error, &entry.error) {
        (Some(cors), _) => Some(format!("blocked: CORS error {cors}")),
        (None, Some(error)) if !error.is_empty() => Some(format!("blocked: {error}")),
        _ if entry.response.status > 0 => Some("allowed".to_owned()),
        _ => None,
    }
}

/// Runs `crossgate check --har`; exit 0 when every request is allowed, 1 when one is blocked.
pub fn run(path: &Path, options: &CheckOptions) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return could_not_run(&format!("--har {}: {e}", path.display()), options.json),
    };
    let Some(engine) = options.engine.single() else {
        return could_not_run(&crate::check::ONE_ENGINE_ONLY, options.json);
    };
    let report = match check_har(&text, engine) {
        Ok(report) => report,
        Err(reason) => {
            return could_not_run(&format!("--har {}: {reason}", path.display()), options.json)
        }
    };
    let run = options.run_options();
    let live = options.live;
    let inputs: Vec<CheckInput> = if live {
        har_fetches(&text, engine).unwrap_or_default()
    } else {
        Vec::new()
    };
    run_report(
        &run,
        |prober| async move {
            let mut report = report;
            for input in &inputs {
                report.live.push(check_with(&prober, input).await?);
            }
            Ok::<_, HarError>(report)
        },
        write_human,
        |report: &HarReport| {
            let blocked = if report.live.is_empty() {
                report.checks.iter().any(|c| c.verdict == Verdict::Blocked)
            } else {
                report.live.iter().any(|c| c.verdict == Verdict::Blocked)
            };
            if blocked {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        },
    )
}

fn write_human(out: &mut String, report: &HarReport) -> std::fmt::Result {
    use std::fmt::Write;
    writeln!(
        out,
        "crossgate check --har: {} entries, {} cross-origin request(s){}",
        report.entries,
        report.checks.len(),
        if report.live.is_empty() {
            ", judged from the recorded answers"
        } else {
            ", sent again (--live)"
        }
    )?;
    for (i, c) in report.checks.iter().enumerate() {
        writeln!(out)?;
        let verdict = match report.live.get(i) {
            Some(live) => live.verdict,
            None => c.verdict,
        };
        let verdict = match verdict {
            Verdict::Allowed => "ALLOWED",
            Verdict::Blocked => "BLOCKED",
        };
        writeln!(
            out,
            "#{} {} {} from {} (credentials: {}): {verdict}",
            c.entry, c.method, c.url, c.origin, c.credentials
        )?;
        if report.live.is_empty() {
            for p in &c.problems {
                writeln!(out, "  {} ({}): {}", c.decided_by, p.code, p.message)?;
                writeln!(out, "  fix: {}", p.fix)?;
            }
            if let Some(rec) = &c.browser_recorded {
                let agree = if c.agrees == Some(true) {
                    "agrees"
                } else {
                    "DISAGREES"
                };
                writeln!(out, "  browser recorded: {rec} (the model {agree})")?;
            }
        } else if let Some(problems) = report.live.get(i).and_then(|l| l.block.as_ref()) {
            for p in &problems.problems {
                writeln!(out, "  now ({}): {}", p.code, p.message)?;
                writeln!(out, "  fix: {}", p.fix)?;
            }
        }
        for note in &c.notes {
            writeln!(out, "  note: {note}")?;
        }
    }
    Ok(())
}
