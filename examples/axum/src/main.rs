//! An axum API whose CORS is handled by crossgate-cors.
//!
//! Run it with `cargo run -p crossgate-example-axum`, then try a preflight:
//!
//! ```text
//! curl -i -X OPTIONS http://127.0.0.1:3000/items \
//!   -H 'Origin: https://app.example.com' \
//!   -H 'Access-Control-Request-Method: PUT' \
//!   -H 'Access-Control-Request-Headers: content-type'
//! ```

use axum::routing::get;
use axum::{Json, Router};
use crossgate_cors::{CorsLayer, PolicyConfig};

/// The application: one resource, with the CORS policy in front of every route.
fn app() -> Result<Router, crossgate_cors::ConfigErrors> {
    let policy = PolicyConfig::builder()
        .origins(["https://app.example.com", "http://localhost:*"])
        .methods(["PUT", "DELETE"])
        .request_headers(["content-type"])
        .expose_headers(["x-request-id"])
        .credentials(true)
        .max_age(7200)
        .compile()?;
    Ok(Router::new()
        .route("/items", get(list).put(replace))
        .layer(CorsLayer::new(policy)))
}

async fn list() -> Json<serde_json::Value> {
    Json(serde_json::json!(["apple", "pear"]))
}

async fn replace(Json(items): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(items)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = app()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_router_answers_preflights_and_decorates_responses() {
        let preflight = Request::options("/items")
            .header("origin", "http://localhost:5173")
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .unwrap();
        let response = app().unwrap().oneshot(preflight).await.unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "http://localhost:5173"
        );
        assert_eq!(
            response.headers()["access-control-allow-methods"],
            "PUT, DELETE"
        );

        let get = Request::get("/items")
            .header("origin", "https://app.example.com")
            .body(Body::empty())
            .unwrap();
        let response = app().unwrap().oneshot(get).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["access-control-allow-credentials"],
            "true"
        );
        assert_eq!(response.headers()["vary"], "Origin");
    }
}
