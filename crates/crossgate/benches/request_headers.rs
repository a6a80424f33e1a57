//! The per-request header work of forwarding (issue 9's framing and
//! forwarding-header defences), on a typical browser request and upstream
//! response:
//!
//! ```text
//! cargo bench -p crossgate --bench request_headers
//! ```
//!
//! Cloning the header map is setup and is not timed.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use crossgate::proxy::forwarded::{ClientView, TrustedProxies};
use crossgate::proxy::framing::{check_response, normalize_content_length};
use crossgate::proxy::upstream::remove_hop_by_hop;
use http::{HeaderMap, HeaderValue, StatusCode};

/// A header map holding `pairs`, in order.
fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for &(name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

fn request_headers(client_claims: bool) -> HeaderMap {
    let mut headers = header_map(&[
        ("host", "api.example.com"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"),
        ("accept", "application/json"),
        ("origin", "https://app.example.com"),
        ("content-type", "application/json"),
        ("content-length", "13"),
        ("cookie", "session=0123456789abcdef"),
        ("connection", "keep-alive"),
    ]);
    if client_claims {
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        headers.insert("x-real-ip", HeaderValue::from_static("203.0.113.9"));
    }
    headers
}

fn response_headers() -> HeaderMap {
    header_map(&[
        ("content-type", "application/json"),
        ("content-length", "512"),
        ("vary", "Accept-Encoding"),
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
    ])
}

fn bench(c: &mut Criterion) {
    let view = ClientView::new(SocketAddr::from(([192, 0, 2, 1], 50000)), false);
    let edge = TrustedProxies::default();
    let host = HeaderValue::from_static("api.example.com");
    for (name, claims) in [("request/plain", false), ("request/forged_claims", true)] {
        let headers = request_headers(claims);
        c.bench_function(name, |b| {
            b.iter_batched_ref(
                || headers.clone(),
                |headers| {
                    normalize_content_length(headers).ok();
                    remove_hop_by_hop(headers);
                    view.apply(headers, &edge, Some(host.clone()));
                    black_box(&*headers);
                },
                BatchSize::SmallInput,
            );
        });
    }
    let response = response_headers();
    c.bench_function("response", |b| {
        b.iter_batched_ref(
            || response.clone(),
            |headers| {
                check_response(StatusCode::OK, headers).ok();
                remove_hop_by_hop(headers);
                black_box(&*headers);
            },
            BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
