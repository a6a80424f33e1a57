//! `access = "private"` routes and `[auth]` tokens, with Personium's
//! `Access-Control-Allow-Methods` table: public resources list their methods;
//! private ones list every gateway method without credentials and their own
//! with a valid token; bad tokens get 401 and missing privileges 403, both
//! readable by scripts.

use crate::support::config::Config;
use crate::support::{bearer_jwt, list, TestGateway, TestUpstream};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const READER: &str = "Bearer reader-token-0123456789";
const WRITER: &str = "Bearer writer-token-0123456789";
const ORIGIN: &str = "https://client.example";

async fn setup() -> (TestUpstream, TestGateway) {
    let upstream = TestUpstream::start().await;
    let up = upstream.url();
    let config = Config::server(&[])
        .auth(
            &[&format!("jwt_secret = \"{SECRET}\"")],
            &[
                ("reader-token-0123456789", &["read"]),
                ("writer-token-0123456789", &["write"]),
            ],
        )
        .policy(
            "all",
            &["*"],
            &[r#"methods = ["*"]"#, r#"request_headers = ["*"]"#],
        )
        .proxy("/public/", &up, "all", &[r#"methods = ["GET", "OPTIONS"]"#])
        .proxy(
            "/private/",
            &up,
            "all",
            &[
                r#"methods = ["GET", "PUT", "OPTIONS"]"#,
                r#"access = "private""#,
            ],
        )
        .render();
    (upstream, TestGateway::start(&config).await)
}

/// A preflight from [`ORIGIN`] asking for `method` and the `sample` header,
/// with `authorization` when there is one.
async fn preflight(
    gateway: &TestGateway,
    path: &str,
    method: &str,
    authorization: Option<&str>,
) -> crate::support::Reply {
    let mut headers = vec![
        ("origin", ORIGIN),
        ("access-control-request-method", method),
        ("access-control-request-headers", "sample"),
    ];
    if let Some(authorization) = authorization {
        headers.push(("authorization", authorization));
    }
    gateway.send("OPTIONS", path, &headers, b"").await
}

#[tokio::test]
async fn public_resource_preflight_lists_the_resource_methods() {
    let (upstream, gateway) = setup().await;
    let reply = preflight(&gateway, "/public/box", "GET", None).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        list(reply.header("access-control-allow-methods")),
        ["GET", "OPTIONS"]
    );
    assert_eq!(reply.header("access-control-allow-headers"), Some("sample"));
    let refused = preflight(&gateway, "/public/box", "PUT", None).await;
    assert_eq!(refused.status, 403, "PUT is not a method of this resource");
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn private_preflight_without_authorization_lists_every_gateway_method() {
    let (_upstream, gateway) = setup().await;
    let reply = preflight(&gateway, "/private/box", "PUT", None).await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        list(reply.header("access-control-allow-methods")),
        ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    );
}

#[tokio::test]
async fn private_preflight_with_a_valid_token_lists_the_resource_methods() {
    let (_upstream, gateway) = setup().await;
    let reply = preflight(&gateway, "/private/box", "PUT", Some(READER)).await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        list(reply.header("access-control-allow-methods")),
        ["GET", "PUT", "OPTIONS"]
    );
    let with_jwt = preflight(
        &gateway,
        "/private/box",
        "PUT",
        Some(&bearer_jwt(&["read"], SECRET)),
    )
    .await;
    assert_eq!(
        list(with_jwt.header("access-control-allow-methods")),
        ["GET", "PUT", "OPTIONS"]
    );
}

#[tokio::test]
async fn invalid_token_is_a_readable_401() {
    let (upstream, gateway) = setup().await;
    for authorization in ["Bearer not-a-known-token", "Basic dXNlcjpwYXNz"] {
        let reply = preflight(&gateway, "/private/box", "PUT", Some(authorization)).await;
        assert_eq!(reply.status, 401, "{authorization}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    }
    let forged = bearer_jwt(&["read", "write"], "a secret that is not the gateway's");
    let reply = gateway
        .get(
            "/private/box",
            &[("origin", ORIGIN), ("authorization", &forged)],
        )
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn token_without_the_privilege_is_a_readable_403() {
    let (upstream, gateway) = setup().await;
    let reply = preflight(&gateway, "/private/box", "PUT", Some(WRITER)).await;
    assert_eq!(reply.status, 403, "OPTIONS needs the read privilege");
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let reply = gateway
        .send(
            "PUT",
            "/private/box",
            &[("origin", ORIGIN), ("authorization", READER)],
            b"",
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn private_actual_requests_are_authorized_before_the_upstream() {
    let (upstream, gateway) = setup().await;
    let missing = gateway.get("/private/box", &[("origin", ORIGIN)]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("access-control-allow-origin"), Some("*"));
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_eq!(upstream.hits(), 0);

    let read = gateway
        .get(
            "/private/box",
            &[("origin", ORIGIN), ("authorization", READER)],
        )
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(
        upstream.last().headers["authorization"],
        READER,
        "the token is passed on"
    );
    let write = gateway
        .send("PUT", "/private/box", &[("authorization", WRITER)], b"")
        .await;
    assert_eq!(write.status, 200);
    let both = bearer_jwt(&["read", "write"], SECRET);
    let put = gateway
        .send("PUT", "/private/box", &[("authorization", &both)], b"")
        .await;
    assert_eq!(put.status, 200);
    assert_eq!(upstream.hits(), 3);

    let public = gateway.get("/public/box", &[("origin", ORIGIN)]).await;
    assert_eq!(public.status, 200, "public resources need no token");
}
