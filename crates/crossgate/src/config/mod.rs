//! Configuration: the file as written ([`file`]), its compilation to the
//! live form one table at a time ([`compile`], [`settings`], [`routes`]), the
//! one vocabulary of problems for gateway and engine keys ([`problem`]), and
//! the built-in demo.

mod compile;
pub mod demo;
pub(crate) mod file;
mod hosts;
mod problem;
mod report_only;
mod rewrite;
mod routes;
mod settings;
mod source;

pub use compile::CompiledConfig;
pub(crate) use file::{Access, Balance, HealthFile, PathNormalization, PoolFile, UpstreamFile};
pub(crate) use problem::Report;
pub use problem::{Problem, Problems, Warning};
pub use settings::Settings;
pub use source::ConfigSource;
