//! Operations: the admin listener and its dashboard, metrics, the record of
//! recent denials, and the rate limit on per-request log lines.

pub(crate) mod admin;
pub(crate) mod dashboard;
pub mod denials;
pub(crate) mod log_limit;
pub mod metrics;
pub(crate) mod reasons;
