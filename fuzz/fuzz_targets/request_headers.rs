//! Arbitrary bytes as one or more `Access-Control-Request-Headers` lines of a
//! preflight (split on `\n`), against a list policy and a `*` policy.
#![no_main]

use std::sync::OnceLock;

use crossgate_cors::{Outcome, Policy, PolicyConfig};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
};
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

const ORIGIN_VALUE: &str = "https://app.example.com";

/// Names the list policy may accept: the configured ones plus the
/// CORS-safelisted request-header names, which a server may always accept.
const ACCEPTABLE_NAMES: [&str; 6] = [
    "content-type",
    "x-requested-with",
    "accept",
    "accept-language",
    "content-language",
    "range",
];

struct Policies {
    list: Policy,
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
            list: compile(
                PolicyConfig::builder()
                    .origins([ORIGIN_VALUE])
                    .methods(["PUT"])
                    .request_headers(["content-type", "x-requested-with"])
                    .credentials(true)
                    .build(),
            ),
            any: compile(
                PolicyConfig::builder()
                    .origins([ORIGIN_VALUE])
                    .methods(["*"])
                    .request_headers(["*"])
                    .credentials(true)
                    .build(),
            ),
        }
    })
}

fn requested_names(request: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    request
        .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&byte| byte == b','))
        .map(|name| String::from_utf8_lossy(name.trim_ascii()).to_ascii_lowercase())
        .filter(|name| !name.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let mut request = HeaderMap::new();
    request.insert(ORIGIN, HeaderValue::from_static(ORIGIN_VALUE));
    request.insert(
        ACCESS_CONTROL_REQUEST_METHOD,
        HeaderValue::from_static("PUT"),
    );
    for line in data.split(|&byte| byte == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            request.append(ACCESS_CONTROL_REQUEST_HEADERS, value);
        }
    }
    let policies = policies();

    for (policy, is_list) in [(&policies.list, true), (&policies.any, false)] {
        let decision = policy.decide(&Method::OPTIONS, &request);
        let mut response = HeaderMap::new();
        policy.apply(&decision, &mut response);

        let allowed = *decision.outcome() == Outcome::PreflightAllowed;
        assert_eq!(
            allowed,
            response.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN),
            "ACAO must be present exactly on an allowed preflight"
        );
        assert_eq!(
            response
                .get(ACCESS_CONTROL_ALLOW_CREDENTIALS)
                .is_some_and(|value| value == "true"),
            allowed,
            "a credentialed policy sends ACAC exactly on an allowed preflight"
        );
        if allowed && is_list {
            for name in requested_names(&request) {
                assert!(
                    ACCEPTABLE_NAMES.contains(&name.as_str()),
                    "header {name:?} allowed by a policy that does not list it"
                );
            }
        }
    }
});
