//! The client tools through the binary: `crossgate check` and `crossgate
//! audit` against the probe's small servers (`crossgate_testkit::probe_server`)
//! and the example gateways, their workflows (`--curl`, `--har`, `--sarif`),
//! and the habits people expect of a command line. (The library-level tests
//! of check and audit live in crates/probe/tests.)

mod audit;
mod check;
mod habits;
mod workflows;

use crossgate_testkit::probe_server::{Asked, TestServer};
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

/// A probe server's answer to each request.
type Handler = fn(&Asked<'_>) -> http::Response<http_body_util::Full<bytes::Bytes>>;

/// `crossgate <command> <url> <args…>`, where `url` is `path` on a fresh
/// probe server answering with `handler`; the exit code and stdout.
async fn crossgate_against(
    handler: Handler,
    command: &str,
    path: &str,
    args: &[&str],
) -> (i32, String) {
    let server = TestServer::start(handler).await;
    let url = server.url(path);
    let command: Vec<&str> = [command, url.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let (code, out, _) = crossgate(&command).await;
    (code, out)
}

/// A URL on a port nothing listens on: bound, noted and closed again.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    format!("http://127.0.0.1:{port}/")
}

/// Asserts that `output` says every one of `parts`, showing all of it when one is missing.
fn assert_says(output: &str, parts: &[&str]) {
    for part in parts {
        assert!(output.contains(part), "{part:?} missing from:\n{output}");
    }
}
