//! The request path: [`pipeline`] runs one request through its phases; the
//! other modules are what the phases use, from routing and path
//! normalization to the upstream client and the gateway's own responses.

pub(crate) mod auth;
pub(crate) mod body;
pub(crate) mod client;
pub mod forwarded;
pub mod framing;
pub(crate) mod health;
pub mod host;
pub(crate) mod mock;
pub(crate) mod path;
pub(crate) mod pipeline;
pub(crate) mod pool;
pub(crate) mod report_only;
pub(crate) mod request_id;
pub(crate) mod responses;
pub(crate) mod router;
pub(crate) mod upgrade;
pub mod upstream;
