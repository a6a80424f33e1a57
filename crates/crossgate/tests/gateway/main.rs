//! The gateway's integration tests: one binary, a module per area, over real
//! loopback sockets against upstreams written in the tests. The harness is
//! `tests/support/` (in-process gateway, upstreams, client; `process` runs the
//! real binary for signals and the admin listener).

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod cli;
mod deploy_config;
mod errors;
mod lifecycle;
mod ops_admin;
mod ops_configmap;
mod ops_limits;
mod ops_reload;
mod ops_shutdown;
mod proxy;
mod routing_hosts;
mod security_auth_logs;
mod security_connections;
mod security_paths;
mod security_proxy;
mod seeds;
