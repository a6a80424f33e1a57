//! # crossgate-cors
//!
//! A CORS engine that follows the [Fetch standard](https://fetch.spec.whatwg.org/#http-cors-protocol)
//! to the letter, validates a policy completely before it is used, and answers
//! requests without allocating on the hot path.
//!
//! The engine does no I/O: it reads a request's method and headers and tells
//! you what to do ([`Decision`]), then writes the CORS headers into your
//! response ([`Policy::apply`]). The [`CorsLayer`] (feature `tower`, on by
//! default) wires this into axum, hyper and tonic.
//!
//! ```
//! use crossgate_cors::{PolicyConfig, Outcome};
//! use http::{HeaderMap, HeaderValue, Method};
//!
//! let policy = PolicyConfig::builder()
//!     .origins(["https://app.example.com", "https://*.example.com"])
//!     .methods(["PUT", "DELETE"])
//!     .request_headers(["content-type"])
//!     .credentials(true)
//!     .max_age(7200)
//!     .compile()
//!     .expect("a valid policy");
//!
//! // A preflight, as Chromium sends it.
//! let mut request = HeaderMap::new();
//! request.insert("origin", HeaderValue::from_static("https://app.example.com"));
//! request.insert("access-control-request-method", HeaderValue::from_static("PUT"));
//! request.insert("access-control-request-headers", HeaderValue::from_static("content-type"));
//!
//! let decision = policy.decide(&Method::OPTIONS, &request);
//! assert_eq!(decision.outcome(), &Outcome::PreflightAllowed);
//! assert_eq!(decision.short_circuit(), Some(http::StatusCode::NO_CONTENT));
//!
//! let mut response = HeaderMap::new();
//! policy.apply(&decision, &mut response);
//! assert_eq!(response["access-control-allow-origin"], "https://app.example.com");
//! assert_eq!(response["access-control-allow-credentials"], "true");
//! assert_eq!(response["access-control-max-age"], "7200");
//! ```
//!
//! # Policy keys
//!
//! A policy is described by a [`PolicyConfig`], whose field names are the keys of
//! a `[policies.NAME]` table in the `crossgate serve` configuration file. Each
//! key is documented, with an example, on its field.
//!
//! [`PolicyConfig::compile`] checks every key and returns *all* problems at
//! once as [`ConfigErrors`]; each [`ConfigError`] names the key, the offending
//! value and how to fix it. Compiling never panics.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod browser;
mod config;
mod decision;
mod error;
mod headers;
#[cfg(feature = "tower")]
mod layer;
mod method;
mod origin;
mod policy;
mod token;

pub use config::{PolicyBuilder, PolicyConfig, UpstreamHeaders};
pub use decision::{Decision, Denial, Malformed, Outcome, RequestKind};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, ConfigWarning};
#[cfg(feature = "tower")]
pub use layer::{CorsLayer, CorsService, ResponseFuture};
pub use method::{normalize_method, AllowedMethods};
pub use policy::Policy;
pub use token::TokenText;
