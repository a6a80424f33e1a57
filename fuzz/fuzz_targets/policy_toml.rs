//! Arbitrary text as a `[policies.NAME]` table: deserializing and compiling
//! must never panic, every error must name its key, and a policy that compiles
//! must never pair `ACAO: *` with `ACAC: true`.
#![no_main]

use crossgate_cors::PolicyConfig;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fn requests() -> [(Method, HeaderMap); 3] {
    let mut actual = HeaderMap::new();
    actual.insert(ORIGIN, HeaderValue::from_static("https://app.example.com"));
    let mut preflight = actual.clone();
    preflight.insert(
        ACCESS_CONTROL_REQUEST_METHOD,
        HeaderValue::from_static("PUT"),
    );
    preflight.insert(
        ACCESS_CONTROL_REQUEST_HEADERS,
        HeaderValue::from_static("content-type, x-custom"),
    );
    [
        (Method::GET, HeaderMap::new()),
        (Method::GET, actual),
        (Method::OPTIONS, preflight),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<PolicyConfig>(text) else {
        return;
    };
    let policy = match config.compile() {
        Ok(policy) => policy,
        Err(errors) => {
            assert!(
                !errors.is_empty(),
                "compile failed without naming a problem"
            );
            for error in &errors {
                assert!(!error.key().is_empty(), "error without a key: {error}");
                assert!(!error.fix().is_empty(), "error without a fix: {error}");
            }
            return;
        }
    };
    for (method, request) in requests() {
        let decision = policy.decide(&method, &request);
        let mut response = HeaderMap::new();
        policy.apply(&decision, &mut response);
        let wildcard = response
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_some_and(|value| value == "*");
        let credentialed = response
            .get(ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_some_and(|value| value == "true");
        assert!(
            !(wildcard && credentialed),
            "ACAO: * together with ACAC: true"
        );
    }
});
