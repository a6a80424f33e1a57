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

use std::convert::Infallible;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::dev::Service as _;
use actix_web::{test as actix_test, web, App, HttpResponse};
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkGroup, Criterion};
use crossgate_cors::{CorsLayer, Policy, PolicyConfig};
use http::header::{
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_TYPE, ORIGIN,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::Empty;
use tower::{service_fn, Layer, Service, ServiceExt};

const ALLOWED_ORIGIN: &str = "https://app.example.com";
const DISALLOWED_ORIGIN: &str = "https://app.example.com.evil.net";
const OTHER_ORIGINS: [&str; 2] = ["https://admin.example.com", "http://localhost:3000"];
const EXTRA_METHODS: [&str; 2] = ["PUT", "DELETE"];
const REQUEST_HEADERS: [&str; 2] = ["content-type", "x-requested-with"];
const EXPOSE_HEADER: &str = "x-request-id";
const MAX_AGE_SECONDS: u32 = 7200;
const LONG_LIST_LEN: usize = 1000;
const ONE_MIB: usize = 1 << 20;

/// Which of the two policies a scenario runs against. Both policies are the
/// same but for the origin list.
#[derive(Clone, Copy)]
enum Origins {
    /// Three exact origins.
    Short,
    /// 1,000 exact origins; the request's origin is the last one.
    Long,
}

impl Origins {
    fn list(self) -> Vec<String> {
        let mut origins = vec![ALLOWED_ORIGIN.to_owned()];
        origins.extend(OTHER_ORIGINS.iter().map(|origin| (*origin).to_owned()));
        if let Origins::Long = self {
            origins.extend((origins.len()..LONG_LIST_LEN).map(long_list_origin));
        }
        origins
    }

    fn allowed(self) -> String {
        match self {
            Origins::Short => ALLOWED_ORIGIN.to_owned(),
            Origins::Long => long_list_origin(LONG_LIST_LEN - 1),
        }
    }
}

fn long_list_origin(index: usize) -> String {
    format!("https://tenant{index:04}.example.org")
}

struct Scenario {
    name: &'static str,
    origins: Origins,
    method: Method,
    headers: HeaderMap,
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("benchmark header values are valid")
}

fn scenarios() -> Vec<Scenario> {
    let actual = |origin: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, header_value(origin));
        headers
    };
    let preflight = |origin: &str, requested: HeaderValue| {
        let mut headers = actual(origin);
        headers.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("PUT"),
        );
        headers.insert(ACCESS_CONTROL_REQUEST_HEADERS, requested);
        headers
    };
    let two_headers = HeaderValue::from_static("content-type, x-requested-with");
    let commas = HeaderValue::from_bytes(&vec![b','; ONE_MIB]).expect("commas are a valid value");
    vec![
        Scenario {
            name: "allowed_actual",
            origins: Origins::Short,
            method: Method::GET,
            headers: actual(ALLOWED_ORIGIN),
        },
        Scenario {
            name: "disallowed_actual",
            origins: Origins::Short,
            method: Method::GET,
            headers: actual(DISALLOWED_ORIGIN),
        },
        Scenario {
            name: "no_origin",
            origins: Origins::Short,
            method: Method::GET,
            headers: HeaderMap::new(),
        },
        Scenario {
            name: "preflight_2_headers",
            origins: Origins::Short,
            method: Method::OPTIONS,
            headers: preflight(ALLOWED_ORIGIN, two_headers.clone()),
        },
        Scenario {
            name: "preflight_failure",
            origins: Origins::Short,
            method: Method::OPTIONS,
            headers: preflight(DISALLOWED_ORIGIN, two_headers),
        },
        Scenario {
            name: "origins_1000_allowed_actual",
            origins: Origins::Long,
            method: Method::GET,
            headers: actual(&Origins::Long.allowed()),
        },
        Scenario {
            name: "preflight_1mib_commas",
            origins: Origins::Short,
            method: Method::OPTIONS,
            headers: preflight(ALLOWED_ORIGIN, commas),
        },
    ]
}

fn crossgate_policy(origins: Origins) -> Policy {
    let config = PolicyConfig::builder()
        .origins(origins.list())
        .methods(EXTRA_METHODS)
        .request_headers(REQUEST_HEADERS)
        .expose_headers([EXPOSE_HEADER])
        .credentials(true)
        .max_age(i64::from(MAX_AGE_SECONDS))
        .compile();
    match config {
        Ok(policy) => policy,
        Err(errors) => panic!("the benchmark policy must compile:\n{errors}"),
    }
}

fn tower_http_layer(origins: Origins) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, ExposeHeaders};
    let origins = origins.list();
    tower_http::cors::CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().map(|o| header_value(o))))
        .allow_methods(AllowMethods::list([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
        ]))
        .allow_headers(AllowHeaders::list(
            REQUEST_HEADERS.map(HeaderName::from_static),
        ))
        .expose_headers(ExposeHeaders::list([HeaderName::from_static(
            EXPOSE_HEADER,
        )]))
        .allow_credentials(true)
        .max_age(Duration::from_secs(u64::from(MAX_AGE_SECONDS)))
}

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

type TowerResponse = Response<Empty<Bytes>>;

/// What every handler here answers: 200, an empty body and a `Content-Type`,
/// as real handlers do, so the response's header map already exists and the
/// CORS implementations are measured adding to it, not creating it.
const CONTENT_TYPE_VALUE: &str = "text/plain; charset=utf-8";

fn handler_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_VALUE));
    headers
}

async fn empty_ok(_request: Request<Empty<Bytes>>) -> Result<TowerResponse, Infallible> {
    let mut response = Response::new(Empty::new());
    *response.headers_mut() = handler_headers();
    Ok(response)
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
    // The two stacks differ in type, so each gets its own timing loop body.
    match cors {
        Some(cors) => {
            let app = system.block_on(actix_test::init_service(
                App::new().wrap(cors).default_service(web::to(handler)),
            ));
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
        None => {
            let app = system.block_on(actix_test::init_service(
                App::new().default_service(web::to(handler)),
            ));
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
    }
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
