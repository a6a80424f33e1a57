//! Mock backends: a fixed response, compiled once at config load.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::config::file::MockFile;
use crate::config::Report;
use crate::proxy::body::GatewayBody;

/// A route's fixed response, ready to clone into every answer.
#[derive(Debug, Clone)]
pub struct MockResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl MockResponse {
    /// Checks and compiles `mock = { status, headers, body }` at `key`.
    pub(crate) fn compile(mock: &MockFile, key: &str, report: &mut Report) -> Option<Self> {
        let mut ok = true;
        let status = match mock.status {
            None => StatusCode::OK,
            Some(code) => match u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
            {
                Some(status) if status.as_u16() >= 200 => status,
                _ => {
                    ok = false;
                    report.problem(
                        format!("{key}.status"),
                        format!("{code} is not a final HTTP status code"),
                        "use a status from 200 to 999, e.g. 200",
                    );
                    StatusCode::OK
                }
            },
        };
        let body = Bytes::from(mock.body.clone().unwrap_or_default());
        let mut headers = HeaderMap::new();
        for (name, value) in mock.headers.iter().flatten() {
            let at = format!("{key}.headers.{name}");
            let parsed_name = HeaderName::from_bytes(name.as_bytes());
            let parsed_value = HeaderValue::from_str(value);
            match (parsed_name, parsed_value) {
                (Ok(name), Ok(value)) if !is_framing_header(&name) => {
                    headers.append(name, value);
                }
                (Ok(_), Ok(_)) => {
                    ok = false;
                    report.problem(
                        at,
                        format!("`{name}` is set by the gateway from the body"),
                        "remove it",
                    );
                }
                (Err(_), _) => {
                    ok = false;
                    report.problem(
                        at,
                        format!("`{name}` is not a valid header name"),
                        "use a token such as \"content-type\"",
                    );
                }
                (_, Err(_)) => {
                    ok = false;
                    report.problem(
                        at,
                        "the value contains characters not allowed in a header (control characters or non-ASCII)",
                        "use visible ASCII characters only",
                    );
                }
            }
        }
        if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            if !body.is_empty() {
                ok = false;
                report.problem(
                    format!("{key}.body"),
                    format!("a {status} response cannot have a body"),
                    "remove `body` or use another status",
                );
            }
        } else {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        ok.then_some(Self {
            status,
            headers,
            body,
        })
    }

    /// The response for a request with `method` (HEAD gets the headers only).
    pub fn respond(&self, method: &Method) -> Response<GatewayBody> {
        let body = if method == Method::HEAD {
            GatewayBody::empty()
        } else {
            GatewayBody::full(self.body.clone())
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

fn is_framing_header(name: &HeaderName) -> bool {
    name == CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;

    #[test]
    fn compiles_status_headers_and_length() {
        let mut report = Report::new(&ConfigSource::Demo);
        let mock = MockFile {
            status: Some(201),
            headers: Some([("content-type".to_owned(), "application/json".to_owned())].into()),
            body: Some("{}".to_owned()),
        };
        let compiled =
            MockResponse::compile(&mock, "routes[0].mock", &mut report).expect("valid mock");
        let response = compiled.respond(&Method::GET);
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["content-length"], "2");
    }

    #[test]
    fn reports_every_bad_field() {
        let mut report = Report::new(&ConfigSource::Demo);
        let mock = MockFile {
            status: Some(99),
            headers: Some(
                [
                    ("bad name".to_owned(), "x".to_owned()),
                    ("content-length".to_owned(), "1".to_owned()),
                ]
                .into(),
            ),
            body: None,
        };
        assert!(MockResponse::compile(&mock, "m", &mut report).is_none());
        let keys: Vec<&str> = report.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["m.status", "m.headers.bad name", "m.headers.content-length"]
        );
    }
}
