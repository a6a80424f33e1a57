//! Gateway config files the tests build again and again.

/// A config with one policy, `web`, allowing `origin`, and one route at
/// `path` under it. `[server]` listens on 127.0.0.1:0 and adds
/// `server_keys`; the route adds `route_keys`: its `upstream = …` or
/// `mock = …`, and whatever else it needs. Both are TOML lines, or empty.
pub fn single_route(server_keys: &str, origin: &str, path: &str, route_keys: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
{server_keys}

[policies.web]
origins = ["{origin}"]

[[routes]]
path = "{path}"
policy = "web"
{route_keys}
"#
    )
}
