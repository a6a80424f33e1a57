//! `crossgate audit` against CORS servers we did not write (see
//! `crossgate_testkit::third_party`): it finds every real hole of each broken
//! configuration, exactly those classes, and nothing on the correct ones.

use std::time::Duration;

use crossgate_probe::audit::{audit_with, FindingClass, Severity};
use crossgate_probe::Prober;
use crossgate_testkit::third_party::{Config, Implementation, ThirdPartyServer, TRUSTED_ORIGIN};

use FindingClass::*;

/// The holes each broken configuration really has (each fixture file
/// explains its mistake); a correct configuration has none.
fn expected(implementation: Implementation) -> Vec<FindingClass> {
    match implementation {
        // `origin: true` reflects everything, `null` included, with credentials;
        // cors reflects Access-Control-Request-Headers when allowedHeaders is unset.
        Implementation::ExpressCors => vec![
            ReflectedWithCredentials,
            NullOriginTrusted,
            PreflightAllowsAnyHeader,
        ],
        // endsWith("example.com"): a bare suffix, any subdomain; hono's
        // default allowHeaders echoes the request's.
        // (`https://appxexample.com` and `http://app.example.com` end that way too).
        Implementation::Hono => vec![
            SuffixMatch,
            UnescapedDot,
            AnySubdomainTrusted,
            InsecureOriginTrusted,
            PreflightAllowsAnyHeader,
        ],
        // re.match(r"https://app.example.com"): no end anchor, unescaped dots.
        Implementation::FlaskCors => vec![PrefixMatch, UnescapedDot, SpecialCharacters],
        // fullmatch(r"https://.*example\.com"): a bare suffix (`https://appxexample.com`
        // too), any subdomain.
        Implementation::Starlette => vec![SuffixMatch, UnescapedDot, AnySubdomainTrusted],
        // "~*https?://(.+\.)?example\.com" unanchored, no Vary.
        Implementation::NginxMap => vec![
            PrefixMatch,
            SpecialCharacters,
            AnySubdomainTrusted,
            InsecureOriginTrusted,
            MissingVaryOrigin,
        ],
        // $http_origin echoed with credentials (`null` too), no Vary.
        Implementation::NginxOneLiner => vec![
            ReflectedWithCredentials,
            NullOriginTrusted,
            MissingVaryOrigin,
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_finds_exactly_the_holes_of_third_party_servers() {
    let prober = Prober::new(Duration::from_secs(10), None).expect("prober");
    let mut mismatches = Vec::new();
    for implementation in Implementation::ALL {
        for config in [Config::Correct, Config::Broken] {
            let server = tokio::task::spawn_blocking(move || {
                ThirdPartyServer::start(implementation, config)
            })
            .await
            .expect("launcher");
            let report = audit_with(
                &prober,
                &server.url("/api"),
                &[TRUSTED_ORIGIN.to_owned()],
                Severity::High,
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", implementation.name()));
            let mut found: Vec<&str> = report.findings.iter().map(|f| f.class.code()).collect();
            found.sort_unstable();
            let mut want: Vec<&str> = match config {
                Config::Correct => Vec::new(),
                Config::Broken => expected(implementation).iter().map(|c| c.code()).collect(),
            };
            want.sort_unstable();
            println!(
                "{:16} {:8} {:3} requests, findings: {}",
                implementation.name(),
                format!("{config:?}"),
                report.probes_sent,
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    found.join(" ")
                }
            );
            if found != want {
                mismatches.push(format!(
                    "{} {config:?}: found {found:?}, expected {want:?}",
                    implementation.name()
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
