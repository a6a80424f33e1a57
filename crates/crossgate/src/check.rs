//! `crossgate check`: what a browser does with one cross-origin `fetch()`.
//!
//! The rules come from [`crossgate_cors::browser`]; this module sends the
//! requests the browser would send, step by step, and records every step.
//! [`check`] is the whole run as a library call, so that the browser suite can
//! compare its verdicts with Chromium's.

mod exchange;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use crossgate_cors::browser::{
    self, BlockReason, Blocked, CorsRequest, CredentialsMode, Engine, PreflightReason,
    RedirectFailure, RedirectStep, RequestError,
};
use http::{Method, StatusCode, Uri};
use serde::Serialize;

pub use exchange::{show_value, Exchange, ProbeError, Prober};

/// `crossgate check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The URL the page's script fetches (http:// or https://).
    #[arg(value_name = "URL")]
    pub url: String,
    /// The page's origin, e.g. https://app.example.com (no path, no trailing slash).
    #[arg(long, value_name = "ORIGIN")]
    pub origin: String,
    /// The method the script uses; Fetch upper-cases only DELETE GET HEAD OPTIONS POST PUT.
    #[arg(long, short = 'X', value_name = "METHOD", default_value = "GET")]
    pub method: String,
    /// A header the script sets, as 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request body the script sends, as text; like fetch(), adds
    /// `Content-Type: text/plain;charset=UTF-8` unless -H sets one.
    #[arg(long, short = 'd', value_name = "TEXT")]
    pub data: Option<String>,
    /// The script uses `credentials: 'include'` (cookies): stricter rules apply.
    #[arg(long)]
    pub credentials: bool,
    /// Print one JSON document instead of the step-by-step text.
    #[arg(long)]
    pub json: bool,
    /// Whose limits apply where browsers differ (preflight cache lifetime).
    #[arg(long, value_enum, default_value_t = EngineArg::Chromium)]
    pub engine: EngineArg,
    /// Seconds to wait for each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// Trust only the CA certificates in this PEM file (for private HTTPS servers).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// A browser engine, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// Chromium, Chrome, Edge.
    Chromium,
    /// Firefox.
    Firefox,
}

impl From<EngineArg> for Engine {
    fn from(engine: EngineArg) -> Self {
        match engine {
            EngineArg::Chromium => Engine::Chromium,
            EngineArg::Firefox => Engine::Firefox,
        }
    }
}

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
    /// `fetch()` throws for a GET or HEAD request with a body.
    #[error("fetch() refuses a body on a {0} request")]
    BodyNotAllowed(String),
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
    /// `chromium` or `firefox`.
    pub engine: &'static str,
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
pub fn run(args: &CheckArgs) -> ExitCode {
    let input = match CheckInput::from_args(args) {
        Ok(input) => input,
        Err(e) => return could_not_run(&e, args.json),
    };
    run_report(
        args.json,
        args.timeout,
        args.cacert.as_deref(),
        |prober| async move { check_with(&prober, &input).await },
        render::human,
        CheckReport::exit_code,
    )
}

/// What `check` and `audit` share: probe on a one-thread runtime, print the
/// report as text or JSON, and turn it into an exit code (2 when the probe
/// could not run).
pub(crate) fn run_report<R, E, Fut>(
    json: bool,
    timeout_seconds: u64,
    cacert: Option<&std::path::Path>,
    probe: impl FnOnce(Prober) -> Fut,
    human: impl FnOnce(&R) -> String,
    exit_code: impl FnOnce(&R) -> ExitCode,
) -> ExitCode
where
    R: Serialize,
    E: std::fmt::Display + From<ProbeError>,
    Fut: std::future::Future<Output = Result<R, E>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return could_not_run(&format!("cannot start the async runtime: {e}"), json),
    };
    let result = runtime.block_on(async {
        let prober = Prober::new(Duration::from_secs(timeout_seconds.max(1)), cacert)?;
        probe(prober).await
    });
    match result {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => return could_not_run(&e, true),
                }
            } else {
                print!("{}", human(&report));
            }
            exit_code(&report)
        }
        Err(e) => could_not_run(&e, json),
    }
}

/// Prints why a command could not run and returns exit code 2.
pub(crate) fn could_not_run(error: &dyn std::fmt::Display, json: bool) -> ExitCode {
    if json {
        println!("{}", serde_json::json!({ "error": error.to_string() }));
    } else {
        eprintln!("error: {error}");
    }
    ExitCode::from(2)
}

impl CheckInput {
    /// Reads the command-line arguments.
    pub fn from_args(args: &CheckArgs) -> Result<Self, CheckError> {
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header_arg(h))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            url: args.url.clone(),
            origin: args.origin.clone(),
            method: args.method.clone(),
            headers,
            body: args.data.clone(),
            credentials: args.credentials,
            engine: args.engine.into(),
        })
    }
}

/// Splits `Name: value` at the first colon.
pub fn parse_header_arg(arg: &str) -> Result<(String, String), CheckError> {
    match arg.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(CheckError::HeaderArg(arg.to_owned())),
    }
}

/// Parses an absolute http(s) URL.
pub fn parse_target(url: &str) -> Result<Uri, CheckError> {
    let uri: Uri = url.parse().map_err(|_| CheckError::Url(url.to_owned()))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(CheckError::Url(url.to_owned())),
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
    let mut request = CorsRequest::new(&input.origin, &input.method, credentials)?;
    for (name, value) in &input.headers {
        request = request.with_header(name, value)?;
    }
    let body = match &input.body {
        None => Bytes::new(),
        Some(_) if matches!(*request.method(), Method::GET | Method::HEAD) => {
            return Err(CheckError::BodyNotAllowed(request.method().to_string()));
        }
        Some(text) => {
            // A string body gets the type fetch() gives it, unless the script set one.
            if !request.headers().contains_key(http::header::CONTENT_TYPE) {
                request = request.with_header("content-type", "text/plain;charset=UTF-8")?;
            }
            Bytes::from(text.clone())
        }
    };
    let mut url = parse_target(&input.url)?;
    let cross_origin = browser::serialize_origin(&url).as_deref() != Some(request.origin());
    let mut report = CheckReport {
        verdict: Verdict::Allowed,
        url: url.to_string(),
        origin: request.origin().to_owned(),
        method: request.method().to_string(),
        credentials: if input.credentials { "include" } else { "omit" },
        engine: match input.engine {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
        },
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
                input.engine,
            );
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
        let sent_body = if request.method() == Method::GET {
            Bytes::new()
        } else {
            body.clone()
        };
        let exchange = prober
            .send_with_body(request.method(), &url, &headers, sent_body)
            .await?;
        let status = exchange.status;
        if is_redirect(status) {
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
                    report.hidden_headers = exchange
                        .response_headers
                        .keys()
                        .filter(|name| !readable.contains(name))
                        // Set-Cookie can never be exposed, and the CORS headers
                        // themselves are of no use to script.
                        .filter(|name| !matches!(name.as_str(), "set-cookie" | "set-cookie2"))
                        .filter(|name| !name.as_str().starts_with("access-control-"))
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

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
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
