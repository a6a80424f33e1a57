//! Every `*.test` host is this machine. Firefox and WebKit have no switch
//! that maps a whole domain to an address, so every engine sends its
//! non-loopback requests through this loopback HTTP proxy, which forwards
//! `*.test` to the same port on 127.0.0.1 and refuses every other host, so
//! nothing ever leaves the machine.
//!
//! Only page loads travel this way: the scripts' requests go to `localhost`,
//! which neither browser proxies, so what the gateway sees is unchanged.

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::servers;

/// Starts the proxy and returns its port on 127.0.0.1.
pub async fn start_proxy() -> u16 {
    let (listener, port) = servers::bind().await;
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build_http();
    servers::serve(listener, move |request| {
        let client = client.clone();
        async move { forward(&client, request).await }
    });
    port
}

async fn forward(
    client: &Client<HttpConnector, Incoming>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let uri = request.uri().clone();
    let host = uri.host().unwrap_or_default().to_ascii_lowercase();
    if !(host == "test" || host.ends_with(".test")) {
        // The browsers' own background traffic: refused quietly.
        return refuse(StatusCode::FORBIDDEN, String::new());
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let port = uri.port_u16().unwrap_or(80);
    let target: Uri = match format!("http://127.0.0.1:{port}{path}").parse() {
        Ok(target) => target,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("{uri}: {e}")),
    };
    let (mut parts, body) = request.into_parts();
    parts.uri = target;
    parts.headers.remove("proxy-connection");
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            match body.collect().await {
                Ok(body) => {
                    parts.headers.remove(http::header::TRANSFER_ENCODING);
                    Response::from_parts(parts, Full::new(body.to_bytes()))
                }
                Err(e) => refuse(
                    StatusCode::BAD_GATEWAY,
                    format!("{uri}: body broke off: {e}"),
                ),
            }
        }
        Err(e) => refuse(StatusCode::BAD_GATEWAY, format!("{uri}: {e}")),
    }
}

fn refuse(status: StatusCode, why: String) -> Response<Full<Bytes>> {
    if !why.is_empty() {
        eprintln!("browser suite *.test proxy: {why}");
    }
    let mut response = Response::new(Full::new(Bytes::from(why)));
    *response.status_mut() = status;
    response
}
