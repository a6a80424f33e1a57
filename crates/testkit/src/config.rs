//! Gateway config files the tests build again and again, and compiling one
//! without serving it.

/// Compiles a whole config file's `text` as `crossgate serve` would load
/// it; its problems come back as the text `validate` prints.
pub fn compile(text: &str) -> Result<crossgate::CompiledConfig, String> {
    crossgate::CompiledConfig::compile_text(
        text,
        &crossgate::ConfigSource::File("t.toml".into()),
        &crossgate::Metrics::new(),
    )
    .map_err(|problems| problems.to_string())
}

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
