//! The tower layer in front of a real service.

use std::convert::Infallible;

use crossgate_cors::{CorsLayer, PolicyConfig};
use http::{Request, Response, StatusCode};
use tower::{service_fn, Layer, ServiceExt};

/// The one origin the layer allows.
const APP: &str = "https://app.example.com";

fn layer() -> CorsLayer {
    CorsLayer::new(
        PolicyConfig::builder()
            .origins([APP])
            .methods(["PUT"])
            .block_disallowed(true)
            .compile()
            .unwrap(),
    )
}

async fn handler(request: Request<String>) -> Result<Response<String>, Infallible> {
    let status = if request.uri().path() == "/fail" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let mut response = Response::new(format!("handled {}", request.method()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("vary", "Accept-Encoding".parse().unwrap());
    Ok(response)
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<String> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(String::new()).unwrap()
}

/// `request` through the layer in front of `handler`.
async fn through_layer(request: Request<String>) -> Response<String> {
    layer()
        .layer(service_fn(handler))
        .oneshot(request)
        .await
        .unwrap()
}

#[tokio::test]
async fn preflights_are_answered_without_the_handler() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&calls);
    let service = layer().layer(service_fn(move |request: Request<String>| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        handler(request)
    }));
    let response = service
        .oneshot(request(
            "OPTIONS",
            "/",
            &[("origin", APP), ("access-control-request-method", "PUT")],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()["access-control-allow-methods"], "PUT");
    assert!(response.body().is_empty());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn handler_errors_carry_cors_headers_and_vary_is_merged() {
    let response = through_layer(request("GET", "/fail", &[("origin", APP)])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
    assert_eq!(response.headers()["vary"], "Accept-Encoding, Origin");
}

#[tokio::test]
async fn plain_options_and_no_origin_reach_the_handler() {
    let response = through_layer(request("OPTIONS", "/", &[])).await;
    assert_eq!(response.body(), "handled OPTIONS");
    let response = through_layer(request("OPTIONS", "/", &[("origin", APP)])).await;
    assert_eq!(response.body(), "handled OPTIONS");
    assert_eq!(response.headers()["access-control-allow-origin"], APP);
}

#[tokio::test]
async fn blocked_origins_never_reach_the_handler() {
    let response = through_layer(request("POST", "/", &[("origin", "https://evil.example")])).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.body().is_empty());
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
