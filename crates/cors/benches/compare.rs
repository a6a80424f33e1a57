//! crossgate-cors against tower-http's `CorsLayer` and actix-cors, in one run,
//! on the same policy and the same requests, each next to a no-CORS baseline of
//! the same service shape.
//!
//! ```text
//! cargo bench -p crossgate-cors --bench compare
//! ```
//!
//! runs every scenario and then prints a Markdown table of medians, of the cost
//! each implementation adds over its baseline, and of the ratio of crossgate's
//! added cost to tower-http's (see docs/benchmarks.md). Criterion's usual
//! arguments work: `-- preflight` runs the scenarios whose name contains
//! `preflight` only.
//!
//! Method:
//! - tower-based stacks (crossgate's `CorsLayer`, tower-http's `CorsLayer`, the
//!   tower baseline) wrap one `service_fn` that answers an empty 200; each
//!   request goes through `ServiceExt::oneshot` on `&mut` of one long-lived
//!   service (no per-request clone of the service or its policy), driven by a
//!   current-thread tokio runtime;
//! - actix stacks (actix-cors, the actix baseline) are an `App` with a default
//!   handler answering an empty 200, built with `actix_web::test::init_service`
//!   and called in process on the actix runtime;
//! - every handler answers 200 with an empty body and a `Content-Type`, as real
//!   handlers do;
//! - the raw engine row is `Policy::decide` followed by `Policy::apply` into
//!   such a handler's header map: the work any integration cannot avoid;
//! - building the request is setup and is not timed; dropping the response is.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::{test as actix_test, web, App, HttpResponse};
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkGroup, Criterion};
use crossgate_cors::CorsLayer;
use http::{Request, Response};
use http_body_util::Empty;
use tower::{service_fn, Layer, Service, ServiceExt};

mod common;

use common::{
    crossgate_policy, empty_ok, handler_headers, scenarios, tower_http_layer, Origins, Scenario,
    CONTENT_TYPE_VALUE, EXPOSE_HEADER, MAX_AGE_SECONDS, REQUEST_HEADERS,
};

fn actix_cors(origins: Origins) -> actix_cors::Cors {
    let cors = origins
        .list()
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin)
        });
    cors.allowed_methods(["GET", "HEAD", "POST", "PUT", "DELETE"])
        .allowed_headers(REQUEST_HEADERS)
        .expose_headers([EXPOSE_HEADER])
        .supports_credentials()
        .max_age(usize::try_from(MAX_AGE_SECONDS).ok())
}

fn tower_request(scenario: &Scenario) -> Request<Empty<Bytes>> {
    let mut request = Request::new(Empty::new());
    *request.method_mut() = scenario.method.clone();
    *request.headers_mut() = scenario.headers.clone();
    request
}

fn bench_tower<S>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    runtime: &tokio::runtime::Runtime,
    scenario: &Scenario,
    mut service: S,
) where
    S: Service<Request<Empty<Bytes>>, Response = Response<Empty<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    group.bench_function(id, |bencher| {
        bencher.iter_batched(
            || tower_request(scenario),
            |request| {
                let response = runtime.block_on((&mut service).oneshot(request));
                drop(black_box(response));
            },
            BatchSize::SmallInput,
        )
    });
}

fn actix_request(scenario: &Scenario) -> actix_http::Request {
    let method = actix_web::http::Method::from_bytes(scenario.method.as_str().as_bytes())
        .expect("benchmark methods are valid");
    scenario
        .headers
        .iter()
        .fold(
            actix_test::TestRequest::default().method(method),
            |request, (name, value)| request.append_header((name.as_str(), value.as_bytes())),
        )
        .to_request()
}

fn bench_actix(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    scenario: &Scenario,
    cors: Option<actix_cors::Cors>,
) {
    let system = actix_web::rt::System::new();
    let handler = || async { HttpResponse::Ok().content_type(CONTENT_TYPE_VALUE).finish() };
    // The two stacks differ in type, so each is built in its own arm and timed
    // by the one generic loop.
    match cors {
        Some(cors) => {
            let app = system.block_on(actix_test::init_service(
                App::new().wrap(cors).default_service(web::to(handler)),
            ));
            time_actix_app(group, id, &system, scenario, app);
        }
        None => {
            let app = system.block_on(actix_test::init_service(
                App::new().default_service(web::to(handler)),
            ));
            time_actix_app(group, id, &system, scenario, app);
        }
    }
}

/// Times `app` answering the scenario's request; building the request is not timed.
fn time_actix_app<S: actix_web::dev::Service<actix_http::Request>>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    system: &actix_web::rt::SystemRunner,
    scenario: &Scenario,
    app: S,
) {
    group.bench_function(id, |bencher| {
        bencher.iter_batched(
            || actix_request(scenario),
            |request| {
                let response = system.block_on(app.call(request));
                drop(black_box(response));
            },
            BatchSize::SmallInput,
        )
    });
}

/// Implementation rows, in the order they run and are reported.
const BASELINE_TOWER: &str = "baseline_tower";
const CROSSGATE_LAYER: &str = "crossgate_layer";
const CROSSGATE_ENGINE: &str = "crossgate_engine";
const TOWER_HTTP: &str = "tower_http";
const BASELINE_ACTIX: &str = "baseline_actix";
const ACTIX_CORS: &str = "actix_cors";

fn run_scenario(criterion: &mut Criterion, runtime: &tokio::runtime::Runtime, scenario: &Scenario) {
    let mut group = criterion.benchmark_group(scenario.name);
    let policy = crossgate_policy(scenario.origins);

    bench_tower(
        &mut group,
        BASELINE_TOWER,
        runtime,
        scenario,
        service_fn(empty_ok),
    );
    bench_tower(
        &mut group,
        CROSSGATE_LAYER,
        runtime,
        scenario,
        CorsLayer::new(policy.clone()).layer(service_fn(empty_ok)),
    );
    group.bench_function(CROSSGATE_ENGINE, |bencher| {
        bencher.iter_batched(
            handler_headers,
            |mut response| {
                let decision =
                    policy.decide(black_box(&scenario.method), black_box(&scenario.headers));
                policy.apply(&decision, &mut response);
                drop(black_box(response));
            },
            BatchSize::SmallInput,
        )
    });
    bench_tower(
        &mut group,
        TOWER_HTTP,
        runtime,
        scenario,
        tower_http_layer(scenario.origins).layer(service_fn(empty_ok)),
    );
    bench_actix(&mut group, BASELINE_ACTIX, scenario, None);
    bench_actix(
        &mut group,
        ACTIX_CORS,
        scenario,
        Some(actix_cors(scenario.origins)),
    );
    group.finish();
}

/// Criterion's output directory, found as criterion finds it.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("criterion")
}

/// Median of one benchmark in nanoseconds, as criterion saved it.
fn median_ns(dir: &Path, group: &str, id: &str) -> Option<f64> {
    let path = dir.join(group).join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn format_ns(ns: Option<f64>) -> String {
    match ns {
        Some(ns) if ns.abs() >= 10_000.0 => format!("{:.1} µs", ns / 1000.0),
        Some(ns) => format!("{ns:.0} ns"),
        None => "–".to_owned(),
    }
}

fn added(total: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    Some(total? - baseline?)
}

/// Prints the table docs/benchmarks.md quotes.
fn print_report(scenarios: &[Scenario]) {
    let dir = criterion_dir();
    println!("\n## Medians (criterion, {})\n", dir.display());
    println!(
        "| scenario | baseline tower | crossgate layer | crossgate engine (decide+apply) | tower-http | baseline actix | actix-cors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for scenario in scenarios {
        let cells: Vec<String> = [
            BASELINE_TOWER,
            CROSSGATE_LAYER,
            CROSSGATE_ENGINE,
            TOWER_HTTP,
            BASELINE_ACTIX,
            ACTIX_CORS,
        ]
        .iter()
        .map(|id| format_ns(median_ns(&dir, scenario.name, id)))
        .collect();
        println!("| {} | {} |", scenario.name, cells.join(" | "));
    }

    println!("\n## Added cost over the baseline, and crossgate / tower-http\n");
    println!(
        "| scenario | crossgate layer added | tower-http added | actix-cors added | crossgate / tower-http |"
    );
    println!("|---|---:|---:|---:|---:|");
    for scenario in scenarios {
        let median = |id| median_ns(&dir, scenario.name, id);
        let tower_baseline = median(BASELINE_TOWER);
        let ours = added(median(CROSSGATE_LAYER), tower_baseline);
        let theirs = added(median(TOWER_HTTP), tower_baseline);
        let actix = added(median(ACTIX_CORS), median(BASELINE_ACTIX));
        let ratio = match (ours, theirs) {
            (Some(ours), Some(theirs)) if theirs > 0.0 => format!("{:.2}", ours / theirs),
            _ => "–".to_owned(),
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            scenario.name,
            format_ns(ours),
            format_ns(theirs),
            format_ns(actix),
            ratio
        );
    }
    println!(
        "\nTargets: crossgate / tower-http ≤ 0.33 for allowed_actual and preflight_2_headers; \
         preflight_1mib_commas under 100 µs for the crossgate layer."
    );
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(error) => panic!("cannot start a tokio runtime: {error}"),
    };
    let scenarios = scenarios();
    for scenario in &scenarios {
        run_scenario(&mut criterion, &runtime, scenario);
    }
    criterion.final_summary();
    print_report(&scenarios);
}
