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
    Config::server(&[server_keys])
        .policy("web", &[origin], &[])
        .route(path, &[r#"policy = "web""#, route_keys])
        .render()
}

/// A gateway config file, written a table at a time in the order of the
/// calls. The keys most tables share (the listen address, a route's path,
/// upstream and policy, a token and its privileges) come from the
/// arguments; every other key is a TOML line of `keys`, as the test spells
/// it (an item may hold several lines; empty items are skipped).
pub struct Config {
    text: String,
}

impl Config {
    /// `[server]`, listening on 127.0.0.1:0, then `keys`.
    pub fn server(keys: &[&str]) -> Config {
        let mut config = Config {
            text: String::new(),
        };
        config.table("[server]", &[r#"listen = "127.0.0.1:0""#], keys);
        config
    }

    /// `[auth]` with `keys`, then a `[[auth.tokens]]` for each static token
    /// and its privileges.
    pub fn auth(mut self, keys: &[&str], tokens: &[(&str, &[&str])]) -> Config {
        self.table("[auth]", &[], keys);
        for (token, privileges) in tokens {
            let token = format!("token = {}", toml_string(token));
            let privileges = format!("privileges = {}", toml_strings(privileges));
            self.table("[[auth.tokens]]", &[&token, &privileges], &[]);
        }
        self
    }

    /// `[policies.<name>]` allowing `origins`, then `keys`.
    pub fn policy(mut self, name: &str, origins: &[&str], keys: &[&str]) -> Config {
        let origins = format!("origins = {}", toml_strings(origins));
        self.table(&format!("[policies.{name}]"), &[&origins], keys);
        self
    }

    /// A `[[routes]]` at `path` proxied to `upstream` under `policy`, then `keys`.
    pub fn proxy(self, path: &str, upstream: &str, policy: &str, keys: &[&str]) -> Config {
        let upstream = format!("upstream = {}", toml_string(upstream));
        let policy = format!("policy = {}", toml_string(policy));
        self.route(path, &[&[upstream.as_str(), &policy], keys].concat())
    }

    /// A `[[routes]]` at `path`, then `keys`: its `upstream = …` or
    /// `mock = …`, its `policy = …` if it has one, and whatever else it needs.
    pub fn route(mut self, path: &str, keys: &[&str]) -> Config {
        self.table(
            "[[routes]]",
            &[&format!("path = {}", toml_string(path))],
            keys,
        );
        self
    }

    /// The config file's text.
    pub fn render(self) -> String {
        self.text
    }

    /// Appends the table `header` with its `fixed` keys, then the test's `keys`.
    fn table(&mut self, header: &str, fixed: &[&str], keys: &[&str]) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(header);
        self.text.push('\n');
        for line in fixed.iter().chain(keys).filter(|line| !line.is_empty()) {
            self.text.push_str(line.trim_end_matches('\n'));
            self.text.push('\n');
        }
    }
}

/// `items` as a TOML array of strings.
fn toml_strings(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| toml_string(item)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `value` as a TOML string, escaped by the toml crate, so a test's path
/// or origin with a backslash or a quote reaches the gateway as written.
fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}
