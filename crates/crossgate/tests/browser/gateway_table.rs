//! The gateway table ([`SCENARIOS`]) in one engine: `fetch()` and
//! `XMLHttpRequest` from pages on one origin against `crossgate serve` on
//! another, through a tap that records what the browser sent. Each row must
//! end as it says for that engine: the script's verdict, the response headers
//! it could read, the preflights sent and the requests that reached the
//! upstream (with or without the cookie). The gateway's `/metrics` must count
//! the preflights the browser sent, and with every `Access-Control-*` header
//! stripped on the way back no row may stay readable.
//!
//! Each engine gets its own gateway, upstream, tap and pages, so the counts of
//! engines running at the same time never mix.

use serde_json::{json, Value};

use super::engines::EngineBrowser;
use super::gateway::{self, Gateway};
use super::scenarios::{Api, Backend, Expect, Ports, Scenario, Verdict, COOKIE, SCENARIOS};
use super::servers::{self, Log, Seen, StripCors};

/// Runs one request (twice when asked), and reports what the script saw.
const REQUEST_SCRIPT: &str = r#"
const [spec, done] = arguments;
const viaFetch = async () => {
  try {
    const init = { method: spec.method, headers: spec.headers, credentials: spec.credentials };
    if (spec.body !== null) init.body = spec.body;
    const response = await fetch(spec.url, init);
    await response.text();
    return { network_error: false, status: response.status, headers: [...response.headers.keys()], error: null };
  } catch (e) {
    return { network_error: true, status: 0, headers: [], error: e.name + ": " + e.message };
  }
};
const viaXhr = () => new Promise((resolve) => {
  const xhr = new XMLHttpRequest();
  xhr.open(spec.method, spec.url);
  xhr.withCredentials = spec.credentials === "include";
  for (const [name, value] of spec.headers) xhr.setRequestHeader(name, value);
  xhr.onload = () => resolve({
    network_error: false,
    status: xhr.status,
    headers: xhr.getAllResponseHeaders().split("\r\n").filter((line) => line.includes(":"))
      .map((line) => line.slice(0, line.indexOf(":")).trim().toLowerCase()),
    error: null,
  });
  xhr.onerror = () => resolve({ network_error: true, status: 0, headers: [], error: "XMLHttpRequest error event" });
  xhr.send(spec.body);
});
const once = spec.api === "xhr" ? viaXhr : viaFetch;
(async () => {
  let result = await once();
  if (spec.repeat_after_ms !== null) {
    await new Promise((resolve) => setTimeout(resolve, spec.repeat_after_ms));
    result = await once();
  }
  done(result);
})();
"#;

/// One engine's gateway, upstream, tap and page servers.
pub struct Stack {
    pub ports: Ports,
    pub gateway: Gateway,
    upstream_log: Log,
    tap_log: Log,
    tap_port: u16,
    strip_cors: StripCors,
}

impl Stack {
    pub async fn start() -> Stack {
        let (page_listener, page) = servers::bind().await;
        let (page_alt_listener, page_alt) = servers::bind().await;
        servers::page_server(page_listener);
        servers::page_server(page_alt_listener);
        let ports = Ports { page, page_alt };
        let upstream_log = Log::default();
        let (upstream_listener, upstream_port) = servers::bind().await;
        servers::upstream(
            upstream_listener,
            upstream_log.clone(),
            gateway::upstream_reply,
        );
        // Starting the gateway waits for its port: off the async workers.
        let gateway =
            tokio::task::block_in_place(|| Gateway::start(SCENARIOS, &ports, upstream_port));
        let tap_log = Log::default();
        let (tap_listener, tap_port) = servers::bind().await;
        let strip_cors = StripCors::default();
        servers::tap(
            tap_listener,
            tap_log.clone(),
            gateway.address,
            strip_cors.clone(),
        );
        Stack {
            ports,
            gateway,
            upstream_log,
            tap_log,
            tap_port,
            strip_cors,
        }
    }
}

/// What one engine did with the whole table.
pub struct TableRun {
    /// In the order of [`SCENARIOS`].
    pub observed: Vec<Observed>,
    /// Rows that did not end as they say for this engine, and cross-checks
    /// that failed.
    pub failures: Vec<String>,
}

pub async fn run(browser: &EngineBrowser, stack: &Stack) -> TableRun {
    let engine = browser.engine;
    let name = engine.profile().observed_in;
    set_cookie(browser, &stack.ports).await;
    let mut failures = Vec::new();
    let mut observed = Vec::new();
    let mut page = LoadedPage::default();
    for scenario in SCENARIOS {
        page.show(browser, &scenario.origin(&stack.ports)).await;
        let path = scenario.path();
        let url = format!("http://localhost:{}{path}", stack.tap_port);
        let seen_by_script = browser
            .run(REQUEST_SCRIPT, vec![request_spec(scenario, &url, true)])
            .await;
        let seen = Observed::new(
            &seen_by_script,
            &stack.tap_log.for_path(&path),
            &stack.upstream_log.for_path(&path),
        );
        let expected = scenario.expected(engine);
        if let Some(mismatch) = seen.mismatch(&expected) {
            failures.push(format!(
                "{} in {name}: {mismatch}\n    expected {expected:?}\n    observed {seen:?}\n    script said {seen_by_script}\n    \
                 if the browser changed, update the row (crates/testkit/src/scenarios/table.rs), the {} profile and docs/browsers.md",
                scenario.name,
                engine.name()
            ));
        }
        observed.push(seen);
    }

    // The gateway's own count of the preflights it answered must agree
    // with what the browser sent.
    let preflights_at_gateway =
        gateway::preflights_by_route(&servers::get_text(stack.gateway.admin, "/metrics").await);
    for scenario in SCENARIOS
        .iter()
        .filter(|s| s.policy.is_some() && s.backend != Backend::NoRoute)
    {
        let sent = stack
            .tap_log
            .for_path(&scenario.path())
            .iter()
            .filter(|s| s.method == "OPTIONS")
            .count() as u32;
        let answered = preflights_at_gateway
            .get(&scenario.route_path())
            .copied()
            .unwrap_or(0);
        if sent != answered {
            failures.push(format!(
                "{} in {name}: the browser sent {sent} preflights, the gateway's /metrics counts {answered}",
                scenario.name
            ));
        }
    }

    // The same table must notice when the gateway stops decorating: with
    // every Access-Control-* header removed on the way to the browser, no
    // response may stay readable.
    stack.strip_cors.set(true);
    for (scenario, seen) in SCENARIOS.iter().zip(&observed) {
        if !matches!(seen.verdict, Verdict::Readable(_)) {
            continue;
        }
        page.show(browser, &scenario.origin(&stack.ports)).await;
        let url = format!(
            "http://localhost:{}{}&pass=stripped",
            stack.tap_port,
            scenario.path()
        );
        let seen_by_script = browser
            .run(REQUEST_SCRIPT, vec![request_spec(scenario, &url, false)])
            .await;
        if seen_by_script["network_error"].as_bool() != Some(true) {
            failures.push(format!(
                "{} in {name}: still readable without CORS headers, so this row cannot catch a gateway that stops decorating: {seen_by_script}",
                scenario.name
            ));
        }
    }
    TableRun { observed, failures }
}

/// The cookie lives on `localhost`, the gateway's host; pages on other ports
/// of `localhost` are same-site with it, so `credentials: 'include'` sends it.
async fn set_cookie(browser: &EngineBrowser, ports: &Ports) {
    browser
        .open(&format!("http://localhost:{}/", ports.page))
        .await;
    let cookies = browser
        .run(
            "const [cookie, done] = arguments; document.cookie = cookie + '; path=/; SameSite=Lax'; done(document.cookie);",
            vec![json!(COOKIE)],
        )
        .await;
    assert_eq!(
        cookies.as_str(),
        Some(COOKIE),
        "{} did not keep the test cookie on localhost",
        browser.engine.profile().observed_in
    );
}

/// The page currently loaded, so a run of scenarios from one origin loads it once.
#[derive(Default)]
struct LoadedPage(String);

impl LoadedPage {
    async fn show(&mut self, browser: &EngineBrowser, origin: &str) {
        if self.0 != origin {
            browser.show_page(origin).await;
            self.0 = origin.to_owned();
        }
    }
}

/// What the request script needs; `repeat: false` makes a single request
/// even when the row asks for a second one.
fn request_spec(scenario: &Scenario, url: &str, repeat: bool) -> Value {
    let request = &scenario.request;
    json!({
        "url": url,
        "api": match request.api { Api::Fetch => "fetch", Api::Xhr => "xhr" },
        "method": request.method,
        "headers": request.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
        "body": request.body,
        "credentials": request.credentials.as_fetch(),
        "repeat_after_ms": if repeat { request.repeat_after_ms } else { None },
    })
}

/// What happened, from the script's, the tap's and the upstream's points of view.
#[derive(Debug)]
pub struct Observed {
    pub verdict: Verdict,
    pub readable: Vec<String>,
    pub preflights: u32,
    upstream_requests: u32,
    cookie_sent: bool,
}

impl Observed {
    fn new(script: &Value, at_gateway: &[Seen], at_upstream: &[Seen]) -> Observed {
        let verdict = if script["network_error"].as_bool().unwrap_or(true) {
            Verdict::NetworkError
        } else {
            Verdict::Readable(script["status"].as_u64().unwrap_or(0) as u16)
        };
        let readable = script["headers"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_ascii_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        Observed {
            verdict,
            readable,
            preflights: at_gateway.iter().filter(|s| s.method == "OPTIONS").count() as u32,
            upstream_requests: at_upstream.len() as u32,
            cookie_sent: at_upstream
                .iter()
                .filter(|s| s.method != "OPTIONS")
                .any(|s| s.cookie.as_deref().is_some_and(|c| c.contains(COOKIE))),
        }
    }

    pub fn can_read(&self, name: &str) -> bool {
        self.readable.iter().any(|r| r == name)
    }

    fn mismatch(&self, expect: &Expect) -> Option<String> {
        if self.verdict != expect.verdict {
            return Some(format!(
                "verdict {:?}, expected {:?}",
                self.verdict, expect.verdict
            ));
        }
        if let Some(name) = expect.readable.iter().find(|n| !self.can_read(n)) {
            return Some(format!("the script could not read `{name}`"));
        }
        if let Some(name) = expect.hidden.iter().find(|n| self.can_read(n)) {
            return Some(format!(
                "the script could read `{name}`, which must stay hidden"
            ));
        }
        if self.preflights != expect.preflights {
            return Some(format!(
                "{} preflights sent, expected {}",
                self.preflights, expect.preflights
            ));
        }
        if self.upstream_requests != expect.upstream_requests {
            return Some(format!(
                "{} requests reached the upstream, expected {}",
                self.upstream_requests, expect.upstream_requests
            ));
        }
        if let Some(cookie) = expect.cookie_sent {
            if cookie != self.cookie_sent {
                return Some(format!(
                    "cookie sent: {}, expected {cookie}",
                    self.cookie_sent
                ));
            }
        }
        None
    }
}
