//! Host routing and prefix rewrites over real sockets: the host class
//! decides before the prefix length (exact, then wildcards from the longest,
//! then host-less), the host is read from `Host` or `:authority` in one
//! normal form, an unusable host is refused, and `strip_prefix` /
//! `rewrite_prefix` rewrite the normalized path the upstream receives.

use std::net::SocketAddr;

use http::StatusCode;

use crate::support::{
    examples_dir, raw_exchange, send, send_h2c_uri, Reply, TestGateway, TestUpstream,
};

const APP: &str = "https://app.example";

/// A mock route answering `body`, on `host` (a TOML value) or every host.
fn mock_route(host: Option<&str>, path: &str, body: &str) -> String {
    let host = host.map_or_else(String::new, |host| format!("host = {host}\n"));
    format!("[[routes]]\n{host}path = {path:?}\nmock = {{ status = 200, body = {body:?} }}\n")
}

fn config(routes: &[String]) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[policies.web]\norigins = [{APP:?}]\n\n{}",
        routes.concat()
    )
}

async fn body_for(addr: SocketAddr, host: &str, path: &str) -> String {
    let reply = send(addr, "GET", path, &[("host", host)], b"").await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{host}{path}: {}",
        reply.text()
    );
    reply.text()
}

fn precedence_config() -> String {
    config(&[
        mock_route(None, "/", "any"),
        mock_route(Some(r#""*.example.com""#), "/", "wildcard"),
        mock_route(Some(r#""*.eu.example.com""#), "/", "eu-wildcard"),
        mock_route(Some(r#""api.example.com""#), "/", "exact"),
    ])
}

#[tokio::test]
async fn an_exact_host_beats_a_wildcard_which_beats_a_host_less_route() {
    let gateway = TestGateway::start(&precedence_config()).await;
    for (host, expected) in [
        ("api.example.com", "exact"),
        ("www.example.com", "wildcard"),
        // A wildcard covers subdomains at any depth, the longest suffix first…
        ("a.b.example.com", "wildcard"),
        ("x.eu.example.com", "eu-wildcard"),
        ("a.b.eu.example.com", "eu-wildcard"),
        // …but not its own base name, nor a name that only ends like it.
        ("example.com", "any"),
        ("eu.example.com", "wildcard"),
        ("badexample.com", "any"),
        ("other.test", "any"),
    ] {
        assert_eq!(body_for(gateway.addr, host, "/x").await, expected, "{host}");
    }
}

#[tokio::test]
async fn within_a_host_the_longest_prefix_wins_and_other_paths_fall_through() {
    let gateway = TestGateway::start(&config(&[
        mock_route(Some(r#""api.example.com""#), "/api/", "exact-api"),
        mock_route(Some(r#""api.example.com""#), "/api/admin/", "exact-admin"),
        mock_route(Some(r#""*.example.com""#), "/api/admin/", "wild-admin"),
        mock_route(Some(r#""*.example.com""#), "/static/", "wild-static"),
        mock_route(None, "/api/admin/users/", "any-users"),
        mock_route(None, "/", "any"),
    ]))
    .await;
    for (host, path, expected) in [
        ("api.example.com", "/api/admin/users/1", "exact-admin"),
        // The host class decides before the prefix length: the exact host's
        // `/api/` beats the wildcard's longer `/api/admin/`, and the exact
        // host's `/api/admin/` beats the host-less `/api/admin/users/`.
        ("api.example.com", "/api/items", "exact-api"),
        // A path none of the exact host's routes matches goes to the next class.
        ("api.example.com", "/static/app.js", "wild-static"),
        ("api.example.com", "/other", "any"),
        ("www.example.com", "/api/admin/x", "wild-admin"),
        ("www.example.com", "/api/items", "any"),
        ("www.example.com", "/api/admin/users/1", "wild-admin"),
        ("other.test", "/api/admin/users/1", "any-users"),
    ] {
        assert_eq!(
            body_for(gateway.addr, host, path).await,
            expected,
            "{host}{path}"
        );
    }
}

#[tokio::test]
async fn a_route_may_list_several_hosts() {
    let gateway = TestGateway::start(&config(&[
        mock_route(Some(r#"["a.test", "*.b.test"]"#), "/", "listed"),
        mock_route(None, "/", "any"),
    ]))
    .await;
    assert_eq!(body_for(gateway.addr, "a.test", "/").await, "listed");
    assert_eq!(body_for(gateway.addr, "x.b.test", "/").await, "listed");
    assert_eq!(body_for(gateway.addr, "b.test", "/").await, "any");
}

#[tokio::test]
async fn the_host_is_matched_without_case_port_or_trailing_dot() {
    let gateway = TestGateway::start(&precedence_config()).await;
    for host in [
        "API.Example.COM",
        "api.example.com:8080",
        "api.example.com.",
        "Api.Example.Com.:443",
    ] {
        assert_eq!(body_for(gateway.addr, host, "/").await, "exact", "{host}");
    }
    assert_eq!(
        body_for(gateway.addr, "WWW.EXAMPLE.COM:1", "/").await,
        "wildcard"
    );
}

#[tokio::test]
async fn ipv6_literals_match_in_their_canonical_form() {
    let gateway = TestGateway::start(&config(&[
        mock_route(Some(r#""[::1]""#), "/", "loopback-v6"),
        mock_route(None, "/", "any"),
    ]))
    .await;
    for host in ["[::1]", "[::1]:8080", "[0:0:0:0:0:0:0:1]"] {
        assert_eq!(
            body_for(gateway.addr, host, "/").await,
            "loopback-v6",
            "{host}"
        );
    }
    assert_eq!(body_for(gateway.addr, "[::2]", "/").await, "any");
}

#[tokio::test]
async fn http2_routes_on_the_authority() {
    let gateway = TestGateway::start(&precedence_config()).await;
    for (uri, expected) in [
        ("http://API.example.com:9/x", "exact"),
        ("http://www.example.com/x", "wildcard"),
        ("http://other.test/x", "any"),
    ] {
        let reply = send_h2c_uri(gateway.addr, "GET", uri, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.text(), expected, "{uri}");
    }
}

#[tokio::test]
async fn a_request_without_a_host_matches_only_host_less_routes() {
    let gateway = TestGateway::start(&precedence_config()).await;
    let http10 = raw_exchange(gateway.addr, b"GET /x HTTP/1.0\r\n\r\n").await;
    assert!(http10.starts_with("HTTP/1.0 200"), "{http10}");
    assert!(http10.ends_with("any"), "{http10}");
    let empty = raw_exchange(
        gateway.addr,
        "GET /x HTTP/1.1\r\nhost:\r\nconnection: close\r\n\r\n".as_bytes(),
    )
    .await;
    assert!(empty.ends_with("any"), "{empty}");

    let hosts_only = TestGateway::start(&config(&[mock_route(
        Some(r#""api.example.com""#),
        "/",
        "exact",
    )]))
    .await;
    let http10 = raw_exchange(hosts_only.addr, b"GET /x HTTP/1.0\r\n\r\n").await;
    assert!(http10.starts_with("HTTP/1.0 404"), "{http10}");
}

#[tokio::test]
async fn an_absolute_form_target_routes_on_its_authority_and_must_agree_with_host() {
    let gateway = TestGateway::start(&precedence_config()).await;
    let alone = raw_exchange(gateway.addr, b"GET http://api.example.com/x HTTP/1.1\r\nhost: API.example.com:80\r\nconnection: close\r\n\r\n").await;
    assert!(alone.starts_with("HTTP/1.1 200"), "{alone}");
    assert!(alone.ends_with("exact"), "{alone}");
    // Routing on one and the upstream reading the other would let a request
    // authorized for one host be served as another's.
    let mismatch = raw_exchange(gateway.addr, b"GET http://www.example.com/x HTTP/1.1\r\nhost: api.example.com\r\nconnection: close\r\n\r\n").await;
    assert!(mismatch.starts_with("HTTP/1.1 400"), "{mismatch}");
    assert!(
        mismatch.contains(r#""error":"host_mismatch""#),
        "{mismatch}"
    );
}

#[tokio::test]
async fn an_unusable_host_is_refused_with_cors_headers() {
    let gateway = TestGateway::start(&precedence_config()).await;
    for host in [
        "a b.example.com",
        "api.example.com/x",
        "a..example.com",
        "api.example.com:x",
    ] {
        let reply = gateway.get("/x", &[("host", host), ("origin", APP)]).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{host}: {}",
            reply.text()
        );
        assert!(reply.text().contains(r#""error":"bad_host""#), "{host}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(APP),
            "{host}"
        );
    }
    let repeated = raw_exchange(gateway.addr, b"GET /x HTTP/1.1\r\nhost: www.example.com\r\nhost: api.example.com\r\nconnection: close\r\n\r\n").await;
    assert!(repeated.starts_with("HTTP/1.1 400"), "{repeated}");
    assert!(repeated.contains(r#""error":"bad_host""#), "{repeated}");
}

#[tokio::test]
async fn routes_on_one_path_have_their_own_metrics_label() {
    let gateway = TestGateway::start(&config(&[
        mock_route(Some(r#""api.example.com""#), "/api/", "exact"),
        mock_route(Some(r#"["*.example.com", "b.test"]"#), "/api/", "listed"),
        mock_route(None, "/api/", "any"),
    ]))
    .await;
    body_for(gateway.addr, "api.example.com", "/api/x").await;
    body_for(gateway.addr, "b.test", "/api/x").await;
    body_for(gateway.addr, "other.test", "/api/x").await;
    body_for(gateway.addr, "other.test", "/api/y").await;
    let text = gateway.metrics.render();
    for line in [
        r#"crossgate_requests_total{route="api.example.com/api/",code="200"} 1"#,
        r#"crossgate_requests_total{route="*.example.com,b.test/api/",code="200"} 1"#,
        r#"crossgate_requests_total{route="/api/",code="200"} 2"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

fn upstream_route(extra: &str, path: &str, upstream: &str) -> String {
    format!("[[routes]]\npath = {path:?}\nupstream = {upstream:?}\n{extra}\n")
}

#[tokio::test]
async fn strip_prefix_forwards_the_rest_of_the_path_and_the_query() {
    let upstream = TestUpstream::start().await;
    let based = format!("{}/base", upstream.url());
    let gateway = TestGateway::start(&config(&[
        upstream_route("strip_prefix = true", "/api/", &upstream.url()),
        upstream_route("strip_prefix = true", "/svc", &based),
        upstream_route(
            "strip_prefix = true\nhost = \"api.example.com\"",
            "/hosted/",
            &upstream.url(),
        ),
    ]))
    .await;
    for (host, target, expected) in [
        (
            "gateway.test",
            "/api/items/1?x=1&p=%2F",
            "/items/1?x=1&p=%2F",
        ),
        ("gateway.test", "/api/", "/"),
        ("gateway.test", "/api/?q", "/?q"),
        // The upstream's base path goes before what is left of the path.
        ("gateway.test", "/svc", "/base/"),
        ("gateway.test", "/svc/items?x", "/base/items?x"),
        ("api.example.com", "/hosted/x", "/x"),
    ] {
        let reply = gateway.get(target, &[("host", host)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{target}: {}", reply.text());
        assert_eq!(upstream.last().uri, expected, "{target}");
    }
}

#[tokio::test]
async fn rewrite_prefix_replaces_the_prefix_of_the_normalized_path() {
    let upstream = TestUpstream::start().await;
    let gateway = TestGateway::start(&config(&[
        upstream_route("rewrite_prefix = \"/v2/\"", "/old/", &upstream.url()),
        upstream_route("rewrite_prefix = \"/v2\"", "/bare", &upstream.url()),
        upstream_route("", "/", &upstream.url()),
    ]))
    .await;
    for (target, expected) in [
        ("/old/items?x=1", "/v2/items?x=1"),
        ("/old/", "/v2/"),
        ("/bare", "/v2"),
        ("/bare/items", "/v2/items"),
        // Rewritten after normalization: what the upstream receives is the
        // normal form with the new prefix, never the raw spelling.
        ("/old/%61dmin/users", "/v2/admin/users"),
        ("/%6Fld/x", "/v2/x"),
        ("/old//a///b", "/v2/a/b"),
        ("/old/caf%c3%a9", "/v2/caf%C3%A9"),
        ("/old/a%3Ab", "/v2/a:b"),
        // The query string is forwarded as received, encoded characters and all.
        ("/old/q?path=%2F..%2F&x=%61", "/v2/q?path=%2F..%2F&x=%61"),
        // `/oldx` is not under `/old/`: the catch-all forwards it unchanged.
        ("/oldx", "/oldx"),
    ] {
        let reply = gateway.get(target, &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{target}: {}", reply.text());
        assert_eq!(upstream.last().uri, expected, "{target}");
    }
    let hits = upstream.hits();
    for (target, code) in [
        ("/old/a%2Fb", "encoded_slash"),
        ("/old/%2e%2e/x", "dot_segments"),
        ("/old/a;b", "path_parameters"),
        ("/old/%2561", "double_encoding"),
    ] {
        let reply = gateway.get(target, &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{target}");
        assert!(reply.text().contains(code), "{target}: {}", reply.text());
    }
    assert_eq!(
        upstream.hits(),
        hits,
        "a refused path never reaches the upstream"
    );
}

fn compile(routes: &str) -> Result<crossgate::CompiledConfig, String> {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[policies.web]\norigins = [{APP:?}]\n{routes}"
    );
    crate::support::config::compile(&text)
}

#[test]
fn invalid_hosts_and_rewrites_are_all_reported_with_their_key_and_fix() {
    let up = "upstream = \"http://127.0.0.1:9\"";
    let routes = [
        format!("[[routes]]\npath = \"/a/\"\nhost = \"\"\n{up}"),
        format!("[[routes]]\npath = \"/b/\"\nhost = \"*\"\n{up}"),
        format!("[[routes]]\npath = \"/c/\"\nhost = \"api.*.example.com\"\n{up}"),
        format!("[[routes]]\npath = \"/d/\"\nhost = \"api.example.com:8443\"\n{up}"),
        format!("[[routes]]\npath = \"/e/\"\nhost = [\"ok.test\", \"b\u{fc}cher.example\"]\n{up}"),
        format!("[[routes]]\npath = \"/f/\"\nhost = []\n{up}"),
        format!("[[routes]]\npath = \"/g/\"\nstrip_prefix = true\nrewrite_prefix = \"/v2/\"\n{up}"),
        "[[routes]]\npath = \"/h/\"\nrewrite_prefix = \"/v2/\"\nmock = { status = 200 }".into(),
        format!("[[routes]]\npath = \"/i/\"\nrewrite_prefix = \"v2/\"\n{up}"),
        format!("[[routes]]\npath = \"/j/\"\nrewrite_prefix = \"/v2/%61/\"\n{up}"),
        format!(
            "[[routes]]\npath = \"/k/\"\nstrip_prefix = true\npath_normalization = \"off\"\n{up}"
        ),
        format!("[[routes]]\npath = \"/l/\"\nhost = 5\n{up}"),
        format!("[[routes]]\npath = \"/m/\"\nrewrite_prefix = \"/v2/%2F/\"\n{up}"),
    ];
    let problems = compile(&routes.join("\n")).expect_err("invalid");
    for (key, expected) in [
        ("routes[0].host", "the host is empty"),
        (
            "routes[1].host",
            "a wildcard is allowed only as a whole first label",
        ),
        (
            "routes[2].host",
            "a wildcard is allowed only as a whole first label",
        ),
        (
            "routes[3].host",
            r#"remove the port: hosts are matched without it (write "api.example.com")"#,
        ),
        ("routes[4].host[1]", "punycode form (xn--...)"),
        ("routes[5].host", "an empty host list matches no request"),
        (
            "routes[6].rewrite_prefix",
            "keep one: `strip_prefix = true` is `rewrite_prefix = \"/\"`",
        ),
        ("routes[7].rewrite_prefix", "a mock route forwards nothing"),
        ("routes[8].rewrite_prefix", "start it with `/`"),
        ("routes[9].rewrite_prefix", r#"write "/v2/a/""#),
        (
            "routes[10].strip_prefix",
            "remove path_normalization = \"off\", or the rewrite",
        ),
        (
            "routes[11].host",
            "a host such as \"api.example.com\" or a list of hosts",
        ),
        ("routes[12].rewrite_prefix", "encoded /"),
    ] {
        let line = problems
            .lines()
            .position(|line| line.contains(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no problem at {key} in\n{problems}"));
        let text: String = problems.lines().skip(line).take(2).collect();
        assert!(
            text.contains(expected),
            "{key}: expected {expected:?} in {text}"
        );
    }
    assert!(
        problems.ends_with(&format!("\n{} problems found", routes.len())),
        "{problems}"
    );
}

#[test]
fn a_host_and_path_served_twice_can_never_match_and_is_refused() {
    let route = |host: &str, path: &str| {
        format!("[[routes]]\npath = {path:?}\n{host}\nupstream = \"http://127.0.0.1:9\"\n")
    };
    // The same path on different hosts, and on a host and no host, is fine.
    let fine = compile(
        &[
            route("host = \"a.test\"", "/api/"),
            route("host = \"*.a.test\"", "/api/"),
            route("host = [\"b.test\", \"c.test\"]", "/api/"),
            route("", "/api/"),
        ]
        .concat(),
    );
    assert!(fine.is_ok(), "{}", fine.err().unwrap_or_default());
    // Spelled differently, but one host after normalization.
    let twice = compile(
        &[
            route("host = \"A.test\"", "/api/"),
            route("host = [\"x.test\", \"a.test.\"]", "/api/"),
            route("host = \"*.X.test\"", "/"),
            route("host = \"*.x.test\"", "/"),
            route("", "/v1/"),
            route("", "/v1/"),
        ]
        .concat(),
    )
    .expect_err("duplicates");
    for problem in [
        "routes[1].host: another route already serves a.test with the path \"/api/\"",
        "routes[3].host: another route already serves *.x.test with the path \"/\"",
        "routes[5].path: another route already has the path \"/v1/\"",
    ] {
        assert!(twice.contains(problem), "{twice}");
    }
    assert!(twice.ends_with("\n3 problems found"), "{twice}");
}

#[test]
fn a_host_listed_twice_in_one_route_is_a_warning() {
    let config = compile(
        "[[routes]]\npath = \"/\"\nhost = [\"a.test\", \"A.TEST\"]\nupstream = \"http://127.0.0.1:9\"\n",
    )
    .expect("valid");
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("routes[0].host[1]: a.test is listed twice")),
        "{warnings:?}"
    );
}

#[test]
fn a_catch_all_on_one_host_still_leaves_other_hosts_to_the_fallback_policy() {
    let two_policies = "[policies.other]\norigins = [\"https://other.example\"]\n";
    let warned = |host: &str| {
        let config = compile(&format!(
            "{two_policies}[[routes]]\npath = \"/\"\n{host}\nmock = {{ status = 200 }}\n"
        ))
        .expect("valid");
        config
            .warnings
            .iter()
            .any(|w| w.key == "server.fallback_policy")
    };
    assert!(!warned(""), "a host-less `/` routes every request");
    assert!(
        warned("host = \"a.test\""),
        "other hosts get 404 without CORS headers"
    );
}

/// A GET of `path` on `host` from `origin`.
async fn get_from(gateway: &TestGateway, host: &str, path: &str, origin: &str) -> Reply {
    gateway
        .get(path, &[("host", host), ("origin", origin)])
        .await
}

/// Asserts `reply` is a 200 that `origin` may read.
fn assert_shared_with(reply: &Reply, origin: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some(origin));
}

/// `examples/multi-host.toml` as an operator would run it: each host reaches
/// its own pool, the partner rewrite reaches the upstream, a status mock
/// answers on two names, and any other host gets the catch-all 404.
#[tokio::test]
async fn the_multi_host_example_routes_each_host_to_its_own_pool() {
    let shop = [
        TestUpstream::start().await,
        TestUpstream::start().await,
        TestUpstream::start().await,
    ];
    let partners = [TestUpstream::start().await, TestUpstream::start().await];
    let mut text = std::fs::read_to_string(examples_dir().join("multi-host.toml"))
        .expect("read examples/multi-host.toml");
    let documented = [
        ("http://10.0.1.11:3000", &shop[0]),
        ("http://10.0.1.12:3000", &shop[1]),
        ("http://10.0.1.13:3000", &shop[2]),
        ("http://10.0.2.21:3000", &partners[0]),
        ("http://10.0.2.22:3000", &partners[1]),
    ];
    for (documented, upstream) in documented {
        assert!(text.contains(documented), "the example names {documented}");
        text = text.replace(documented, &upstream.url());
    }
    let text = text
        .replace("\"127.0.0.1:8080\"", "\"127.0.0.1:0\"")
        .replace("admin = \"127.0.0.1:9090\"\n", "");
    let gateway = TestGateway::start(&text).await;

    let api_calls = |upstream: &TestUpstream| {
        let seen = upstream.seen.lock().expect("seen");
        seen.iter().filter(|s| s.uri != "/healthz").count()
    };
    let shop_origin = "https://shop.example.com";
    for _ in 0..6 {
        let reply = get_from(&gateway, "API.shop.example.com:443", "/cart", shop_origin).await;
        assert_shared_with(&reply, shop_origin);
    }
    let spread: Vec<usize> = shop.iter().map(api_calls).collect();
    assert_eq!(
        spread,
        [2, 2, 2],
        "round robin over the shop's three targets"
    );
    assert!(partners.iter().all(|p| api_calls(p) == 0));

    let partner_origin = "https://acme.partners.example.com";
    let partners_host = "eu.partners.example.com";
    let reply = get_from(&gateway, partners_host, "/v1/orders?page=2", partner_origin).await;
    assert_shared_with(&reply, partner_origin);
    let forwarded: Vec<String> = partners
        .iter()
        .flat_map(|p| p.seen.lock().expect("seen").clone())
        .map(|seen| seen.uri)
        .collect();
    assert_eq!(forwarded, ["/partner-api/v1/orders?page=2"]);

    // The shop's origin is not a partner's: the partner API does not share with it.
    let reply = get_from(&gateway, partners_host, "/v1/orders", shop_origin).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);

    for host in ["status.example.com", "status.shop.example.com."] {
        assert_eq!(
            body_for(gateway.addr, host, "/").await,
            "all systems normal\n"
        );
    }
    for host in ["shop.example.com", "partners.example.com", "127.0.0.1"] {
        let reply = gateway.get("/v1/orders", &[("host", host)]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{host}");
        assert_eq!(reply.text(), "unknown host\n", "{host}");
    }
    let total: usize = shop.iter().chain(&partners).map(api_calls).sum();
    assert_eq!(total, 8, "the 404s reached no upstream");
}
