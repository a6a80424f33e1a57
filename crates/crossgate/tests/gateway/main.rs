//! The gateway's integration tests: one binary, a module per area, over real
//! loopback sockets against upstreams written in the tests. The harness is
//! the workspace's test-support crate, `crates/testkit` (in-process gateway,
//! upstreams, client; `process` runs the real binary for signals and the
//! admin listener), known here as `support`: `crate::support::send`,
//! `crate::support::process::Gateway`.

use crossgate_testkit as support;

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
mod report_only;
mod routing_hosts;
mod security_auth_logs;
mod security_connections;
mod security_paths;
mod security_proxy;
mod seeds;
mod upstream_pools;
mod websocket;
