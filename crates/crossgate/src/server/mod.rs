//! The server: the live configuration and its generations, the listener,
//! accepting, each connection's lifetime and TLS, reloads.

pub(crate) mod accept;
pub mod generation;
pub(crate) mod lifetime;
pub mod listener;
pub(crate) mod reload;
pub(crate) mod tls;
