//! Every configuration rule: what is refused, with which key and fix, and
//! that all problems are reported at once.

use crossgate_cors::{ConfigErrorKind, ConfigErrors, ConfigWarning, PolicyConfig};

fn errors(toml: &str) -> ConfigErrors {
    let config: PolicyConfig = toml::from_str(toml).expect("parses");
    config.compile().expect_err("must be refused")
}

fn kinds(toml: &str) -> Vec<(String, ConfigErrorKind)> {
    errors(toml)
        .iter()
        .map(|e| (e.key().to_owned(), e.kind().clone()))
        .collect()
}

fn single(toml: &str) -> crossgate_cors::ConfigError {
    let errors = errors(toml);
    assert_eq!(errors.len(), 1, "{errors}");
    errors.into_iter().next().unwrap()
}

/// The one warning of a policy that is accepted.
fn single_warning(toml: &str) -> ConfigWarning {
    let config: PolicyConfig = toml::from_str(toml).expect("parses");
    let policy = config.compile().expect("accepted");
    assert_eq!(policy.warnings().len(), 1, "{:?}", policy.warnings());
    policy.warnings()[0].clone()
}

#[test]
fn no_origins_at_all() {
    assert_eq!(
        kinds("methods = [\"PUT\"]"),
        [("origins".into(), ConfigErrorKind::NoOrigins)]
    );
}

#[test]
fn null_and_file_origins() {
    assert_eq!(
        kinds(r#"origins = ["null", "file:///tmp/x.html"]"#),
        [
            ("origins[0]".into(), ConfigErrorKind::NullOrigin),
            ("origins[1]".into(), ConfigErrorKind::FileOrigin)
        ]
    );
}

#[test]
fn malformed_origins_each_reported_with_their_index() {
    let all = kinds(
        r#"origins = [
            "https://example.com/", "https://example.com/path", "https://example.com?q=1",
            "https://example.com#top", "https://user:pw@example.com", " https://example.com",
            "https://EXAMPLE.com", "https://example.com:443", "https://example.com:65536",
            "https://bücher.example", "example.com", "https://foo.*.example.com"
        ]"#,
    );
    assert_eq!(all.len(), 12);
    for (i, (key, kind)) in all.iter().enumerate() {
        assert_eq!(key, &format!("origins[{i}]"));
        assert!(
            matches!(kind, ConfigErrorKind::MalformedOrigin { .. }),
            "{key}: {kind:?}"
        );
    }
}

#[test]
fn wildcard_with_credentials_suggests_a_list_or_a_pattern() {
    let error = single(
        r#"origins = ["*"]
credentials = true"#,
    );
    assert_eq!(error.kind(), &ConfigErrorKind::WildcardWithCredentials);
    assert_eq!(error.key(), "origins");
    let text = error.to_string();
    assert!(text.contains("https://*.example.com"), "{text}");
    assert!(text.contains("list the origins"), "{text}");
}

#[test]
fn wildcard_must_stand_alone() {
    assert_eq!(
        kinds(r#"origins = ["*", "https://a.com"]"#),
        [("origins".into(), ConfigErrorKind::WildcardNotAlone)]
    );
}

#[test]
fn credentials_refuse_plain_http_except_loopback() {
    let config = r#"
        origins = ["http://app.example.com", "http://localhost:3000", "http://127.0.0.1:*", "http://[::1]:8080", "http://*.localhost:*"]
        credentials = true"#;
    let error = single(config);
    assert_eq!(error.key(), "origins[0]");
    assert_eq!(
        error.kind(),
        &ConfigErrorKind::InsecureOriginWithCredentials
    );
    assert!(error.fix().contains("https://app.example.com"));
    // Without credentials plain http is a normal choice.
    let config: PolicyConfig = toml::from_str(r#"origins = ["http://app.example.com"]"#).unwrap();
    assert!(config.compile().is_ok());
}

#[test]
fn wildcards_on_public_suffixes() {
    let all = kinds(
        r#"origins = ["https://*.com", "https://*.github.io", "https://*.co.uk", "https://*.example.com"]
credentials = true"#,
    );
    assert_eq!(
        all,
        [
            ("origins[0]".into(), ConfigErrorKind::PublicSuffixWildcard),
            ("origins[1]".into(), ConfigErrorKind::PublicSuffixWildcard),
            ("origins[2]".into(), ConfigErrorKind::PublicSuffixWildcard),
        ]
    );
    // Without credentials: accepted, with a warning that says why.
    let warning = single_warning(r#"origins = ["https://*.github.io"]"#);
    assert!(warning.message().contains("public suffix"));
}

#[test]
fn methods_rules() {
    let all = kinds(
        r#"origins = ["https://a.com"]
methods = ["CONNECT", "trace", "TRACK", "GET POST", "PUT"]"#,
    );
    assert_eq!(
        all,
        [
            ("methods[0]".into(), ConfigErrorKind::ForbiddenMethod),
            ("methods[1]".into(), ConfigErrorKind::ForbiddenMethod),
            ("methods[2]".into(), ConfigErrorKind::ForbiddenMethod),
            ("methods[3]".into(), ConfigErrorKind::InvalidMethod),
        ]
    );
}

#[test]
fn request_header_rules() {
    let all = kinds(
        r#"origins = ["https://a.com"]
request_headers = ["Cookie", "sec-fetch-mode", "Proxy-Authorization", "access-control-allow-origin", "x y", "content-type", "Host"]"#,
    );
    assert_eq!(
        all,
        [
            (
                "request_headers[0]".into(),
                ConfigErrorKind::ForbiddenRequestHeader
            ),
            (
                "request_headers[1]".into(),
                ConfigErrorKind::ForbiddenRequestHeader
            ),
            (
                "request_headers[2]".into(),
                ConfigErrorKind::ForbiddenRequestHeader
            ),
            (
                "request_headers[3]".into(),
                ConfigErrorKind::ForbiddenRequestHeader
            ),
            (
                "request_headers[4]".into(),
                ConfigErrorKind::InvalidHeaderName
            ),
            (
                "request_headers[6]".into(),
                ConfigErrorKind::ForbiddenRequestHeader
            ),
        ]
    );
}

#[test]
fn expose_header_rules() {
    let all = kinds(
        r#"origins = ["https://a.com"]
expose_headers = ["Set-Cookie", "set-cookie2", "x-ok"]"#,
    );
    assert_eq!(
        all,
        [
            (
                "expose_headers[0]".into(),
                ConfigErrorKind::ForbiddenExposedHeader
            ),
            (
                "expose_headers[1]".into(),
                ConfigErrorKind::ForbiddenExposedHeader
            ),
        ]
    );
    assert_eq!(
        kinds(
            r#"origins = ["https://a.com"]
expose_headers = ["*"]
credentials = true"#
        ),
        [(
            "expose_headers".into(),
            ConfigErrorKind::WildcardExposeWithCredentials
        )]
    );
}

#[test]
fn status_regex_and_max_age_rules() {
    let all = kinds(
        r#"origin_regex = ["https://(unclosed"]
preflight_status = 302
max_age = -1"#,
    );
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(matches!(all[0], (ref k, ConfigErrorKind::InvalidRegex(_)) if k == "origin_regex[0]"));
    assert_eq!(all[1], ("max_age".into(), ConfigErrorKind::NegativeMaxAge));
    assert_eq!(
        all[2],
        (
            "preflight_status".into(),
            ConfigErrorKind::InvalidPreflightStatus
        )
    );
}

#[test]
fn broad_regexes_warn_and_are_refused_with_credentials() {
    let warning = single_warning(r#"origin_regex = ["https?://.*"]"#);
    assert_eq!(warning.key(), "origin_regex[0]");
    assert_eq!(
        kinds(
            r#"origin_regex = [".*"]
credentials = true"#
        ),
        [("origin_regex[0]".into(), ConfigErrorKind::RegexTooBroad)]
    );
}

#[test]
fn large_max_age_is_accepted_with_a_warning() {
    let warning = single_warning(
        r#"origins = ["*"]
max_age = 172800"#,
    );
    assert!(warning.message().contains("7200"));
}

#[test]
fn every_problem_is_reported_at_once_and_names_its_fix() {
    let errors = errors(
        r#"origins = ["*", "null"]
credentials = true
methods = ["TRACE"]
request_headers = ["cookie"]
expose_headers = ["*"]
preflight_status = 500
max_age = -5"#,
    );
    assert!(errors.len() >= 6, "{errors}");
    for error in &errors {
        let line = error.to_string();
        assert!(line.starts_with(&format!("`{}`", error.key())), "{line}");
        assert!(line.contains("fix: "), "{line}");
        assert!(!error.fix().is_empty());
    }
    assert_eq!(errors.to_string().lines().count(), errors.len());
}

#[test]
fn unknown_keys_are_refused_by_serde() {
    let error = toml::from_str::<PolicyConfig>(r#"origin = ["https://a.com"]"#).unwrap_err();
    assert!(error.to_string().contains("unknown field"), "{error}");
    let error = toml::from_str::<PolicyConfig>(
        r#"origins = ["*"]
upstream_headers = "merge""#,
    )
    .unwrap_err();
    assert!(error.to_string().contains("override"), "{error}");
}
