//! The admin dashboard in real headless Chromium: a running `crossgate serve`
//! gets traffic with known denials (and a hostile origin), one failed and one
//! good reload; the page must show exactly those counts, reasons, origins,
//! request ids and reloads, run no markup from the data, and draw its charts.
//! A screenshot is saved as `dashboard-screenshot.png` in the test's output
//! directory (`target/tmp/`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossgate_testkit::process::{Gateway, ALLOWED_ORIGIN, DENIED_ORIGIN};
use crossgate_testkit::{preflight, send, TestUpstream, PATIENCE};
use serde_json::{json, Value};

use crossgate_cors::browser::Engine;

use super::engines::EngineBrowser;
use super::test_hosts;

/// Markup in an Origin header: if the page parsed data as HTML, this would
/// add an `<img>` and set `window.__pwned`.
const HOSTILE_ORIGIN: &str = "https://x.test\"><img src=x onerror=\"window.__pwned=1\">";
/// Waves of traffic, spread over more than one 10 s interval so the charts
/// have several bars.
const WAVES: usize = 3;
const WAVE_GAP: Duration = Duration::from_secs(6);
const ADMIN_TOKEN: &str = "dashboard-test-token-0123456789abcdef";

/// One wave: 4 allowed requests, 4 preflights from a denied origin, 2 asking
/// for a method the policy lacks, 1 asking for a header it lacks, 2 without
/// an Origin: 13 responses, 7 denials.
async fn wave(addr: SocketAddr, wave: usize) {
    for _ in 0..4 {
        let reply = send(addr, "GET", "/status", &[("origin", ALLOWED_ORIGIN)], b"").await;
        assert_eq!(reply.status.as_u16(), 200);
    }
    for n in 0..4 {
        let id = format!("dash-{wave}-{n}");
        let headers = [
            ("origin", DENIED_ORIGIN),
            ("access-control-request-method", "PUT"),
            ("x-request-id", id.as_str()),
        ];
        send(addr, "OPTIONS", "/api/items", &headers, b"").await;
    }
    for _ in 0..2 {
        preflight(addr, "/api/items", ALLOWED_ORIGIN, "DELETE", "").await;
    }
    preflight(addr, "/status", ALLOWED_ORIGIN, "PUT", "x-not-listed").await;
    for _ in 0..2 {
        send(addr, "GET", "/status", &[], b"").await;
    }
}

/// What the page shows, read from the DOM as text.
const READ_PAGE: &str = r#"
const done = arguments[arguments.length - 1];
const text = (id) => document.getElementById(id).textContent.trim();
const rows = (id) => [...document.getElementById(id).tBodies[0].rows]
  .map((row) => [...row.cells].map((cell) => cell.textContent.trim()));
const shown = (id) => getComputedStyle(document.getElementById(id)).display !== "none";
const bars = (id) => [...document.getElementById(id).querySelectorAll("rect")];
done({
  polls: Number(document.body.dataset.polls || 0),
  requests: text("total-requests"),
  denials: text("total-denials"),
  generation: text("generation"),
  reasons: rows("reasons"),
  origins: rows("origins"),
  recent: rows("recent"),
  routes: rows("routes"),
  reloads: rows("reloads"),
  request_bars: bars("chart-requests").length,
  request_columns: new Set(bars("chart-requests").map((bar) => bar.getAttribute("x"))).size,
  denial_bars: bars("chart-denials").length,
  images: document.images.length,
  pwned: window.__pwned === undefined ? null : window.__pwned,
  report_only_shown: shown("report-only"),
  upstream_health_shown: shown("upstream-health"),
  token_form_shown: shown("token-form"),
  error_shown: shown("error"),
});
"#;

async fn read_page(browser: &EngineBrowser) -> Value {
    browser.run(READ_PAGE, vec![]).await
}

/// Re-reads the page until `ready` holds (the page polls every 2 s).
async fn page_when(browser: &EngineBrowser, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let page = read_page(browser).await;
        if ready(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed {what}: {page:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cells(rows: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(rows.clone()).expect("table rows as text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_traffic_denials_and_reloads_in_chromium() {
    let upstream = TestUpstream::start().await;
    let gateway = Gateway::start(&crossgate_testkit::process::config(upstream.addr, "v1")).await;

    // A failed reload (its error must be shown), then a good one: generation 2.
    gateway.write_config("[server]\nlisten = \"127.0.0.1:0\"\n[policies.web]\norigins = [\"*\"]\ncredentials = true\n");
    let deadline = Instant::now() + PATIENCE;
    while gateway.reloads("failed").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the invalid file was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gateway.write_config(&crossgate_testkit::process::config(upstream.addr, "v2"));
    gateway.wait_reloads("ok", 1.0).await;

    for n in 0..WAVES {
        if n > 0 {
            tokio::time::sleep(WAVE_GAP).await;
        }
        wave(gateway.addr, n).await;
    }
    let hostile = [
        ("origin", HOSTILE_ORIGIN),
        ("access-control-request-method", "PUT"),
    ];
    send(gateway.addr, "OPTIONS", "/api/items", &hostile, b"").await;

    // The admin listener is loopback, which the browser reaches without the proxy.
    let browser = EngineBrowser::start(Engine::Chromium, test_hosts::start_proxy().await).await;
    browser
        .client
        .set_window_size(1400, 2250)
        .await
        .expect("set the window size");
    browser.open(&format!("http://{}/", gateway.admin)).await;
    let expected_requests = (WAVES * 13 + 1).to_string();
    let page = page_when(&browser, "the traffic", |page| {
        page["requests"] == expected_requests.as_str()
    })
    .await;

    assert_eq!(
        page["denials"],
        (WAVES * 7 + 1).to_string().as_str(),
        "{page:#}"
    );
    assert_eq!(page["generation"], "2");
    let reasons = cells(&page["reasons"]);
    assert_eq!(
        reasons,
        [
            ["origin_not_allowed", &(WAVES * 4 + 1).to_string()],
            ["method_not_allowed", &(WAVES * 2).to_string()],
            ["header_not_allowed", &WAVES.to_string()],
        ],
        "{page:#}"
    );
    let origins = cells(&page["origins"]);
    assert_eq!(origins[0], [DENIED_ORIGIN, &(WAVES * 4).to_string()]);
    assert_eq!(origins[1], [ALLOWED_ORIGIN, &(WAVES * 3).to_string()]);
    assert_eq!(origins[2], [HOSTILE_ORIGIN, "1"], "shown verbatim, as text");

    let recent = cells(&page["recent"]);
    // Columns: time, reason, method, origin, route, request id; newest first.
    assert_eq!(
        recent[0][1..5],
        ["origin_not_allowed", "OPTIONS", HOSTILE_ORIGIN, "/api/"]
    );
    let last_wave = WAVES - 1;
    let denied_ids: Vec<&str> = recent
        .iter()
        .filter(|row| row[3] == DENIED_ORIGIN)
        .map(|row| row[5].as_str())
        .collect();
    assert_eq!(
        denied_ids[..4],
        [3, 2, 1, 0].map(|n| format!("dash-{last_wave}-{n}")),
        "{recent:?}"
    );
    assert!(recent
        .iter()
        .any(|row| row[1] == "header_not_allowed" && row[4] == "/status"));

    let routes = cells(&page["routes"]);
    assert_eq!(
        routes,
        [
            [
                "/api/",
                &(WAVES * 6 + 1).to_string(),
                &(WAVES * 6 + 1).to_string()
            ],
            ["/status", &(WAVES * 7).to_string(), &WAVES.to_string()],
        ]
    );

    let reloads = cells(&page["reloads"]);
    assert_eq!(reloads.len(), 2, "{reloads:?}");
    assert_eq!(reloads[0][1..4], ["file_change", "ok", "2"]);
    assert_eq!(reloads[1][2..4], ["failed", "1"]);
    assert!(
        reloads[1][4].contains("policies.web.origins") && reloads[1][4].contains("credentials"),
        "the failed reload's problems are shown: {:?}",
        reloads[1][4]
    );

    assert!(page["request_bars"].as_u64().unwrap_or(0) >= 2, "{page:#}");
    assert!(
        page["request_columns"].as_u64().unwrap_or(0) >= 2,
        "bars in several intervals: {page:#}"
    );
    assert!(page["denial_bars"].as_u64().unwrap_or(0) >= 2, "{page:#}");
    assert_eq!(page["images"], 0, "markup from an origin became an element");
    assert_eq!(page["pwned"], Value::Null, "a script from an origin ran");
    assert_eq!(page["report_only_shown"], false, "no report-only data yet");
    assert_eq!(
        page["upstream_health_shown"], false,
        "no upstream health yet"
    );
    assert_eq!(page["token_form_shown"], false, "no admin_token configured");
    assert_eq!(page["error_shown"], false);

    let png = browser.client.screenshot().await.expect("screenshot");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshot.png");
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("dashboard screenshot: {}", path.display());

    // With admin_token set, the page asks for the token and then shows the data.
    let with_token = crossgate_testkit::process::config(upstream.addr, "v1").replace(
        "shutdown_timeout = 10\n",
        &format!("shutdown_timeout = 10\nadmin_token = \"{ADMIN_TOKEN}\"\n"),
    );
    let guarded = Gateway::start(&with_token).await;
    send(guarded.addr, "GET", "/status", &[], b"").await;
    browser.open(&format!("http://{}/", guarded.admin)).await;
    page_when(&browser, "the token form", |page| {
        page["token_form_shown"] == true
    })
    .await;
    browser
        .run(
            "const [token, done] = arguments; document.getElementById('token').value = token; document.getElementById('token-form').requestSubmit(); done(null);",
            vec![json!(ADMIN_TOKEN)],
        )
        .await;
    let page = page_when(&browser, "the data after the token", |page| {
        page["requests"] == "1"
    })
    .await;
    assert_eq!(page["token_form_shown"], false);
    browser.close().await;
}
