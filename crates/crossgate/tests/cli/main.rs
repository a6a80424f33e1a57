//! The client tools through the binary: `crossgate check` and `crossgate
//! audit` against the probe's small servers (`crossgate_testkit::probe_server`)
//! and the example gateways, their workflows (`--curl`, `--har`, `--sarif`),
//! and the habits people expect of a command line. (The library-level tests
//! of check and audit live in crates/probe/tests.)

mod audit;
mod check;
mod habits;
mod workflows;

use crossgate_testkit::process::run;

/// The crossgate binary's exit code, stdout and stderr for `args`, run off
/// the async threads so that the test's servers keep answering.
async fn crossgate(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .expect("join crossgate");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that `output` says every one of `parts`, showing all of it when one is missing.
fn assert_says(output: &str, parts: &[&str]) {
    for part in parts {
        assert!(output.contains(part), "{part:?} missing from:\n{output}");
    }
}
