//! `crossgate check`: what a browser does with one cross-origin `fetch()`.
//!
//! The rules come from [`crossgate_cors::browser`]; this module sends the
//! requests the browser would send, step by step, and records every step.
//! [`check`] is the whole run as a library call, so that the browser suite can
//! compare its verdicts with Chromium's.

mod render;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use crossgate_cors::browser::{
    self, BlockReason, Blocked, CorsRequest, CredentialsMode, Departure, Engine, PreflightReason,
    RedirectFailure, RedirectStep, RequestError,
};
use http::Method;
use serde::Serialize;

use crate::exchange::{Exchange, ProbeError, Prober};
use crate::run::{could_not_run, parse_target, run_report, RunOptions};

/// `crossgate check` as the command line gives it.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The URL the page's script fetches (unless `curl` or `har`).
    pub url: Option<String>,
    /// The page's origin (overrides what `curl` says).
    pub origin: Option<String>,
    /// A DevTools "Copy as cURL (bash)" command giving the whole fetch.
    pub curl: Option<String>,
    /// A HAR file recorded in DevTools: check each cross-origin request in it.
    pub har: Option<PathBuf>,
    /// With `har`: send the requests again instead of judging the recorded answers.
    pub live: bool,
    /// The method the script uses, as written.
    pub method: String,
    /// The headers the script sets, each as `Name: value`.
    pub headers: Vec<String>,
    /// The text body the script sends, if any.
    pub data: Option<String>,
    /// `credentials: 'include'`.
    pub credentials: bool,
    /// Print one JSON document instead of the step-by-step text.
    pub json: bool,
    /// Which engines to model where browsers differ.
    pub engine: EngineChoice,
    /// Seconds to wait for each answer.
    pub timeout: u64,
    /// Trust only the CA certificates in this PEM file.
    pub cacert: Option<PathBuf>,
}

/// `--engine`: one engine's profile, or every profile compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// One engine.
    One(Engine),
    /// Every profile, with where they disagree.
    All,
}

impl EngineChoice {
    /// The engine, unless every profile was asked for.
    pub fn single(self) -> Option<Engine> {
        match self {
            EngineChoice::One(engine) => Some(engine),
            EngineChoice::All => None,
        }
    }
}

/// Why `--curl` and `--har` refuse `--engine all`: each recorded or copied
/// request is judged as the one browser that made it.
pub(crate) const ONE_ENGINE_ONLY: &str =
    "--engine all compares the profiles on a URL; with --curl or --har, name the one engine (chromium, firefox, webkit or spec)";

/// What to check: the fetch a script makes.
#[derive(Debug, Clone)]
pub struct CheckInput {
    /// The URL fetched.
    pub url: String,
    /// The page's serialized origin.
    pub origin: String,
    /// The method as the script wrote it.
    pub method: String,
    /// The headers the script sets, in order.
    pub headers: Vec<(String, String)>,
    /// The text body the script sends, if any.
    pub body: Option<String>,
    /// `credentials: 'include'`.
    pub credentials: bool,
    /// Whose limits apply.
    pub engine: Engine,
}

/// Why a check could not run (exit code 2).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    /// The URL is not an absolute http(s) URL.
    #[error("`{0}` is not an absolute http:// or https:// URL")]
    Url(String),
    /// A `--header` is not `Name: value`.
    #[error("`{0}` is not a header: write it as 'Name: value'")]
    HeaderArg(String),
    /// `fetch()` itself would throw.
    #[error("{0}")]
    Request(#[from] RequestError),
    /// A request could not be sent or answered.
    #[error("{0}")]
    Probe(#[from] ProbeError),
}

/// The browser's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Script gets the response.
    Allowed,
    /// Script gets a network error (`TypeError: Failed to fetch`).
    Blocked,
}

/// Which request a step sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The `OPTIONS` preflight.
    Preflight,
    /// The request the script asked for.
    Actual,
}

/// One request the browser sends, what came back, and what the browser made of it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Preflight or actual request.
    pub kind: StepKind,
    /// Why a preflight was sent (empty for actual requests).
    pub preflight_reasons: Vec<String>,
    /// The request and the answer.
    pub exchange: Exchange,
    /// What the browser concluded from this answer, in one sentence.
    pub outcome: String,
    /// For an accepted preflight: how long the browser caches it, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_seconds: Option<u64>,
    /// For an accepted preflight: what `Access-Control-Max-Age` asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_requested: Option<u64>,
}

/// One reason for a block, with its fix.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// A stable identifier, e.g. `method_not_allowed`.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// What to change on the server.
    pub fix: String,
}

/// Why the browser blocks, when it does.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    /// The index in `steps` of the answer that was refused.
    pub step: usize,
    /// The reason the browser's console reports first, then any other problem found.
    pub problems: Vec<Problem>,
}

impl Block {
    fn from_blocked(step: usize, blocked: &Blocked) -> Self {
        Self {
            step,
            problems: blocked.reasons().iter().map(problem).collect(),
        }
    }
}

fn problem(reason: &BlockReason) -> Problem {
    Problem {
        code: reason.code().to_owned(),
        message: reason.to_string(),
        fix: reason.fix().to_string(),
    }
}

/// A rule of the standard the engine does not follow, as it applies here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DepartureNote {
    /// What the engine does instead.
    pub behaviour: &'static str,
    /// The standard's rule, which the engine may follow later.
    pub rule: &'static str,
    /// The browser-suite scenario that shows it.
    pub scenario: &'static str,
}

impl From<Departure> for DepartureNote {
    fn from(d: Departure) -> Self {
        Self {
            behaviour: d.behaviour(),
            rule: d.rule(),
            scenario: d.scenario(),
        }
    }
}

/// `check --engine all`: one report per profile, and where they differ.
#[derive(Debug, Clone, Serialize)]
pub struct AllEnginesReport {
    /// Whether every profile reached the same verdict.
    pub agree: bool,
    /// One sentence on who allows and who blocks, and why.
    pub summary: String,
    /// Each profile's full report, in [`Engine::ALL`] order.
    pub engines: Vec<CheckReport>,
}

impl AllEnginesReport {
    /// Compares the reports of every profile.
    pub fn new(engines: Vec<CheckReport>) -> Self {
        let display = |r: &CheckReport| {
            Engine::ALL
                .iter()
                .find(|e| e.name() == r.engine)
                .map_or(r.engine, |e| e.profile().display)
        };
        let by_verdict = |verdict: Verdict| -> Vec<&CheckReport> {
            engines.iter().filter(|r| r.verdict == verdict).collect()
        };
        let (allowed, blocked) = (by_verdict(Verdict::Allowed), by_verdict(Verdict::Blocked));
        let agree = allowed.is_empty() || blocked.is_empty();
        let summary = if blocked.is_empty() {
            "allowed in every engine and by the standard".to_owned()
        } else if allowed.is_empty() {
            "blocked in every engine and by the standard".to_owned()
        } else {
            // Each blocking profile's first problem: after a colon when one
            // profile blocks, in parentheses and named when several do.
            let reasons: Vec<(&str, &str)> = blocked
                .iter()
                .filter_map(|r| {
                    let first = r.block.as_ref()?.problems.first()?;
                    Some((display(r), first.message.as_str()))
                })
                .collect();
            let because = match reasons.as_slice() {
                [] => String::new(),
                [(_, message)] => format!(": {message}"),
                several => format!(
                    " ({})",
                    several
                        .iter()
                        .map(|(name, message)| format!("{name}: {message}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            };
            format!(
                "{}; {}{because}",
                phrase("works", &allowed, display),
                phrase("blocked", &blocked, display)
            )
        };
        Self {
            agree,
            summary,
            engines,
        }
    }

    /// 0 when every engine allows, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        if self.engines.iter().all(|r| r.verdict == Verdict::Allowed) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

/// "works in Chromium and Firefox", "blocked in WebKit (Safari) and by the
/// Fetch standard", "works under the Fetch standard": browsers are "in",
/// the standard is "by" or "under".
fn phrase(
    verb: &str,
    reports: &[&CheckReport],
    display: impl Fn(&CheckReport) -> &'static str,
) -> String {
    let is_spec = |r: &CheckReport| r.engine == Engine::Spec.name();
    let browsers: Vec<&str> = reports
        .iter()
        .filter(|r| !is_spec(r))
        .map(|r| display(r))
        .collect();
    let standard = reports.iter().find(|r| is_spec(r)).map(|r| display(r));
    let preposition = if verb == "works" { "under" } else { "by" };
    match (browsers.is_empty(), standard) {
        (false, None) => format!("{verb} in {}", join_and(&browsers)),
        (false, Some(standard)) => {
            format!(
                "{verb} in {} and {preposition} {standard}",
                join_and(&browsers)
            )
        }
        (true, Some(standard)) => format!("{verb} {preposition} {standard}"),
        (true, None) => String::new(),
    }
}

fn join_and(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A response header script cannot read, and how to expose it.
#[derive(Debug, Clone, Serialize)]
pub struct HiddenHeader {
    /// The header's name.
    pub name: String,
    /// The change that makes it readable.
    pub fix: String,
}

/// The whole result of a check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Allowed or blocked.
    pub verdict: Verdict,
    /// The URL first fetched.
    pub url: String,
    /// The page's origin.
    pub origin: String,
    /// The method after Fetch normalization.
    pub method: String,
    /// `include` or `omit`.
    pub credentials: &'static str,
    /// `chromium`, `firefox`, `webkit` or `spec`.
    pub engine: &'static str,
    /// The browser version the engine's profile was observed in.
    pub engine_version: &'static str,
    /// Where the engine departs from the Fetch standard in a way that
    /// matters to this request, each with the standard's rule.
    pub departures: Vec<DepartureNote>,
    /// Headers the browser would silently drop because a page may not set them.
    pub dropped_headers: Vec<String>,
    /// False when the page and the URL share an origin: CORS does not apply.
    pub cross_origin: bool,
    /// Every request sent, in order.
    pub steps: Vec<Step>,
    /// Why the browser blocks, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<Block>,
    /// The status script sees, when allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Response headers script can read, when allowed.
    pub readable_headers: Vec<String>,
    /// Response headers script cannot read, when allowed.
    pub hidden_headers: Vec<HiddenHeader>,
}

impl CheckReport {
    /// The process exit code: 0 allowed, 1 blocked.
    pub fn exit_code(&self) -> ExitCode {
        match self.verdict {
            Verdict::Allowed => ExitCode::SUCCESS,
            Verdict::Blocked => ExitCode::from(1),
        }
    }
}

/// Runs `crossgate check`; exit code 0 allowed, 1 blocked, 2 could not run.
pub fn run(options: &CheckOptions) -> ExitCode {
    if let Some(path) = &options.har {
        return crate::har::run(path, options);
    }
    if let Some(command) = &options.curl {
        return run_curl(command, options);
    }
    let input = match CheckInput::from_options(options) {
        Ok(input) => input,
        Err(e) => return could_not_run(&e, options.json),
    };
    let run = options.run_options();
    match options.engine {
        EngineChoice::One(engine) => run_report(
            &run,
            |prober| async move { check_with(&prober, &CheckInput { engine, ..input }).await },
            render::write_human,
            CheckReport::exit_code,
        ),
        EngineChoice::All => run_report(
            &run,
            |prober| async move {
                let mut reports = Vec::new();
                for engine in Engine::ALL {
                    let one = CheckInput {
                        engine,
                        ..input.clone()
                    };
                    reports.push(check_with(&prober, &one).await?);
                }
                Ok::<_, CheckError>(AllEnginesReport::new(reports))
            },
            render::write_all_engines,
            AllEnginesReport::exit_code,
        ),
    }
}

impl CheckOptions {
    /// How `check` prints its report and which CA it trusts, for the
    /// single-URL, `--curl` and `--har` runs alike.
    pub(crate) fn run_options(&self) -> RunOptions<'_> {
        RunOptions {
            json: self.json,
            timeout_seconds: self.timeout,
            cacert: self.cacert.as_deref(),
        }
    }
}

impl CheckInput {
    /// Reads the command-line options.
    pub fn from_options(args: &CheckOptions) -> Result<Self, CheckError> {
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header_arg(h))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            url: args.url.clone().unwrap_or_default(),
            origin: args.origin.clone().unwrap_or_default(),
            method: args.method.clone(),
            headers,
            body: args.data.clone(),
            credentials: args.credentials,
            engine: match args.engine {
                EngineChoice::One(engine) => engine,
                EngineChoice::All => Engine::Chromium,
            },
        })
    }
}

/// A check of the fetch a `--curl` command describes, with what was read from it.
#[derive(Debug, Clone, Serialize)]
pub struct CurlCheckReport {
    /// What the command gave besides the fetch.
    pub from_curl: CurlNotes,
    /// The check.
    #[serde(flatten)]
    pub report: CheckReport,
}

/// What `--curl` set aside and where the page's origin came from.
#[derive(Debug, Clone, Serialize)]
pub struct CurlNotes {
    /// `the Origin header`, `--origin`, ...
    pub origin_from: &'static str,
    /// Headers of the command that the browser set itself.
    pub ignored_headers: Vec<crate::curl::IgnoredHeader>,
}

fn run_curl(command: &str, options: &CheckOptions) -> ExitCode {
    let Some(engine) = options.engine.single() else {
        return could_not_run(&ONE_ENGINE_ONLY, options.json);
    };
    let fetch = match crate::curl::parse_curl(command, options.origin.as_deref(), engine) {
        Ok(fetch) => fetch,
        Err(e) => return could_not_run(&e, options.json),
    };
    let run = options.run_options();
    let notes = CurlNotes {
        origin_from: fetch.origin_from,
        ignored_headers: fetch.ignored,
    };
    let input = fetch.input;
    run_report(
        &run,
        |prober| async move {
            let report = check_with(&prober, &input).await?;
            Ok::<_, CheckError>(CurlCheckReport {
                from_curl: notes,
                report,
            })
        },
        |out, report: &CurlCheckReport| {
            use std::fmt::Write;
            writeln!(
                out,
                "from curl: the page's origin {} comes from {}; credentials: {}",
                report.report.origin, report.from_curl.origin_from, report.report.credentials
            )?;
            if !report.from_curl.ignored_headers.is_empty() {
                writeln!(
                    out,
                    "from curl: ignored, set by the browser itself, not by the script:"
                )?;
                for header in &report.from_curl.ignored_headers {
                    writeln!(out, "  {}: {}", header.name, header.reason)?;
                }
            }
            writeln!(out)?;
            render::write_human(out, &report.report)
        },
        |report| report.report.exit_code(),
    )
}

/// Splits `Name: value` at the first colon.
fn parse_header_arg(arg: &str) -> Result<(String, String), CheckError> {
    match arg.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(CheckError::HeaderArg(arg.to_owned())),
    }
}

/// Checks `input` with a fresh client (10-second timeout, webpki roots).
pub async fn check(input: &CheckInput) -> Result<CheckReport, CheckError> {
    let prober = Prober::new(Duration::from_secs(10), None)?;
    check_with(&prober, input).await
}

/// Checks `input`: sends the preflight when the browser would, then the
/// actual request, following redirects as the browser does and recording
/// each one; stops at the first answer the browser refuses.
pub async fn check_with(prober: &Prober, input: &CheckInput) -> Result<CheckReport, CheckError> {
    let credentials = if input.credentials {
        CredentialsMode::Include
    } else {
        CredentialsMode::SameOrigin
    };
    let mut request =
        CorsRequest::new(&input.origin, &input.method, credentials)?.in_engine(input.engine);
    for (name, value) in &input.headers {
        request = request.with_header(name, value)?;
    }
    let body = match &input.body {
        None => Bytes::new(),
        Some(text) => {
            request = request.with_text_body()?;
            Bytes::from(text.clone())
        }
    };
    let mut url = parse_target(&input.url).ok_or_else(|| CheckError::Url(input.url.clone()))?;
    let cross_origin = !request.is_same_origin(&url);
    let mut report = CheckReport {
        verdict: Verdict::Allowed,
        url: url.to_string(),
        origin: request.origin().to_owned(),
        method: request.method().to_string(),
        credentials: if input.credentials { "include" } else { "omit" },
        engine: input.engine.name(),
        engine_version: input.engine.profile().observed_in,
        departures: browser::departures_applying(&request, None)
            .into_iter()
            .map(DepartureNote::from)
            .collect(),
        dropped_headers: request
            .dropped_headers()
            .iter()
            .map(|h| h.to_string())
            .collect(),
        cross_origin,
        steps: Vec::new(),
        block: None,
        status: None,
        readable_headers: Vec::new(),
        hidden_headers: Vec::new(),
    };

    if !cross_origin {
        let headers = browser::actual_request_headers(&request, &url);
        let exchange = prober
            .send_with_body(request.method(), &url, &headers, body)
            .await?;
        report.status = Some(exchange.status.as_u16());
        report.readable_headers = exchange
            .response_headers
            .keys()
            .map(|h| h.to_string())
            .collect();
        report.steps.push(Step {
            kind: StepKind::Actual,
            preflight_reasons: Vec::new(),
            outcome: "same-origin request: CORS does not apply, script gets the response"
                .to_owned(),
            exchange,
            cached_seconds: None,
            max_age_requested: None,
        });
        return Ok(report);
    }

    let mut redirects = 0usize;
    loop {
        let reasons = browser::preflight_reasons(&request);
        if !reasons.is_empty() {
            let headers = browser::preflight_request_headers_to(&request, &url);
            let exchange = prober.send(&Method::OPTIONS, &url, &headers).await?;
            let verdict = browser::check_preflight_response(
                &request,
                exchange.status,
                &exchange.response_headers,
            );
            for departure in
                browser::departures_applying(&request, Some(&exchange.response_headers))
            {
                let note = DepartureNote::from(departure);
                if !report.departures.contains(&note) {
                    report.departures.push(note);
                }
            }
            let reasons = reasons.iter().map(PreflightReason::to_string).collect();
            match verdict {
                Ok(grant) => report.steps.push(Step {
                    kind: StepKind::Preflight,
                    preflight_reasons: reasons,
                    outcome: "preflight accepted".to_owned(),
                    exchange,
                    cached_seconds: Some(grant.max_age.effective),
                    max_age_requested: grant.max_age.requested,
                }),
                Err(blocked) => {
                    report.steps.push(Step {
                        kind: StepKind::Preflight,
                        preflight_reasons: reasons,
                        outcome: format!(
                            "preflight refused: {blocked}; the actual request is never sent"
                        ),
                        exchange,
                        cached_seconds: None,
                        max_age_requested: None,
                    });
                    return Ok(blocked_at(report, &blocked));
                }
            }
        }

        let headers = browser::actual_request_headers(&request, &url);
        // A redirect that turned the request into a GET dropped its body.
        let sent_body = if request.has_body() {
            body.clone()
        } else {
            Bytes::new()
        };
        let exchange = prober
            .send_with_body(request.method(), &url, &headers, sent_body)
            .await?;
        let status = exchange.status;
        if browser::is_redirect_status(status) {
            match browser::follow_redirect(
                &request,
                &url,
                status,
                &exchange.response_headers,
                redirects,
            ) {
                RedirectStep::Follow {
                    location,
                    request: next,
                } => {
                    let mut outcome = format!("redirect followed to {location}");
                    if next.method() != request.method() {
                        outcome.push_str(&format!(" as {}", next.method()));
                    }
                    if next.origin() != request.origin() {
                        outcome.push_str(" with `Origin: null` (the redirect crossed origins)");
                    }
                    report.steps.push(actual_step(exchange, outcome));
                    request = next;
                    url = location;
                    redirects += 1;
                    continue;
                }
                RedirectStep::Fail(failure) => {
                    report.steps.push(actual_step(
                        exchange,
                        format!("redirect refused: {failure}"),
                    ));
                    let step = report.steps.len() - 1;
                    report.verdict = Verdict::Blocked;
                    report.block = Some(match &failure {
                        RedirectFailure::Cors(blocked) => Block::from_blocked(step, blocked),
                        other => Block {
                            step,
                            problems: vec![redirect_problem(other)],
                        },
                    });
                    return Ok(report);
                }
                RedirectStep::Deliver => {}
            }
        }
        return Ok(
            match browser::check_actual_response(&request, &exchange.response_headers) {
                Ok(readable) => {
                    report.status = Some(status.as_u16());
                    report.readable_headers = readable.iter().map(|h| h.to_string()).collect();
                    report.hidden_headers =
                        browser::exposable_hidden_headers(&exchange.response_headers, &readable)
                            .into_iter()
                            .map(|name| HiddenHeader {
                                name: name.to_string(),
                                fix: browser::expose_fix(name.as_str()).to_string(),
                            })
                            .collect();
                    report.steps.push(actual_step(
                        exchange,
                        format!("CORS check passed: script gets the {status} response"),
                    ));
                    report
                }
                Err(blocked) => {
                    report.steps.push(actual_step(
                        exchange,
                        format!("CORS check failed: {blocked}"),
                    ));
                    blocked_at(report, &blocked)
                }
            },
        );
    }
}

fn actual_step(exchange: Exchange, outcome: String) -> Step {
    Step {
        kind: StepKind::Actual,
        preflight_reasons: Vec::new(),
        exchange,
        outcome,
        cached_seconds: None,
        max_age_requested: None,
    }
}

fn blocked_at(mut report: CheckReport, blocked: &Blocked) -> CheckReport {
    let step = report.steps.len().saturating_sub(1);
    report.verdict = Verdict::Blocked;
    report.block = Some(Block::from_blocked(step, blocked));
    report
}

fn redirect_problem(failure: &RedirectFailure) -> Problem {
    let (code, fix) = match failure {
        RedirectFailure::BadLocation(_) => (
            "redirect_bad_location",
            "send an absolute http(s) URL in `Location`",
        ),
        RedirectFailure::CredentialsInUrl => (
            "redirect_credentials_in_url",
            "redirect to a URL without `user:password@`",
        ),
        RedirectFailure::TooMany => ("too_many_redirects", "break the redirect loop"),
        RedirectFailure::Cors(_) => (
            "redirect_cors",
            "send the CORS headers on the redirect response too",
        ),
    };
    Problem {
        code: code.to_owned(),
        message: failure.to_string(),
        fix: fix.to_owned(),
    }
}
