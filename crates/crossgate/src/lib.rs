//! crossgate: a CORS gateway in front of any HTTP API, built on the
//! `crossgate-cors` engine. The binary's subcommands live in [`cli`]; the
//! library exposes the pieces so tests can run a gateway in-process.
#![forbid(unsafe_code)]

pub mod accept;
pub mod admin;
pub mod auth;
pub mod body;
pub mod cli;
pub mod client;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod denials;
pub mod forwarded;
pub mod framing;
pub mod gateway;
pub mod handler;
pub mod lifetime;
pub mod log_limit;
pub mod logging;
pub mod manual;
pub mod metrics;
pub mod mock;
pub mod path;
pub mod proxy;
pub mod reload;
pub mod request_id;
pub mod responses;
pub mod router;
pub mod runtime;
pub mod serve;
pub mod server;
pub mod tls;
pub mod validate;
