//! The habits people expect of a command line: shell completions, man
//! pages, `--version` with the commit, the demo embedded from inside the
//! package, colors only on a terminal, and a progress line only on a
//! terminal. "On a terminal" is a real pseudo-terminal from util-linux's
//! `script`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crossgate_testkit::probe_server::{answer, Asked, TestServer};

use crossgate_testkit::process::run;

use super::{assert_says, crossgate};

const SUBCOMMANDS: [&str; 6] = ["serve", "validate", "check", "audit", "completions", "man"];
const ESCAPE: char = '\u{1b}';

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether `program` can be started (it is installed).
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `shell -n` (parse only) on `script`; its stderr on failure.
fn parses(shell: &str, script: &str) -> Result<(), String> {
    let dir = tempdir("completions");
    let file = dir.join(format!("crossgate.{shell}"));
    std::fs::write(&file, script).expect("write script");
    let output = Command::new(shell)
        .arg("-n")
        .arg(&file)
        .output()
        .expect("run shell");
    if output.status.success() && output.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "crossgate-cli-habits-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[test]
fn completions_for_each_shell_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let output = run(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = stdout(&output);
        assert!(
            script.len() > 1000,
            "{shell}: a real script, got {script:?}"
        );
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks `{sub}`");
        }
        // Options of subcommands are completed too.
        assert!(script.contains("trusted-origin"), "{shell}");
    }
}

#[test]
fn bash_completion_parses() {
    let script = stdout(&run(&["completions", "bash"]));
    parses("bash", &script).unwrap_or_else(|e| panic!("bash -n: {e}"));
}

#[test]
fn zsh_and_fish_completions_parse_where_installed() {
    for shell in ["zsh", "fish"] {
        if installed(shell) {
            let script = stdout(&run(&["completions", shell]));
            parses(shell, &script).unwrap_or_else(|e| panic!("{shell} -n: {e}"));
        } else {
            eprintln!("{shell} is not installed: its completion script is not parsed");
        }
    }
}

#[test]
fn an_unknown_shell_is_refused() {
    let output = run(&["completions", "cmd.exe"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("possible values"));
}

#[test]
fn the_man_page_lists_every_subcommand() {
    let output = run(&["man"]);
    assert!(output.status.success(), "{output:?}");
    let roff = stdout(&output);
    assert_says(&roff, &[".TH crossgate 1", ".SH SUBCOMMANDS"]);
    for sub in SUBCOMMANDS {
        assert!(
            roff.contains(&format!("crossgate\\-{sub}(1)")),
            "the page refers to crossgate-{sub}(1):\n{roff}"
        );
    }
    assert!(roff.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn each_subcommand_has_its_own_man_page() {
    for sub in SUBCOMMANDS {
        let output = run(&["man", sub]);
        assert!(output.status.success(), "{sub}: {output:?}");
        let roff = stdout(&output);
        assert!(
            roff.contains(&format!(".TH crossgate-{sub} 1")),
            "{sub}:\n{roff}"
        );
        assert!(
            roff.contains(&format!("crossgate {sub}")),
            "{sub}: synopsis"
        );
    }
    let roff = stdout(&run(&["man", "audit"]));
    assert!(
        roff.contains("\\-\\-fail\\-on"),
        "audit's options are documented"
    );
    let unknown = run(&["man", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("serve, validate"));
}

#[test]
fn groff_renders_the_man_pages_without_warnings() {
    if !installed("groff") {
        eprintln!("groff is not installed: the man pages are not rendered");
        return;
    }
    for page in [None, Some("audit"), Some("check")] {
        let args: Vec<&str> = std::iter::once("man").chain(page).collect();
        let dir = tempdir("man");
        let file = dir.join("page.1");
        std::fs::write(&file, run(&args).stdout).expect("write page");
        // -Tascii -P-cbou: plain text, without overstrike bold and underline.
        let output = Command::new("groff")
            .args(["-man", "-Tascii", "-P-cbou", "-ww"])
            .arg(&file)
            .output()
            .expect("run groff");
        let warnings = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && warnings.is_empty(),
            "{page:?}: {warnings}"
        );
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("SYNOPSIS"), "{page:?}: {text}");
    }
}

#[test]
fn version_names_the_commit_when_built_in_git() {
    let output = run(&["--version"]);
    assert!(output.status.success());
    let version = stdout(&output);
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(head) if head.status.success() => {
            let commit = String::from_utf8_lossy(&head.stdout).trim().to_owned();
            let expected = format!("crossgate {} ({commit}", env!("CARGO_PKG_VERSION"));
            assert!(version.starts_with(&expected), "{version:?} names {commit}");
        }
        _ => assert_eq!(
            version,
            format!("crossgate {}\n", env!("CARGO_PKG_VERSION"))
        ),
    }
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_embedded_demo_is_examples_demo_toml() {
    let documented = std::fs::read_to_string(crate_dir().join("../../examples/demo.toml"))
        .expect("examples/demo.toml");
    assert_eq!(
        crossgate::DEMO_CONFIG,
        documented,
        "crates/crossgate/demo.toml is the packaged copy of examples/demo.toml: copy it over"
    );
}

/// Every `include_str!`/`include_bytes!` of the binary names a file inside
/// the package, so a packaged crate (`cargo package`, crates.io) builds.
#[test]
fn embedded_files_lie_inside_the_package() {
    let mut sources = vec![crate_dir().join("src")];
    let mut checked = 0;
    while let Some(path) = sources.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read src") {
                sources.push(entry.expect("entry").path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        for macro_name in ["include_str!(\"", "include_bytes!(\""] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = &text[at + macro_name.len()..];
                let relative = &rest[..rest.find('"').expect("closing quote")];
                let target = path.parent().expect("dir").join(relative);
                let target = target
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("{}: {relative}: {e}", path.display()));
                let package = crate_dir().canonicalize().expect("crate dir");
                assert!(
                    target.starts_with(&package),
                    "{} embeds {relative}, outside the package",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "the demo and the dashboard are embedded");
}

fn blocked(_: &Asked<'_>) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    answer(200, &[])
}

/// `crossgate args` on a pseudo-terminal, with `env` set; what the terminal showed.
fn on_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_crossgate"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut command = Command::new("script");
    command
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm-256color");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run script (util-linux)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn on_terminal_async(args: Vec<String>, env: Vec<(&'static str, &'static str)>) -> String {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        on_terminal(&args, &env)
    })
    .await
    .expect("join")
}

fn check_args(server: &TestServer) -> Vec<String> {
    [
        "check",
        &server.url("/api"),
        "--origin",
        "https://app.example.com",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test]
async fn color_on_a_terminal_and_never_in_pipes() {
    let server = TestServer::start(blocked).await;
    let args = check_args(&server);
    let on_tty = on_terminal_async(args.clone(), vec![]).await;
    assert!(on_tty.contains("BLOCKED"), "{on_tty}");
    assert!(
        on_tty.contains(ESCAPE),
        "a terminal gets colors: {on_tty:?}"
    );

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, piped, _) = crossgate(&args).await;
    assert_eq!(code, 1, "{piped}");
    assert!(piped.contains("BLOCKED"), "{piped}");
    assert!(!piped.contains(ESCAPE), "a pipe gets none: {piped:?}");
}

#[tokio::test]
async fn no_color_turns_auto_off_and_never_means_never() {
    let server = TestServer::start(blocked).await;
    let args = check_args(&server);
    let with_no_color = on_terminal_async(args.clone(), vec![("NO_COLOR", "1")]).await;
    assert!(with_no_color.contains("BLOCKED"), "{with_no_color}");
    assert!(!with_no_color.contains(ESCAPE), "{with_no_color:?}");
    // no-color.org: an empty NO_COLOR does not count.
    let empty = on_terminal_async(args.clone(), vec![("NO_COLOR", "")]).await;
    assert!(empty.contains(ESCAPE), "{empty:?}");

    let mut never = args.clone();
    never.extend(["--color".to_owned(), "never".to_owned()]);
    let never = on_terminal_async(never, vec![]).await;
    assert!(
        never.contains("BLOCKED") && !never.contains(ESCAPE),
        "{never:?}"
    );
}

#[tokio::test]
async fn color_always_colors_pipes_but_not_json() {
    let server = TestServer::start(blocked).await;
    let url = server.url("/api");
    let base = [
        "check",
        &url,
        "--origin",
        "https://app.example.com",
        "--color",
        "always",
    ];
    let (_, always, _) = crossgate(&base).await;
    assert!(always.contains(&format!("{ESCAPE}[")), "{always:?}");
    let json: Vec<&str> = base.iter().copied().chain(["--json"]).collect();
    let (_, json, _) = crossgate(&json).await;
    assert!(!json.contains(ESCAPE), "{json:?}");
    serde_json::from_str::<serde_json::Value>(&json).expect("plain JSON");

    let audit = ["audit", &url, "--color", "always"];
    let (_, audit, _) = crossgate(&audit).await;
    assert!(audit.contains(&format!("{ESCAPE}[")), "{audit:?}");
}

/// Answers slowly enough that a 70-request audit lasts about a second, so
/// the progress line (redrawn every 100 ms) is drawn several times.
fn slow_reflect(asked: &Asked<'_>) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    std::thread::sleep(Duration::from_millis(15));
    let origin = asked.origin().unwrap_or("").to_owned();
    answer(
        200,
        &[("access-control-allow-origin", &origin), ("vary", "Origin")],
    )
}

const PROGRESS: &str = "requests sent (";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_shows_progress_on_a_terminal_only() {
    let server = TestServer::start(slow_reflect).await;
    let url = server.url("/api");
    let on_tty = on_terminal_async(vec!["audit".to_owned(), url.clone()], vec![]).await;
    assert!(on_tty.contains(&format!("probing {url}: ")), "{on_tty:?}");
    assert!(on_tty.contains(PROGRESS), "{on_tty:?}");
    assert!(
        on_tty.contains("any_origin_reflected"),
        "the report follows: {on_tty:?}"
    );

    let json = on_terminal_async(
        vec!["audit".to_owned(), url.clone(), "--json".to_owned()],
        vec![],
    )
    .await;
    assert!(!json.contains(PROGRESS), "--json: no progress: {json:?}");

    let (_, out, err) = crossgate(&["audit", &url]).await;
    assert!(out.contains("any_origin_reflected"), "{out}");
    assert!(
        !err.contains(PROGRESS) && !out.contains(PROGRESS),
        "a pipe: no progress: {err:?}"
    );
}
