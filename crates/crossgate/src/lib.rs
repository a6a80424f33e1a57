//! crossgate: a CORS gateway in front of any HTTP API, built on the
//! `crossgate-cors` engine. The binary's subcommands live in [`cli`]; the
//! library exposes what tests need to run a gateway in-process. The rooms are
//! described in docs/architecture.md.
#![forbid(unsafe_code)]

pub mod cli;
mod config;
mod logging;
mod manual;
mod ops;
pub mod proxy;
mod serve;
mod server;
mod validate;

pub use config::demo::CONFIG as DEMO_CONFIG;
pub use config::{CompiledConfig, ConfigSource, Problem, Problems, Settings, Warning};
pub use ops::denials::DenialLog;
pub use ops::metrics::Metrics;
pub use server::generation::{Gateway, LoadError};
pub use server::listener::{Drain, Server};
