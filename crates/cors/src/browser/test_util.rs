//! Builders shared by the browser module's unit tests.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use super::{CorsRequest, CredentialsMode};

pub(super) const ORIGIN: &str = "https://app.example";

pub(super) fn request(
    method: &str,
    credentials: CredentialsMode,
    headers: &[(&str, &str)],
) -> CorsRequest {
    let mut request = CorsRequest::new(ORIGIN, method, credentials).unwrap();
    for (name, value) in headers {
        request = request.with_header(name, value).unwrap();
    }
    request
}

pub(super) fn response(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

pub(super) fn name(n: &str) -> HeaderName {
    HeaderName::from_bytes(n.as_bytes()).unwrap()
}
