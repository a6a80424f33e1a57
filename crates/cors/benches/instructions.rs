//! Instructions and allocations per request: the instruction-count companion
//! of `benches/compare.rs`, on the same policy and the same scenarios, for
//! crossgate's `CorsLayer`, tower-http's `CorsLayer` and the no-CORS tower
//! baseline, plus the raw engine (`decide` + `apply`) next to its own baseline.
//!
//! ```text
//! cargo bench -p crossgate-cors --bench instructions
//! ```
//!
//! needs valgrind (`apt-get install valgrind`). Wall-clock time on a shared
//! machine moves by tens of percent; instruction counts do not. For every
//! implementation and scenario this binary runs itself under callgrind twice,
//! once sending N requests and once M, and reports (I(M) − I(N)) / (M − N):
//! process start-up, runtime creation, policy compilation and the first
//! request's lazy initialisation are the same in both runs and cancel out.
//! Allocations per request are counted natively, in this process, with a
//! counting global allocator, the same way (difference of two batches).
//!
//! Why not iai-callgrind/gungraun: they need a separately installed runner
//! binary of exactly the library's version; this file needs only valgrind and
//! measures the same thing (callgrind's `Ir`, user-space instructions).
//!
//! Knobs (environment): `INSTRUCTIONS_N` (default 1000), `INSTRUCTIONS_M`
//! (default 3000), `VALGRIND` (default `valgrind`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use crossgate_cors::CorsLayer;
use http::{Request, Response};
use http_body_util::Empty;
use tower::{service_fn, Layer, Service, ServiceExt};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

mod common;

use common::{crossgate_policy, empty_ok, handler_headers, scenarios, tower_http_layer};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Implementation rows; each `*_added` figure is a row minus its baseline.
const BASELINE_TOWER: &str = "baseline_tower";
const CROSSGATE_LAYER: &str = "crossgate_layer";
const TOWER_HTTP: &str = "tower_http";
const BASELINE_ENGINE: &str = "baseline_engine";
const CROSSGATE_ENGINE: &str = "crossgate_engine";
const IMPLEMENTATIONS: [&str; 5] = [
    BASELINE_TOWER,
    CROSSGATE_LAYER,
    TOWER_HTTP,
    BASELINE_ENGINE,
    CROSSGATE_ENGINE,
];

/// Sends `iterations` requests through one implementation, exactly as
/// `benches/compare.rs` times them (request built, sent, response dropped).
fn run(implementation: &str, scenario_name: &str, iterations: usize) {
    let Some(scenario) = scenarios().into_iter().find(|s| s.name == scenario_name) else {
        panic!("unknown scenario {scenario_name}");
    };
    let (method, headers) = (scenario.method, scenario.headers);
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(error) => panic!("cannot start a tokio runtime: {error}"),
    };
    let request = || {
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.method_mut() = method.clone();
        *request.headers_mut() = headers.clone();
        request
    };
    fn drive<S>(
        runtime: &tokio::runtime::Runtime,
        mut service: S,
        iterations: usize,
        request: &dyn Fn() -> Request<Empty<Bytes>>,
    ) where
        S: Service<Request<Empty<Bytes>>, Response = Response<Empty<Bytes>>>,
        S::Error: std::fmt::Debug,
    {
        for _ in 0..iterations {
            let response = runtime.block_on((&mut service).oneshot(black_box(request())));
            drop(black_box(response));
        }
    }
    match implementation {
        BASELINE_TOWER => drive(&runtime, service_fn(empty_ok), iterations, &request),
        CROSSGATE_LAYER => drive(
            &runtime,
            CorsLayer::new(crossgate_policy(scenario.origins)).layer(service_fn(empty_ok)),
            iterations,
            &request,
        ),
        TOWER_HTTP => drive(
            &runtime,
            tower_http_layer(scenario.origins).layer(service_fn(empty_ok)),
            iterations,
            &request,
        ),
        BASELINE_ENGINE => {
            for _ in 0..iterations {
                let request = black_box(request());
                let response = black_box(handler_headers());
                drop(black_box(request));
                drop(black_box(response));
            }
        }
        CROSSGATE_ENGINE => {
            let policy = crossgate_policy(scenario.origins);
            for _ in 0..iterations {
                let request = black_box(request());
                let mut response = handler_headers();
                let decision = policy.decide(request.method(), request.headers());
                policy.apply(&decision, &mut response);
                drop(black_box(request));
                drop(black_box(response));
            }
        }
        other => panic!("unknown implementation {other}"),
    }
}

fn iterations(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Total user-space instructions (callgrind's `Ir`) of this binary running
/// `run(implementation, scenario, iterations)`.
fn instructions(implementation: &str, scenario_name: &str, iterations: usize) -> u64 {
    let valgrind = std::env::var("VALGRIND").unwrap_or_else(|_| "valgrind".to_owned());
    let dir = std::env::temp_dir();
    let out = dir.join(format!(
        "crossgate-instructions.{}.{implementation}.{scenario_name}.{iterations}",
        std::process::id()
    ));
    let me = std::env::current_exe().expect("the benchmark knows its own path");
    let status = Command::new(&valgrind)
        .arg("--tool=callgrind")
        .arg("--dump-instr=no")
        .arg("--compress-strings=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--log-file=/dev/null")
        .arg(&me)
        .args(["--run", implementation, scenario_name])
        .arg(iterations.to_string())
        .status()
        .unwrap_or_else(|error| {
            panic!("cannot run {valgrind} (apt-get install valgrind): {error}")
        });
    assert!(status.success(), "{valgrind} failed: {status}");
    let text = std::fs::read_to_string(&out).expect("callgrind wrote its output");
    drop(std::fs::remove_file(&out));
    text.lines()
        .find_map(|line| {
            line.strip_prefix("summary:")
                .or(line.strip_prefix("totals:"))
        })
        .and_then(|total| total.split_whitespace().next()?.parse().ok())
        .expect("callgrind's output has a summary line")
}

fn allocations(implementation: &str, scenario_name: &str, iterations: usize) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(implementation, scenario_name, iterations);
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, implementation, scenario_name, count] = args.as_slice() {
        if flag == "--run" {
            let count = count.parse().expect("an iteration count");
            run(implementation, scenario_name, count);
            return;
        }
    }
    // Criterion-style filtering: `-- preflight` keeps the matching scenarios.
    let filter = args.iter().find(|arg| !arg.starts_with('-'));
    let n = iterations("INSTRUCTIONS_N", 1000);
    let m = iterations("INSTRUCTIONS_M", 3000);
    assert!(m > n, "INSTRUCTIONS_M must be larger than INSTRUCTIONS_N");
    let span = (m - n) as f64;

    println!(
        "\n## Per request: instructions (callgrind Ir, (I({m}) − I({n})) / {}) and allocations\n",
        m - n
    );
    println!("| scenario | baseline tower | crossgate layer added | tower-http added | crossgate / tower-http | crossgate engine added | allocations added: crossgate layer / tower-http / engine |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for scenario_name in scenarios().iter().map(|scenario| scenario.name) {
        if filter.is_some_and(|filter| !scenario_name.contains(filter.as_str())) {
            continue;
        }
        let mut per_request = std::collections::HashMap::new();
        let mut allocations_per_request = std::collections::HashMap::new();
        for implementation in IMPLEMENTATIONS {
            let low = instructions(implementation, scenario_name, n);
            let high = instructions(implementation, scenario_name, m);
            per_request.insert(implementation, (high as f64 - low as f64) / span);
            let low = allocations(implementation, scenario_name, n);
            let high = allocations(implementation, scenario_name, m);
            allocations_per_request.insert(implementation, (high as f64 - low as f64) / span);
        }
        let added = |table: &std::collections::HashMap<&str, f64>, row, baseline| {
            table[row] - table[baseline]
        };
        let ours = added(&per_request, CROSSGATE_LAYER, BASELINE_TOWER);
        let theirs = added(&per_request, TOWER_HTTP, BASELINE_TOWER);
        let engine = added(&per_request, CROSSGATE_ENGINE, BASELINE_ENGINE);
        println!(
            "| {scenario_name} | {:.0} | {ours:.0} | {theirs:.0} | {:.2} | {engine:.0} | {:.1} / {:.1} / {:.1} |",
            per_request[BASELINE_TOWER],
            ours / theirs,
            added(&allocations_per_request, CROSSGATE_LAYER, BASELINE_TOWER),
            added(&allocations_per_request, TOWER_HTTP, BASELINE_TOWER),
            added(&allocations_per_request, CROSSGATE_ENGINE, BASELINE_ENGINE),
        );
    }
    println!("\nTargets: crossgate / tower-http ≤ 0.33 on every scenario; 0 allocations added.");
}
