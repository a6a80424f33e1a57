//! `crossgate check --engine X` against what engine X just did: for every
//! row of both tables, with the same origin, method, headers, body and
//! credentials mode, check's verdict, status, "preflight needed" answer and
//! readable headers must be the browser's, row by row.

use crossgate_cors::browser::Engine;
use crossgate_probe::check::{
    check_with, CheckInput, CheckReport, StepKind, Verdict as CheckVerdict,
};
use crossgate_probe::Prober;

use super::engine_matrix::{EngineScenario, Outcome, ENGINE_SCENARIOS};
use super::gateway_table::{Observed, Stack};
use super::scenarios::{Credentials, Scenario, Verdict, SCENARIOS};

/// How many rows check agreed on, and how it disagreed on the others.
#[derive(Default)]
pub struct Agreement {
    pub agree: usize,
    pub disagreements: Vec<String>,
}

impl Agreement {
    /// Asks check about the row `name`: counts the row as agreed on, or
    /// records how `disagreement` finds the report differs from what the
    /// browser did (against the version the engine's profile names), or
    /// that check could not run.
    async fn ask(
        &mut self,
        prober: &Prober,
        name: &str,
        input: &CheckInput,
        disagreement: impl FnOnce(&CheckReport) -> Option<String>,
    ) {
        let engine = input.engine;
        match check_with(prober, input).await {
            Ok(report) => match disagreement(&report) {
                None => self.agree += 1,
                Some(why) => self
                    .disagreements
                    .push(format!("{name} in {}: {why}", engine.profile().observed_in)),
            },
            Err(e) => self.disagreements.push(format!(
                "{name} in {}: check could not run: {e}",
                engine.name()
            )),
        }
    }
}

/// `headers` as check takes them.
pub fn owned_headers(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// The gateway table: `observed` is what `engine` did, in table order.
pub async fn gateway_table(
    prober: &Prober,
    engine: Engine,
    stack: &Stack,
    observed: &[Observed],
) -> Agreement {
    let mut agreement = Agreement::default();
    for (scenario, seen) in SCENARIOS.iter().zip(observed) {
        let request = &scenario.request;
        let input = CheckInput {
            url: format!(
                "http://localhost:{}{}",
                stack.gateway.address.port(),
                scenario.path()
            ),
            origin: scenario.origin(&stack.ports),
            method: request.method.to_owned(),
            headers: owned_headers(request.headers),
            body: request.body.map(str::to_owned),
            credentials: request.credentials == Credentials::Include,
            engine,
        };
        agreement
            .ask(prober, scenario.name, &input, |report| {
                disagreement(scenario, engine, seen, report)
            })
            .await;
    }
    agreement
}

/// How check's report differs from what the browser did, if it does.
fn disagreement(
    scenario: &Scenario,
    engine: Engine,
    seen: &Observed,
    report: &CheckReport,
) -> Option<String> {
    let browser = engine.profile().observed_in;
    let preflighted = report.steps.iter().any(|s| s.kind == StepKind::Preflight);
    if preflighted != (seen.preflights > 0) {
        return Some(format!(
            "check {} a preflight; {browser} sent {}",
            if preflighted { "sent" } else { "did not send" },
            seen.preflights
        ));
    }
    match (seen.verdict, report.verdict) {
        (Verdict::NetworkError, CheckVerdict::Blocked) => None,
        (Verdict::Readable(status), CheckVerdict::Allowed) => {
            if report.status != Some(status) {
                return Some(format!(
                    "status {:?}, {browser}'s script saw {status}",
                    report.status
                ));
            }
            // The headers the row is about: check must call each readable
            // exactly when the browser's script could read it.
            let expect = scenario.expected(engine);
            let wrong: Vec<&str> = expect
                .readable
                .iter()
                .chain(expect.hidden)
                .copied()
                .filter(|h| report.readable_headers.iter().any(|r| r == h) != seen.can_read(h))
                .collect();
            (!wrong.is_empty()).then(|| {
                format!(
                    "check's readable headers {:?} and {browser}'s {:?} differ on {wrong:?}",
                    report.readable_headers, seen.readable
                )
            })
        }
        (expected, got) => Some(format!(
            "check says {got:?}, {browser} said {expected:?}; block: {:?}",
            report.block.as_ref().map(|b| &b.problems)
        )),
    }
}

/// The engine matrix on the server at `port`, from `origin`: `truth` is
/// what `engine` did (or, for the standard, what the row says), in matrix order.
pub async fn engine_matrix(
    prober: &Prober,
    engine: Engine,
    port: u16,
    origin: &str,
    truth: &[Outcome],
) -> Agreement {
    let mut agreement = Agreement::default();
    for (scenario, expected) in ENGINE_SCENARIOS.iter().zip(truth) {
        let input = CheckInput {
            url: scenario.url(port, origin, engine),
            origin: origin.to_owned(),
            method: scenario.method.to_owned(),
            headers: owned_headers(scenario.headers),
            body: scenario.body.map(str::to_owned),
            credentials: scenario.credentials,
            engine,
        };
        agreement
            .ask(prober, scenario.name, &input, |report| {
                let predicted = predicted(scenario, report);
                (predicted != *expected).then(|| {
                    format!(
                        "check predicts {predicted:?}, the browser does {expected:?}; block: {:?}",
                        report.block.as_ref().map(|b| &b.problems)
                    )
                })
            })
            .await;
    }
    agreement
}

/// The outcome check's report predicts for an engine matrix row.
fn predicted(scenario: &EngineScenario, report: &CheckReport) -> Outcome {
    let preflight = report.steps.iter().find(|s| s.kind == StepKind::Preflight);
    // A repeat within the cache lifetime needs no second preflight.
    let preflights = match (preflight, scenario.repeat_ms) {
        (None, _) => 0,
        (Some(_), None) => 1,
        (Some(step), Some(after_ms)) => {
            let cached_ms = step.cached_seconds.unwrap_or(0).saturating_mul(1000);
            if report.verdict == CheckVerdict::Allowed && cached_ms <= after_ms {
                2
            } else {
                1
            }
        }
    };
    Outcome {
        allowed: report.verdict == CheckVerdict::Allowed,
        preflights,
    }
}
