//! Real CORS implementations we did not write (express + cors, hono,
//! flask-cors, Starlette and two nginx recipes, each correct and broken; see
//! `crossgate_testkit::third_party`) answer a handful of fetches from a
//! trusted and an untrusted page in real Chromium, Firefox and WebKit. What
//! each engine did (readable or not, preflights sent, counted by a tap in
//! front of each server) is then what `crossgate check --engine X` must
//! predict, fetch by fetch. Nothing here states an outcome: the browsers do.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossgate_cors::browser::Engine;
use crossgate_probe::check::{check_with, CheckInput, StepKind, Verdict};
use crossgate_probe::Prober;
use serde_json::{json, Value};

use super::agreement::owned_headers;
use super::engine_matrix::Outcome;
use super::engines::EngineBrowser;
use super::servers::{self, Log, StripCors};
use crossgate_testkit::third_party::{Config, Implementation, ThirdPartyServer};

/// One fetch a page makes to `/api`.
struct Fetch {
    name: &'static str,
    method: &'static str,
    headers: &'static [(&'static str, &'static str)],
    credentials: bool,
}

impl Fetch {
    /// The body sent: `{}` with a `Content-Type`, none without.
    fn body(&self) -> Option<&'static str> {
        self.headers
            .iter()
            .any(|(n, _)| *n == "Content-Type")
            .then_some("{}")
    }
}

const FETCHES: &[Fetch] = &[
    Fetch {
        name: "simple_get",
        method: "GET",
        headers: &[],
        credentials: false,
    },
    Fetch {
        name: "credentialed_get",
        method: "GET",
        headers: &[],
        credentials: true,
    },
    Fetch {
        name: "put_custom_header",
        method: "PUT",
        headers: &[("X-Custom", "1")],
        credentials: true,
    },
    Fetch {
        name: "delete_custom_header",
        method: "DELETE",
        headers: &[("X-Custom", "1")],
        credentials: false,
    },
    Fetch {
        name: "authorization",
        method: "GET",
        headers: &[("Authorization", "Bearer t")],
        credentials: false,
    },
    Fetch {
        name: "credentialed_authorization",
        method: "GET",
        headers: &[("Authorization", "Bearer t")],
        credentials: true,
    },
    Fetch {
        name: "user_agent",
        method: "GET",
        headers: &[("User-Agent", "probe-ua")],
        credentials: false,
    },
    Fetch {
        name: "lowercase_put",
        method: "put",
        headers: &[("Content-Type", "application/json")],
        credentials: false,
    },
];

/// A started server, the tap in front of it, and the log of what reached it.
struct Target {
    server: ThirdPartyServer,
    tap_port: u16,
    log: Log,
}

impl Target {
    fn label(&self) -> String {
        format!(
            "{} ({})",
            self.server.implementation.name(),
            match self.server.config {
                Config::Correct => "correct",
                Config::Broken => "broken",
            }
        )
    }
}

/// One fetch against one server from one page, as the engine runs it.
struct Row<'a> {
    target: &'a Target,
    page: &'static str,
    origin: &'a str,
    fetch: &'a Fetch,
}

impl Row<'_> {
    fn id(&self, engine: Engine) -> String {
        format!(
            "{}-{}-{}-{}",
            engine.name(),
            self.target.label().replace([' ', '(', ')', '+'], ""),
            self.page,
            self.fetch.name
        )
    }

    fn path(&self, engine: Engine) -> String {
        format!("/api?id={}", self.id(engine))
    }

    fn describe(&self) -> String {
        format!(
            "{}, {} page {}, {}",
            self.target.label(),
            self.page,
            self.origin,
            self.fetch.name
        )
    }
}

/// Every server in both configurations, started concurrently (the Python
/// ones take a second or two to import), each behind a tap.
async fn start_targets(trusted: &str) -> Vec<Target> {
    let servers: Vec<ThirdPartyServer> = std::thread::scope(|scope| {
        let handles: Vec<_> = Implementation::ALL
            .iter()
            .flat_map(|&i| [(i, Config::Correct), (i, Config::Broken)])
            .map(|(i, c)| scope.spawn(move || ThirdPartyServer::start_trusting(i, c, trusted)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("a server failed to start"))
            })
            .collect()
    });
    let mut targets = Vec::new();
    for server in servers {
        let (listener, tap_port) = servers::bind().await;
        let log = Log::default();
        servers::tap(listener, log.clone(), server.addr(), StripCors::default());
        targets.push(Target {
            server,
            tap_port,
            log,
        });
    }
    targets
}

/// What each engine did on each row: `allowed` as its script saw it.
async fn run_in(engine: Engine, proxy: u16, rows: &[Row<'_>]) -> BTreeMap<String, Value> {
    let browser = EngineBrowser::start(engine, proxy).await;
    let mut seen = BTreeMap::new();
    let mut origins: Vec<&str> = rows.iter().map(|r| r.origin).collect();
    origins.dedup();
    for origin in origins {
        browser.open(&format!("{origin}/")).await;
        // An error page (a proxy that did not answer) has another origin.
        let loaded = browser.run("arguments[0](location.origin);", vec![]).await;
        assert_eq!(
            loaded.as_str(),
            Some(origin),
            "{engine:?} did not load the page on {origin}"
        );
        let batch: Vec<Value> = rows
            .iter()
            .filter(|r| r.origin == origin)
            .map(|r| {
                json!({
                    "name": r.id(engine),
                    "url": format!("http://127.0.0.1:{}{}", r.target.tap_port, r.path(engine)),
                    "method": r.fetch.method,
                    "headers": r.fetch.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
                    "body": r.fetch.body(),
                    "credentials": r.fetch.credentials,
                    "repeat_ms": null,
                })
            })
            .collect();
        let result = browser
            .run(
                super::engine_table::ENGINE_MATRIX_SCRIPT,
                vec![json!(batch)],
            )
            .await;
        if let Value::Object(map) = result {
            seen.extend(map);
        }
    }
    browser.close().await;
    seen
}

async fn predicted(prober: &Prober, row: &Row<'_>, engine: Engine) -> Result<Outcome, String> {
    let input = CheckInput {
        url: row.target.server.url("/api"),
        origin: row.origin.to_owned(),
        method: row.fetch.method.to_owned(),
        headers: owned_headers(row.fetch.headers),
        body: row.fetch.body().map(str::to_owned),
        credentials: row.fetch.credentials,
        engine,
    };
    let report = check_with(prober, &input)
        .await
        .map_err(|e| format!("check could not run: {e}"))?;
    Ok(Outcome {
        allowed: report.verdict == Verdict::Allowed,
        preflights: u32::from(report.steps.iter().any(|s| s.kind == StepKind::Preflight)),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_gives_each_engines_verdict_on_third_party_servers() {
    let started = Instant::now();
    let (trusted_listener, trusted_port) = servers::bind().await;
    let (untrusted_listener, untrusted_port) = servers::bind().await;
    servers::page_server(trusted_listener);
    servers::page_server(untrusted_listener);
    let trusted = format!("http://127.0.0.1:{trusted_port}");
    let untrusted = format!("http://127.0.0.1:{untrusted_port}");
    let targets = start_targets(&trusted).await;
    let servers_up = started.elapsed();

    let mut rows = Vec::new();
    // The lookalikes are loaded through the page server acting as the
    // browsers' proxy; the broken hono and nginx-map configs accept them.
    let pages = [
        ("trusted", trusted.as_str()),
        ("untrusted", untrusted.as_str()),
        ("lookalike_suffix", "http://evilexample.com"),
        ("lookalike_prefix", "http://app.example.com.evil.test"),
    ];
    for (page, origin) in pages {
        for target in &targets {
            for fetch in FETCHES {
                rows.push(Row {
                    target,
                    page,
                    origin,
                    fetch,
                });
            }
        }
    }
    let (chromium, firefox, webkit) = tokio::join!(
        run_in(Engine::Chromium, untrusted_port, &rows),
        run_in(Engine::Firefox, untrusted_port, &rows),
        run_in(Engine::WebKit, untrusted_port, &rows)
    );
    let browsers_done = started.elapsed();

    let prober = Prober::new(Duration::from_secs(10), None).expect("prober");
    let mut failures = Vec::new();
    for (engine, seen) in [
        (Engine::Chromium, chromium),
        (Engine::Firefox, firefox),
        (Engine::WebKit, webkit),
    ] {
        let mut per_server: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        let mut readable_per_page: BTreeMap<&str, u32> = BTreeMap::new();
        let (mut agree, mut allowed) = (0, 0);
        for row in &rows {
            let script = seen.get(&row.id(engine)).cloned().unwrap_or(Value::Null);
            let Some(was_allowed) = script.as_bool() else {
                failures.push(format!(
                    "{} in {}: the script said {script}",
                    row.describe(),
                    engine.name()
                ));
                continue;
            };
            let observed = Outcome {
                allowed: was_allowed,
                preflights: row
                    .target
                    .log
                    .for_path(&row.path(engine))
                    .iter()
                    .filter(|s| s.method == "OPTIONS")
                    .count() as u32,
            };
            allowed += u32::from(was_allowed);
            *readable_per_page.entry(row.page).or_default() += u32::from(was_allowed);
            let count = per_server.entry(row.target.label()).or_default();
            count.1 += 1;
            match predicted(&prober, row, engine).await {
                Ok(predicted) if predicted == observed => {
                    agree += 1;
                    count.0 += 1;
                }
                Ok(predicted) => failures.push(format!(
                    "{} in {}: crossgate check --engine {} predicts {predicted:?}, the browser did {observed:?}",
                    row.describe(),
                    engine.profile().observed_in,
                    engine.name()
                )),
                Err(e) => failures.push(format!(
                    "{} in {}: {e}",
                    row.describe(),
                    engine.name()
                )),
            }
        }
        eprintln!(
            "third-party servers: check --engine {} agrees with {} on {agree} of {} fetches ({allowed} readable)",
            engine.name(),
            engine.profile().observed_in,
            rows.len()
        );
        for (server, (agree, total)) in &per_server {
            eprintln!("    {server}: {agree} of {total}");
        }
        eprintln!("    readable per page: {readable_per_page:?}");
        // Every server turning every fetch away (a page that did not load,
        // a dead tap) would agree with check trivially.
        assert!(
            allowed > 0 && allowed < rows.len() as u32,
            "{}: {allowed} of {} fetches readable; the servers or pages are not answering",
            engine.name(),
            rows.len()
        );
        // The lookalikes get past the broken hono (suffix) and nginx-map
        // (prefix) checks, so a page origin the proxy failed to give them
        // shows up here rather than as trivial agreement.
        for lookalike in ["lookalike_suffix", "lookalike_prefix"] {
            assert!(
                readable_per_page[lookalike] > readable_per_page["untrusted"],
                "{}: the {lookalike} page read no more than the untrusted one: {readable_per_page:?}",
                engine.name()
            );
        }
    }
    eprintln!(
        "third-party servers: {} fetches x 3 engines; servers up in {servers_up:.1?}, browsers done in {browsers_done:.1?}, total {:.1?}",
        rows.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "crossgate check disagrees with a real browser on {} third-party fetches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
