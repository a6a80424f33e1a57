//! # crossgate-probe
//!
//! The client side of crossgate: [`check`] says exactly what a browser does
//! with one cross-origin `fetch()` to any URL, and [`audit`] probes any URL
//! for the classic CORS holes. Both send real requests with a [`Prober`] and
//! take the browser's rules from [`crossgate_cors::browser`]; they share
//! nothing else.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod check;
mod client;
pub mod curl;
mod exchange;
pub mod har;
pub mod input;
mod progress;
mod run;
pub mod sarif;
mod style;

pub use exchange::{Exchange, ProbeError, Prober};
