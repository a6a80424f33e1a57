//! The built-in demo: `examples/demo.toml`, embedded, and the curl commands
//! printed at start.

use std::net::SocketAddr;

/// `examples/demo.toml`, from its copy inside the package (`crates/crossgate/demo.toml`)
/// so that a packaged crate builds too; a test keeps the two identical.
pub const CONFIG: &str = include_str!("../../demo.toml");

/// What `serve` prints when running the demo on `addr`: three commands whose
/// answers show an allowed preflight, a denied preflight and a decorated
/// actual request.
pub fn instructions(addr: SocketAddr) -> String {
    format!(
        "crossgate demo: mock APIs on http://{addr} behind the CORS policy `web` of examples/demo.toml.
Try these in another terminal:

# 1. An allowed preflight: 204 with Access-Control-Allow-Origin, -Methods and -Headers
curl -i -X OPTIONS http://{addr}/api/items -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: content-type'

# 2. A denied preflight (origin not allowed): 403 without CORS headers, logged with its reason
curl -i -X OPTIONS http://{addr}/api/items -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: PUT'

# 3. An actual request, decorated: 200 with Access-Control-Allow-Origin and Access-Control-Expose-Headers
curl -i http://{addr}/api/items -H 'Origin: https://app.example.com'
"
    )
}
