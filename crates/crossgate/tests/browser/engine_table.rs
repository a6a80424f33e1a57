//! The engine matrix ([`ENGINE_SCENARIOS`]) in one engine: every row in one
//! page, one after the other, against the matrix's CORS server.

use serde_json::{json, Value};

use super::engine_matrix::{Outcome, Seen, ENGINE_SCENARIOS};
use super::engines::EngineBrowser;

/// Runs every row and returns each row's `allowed` as the script saw it.
pub(crate) const ENGINE_MATRIX_SCRIPT: &str = r#"
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

/// What one engine did with the matrix.
pub struct MatrixRun {
    /// In the order of [`ENGINE_SCENARIOS`].
    pub observed: Vec<Outcome>,
    pub failures: Vec<String>,
}

/// Runs the matrix from a page on `origin` against the server on `port`.
pub async fn run(browser: &EngineBrowser, origin: &str, port: u16, seen: &Seen) -> MatrixRun {
    let engine = browser.engine;
    browser.show_page(origin).await;
    let rows: Vec<Value> = ENGINE_SCENARIOS
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "url": s.url(port, origin, engine),
                "method": s.method,
                "headers": s.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
                "body": s.body,
                "credentials": s.credentials,
                "repeat_ms": s.repeat_ms,
            })
        })
        .collect();
    let result = browser.run(ENGINE_MATRIX_SCRIPT, vec![json!(rows)]).await;
    let mut observed = Vec::new();
    let mut failures = Vec::new();
    for scenario in ENGINE_SCENARIOS {
        let expected = scenario.expected(engine);
        let allowed = &result[scenario.name];
        let outcome = Outcome {
            allowed: allowed.as_bool() == Some(true),
            preflights: seen.preflights(engine, scenario.name),
        };
        if allowed.as_bool().is_none() || outcome != expected {
            failures.push(format!(
                "{} in {}: expected {expected:?}, the browser did {outcome:?} (script said {allowed}); \
                 if the browser changed, update the row and the {} profile in crates/cors/src/browser/profile.rs",
                scenario.name,
                engine.profile().observed_in,
                engine.name()
            ));
        }
        observed.push(outcome);
    }
    MatrixRun { observed, failures }
}
