//! The engine matrix: what Chromium, Firefox and WebKit drop, rewrite or
//! accept differently, against a CORS server written here whose every answer
//! is set by the request's query (`ao` Allow-Origin, `ah` Allow-Headers, `am`
//! Allow-Methods, `ma` Max-Age, `ac` Allow-Credentials). Each row states its
//! outcome in every engine; `engine_table.rs` holds the real browsers to it and
//! `agreement.rs` holds `crossgate check --engine X` to what each one did.

use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use crossgate_cors::browser::Engine;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What a page sees, and how many preflights its browser sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub preflights: u32,
}

pub const ALLOWED: Outcome = Outcome {
    allowed: true,
    preflights: 0,
};
pub const ALLOWED_PREFLIGHTED: Outcome = Outcome {
    allowed: true,
    preflights: 1,
};
pub const BLOCKED: Outcome = Outcome {
    allowed: false,
    preflights: 0,
};
pub const BLOCKED_AT_PREFLIGHT: Outcome = Outcome {
    allowed: false,
    preflights: 1,
};

/// One row.
#[derive(Debug, Clone, Copy)]
pub struct EngineScenario {
    pub name: &'static str,
    pub method: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Option<&'static str>,
    pub credentials: bool,
    /// The server's answer, as query parameters; `{origin}` is the page's origin.
    pub server: &'static str,
    /// The same fetch again after this many milliseconds (preflight cache);
    /// `preflights` then counts both.
    pub repeat_ms: Option<u64>,
    /// The outcome in the standard and in every engine not in `differs`.
    pub expect: Outcome,
    /// Engines that depart from `expect`, observed in the versions their
    /// profiles name.
    pub differs: &'static [(Engine, Outcome)],
}

impl EngineScenario {
    pub fn expected(&self, engine: Engine) -> Outcome {
        self.differs
            .iter()
            .find(|(e, _)| *e == engine)
            .map_or(self.expect, |(_, o)| *o)
    }

    /// The URL the page fetches on the server at `port` of `localhost`.
    pub fn url(&self, port: u16, origin: &str, engine: Engine) -> String {
        format!(
            "http://localhost:{port}/r?id={}-{}&{}",
            engine.name(),
            self.name,
            self.server.replace("{origin}", origin)
        )
    }
}

const GET: EngineScenario = EngineScenario {
    name: "",
    method: "GET",
    headers: &[],
    body: None,
    credentials: false,
    server: "ao=*",
    repeat_ms: None,
    expect: ALLOWED,
    differs: &[],
};

const LONG_128: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const LONG_129: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BROWSERS_ALLOW_AUTH: &[(Engine, Outcome)] = &[
    (Engine::Chromium, ALLOWED_PREFLIGHTED),
    (Engine::Firefox, ALLOWED_PREFLIGHTED),
    (Engine::WebKit, ALLOWED_PREFLIGHTED),
];

pub const ENGINE_SCENARIOS: &[EngineScenario] = &[
    // User-Agent: Chromium drops it (crbug 571722); Fetch and the others preflight it.
    EngineScenario {
        name: "user_agent_strict_server",
        headers: &[("User-Agent", "probe-ua")],
        expect: BLOCKED_AT_PREFLIGHT,
        differs: &[(Engine::Chromium, ALLOWED)],
        ..GET
    },
    EngineScenario {
        name: "user_agent_allowed_by_name",
        headers: &[("User-Agent", "probe-ua")],
        server: "ao=*&ah=user-agent",
        expect: ALLOWED_PREFLIGHTED,
        differs: &[(Engine::Chromium, ALLOWED)],
        ..GET
    },
    // Authorization under `*`: never in Fetch, yes in all three browsers.
    EngineScenario {
        name: "authorization_under_wildcard",
        headers: &[("Authorization", "Bearer x")],
        server: "ao=*&ah=*",
        expect: BLOCKED_AT_PREFLIGHT,
        differs: BROWSERS_ALLOW_AUTH,
        ..GET
    },
    EngineScenario {
        name: "authorization_listed",
        headers: &[("Authorization", "Bearer x")],
        server: "ao=*&ah=authorization",
        expect: ALLOWED_PREFLIGHTED,
        ..GET
    },
    EngineScenario {
        name: "custom_header_under_wildcard",
        headers: &[("X-Custom", "1")],
        server: "ao=*&ah=*",
        expect: ALLOWED_PREFLIGHTED,
        ..GET
    },
    EngineScenario {
        name: "custom_header_wildcard_with_credentials",
        headers: &[("X-Custom", "1")],
        credentials: true,
        server: "ao={origin}&ac=true&ah=*",
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    // Range forms.
    EngineScenario {
        name: "range_lowercase",
        headers: &[("Range", "bytes=0-4")],
        ..GET
    },
    EngineScenario {
        name: "range_unit_capitalized",
        headers: &[("Range", "Bytes=0-4")],
        expect: ALLOWED,
        differs: &[
            (Engine::Chromium, BLOCKED_AT_PREFLIGHT),
            (Engine::Firefox, BLOCKED_AT_PREFLIGHT),
        ],
        ..GET
    },
    EngineScenario {
        name: "range_unit_uppercase",
        headers: &[("Range", "BYTES=0-4")],
        expect: ALLOWED,
        differs: &[
            (Engine::Chromium, BLOCKED_AT_PREFLIGHT),
            (Engine::Firefox, BLOCKED_AT_PREFLIGHT),
        ],
        ..GET
    },
    EngineScenario {
        name: "range_suffix",
        headers: &[("Range", "bytes=-5")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "range_open_end",
        headers: &[("Range", "bytes=0-")],
        ..GET
    },
    EngineScenario {
        name: "range_spaces",
        headers: &[("Range", "bytes = 0-4")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "range_two_ranges",
        headers: &[("Range", "bytes=0-4,6-7")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "range_reversed",
        headers: &[("Range", "bytes=4-0")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "range_other_unit",
        headers: &[("Range", "items=0-4")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    // Content-Type parsing.
    EngineScenario {
        name: "content_type_quoted_charset",
        method: "POST",
        body: Some("x"),
        headers: &[("Content-Type", "text/plain; charset=\"utf-8\"")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "content_type_uppercase",
        method: "POST",
        body: Some("x"),
        headers: &[("Content-Type", "TEXT/PLAIN")],
        ..GET
    },
    EngineScenario {
        name: "content_type_trailing_semicolon",
        method: "POST",
        body: Some("x"),
        headers: &[("Content-Type", "text/plain;")],
        ..GET
    },
    EngineScenario {
        name: "content_type_two_types",
        method: "POST",
        body: Some("x"),
        headers: &[("Content-Type", "text/plain, application/json")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "content_type_space_in_type",
        method: "POST",
        body: Some("x"),
        headers: &[("Content-Type", "text /plain")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    // The 128-byte limit of safelisted values.
    EngineScenario {
        name: "accept_128_bytes",
        headers: &[("Accept", LONG_128)],
        ..GET
    },
    EngineScenario {
        name: "accept_129_bytes",
        headers: &[("Accept", LONG_129)],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "accept_language_128_bytes",
        headers: &[("Accept-Language", LONG_128)],
        ..GET
    },
    EngineScenario {
        name: "accept_language_129_bytes",
        headers: &[("Accept-Language", LONG_129)],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "content_language_129_bytes",
        headers: &[("Content-Language", LONG_129)],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "accept_unsafe_byte",
        headers: &[("Accept", "a@b")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    // Method case: only the six Fetch normalizes are upper-cased.
    EngineScenario {
        name: "method_patch_lowercase_vs_upper_list",
        method: "patch",
        server: "ao=*&am=PATCH",
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "method_patch_lowercase_listed",
        method: "patch",
        server: "ao=*&am=patch",
        expect: ALLOWED_PREFLIGHTED,
        ..GET
    },
    EngineScenario {
        name: "method_delete_normalized",
        method: "delete",
        server: "ao=*&am=DELETE",
        expect: ALLOWED_PREFLIGHTED,
        ..GET
    },
    EngineScenario {
        name: "method_put_vs_lowercase_list",
        method: "put",
        server: "ao=*&am=put",
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "method_wildcard",
        method: "PUT",
        server: "ao=*&am=*",
        expect: ALLOWED_PREFLIGHTED,
        ..GET
    },
    EngineScenario {
        name: "method_wildcard_with_credentials",
        method: "PUT",
        credentials: true,
        server: "ao={origin}&ac=true&am=*",
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    // Forbidden headers: dropped silently, so never a preflight.
    EngineScenario {
        name: "forbidden_cookie",
        headers: &[("Cookie", "a=b")],
        ..GET
    },
    EngineScenario {
        name: "forbidden_referer",
        headers: &[("Referer", "http://x.example/")],
        ..GET
    },
    EngineScenario {
        name: "forbidden_sec_prefix",
        headers: &[("Sec-Foo", "1")],
        ..GET
    },
    EngineScenario {
        name: "forbidden_proxy_prefix",
        headers: &[("Proxy-Foo", "1")],
        ..GET
    },
    EngineScenario {
        name: "forbidden_dnt",
        headers: &[("DNT", "1")],
        ..GET
    },
    EngineScenario {
        name: "forbidden_origin",
        headers: &[("Origin", "http://evil.example")],
        ..GET
    },
    EngineScenario {
        name: "forbidden_request_method",
        headers: &[("Access-Control-Request-Method", "PUT")],
        ..GET
    },
    EngineScenario {
        name: "method_override_trace_dropped",
        headers: &[("X-HTTP-Method-Override", "TRACE")],
        ..GET
    },
    EngineScenario {
        name: "method_override_get_preflighted",
        headers: &[("X-HTTP-Method-Override", "GET")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "private_network_request_header",
        headers: &[("Access-Control-Request-Private-Network", "true")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "allow_response_header_as_request_header",
        headers: &[("Access-Control-Allow-Origin", "*")],
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    // The preflight cache (the second fetch 300 ms after the first).
    EngineScenario {
        name: "max_age_absent_cached",
        method: "PUT",
        server: "ao=*&am=PUT",
        repeat_ms: Some(300),
        expect: ALLOWED_PREFLIGHTED,
        ..GET
    },
    EngineScenario {
        name: "max_age_zero_not_cached",
        method: "PUT",
        server: "ao=*&am=PUT&ma=0",
        repeat_ms: Some(300),
        expect: Outcome {
            allowed: true,
            preflights: 2,
        },
        ..GET
    },
    EngineScenario {
        name: "max_age_unreadable_cached",
        method: "PUT",
        server: "ao=*&am=PUT&ma=10s",
        repeat_ms: Some(300),
        expect: ALLOWED_PREFLIGHTED,
        differs: &[(
            Engine::Firefox,
            Outcome {
                allowed: true,
                preflights: 2,
            },
        )],
        ..GET
    },
    EngineScenario {
        name: "max_age_negative_cached",
        method: "PUT",
        server: "ao=*&am=PUT&ma=-1",
        repeat_ms: Some(300),
        expect: ALLOWED_PREFLIGHTED,
        differs: &[
            (
                Engine::Chromium,
                Outcome {
                    allowed: true,
                    preflights: 2,
                },
            ),
            (
                Engine::Firefox,
                Outcome {
                    allowed: true,
                    preflights: 2,
                },
            ),
            (
                Engine::WebKit,
                Outcome {
                    allowed: true,
                    preflights: 2,
                },
            ),
        ],
        ..GET
    },
    // Malformed answers.
    EngineScenario {
        name: "allow_origin_twice",
        server: "ao={origin},%20{origin}",
        expect: BLOCKED,
        ..GET
    },
    EngineScenario {
        name: "allow_headers_not_a_list",
        headers: &[("X-Custom", "1")],
        server: "ao=*&ah=x-custom,%20(bad)",
        expect: BLOCKED_AT_PREFLIGHT,
        ..GET
    },
    EngineScenario {
        name: "allow_credentials_capitalized",
        credentials: true,
        server: "ao={origin}&ac=True",
        expect: BLOCKED,
        ..GET
    },
];

/// What the server saw: `(id, method)` per request.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    /// Preflights seen for the row `name` as fetched by `engine`.
    pub fn preflights(&self, engine: Engine, name: &str) -> u32 {
        let id = format!("{}-{name}", engine.name());
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(i, m)| *i == id && m == "OPTIONS")
            .count() as u32
    }
}

/// Starts the CORS server on one port of both 127.0.0.1 and ::1, since
/// `localhost` is ::1 first in Chromium and WebKit and 127.0.0.1 in Firefox.
pub async fn start_cors_server() -> (u16, Seen) {
    let seen = Seen::default();
    for _ in 0..20 {
        let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1: {e}"));
        let port = v4
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let Ok(v6) = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await else {
            continue;
        };
        serve(v4, seen.clone());
        serve(v6, seen.clone());
        return (port, seen);
    }
    panic!("no port free on both 127.0.0.1 and ::1 after 20 tries");
}

fn serve(listener: TcpListener, seen: Seen) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let answer = answer(&request, &seen);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn answer(request: &Request<Incoming>, seen: &Seen) -> Response<Full<Bytes>> {
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned();
            (k.to_owned(), v)
        })
        .collect();
    let get = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let preflight = request.method() == http::Method::OPTIONS;
    seen.0.lock().unwrap_or_else(|p| p.into_inner()).push((
        get("id").unwrap_or("").to_owned(),
        request.method().to_string(),
    ));
    let mut response = Response::new(Full::new(if preflight {
        Bytes::new()
    } else {
        Bytes::from_static(b"ok")
    }));
    *response.status_mut() = if preflight {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    };
    let mut names = vec![
        ("ao", "access-control-allow-origin"),
        ("ac", "access-control-allow-credentials"),
    ];
    if preflight {
        names.extend([
            ("ah", "access-control-allow-headers"),
            ("am", "access-control-allow-methods"),
            ("ma", "access-control-max-age"),
        ]);
    }
    for (key, name) in names {
        if let Some(value) = get(key).and_then(|v| http::HeaderValue::from_str(v).ok()) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
