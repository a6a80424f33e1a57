//! Proof in a real browser: headless Chromium runs `fetch()` and
//! `XMLHttpRequest` from pages on one origin against `crossgate serve` on
//! another, and every scenario of [`scenarios::SCENARIOS`] must end exactly
//! as its row says: the script's verdict (a readable status or a network
//! error), the response headers the script could read, the preflights the
//! browser sent and the requests that reached the upstream.
//!
//! One Chromium serves the whole table, scenario after scenario. If Chromium
//! or chromedriver cannot start, the test fails; it never skips.

#[path = "browser/chrome.rs"]
mod chrome;
#[path = "browser/engine_matrix.rs"]
mod engine_matrix;
#[path = "browser/engines.rs"]
mod engines;
#[path = "browser/gateway.rs"]
mod gateway;
#[path = "browser/scenarios.rs"]
mod scenarios;
#[path = "browser/servers.rs"]
mod servers;
#[path = "browser/third_party.rs"]
mod third_party;

use std::time::Instant;

use serde_json::{json, Value};

use chrome::Browser;
use gateway::Gateway;
use scenarios::{Api, Backend, Expect, Ports, Scenario, Verdict, COOKIE, SCENARIOS};
use servers::{Log, StripCors};

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
    return { network_error: true, status: 0, headers: [], error: String(e) };
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_reports_every_scenario_as_expected() {
    let started = Instant::now();
    assert!(
        SCENARIOS.len() >= 40,
        "the matrix must keep at least 40 scenarios"
    );
    assert_unique_names(SCENARIOS);

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

    let gateway = Gateway::start(SCENARIOS, &ports, upstream_port);
    let tap_log = Log::default();
    let (tap_listener, tap_port) = servers::bind().await;
    let strip_cors = StripCors::default();
    servers::tap(
        tap_listener,
        tap_log.clone(),
        gateway.address,
        strip_cors.clone(),
    );

    let browser = Browser::start().await;
    set_cookie(&browser, &ports).await;

    let mut failures = Vec::new();
    let mut page = LoadedPage::default();
    for scenario in SCENARIOS {
        page.show(&browser, &scenario.origin(&ports)).await;
        let path = scenario.path();
        let url = format!("http://localhost:{tap_port}{path}");
        let seen_by_script = browser
            .run(REQUEST_SCRIPT, vec![request_spec(scenario, &url, true)])
            .await;
        let observed = Observed::new(
            &seen_by_script,
            &tap_log.for_path(&path),
            &upstream_log.for_path(&path),
        );
        if let Some(mismatch) = observed.mismatch(&scenario.expect) {
            failures.push(format!(
                "{}: {mismatch}\n    expected {:?}\n    observed {observed:?}\n    script said {seen_by_script}",
                scenario.name, scenario.expect
            ));
        }
    }

    // The gateway's own count of the preflights it answered must agree
    // with what the browser sent.
    let preflights_at_gateway =
        gateway::preflights_by_route(&servers::get_text(gateway.admin, "/metrics").await);
    for scenario in SCENARIOS
        .iter()
        .filter(|s| s.policy.is_some() && s.backend != Backend::NoRoute)
    {
        let sent = tap_log
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
                "{}: the browser sent {sent} preflights, the gateway's /metrics counts {answered}",
                scenario.name
            ));
        }
    }

    // The same table must notice when the gateway stops decorating: with
    // every Access-Control-* header removed on the way to the browser, no
    // response may stay readable.
    strip_cors.set(true);
    for scenario in SCENARIOS
        .iter()
        .filter(|s| matches!(s.expect.verdict, Verdict::Readable(_)))
    {
        page.show(&browser, &scenario.origin(&ports)).await;
        let url = format!(
            "http://localhost:{tap_port}{}&pass=stripped",
            scenario.path()
        );
        let seen_by_script = browser
            .run(REQUEST_SCRIPT, vec![request_spec(scenario, &url, false)])
            .await;
        if seen_by_script["network_error"].as_bool() != Some(true) {
            failures.push(format!(
                "{}: still readable without CORS headers, so this row cannot catch a gateway that stops decorating: {seen_by_script}",
                scenario.name
            ));
        }
    }
    browser.close().await;

    eprintln!(
        "browser suite: {} scenarios in {:.1?}, {} failed",
        SCENARIOS.len(),
        started.elapsed(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} browser scenarios failed:\n{}\n--- gateway output (tail):\n{}",
        failures.len(),
        SCENARIOS.len(),
        failures.join("\n"),
        tail(&gateway.log(), 40)
    );
}

fn assert_unique_names(scenarios: &[Scenario]) {
    let mut names: Vec<&str> = scenarios.iter().map(|s| s.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "scenario names must be unique");
}

/// The cookie lives on `localhost`, the gateway's host; pages on other ports
/// of `localhost` are same-site with it, so `credentials: 'include'` sends it.
async fn set_cookie(browser: &Browser, ports: &Ports) {
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
        "Chromium did not keep the test cookie on localhost"
    );
}

/// The page currently loaded, so a run of scenarios from one origin loads it once.
#[derive(Default)]
struct LoadedPage(String);

impl LoadedPage {
    async fn show(&mut self, browser: &Browser, origin: &str) {
        if self.0 != origin {
            browser.open(&format!("{origin}/")).await;
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
struct Observed {
    verdict: Verdict,
    readable: Vec<String>,
    preflights: u32,
    upstream_requests: u32,
    cookie_sent: bool,
}

impl Observed {
    fn new(
        script: &Value,
        at_gateway: &[servers::Seen],
        at_upstream: &[servers::Seen],
    ) -> Observed {
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

    fn mismatch(&self, expect: &Expect) -> Option<String> {
        if self.verdict != expect.verdict {
            return Some(format!(
                "verdict {:?}, expected {:?}",
                self.verdict, expect.verdict
            ));
        }
        if let Some(name) = expect
            .readable
            .iter()
            .find(|n| !self.readable.iter().any(|r| r == *n))
        {
            return Some(format!("the script could not read `{name}`"));
        }
        if let Some(name) = expect
            .hidden
            .iter()
            .find(|n| self.readable.iter().any(|r| r == *n))
        {
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

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs every row of the engine matrix in one page, one after the other,
/// and returns each row's `allowed` as the script saw it.
const ENGINE_MATRIX_SCRIPT: &str = r#"
const [rows, done] = arguments;
(async () => {
  const out = {};
  for (const row of rows) {
    const once = async () => {
      try {
        const init = { method: row.method, headers: row.headers, credentials: row.credentials ? "include" : "omit" };
        if (row.body !== null) init.body = row.body;
        const response = await fetch(row.url, init);
        await response.text();
        return true;
      } catch (e) {
        return e.name === "TypeError" ? false : "unexpected " + e.name + ": " + e.message;
      }
    };
    let allowed = await once();
    if (row.repeat_ms !== null) {
      await new Promise((resolve) => setTimeout(resolve, row.repeat_ms));
      allowed = await once();
    }
    out[row.name] = allowed;
  }
  done(out);
})();
"#;

/// Chromium, Firefox and WebKit each run the whole engine matrix in one
/// session, concurrently; every row must end as it says for that engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_reports_every_engine_scenario_as_expected() {
    use crossgate_cors::browser::Engine;
    use engine_matrix::ENGINE_SCENARIOS;

    let started = Instant::now();
    assert_unique_engine_names();
    let (page_listener, page_port) = servers::bind().await;
    servers::page_server(page_listener);
    let origin = format!("http://127.0.0.1:{page_port}");
    let (cors_port, seen) = engine_matrix::start_cors_server().await;

    let run_engine = |engine: Engine| {
        let origin = origin.clone();
        async move {
            let browser = engines::EngineBrowser::start(engine).await;
            browser.open(&format!("{origin}/")).await;
            browser
                .client
                .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                    Some(std::time::Duration::from_secs(240)),
                    None,
                    None,
                ))
                .await
                .unwrap_or_else(|e| panic!("{engine:?}: cannot set the script timeout: {e}"));
            let rows: Vec<Value> = ENGINE_SCENARIOS
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "url": s.url(cors_port, &origin, engine),
                        "method": s.method,
                        "headers": s.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
                        "body": s.body,
                        "credentials": s.credentials,
                        "repeat_ms": s.repeat_ms,
                    })
                })
                .collect();
            let result = browser.run(ENGINE_MATRIX_SCRIPT, vec![json!(rows)]).await;
            browser.close().await;
            (engine, result)
        }
    };
    let (chromium, firefox, webkit) = tokio::join!(
        run_engine(Engine::Chromium),
        run_engine(Engine::Firefox),
        run_engine(Engine::WebKit)
    );

    let mut failures = Vec::new();
    for (engine, result) in [chromium, firefox, webkit] {
        let mut agree = 0;
        for scenario in ENGINE_SCENARIOS {
            let expected = scenario.expected(engine);
            let allowed = &result[scenario.name];
            let observed = engine_matrix::Outcome {
                allowed: allowed.as_bool() == Some(true),
                preflights: seen.preflights(engine, scenario.name),
            };
            if allowed.as_bool().is_none() || observed != expected {
                failures.push(format!(
                    "{} in {}: expected {expected:?}, the browser did {observed:?} (script said {allowed}); \
                     if the browser changed, update the row and the {} profile in crates/cors/src/browser/profile.rs",
                    scenario.name,
                    engine.profile().observed_in,
                    engine.name()
                ));
            } else {
                agree += 1;
            }
        }
        eprintln!(
            "engine matrix: {} agrees with its row on {agree} of {} scenarios",
            engine.profile().observed_in,
            ENGINE_SCENARIOS.len()
        );
    }
    eprintln!("engine matrix: three engines in {:.1?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} engine rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn assert_unique_engine_names() {
    let mut names: Vec<&str> = engine_matrix::ENGINE_SCENARIOS
        .iter()
        .map(|s| s.name)
        .collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "engine scenario names must be unique");
}
