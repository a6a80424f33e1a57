//! The configuration the container image and the Kubernetes ConfigMap ship
//! (deploy/crossgate.toml) is valid, and `server.admin_token` is checked up
//! front like every other key.

use std::path::Path;
use std::process::Output;

use crate::support::process::validate;

fn config_with_token(token: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nadmin_token = \"{token}\"\n\n[[routes]]\npath = \"/\"\nmock = {{ status = 200 }}\n"
    )
}

fn validate_text(name: &str, text: &str) -> Output {
    let path = std::env::temp_dir().join(format!(
        "crossgate-deploy-{name}-{}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("write config");
    let output = validate(&path);
    let _ = std::fs::remove_file(&path);
    output
}

#[test]
fn the_shipped_container_config_is_valid_with_an_admin_listener() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crossgate.toml");
    let output = validate(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
        let output = validate_text("bad-token", &config_with_token(bad));
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
    let output = validate_text(
        "good-token",
        &config_with_token("0123456789abcdef0123456789abcdef"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
