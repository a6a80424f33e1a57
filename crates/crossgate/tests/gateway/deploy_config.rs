//! The configuration the container image and the Kubernetes ConfigMap ship
//! (deploy/crossgate.toml) is valid, and `server.admin_token` is checked up
//! front like every other key.

use std::path::{Path, PathBuf};

use crate::support::config::Config;
use crate::support::process::{validate, validate_accepts};
use crate::support::TempDir;

fn config_with_token(token: &str) -> String {
    Config::server(&[
        r#"admin = "127.0.0.1:0""#,
        &format!("admin_token = \"{token}\""),
    ])
    .route("/", &["mock = { status = 200 }"])
    .render()
}

fn write_config(text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("deploy");
    let path = dir.write("crossgate.toml", text);
    (dir, path)
}

#[test]
fn the_shipped_container_config_is_valid_with_an_admin_listener() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crossgate.toml");
    let stdout = validate_accepts(&path);
    assert!(
        stdout.contains("listening on http://0.0.0.0:8080, admin on 0.0.0.0:9090"),
        "the Dockerfile's HEALTHCHECK and EXPOSE expect these ports: {stdout}"
    );
}

#[test]
fn a_short_or_malformed_admin_token_is_refused_with_its_key_and_fix() {
    for bad in [
        "too-short",
        "has spaces but is long enough to pass the length",
    ] {
        let (_dir, path) = write_config(&config_with_token(bad));
        let output = validate(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let all = format!("{stdout}{stderr}");
        assert!(!output.status.success(), "{bad:?} accepted: {all}");
        assert!(all.contains("server.admin_token"), "{all}");
        assert!(
            all.contains("openssl rand -base64 32"),
            "the fix is given: {all}"
        );
        assert!(!all.contains(bad), "the token is never echoed: {all}");
    }
    let (_dir, path) = write_config(&config_with_token("0123456789abcdef0123456789abcdef"));
    validate_accepts(&path);
}
