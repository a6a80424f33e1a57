//! Arbitrary bytes as the `Origin` of actual requests and preflights, against a
//! credentialed pattern policy and a `*` policy.
#![no_main]

use std::sync::OnceLock;

use crossgate_cors::{Policy, PolicyConfig};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD,
    ORIGIN,
};
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

struct Policies {
    patterns: Policy,
    any: Policy,
}

fn policies() -> &'static Policies {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let compile = |config: PolicyConfig| match config.compile() {
            Ok(policy) => policy,
            Err(errors) => panic!("the fuzz target's own policy must compile:\n{errors}"),
        };
        Policies {
            patterns: compile(
                PolicyConfig::builder()
                    .origins([
                        "https://app.example.com",
                        "https://*.example.com",
                        "http://localhost:*",
                    ])
                    .methods(["PUT"])
                    .credentials(true)
                    .build(),
            ),
            any: compile(PolicyConfig::builder().origins(["*"]).build()),
        }
    })
}

/// The only origins the pattern policy may allow, checked without the engine's
/// own parser: a weak but independent oracle for scheme and suffix exactness.
fn could_match_patterns(origin: &[u8]) -> bool {
    origin == b"https://app.example.com"
        || origin.starts_with(b"http://localhost")
        || (origin.starts_with(b"https://") && origin.ends_with(b".example.com"))
}

fn check(policy: &Policy, method: &Method, request: &HeaderMap, origin: &[u8], patterns: bool) {
    let decision = policy.decide(method, request);
    let mut response = HeaderMap::new();
    policy.apply(&decision, &mut response);

    let allow_origin = response.get(ACCESS_CONTROL_ALLOW_ORIGIN);
    let credentialed = response
        .get(ACCESS_CONTROL_ALLOW_CREDENTIALS)
        .is_some_and(|value| value == "true");
    if let Some(allowed) = allow_origin {
        assert!(
            !(allowed == "*" && credentialed),
            "ACAO: * together with ACAC: true"
        );
        if allowed != "*" {
            assert_eq!(
                allowed.as_bytes(),
                origin,
                "ACAO must echo the request's origin"
            );
        }
        if patterns {
            assert!(
                could_match_patterns(origin),
                "origin {:?} allowed by a policy that cannot match it",
                String::from_utf8_lossy(origin)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(origin) = HeaderValue::from_bytes(data) else {
        return;
    };
    let policies = policies();

    let mut actual = HeaderMap::new();
    actual.insert(ORIGIN, origin.clone());
    let mut preflight = actual.clone();
    preflight.insert(
        ACCESS_CONTROL_REQUEST_METHOD,
        HeaderValue::from_static("PUT"),
    );

    for (method, request) in [(Method::GET, &actual), (Method::OPTIONS, &preflight)] {
        check(&policies.patterns, &method, request, data, true);
        check(&policies.any, &method, request, data, false);
    }
});
