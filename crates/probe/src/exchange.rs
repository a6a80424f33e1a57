//! One HTTP request and its answer, as `check` and `audit` send them: no
//! redirect is followed, no cookie is kept, and the body is not read.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use serde::Serialize;

use crate::client::{self, ProbeClient};

/// The client `check` and `audit` send with: it never follows redirects
/// (hyper does not) and gives up on an answer after its timeout.
#[derive(Clone)]
pub struct Prober {
    client: ProbeClient,
    timeout: Duration,
    /// Called once per request sent, answered or not (a progress line counts them).
    on_sent: Option<Arc<dyn Fn() + Send + Sync>>,
    pace: Option<Arc<Pace>>,
}

/// A request-rate limit shared by every clone of a [`Prober`]: each request
/// takes the next free slot, `interval` after the previous one. (A token
/// bucket crate would add bursts this command must not make: a steady pace
/// is what an audited server's operator expects from `--rate`.)
#[derive(Debug)]
struct Pace {
    interval: Duration,
    next: Mutex<tokio::time::Instant>,
}

impl Pace {
    async fn wait_turn(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A request could not be sent or answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    /// TLS could not be set up (bad CA file, say).
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The request could not be built from the given URL and headers.
    #[error("cannot build the request to {url}: {reason}")]
    Request {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Connecting or talking to the server failed.
    #[error("{method} {url} failed: {reason}")]
    Transport {
        /// The method sent.
        method: String,
        /// The URL.
        url: String,
        /// What the client reported.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("{method} {url} got no answer within {seconds} s")]
    Timeout {
        /// The method sent.
        method: String,
        /// The URL.
        url: String,
        /// The timeout.
        seconds: u64,
    },
}

impl Prober {
    /// A prober trusting the webpki roots, plus the PEM certificates in
    /// `ca_file` when given (for servers with a private CA).
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Result<Self, ProbeError> {
        Ok(Self {
            client: client::build(timeout, ca_file)?,
            timeout,
            on_sent: None,
            pace: None,
        })
    }

    /// The same prober, sending at most `per_second` requests per second in
    /// all (across clones); `None` or a value that is not positive: no limit.
    pub fn with_rate_limit(mut self, per_second: Option<f64>) -> Self {
        self.pace = per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .and_then(|r| Duration::try_from_secs_f64(1.0 / r).ok())
            .map(|interval| {
                Arc::new(Pace {
                    interval,
                    next: Mutex::new(tokio::time::Instant::now()),
                })
            });
        self
    }

    /// This prober, calling `on_sent` after each request it sends.
    pub fn on_sent(self, on_sent: impl Fn() + Send + Sync + 'static) -> Self {
        Self {
            on_sent: Some(Arc::new(on_sent)),
            ..self
        }
    }

    /// Sends `method` to `url` with exactly `headers` (hyper adds `Host`) and no body.
    pub async fn send(
        &self,
        method: &Method,
        url: &Uri,
        headers: &HeaderMap,
    ) -> Result<Exchange, ProbeError> {
        self.send_with_body(method, url, headers, Bytes::new())
            .await
    }

    /// [`send`](Self::send) with a request body.
    pub async fn send_with_body(
        &self,
        method: &Method,
        url: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Exchange, ProbeError> {
        if let Some(pace) = &self.pace {
            pace.wait_turn().await;
        }
        let mut builder = Request::builder().method(method.clone()).uri(url.clone());
        if let Some(target) = builder.headers_mut() {
            target.extend(headers.clone());
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| ProbeError::Request {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let answer = tokio::time::timeout(self.timeout, self.client.request(request)).await;
        if let Some(on_sent) = &self.on_sent {
            on_sent();
        }
        let response = match answer {
            Err(_) => {
                return Err(ProbeError::Timeout {
                    method: method.to_string(),
                    url: url.to_string(),
                    seconds: self.timeout.as_secs(),
                })
            }
            Ok(Err(e)) => {
                return Err(ProbeError::Transport {
                    method: method.to_string(),
                    url: url.to_string(),
                    reason: error_chain(&e),
                })
            }
            Ok(Ok(response)) => response,
        };
        let (parts, _body) = response.into_parts();
        Ok(Exchange {
            method: method.clone(),
            url: url.clone(),
            request_headers: headers.clone(),
            status: parts.status,
            response_headers: parts.headers,
        })
    }
}

/// The error and its causes on one line ("connection refused" is usually a cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A request that was sent and the head of its answer.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// The method sent.
    #[serde(serialize_with = "as_str")]
    pub method: Method,
    /// The URL requested.
    #[serde(serialize_with = "as_str")]
    pub url: Uri,
    /// The headers sent (besides `Host`).
    #[serde(serialize_with = "header_list")]
    pub request_headers: HeaderMap,
    /// The status received.
    #[serde(serialize_with = "status_code")]
    pub status: StatusCode,
    /// The headers received, in order.
    #[serde(serialize_with = "header_list")]
    pub response_headers: HeaderMap,
}

fn as_str<S: serde::Serializer, T: std::fmt::Display>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn status_code<S: serde::Serializer>(
    status: &StatusCode,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u16(status.as_u16())
}

/// Headers as `[["name", "value"], ...]`, keeping repeats and order.
fn header_list<S: serde::Serializer>(
    headers: &HeaderMap,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(
        headers
            .iter()
            .map(|(name, value)| [name.as_str().to_owned(), show_value(value)]),
    )
}

/// A header value as text; bytes that are not UTF-8 are replaced.
pub fn show_value(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}
