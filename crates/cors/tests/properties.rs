//! Properties that must hold for every policy and every request.

use crossgate_cors::{Policy, PolicyConfig};
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;

const KNOWN: [&str; 6] = [
    "https://app.example.com",
    "https://a.example.com",
    "http://localhost:3000",
    "https://evil.example",
    "null",
    "https://app.example.com.evil.com",
];

fn origin() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(&KNOWN[..]).prop_map(str::to_owned),
        "https?://[a-z]{1,8}(\\.[a-z]{1,8}){0,3}(:[0-9]{1,5})?",
        "[ -~]{0,40}",
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        prop_oneof![
            Just(vec!["*".to_owned()]),
            Just(vec![
                "https://app.example.com".to_owned(),
                "https://*.example.com".to_owned()
            ]),
            Just(vec!["http://localhost:*".to_owned()]),
        ],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_filter_map(
            "valid policies only",
            |(origins, credentials, any_method, any_header)| {
                PolicyConfig::builder()
                    .origins(origins)
                    .credentials(credentials)
                    .methods(if any_method { vec!["*"] } else { vec!["PUT"] })
                    .request_headers(if any_header { vec!["*"] } else { vec!["x-a"] })
                    .expose_headers(["x-id"])
                    .compile()
                    .ok()
            },
        )
}

fn request(origin: &str, preflight: bool, method: &str, names: &str) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    map.insert("origin", HeaderValue::from_str(origin).ok()?);
    if preflight {
        map.insert(
            "access-control-request-method",
            HeaderValue::from_str(method).ok()?,
        );
        map.insert(
            "access-control-request-headers",
            HeaderValue::from_str(names).ok()?,
        );
    }
    Some(map)
}

proptest! {
    #[test]
    fn star_never_comes_with_credentials(
        policy in policy(), origin in origin(), preflight in any::<bool>(),
        method in "[A-Za-z]{1,8}", names in "[a-z, -]{0,20}",
    ) {
        let Some(req) = request(&origin, preflight, &method, &names) else { return Ok(()) };
        let verb = if preflight { Method::OPTIONS } else { Method::GET };
        let mut response = HeaderMap::new();
        policy.apply(&policy.decide(&verb, &req), &mut response);
        let star = response.get("access-control-allow-origin").is_some_and(|v| v == "*");
        let creds = response.get("access-control-allow-credentials").is_some_and(|v| v == "true");
        prop_assert!(!(star && creds), "{response:?}");
        for name in ["access-control-allow-methods", "access-control-allow-headers", "access-control-expose-headers"] {
            let wildcard = response.get(name).is_some_and(|v| v == "*");
            prop_assert!(!(wildcard && creds), "{name}: {response:?}");
        }
    }

    #[test]
    fn a_disallowed_origin_never_gets_allow_origin(
        origin in origin(), preflight in any::<bool>(), method in "[A-Z]{1,8}",
    ) {
        let policy = PolicyConfig::builder()
            .origins(["https://app.example.com", "https://*.example.com"])
            .credentials(true)
            .compile()
            .unwrap();
        let Some(req) = request(&origin, preflight, &method, "") else { return Ok(()) };
        let allowed = origin == "https://app.example.com"
            || (origin.starts_with("https://") && origin.ends_with(".example.com")
                && origin.len() > "https://.example.com".len()
                && origin["https://".len()..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
                && !origin.contains(".."));
        let verb = if preflight { Method::OPTIONS } else { Method::GET };
        let mut response = HeaderMap::new();
        policy.apply(&policy.decide(&verb, &req), &mut response);
        match response.get("access-control-allow-origin") {
            Some(value) => {
                prop_assert!(allowed, "{origin} got {value:?}");
                prop_assert_eq!(value.as_bytes(), origin.as_bytes());
            }
            None => prop_assert!(!allowed || preflight, "{} was refused", origin),
        }
    }

    #[test]
    fn vary_never_loses_the_handlers_value(
        policy in policy(), origin in origin(), existing in "[A-Za-z-]{1,16}(, ?[A-Za-z-]{1,16}){0,3}",
        preflight in any::<bool>(), with_origin in any::<bool>(),
    ) {
        let req = if with_origin {
            match request(&origin, preflight, "PUT", "x-a") { Some(r) => r, None => return Ok(()) }
        } else {
            HeaderMap::new()
        };
        let verb = if preflight { Method::OPTIONS } else { Method::GET };
        let mut response = HeaderMap::new();
        response.insert("vary", HeaderValue::from_str(&existing).unwrap());
        policy.apply(&policy.decide(&verb, &req), &mut response);
        let merged: Vec<String> = response
            .get_all("vary")
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(',').map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>())
            .collect();
        for name in existing.split(',') {
            prop_assert!(merged.contains(&name.trim().to_ascii_lowercase()), "{name} lost: {merged:?}");
        }
        let mut unique = merged.clone();
        unique.sort();
        unique.dedup();
        let mut sorted = merged.clone();
        sorted.sort();
        // Only names the handler itself repeated may appear twice.
        let handler_dupes = existing.split(',').count() - {
            let mut e: Vec<_> = existing.split(',').map(|s| s.trim().to_ascii_lowercase()).collect();
            e.sort();
            e.dedup();
            e.len()
        };
        prop_assert_eq!(sorted.len() - unique.len(), handler_dupes);
    }
}
