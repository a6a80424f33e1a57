//! What `benches/compare.rs` and `benches/instructions.rs` share: the
//! policy, the scenarios (the same requests in both), and the handler every
//! tower stack wraps.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use crossgate_cors::{Policy, PolicyConfig};
use http::header::{
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONTENT_TYPE, ORIGIN,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::Empty;

const ALLOWED_ORIGIN: &str = "https://app.example.com";
const DISALLOWED_ORIGIN: &str = "https://app.example.com.evil.net";
const OTHER_ORIGINS: [&str; 2] = ["https://admin.example.com", "http://localhost:3000"];
const EXTRA_METHODS: [&str; 2] = ["PUT", "DELETE"];
pub const REQUEST_HEADERS: [&str; 2] = ["content-type", "x-requested-with"];
pub const EXPOSE_HEADER: &str = "x-request-id";
pub const MAX_AGE_SECONDS: u32 = 7200;
const LONG_LIST_LEN: usize = 1000;
const ONE_MIB: usize = 1 << 20;

/// Which of the two policies a scenario runs against. Both policies are the
/// same but for the origin list.
#[derive(Clone, Copy)]
pub enum Origins {
    /// Three exact origins.
    Short,
    /// 1,000 exact origins; the request's origin is the last one.
    Long,
}

impl Origins {
    pub fn list(self) -> Vec<String> {
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

/// One request of the benchmarks, and the policy it runs against.
pub struct Scenario {
    pub name: &'static str,
    pub origins: Origins,
    pub method: Method,
    pub headers: HeaderMap,
}

pub fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("benchmark header values are valid")
}

pub fn scenarios() -> Vec<Scenario> {
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

pub fn crossgate_policy(origins: Origins) -> Policy {
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

pub fn tower_http_layer(origins: Origins) -> tower_http::cors::CorsLayer {
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

pub type TowerResponse = Response<Empty<Bytes>>;

/// What every handler here answers: 200, an empty body and a `Content-Type`,
/// as real handlers do, so the response's header map already exists and the
/// CORS implementations are measured adding to it, not creating it.
pub const CONTENT_TYPE_VALUE: &str = "text/plain; charset=utf-8";

pub fn handler_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_VALUE));
    headers
}

pub async fn empty_ok(_request: Request<Empty<Bytes>>) -> Result<TowerResponse, Infallible> {
    let mut response = Response::new(Empty::new());
    *response.headers_mut() = handler_headers();
    Ok(response)
}
