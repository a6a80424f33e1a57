//! The hot path does not touch the heap: a counting global allocator
//! measures `decide` + `apply` for the requests a browser sends most.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use crossgate_cors::{Policy, PolicyConfig};
use http::{HeaderMap, HeaderValue, Method};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts calls on this thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn list_policy() -> Policy {
    PolicyConfig::builder()
        .origins(
            (0..20)
                .map(|i| format!("https://app{i}.example.com"))
                .chain(["https://*.example.org".to_owned()]),
        )
        .methods(["PUT", "DELETE", "PATCH"])
        .request_headers([
            "content-type",
            "x-a",
            "x-b",
            "x-c",
            "x-d",
            "x-e",
            "x-f",
            "x-g",
            "x-h",
        ])
        .expose_headers(["x-request-id"])
        .credentials(true)
        .max_age(600)
        .compile()
        .unwrap()
}

/// A response map with room for the CORS headers, as a server's response
/// builder has; the engine's own work is what is counted.
fn response_headers() -> HeaderMap {
    let mut map = HeaderMap::with_capacity(16);
    map.insert("content-type", HeaderValue::from_static("application/json"));
    map
}

fn assert_no_allocation(policy: &Policy, method: Method, request: &HeaderMap) {
    // Warm up once: lazily initialised state is not per-request cost.
    let mut response = response_headers();
    policy.apply(&policy.decide(&method, request), &mut response);
    let mut response = response_headers();
    let count = allocations_during(|| {
        let decision = policy.decide(&method, request);
        policy.apply(&decision, &mut response);
        drop(decision);
    });
    assert!(response.contains_key("vary"));
    assert_eq!(count, 0, "{method} {request:?} allocated");
}

/// A request map holding `headers`, as a browser would send them.
fn request_map(headers: &[(&'static str, &'static str)]) -> HeaderMap {
    headers
        .iter()
        .map(|&(name, value)| (name.parse().unwrap(), HeaderValue::from_static(value)))
        .collect()
}

#[test]
fn allowed_actual_request_does_not_allocate() {
    let policy = list_policy();
    let get = request_map(&[("origin", "https://app7.example.com"), ("accept", "*/*")]);
    assert_no_allocation(&policy, Method::GET, &get);

    let post = request_map(&[("origin", "https://deep.sub.example.org")]);
    assert_no_allocation(&policy, Method::POST, &post);
}

/// A preflight from an allowed origin for PUT with the given header list.
fn preflight(request_headers: &'static str) -> HeaderMap {
    request_map(&[
        ("origin", "https://app3.example.com"),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", request_headers),
    ])
}

#[test]
fn preflight_with_eight_headers_does_not_allocate() {
    let request = preflight("content-type,x-a,x-b,x-c,x-d,x-e,x-f,x-g");
    assert_no_allocation(&list_policy(), Method::OPTIONS, &request);
}

#[test]
fn denials_do_not_allocate() {
    let policy = list_policy();
    let mut request = preflight("x-not-allowed");
    assert_no_allocation(&policy, Method::OPTIONS, &request);

    let commas = HeaderValue::from_bytes(&vec![b','; 1 << 20]).unwrap();
    request.insert("access-control-request-headers", commas);
    assert_no_allocation(&policy, Method::OPTIONS, &request);

    let foreign = request_map(&[("origin", "https://evil.example")]);
    assert_no_allocation(&policy, Method::GET, &foreign);
}

#[test]
fn counter_sees_allocations() {
    // Guards the test itself: a counter that never counts would pass everything.
    let count = allocations_during(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert!(count >= 1);
}
