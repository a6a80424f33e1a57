//! Host and path routing per request: the host read and normalized from the
//! request (into a stack buffer) and the route found, for 40 routes over
//! exact hosts, wildcards and no host:
//!
//! ```text
//! cargo bench -p crossgate --bench routing
//! ```

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use crossgate::proxy::host::{self, HostBuf};
use crossgate::{CompiledConfig, ConfigSource, Metrics};
use http::{HeaderMap, HeaderValue, Uri};

fn config() -> CompiledConfig {
    let mut text = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for i in 0..10 {
        for (host, path) in [
            (format!("host = \"api{i}.example.com\""), format!("/v{i}/")),
            (format!("host = \"*.t{i}.example.com\""), format!("/v{i}/")),
            (String::new(), format!("/v{i}/")),
            (String::new(), format!("/static{i}/")),
        ] {
            let _ = write!(
                text,
                "[[routes]]\n{host}\npath = \"{path}\"\nupstream = \"http://127.0.0.1:9\"\n"
            );
        }
    }
    CompiledConfig::compile_text(&text, &ConfigSource::Demo, &Metrics::new())
        .unwrap_or_else(|problems| panic!("bench config: {problems}"))
}

fn bench(c: &mut Criterion) {
    let config = config();
    let uri: Uri = "/v9/items/1?x=1".parse().expect("uri");
    for (name, host) in [
        ("exact", "API9.example.com:8443"),
        ("wildcard", "a.t9.example.com"),
        ("host_less", "other.example.net"),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static(host));
        c.bench_function(&format!("route/{name}"), |b| {
            b.iter(|| {
                let mut buf = HostBuf::new();
                let host = host::of_request(black_box(&uri), black_box(&headers), &mut buf);
                let resolved = config.router.resolve(host.ok().flatten(), uri.path());
                black_box(resolved.route.map(|route| route.label.len()));
            });
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
