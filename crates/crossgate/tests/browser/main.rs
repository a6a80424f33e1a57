//! Proof in real browsers: Chromium, Firefox and WebKit each run both
//! scenario tables in one session, and `crossgate check --engine X` is held
//! to what engine X did, row by row.
//!
//! - The gateway table ([`scenarios::SCENARIOS`], [`gateway_table`]): pages
//!   on one origin call `crossgate serve` on another through a tap, with
//!   cookies, preflight counting, a `/metrics` cross-check and a replay with
//!   the CORS headers stripped.
//! - The engine matrix ([`engine_matrix::ENGINE_SCENARIOS`],
//!   [`engine_table`]): a small CORS server answers as each row says, to find
//!   where the engines depart from the Fetch standard.
//!
//! - WebSocket ([`websocket`]): `new WebSocket()` through the gateway from
//!   a page the route's policy allows, and from one it does not; then
//!   `wss://` to a TLS gateway the page has just `fetch()`ed over HTTP/2,
//!   with the handshake each engine uses (extended CONNECT or HTTP/1.1)
//!   read from the gateway's metrics.
//!
//! The three engines run at the same time, each with its own gateway. Every
//! row must end as it says for that engine; then [`agreement`] asks check
//! about every row with that engine's profile, and compares with what the
//! browser recorded (and, for `spec`, with what the standard says). If a
//! browser cannot start, the test fails; it never skips.
//! `CROSSGATE_BROWSER_ENGINES=firefox` (or a comma list) runs only those.
//!
//! Two more tests share the binary: [`third_party`] (CORS servers we did not
//! write, in the three engines, with check agreeing) and [`dashboard`] (the
//! admin dashboard in headless Chromium).

mod agreement;
mod dashboard;
mod engine_matrix;
mod engine_table;
mod engines;
mod gateway;
mod gateway_table;
mod servers;
mod test_hosts;
mod third_party;
mod websocket;

use std::time::{Duration, Instant};

use crossgate_cors::browser::Engine;
use crossgate_probe::Prober;
use crossgate_testkit::scenarios::{self, SCENARIOS};

use engine_matrix::{Seen, ENGINE_SCENARIOS};
use engine_table::MatrixRun;
use engines::EngineBrowser;
use gateway_table::{Stack, TableRun};

/// What one engine did, with the servers it did it against (still running,
/// so check can ask them the same questions).
struct EngineRun {
    engine: Engine,
    stack: Stack,
    table: TableRun,
    matrix: MatrixRun,
    /// The WebSocket scenarios' failures ([`websocket`]).
    websocket: Vec<String>,
    took: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_runs_every_scenario_and_check_agrees_with_it() {
    let started = Instant::now();
    assert!(
        SCENARIOS.len() >= 40,
        "the gateway table must keep at least 40 scenarios"
    );
    assert_unique("gateway table", SCENARIOS.iter().map(|s| s.name));
    assert_unique("engine matrix", ENGINE_SCENARIOS.iter().map(|s| s.name));

    let test_proxy = test_hosts::start_proxy().await;
    let (matrix_page_listener, matrix_page_port) = servers::bind().await;
    servers::page_server(matrix_page_listener);
    let matrix_origin = format!("http://127.0.0.1:{matrix_page_port}");
    let (matrix_port, matrix_seen) = engine_matrix::start_cors_server().await;

    let engines = engines_to_run();
    assert!(
        !engines.is_empty(),
        "CROSSGATE_BROWSER_ENGINES names no engine"
    );
    let tasks: Vec<_> = engines
        .iter()
        .map(|&engine| {
            let matrix_origin = matrix_origin.clone();
            let matrix_seen = matrix_seen.clone();
            tokio::spawn(async move {
                run_engine(
                    engine,
                    test_proxy,
                    &matrix_origin,
                    matrix_port,
                    &matrix_seen,
                )
                .await
            })
        })
        .collect();
    let mut runs = Vec::new();
    for task in tasks {
        match task.await {
            Ok(run) => runs.push(run),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("an engine's run was cancelled: {e}"),
        }
    }
    let browsers_took = started.elapsed();

    let prober = Prober::new(Duration::from_secs(10), None).expect("prober");
    let mut failures = Vec::new();
    for run in &runs {
        let browser = run.engine.profile().observed_in;
        eprintln!(
            "{browser}: both tables in {:.1?}; gateway table: {} failures over {} rows; engine matrix: {} failures over {} rows",
            run.took,
            run.table.failures.len(),
            SCENARIOS.len(),
            run.matrix.failures.len(),
            ENGINE_SCENARIOS.len()
        );
        failures.extend(run.table.failures.iter().cloned());
        failures.extend(run.matrix.failures.iter().cloned());
        eprintln!(
            "{browser}: WebSocket from an allowed and a disallowed page, and over HTTPS after a fetch: {} failures",
            run.websocket.len()
        );
        failures.extend(run.websocket.iter().cloned());

        let table =
            agreement::gateway_table(&prober, run.engine, &run.stack, &run.table.observed).await;
        let matrix = agreement::engine_matrix(
            &prober,
            run.engine,
            matrix_port,
            &matrix_origin,
            &run.matrix.observed,
        )
        .await;
        eprintln!(
            "check --engine {}: agrees with {browser} on {} of {} gateway scenarios and {} of {} engine scenarios",
            run.engine.name(),
            table.agree,
            SCENARIOS.len(),
            matrix.agree,
            ENGINE_SCENARIOS.len()
        );
        failures.extend(table.disagreements);
        failures.extend(matrix.disagreements);
    }
    // The standard is not a browser: check --engine spec is held to what
    // each row says the standard requires.
    let spec_truth: Vec<_> = ENGINE_SCENARIOS
        .iter()
        .map(|s| s.expected(Engine::Spec))
        .collect();
    let spec = agreement::engine_matrix(
        &prober,
        Engine::Spec,
        matrix_port,
        &matrix_origin,
        &spec_truth,
    )
    .await;
    eprintln!(
        "check --engine spec: agrees with the Fetch standard on {} of {} engine scenarios",
        spec.agree,
        ENGINE_SCENARIOS.len()
    );
    failures.extend(spec.disagreements);
    eprintln!(
        "browser suite: {} engines in {browsers_took:.1?}, with check {:.1?}, {} failures",
        runs.len(),
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} browser-suite failures:\n{}\n{}",
        failures.len(),
        failures.join("\n"),
        runs.iter()
            .map(|run| format!(
                "--- gateway output for {} (tail):\n{}",
                run.engine.name(),
                tail(&run.stack.gateway.log(), 40)
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

async fn run_engine(
    engine: Engine,
    test_proxy: u16,
    matrix_origin: &str,
    matrix_port: u16,
    matrix_seen: &Seen,
) -> EngineRun {
    let started = Instant::now();
    let stack = Stack::start().await;
    let browser = EngineBrowser::start(engine, test_proxy).await;
    let table = gateway_table::run(&browser, &stack).await;
    let matrix = engine_table::run(&browser, matrix_origin, matrix_port, matrix_seen).await;
    let websocket = websocket::run(&browser, &stack.ports).await;
    browser.close().await;
    EngineRun {
        engine,
        stack,
        table,
        matrix,
        websocket,
        took: started.elapsed(),
    }
}

/// Every browser, unless `CROSSGATE_BROWSER_ENGINES` names some
/// (`firefox`, `chromium,webkit`): for working on one engine. An unknown
/// name fails the test rather than running less than asked.
fn engines_to_run() -> Vec<Engine> {
    const BROWSERS: [Engine; 3] = [Engine::Chromium, Engine::Firefox, Engine::WebKit];
    let Ok(list) = std::env::var("CROSSGATE_BROWSER_ENGINES") else {
        return BROWSERS.to_vec();
    };
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            BROWSERS
                .into_iter()
                .find(|e| e.name() == name)
                .unwrap_or_else(|| {
                    panic!("CROSSGATE_BROWSER_ENGINES: `{name}` is not chromium, firefox or webkit")
                })
        })
        .collect()
}

fn assert_unique<'a>(table: &str, names: impl Iterator<Item = &'a str>) {
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(
        before,
        names.len(),
        "{table}: scenario names must be unique"
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
