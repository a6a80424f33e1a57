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
use crossgate_testkit::scenarios::expected_in;
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
        expected_in(engine, self.expect, self.differs)
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
/// Chromium and Firefox preflight a `Range` unit that is not lowercase `bytes`.
const RANGE_UNIT_CASE_PREFLIGHTED: &[(Engine, Outcome)] = &[
    (Engine::Chromium, BLOCKED_AT_PREFLIGHT),
    (Engine::Firefox, BLOCKED_AT_PREFLIGHT),
];
/// Both fetches of a cached row preflighted: the answer was not cached.
const PREFLIGHTED_TWICE: Outcome = Outcome {
    allowed: true,
    preflights: 2,
};

/// A GET with `headers`, against a server that allows any origin and nothing else.
const fn sends(
    name: &'static str,
    headers: &'static [(&'static str, &'static str)],
    expect: Outcome,
) -> EngineScenario {
    EngineScenario {
        name,
        headers,
        expect,
        ..GET
    }
}

/// A POST of a body with the `Content-Type` in `headers`.
const fn posts(
    name: &'static str,
    headers: &'static [(&'static str, &'static str)],
    expect: Outcome,
) -> EngineScenario {
    EngineScenario {
        method: "POST",
        body: Some("x"),
        ..sends(name, headers, expect)
    }
}

/// A request with `method`, against the server answer `server`.
const fn asks(
    name: &'static str,
    method: &'static str,
    server: &'static str,
    expect: Outcome,
) -> EngineScenario {
    EngineScenario {
        name,
        method,
        server,
        expect,
        ..GET
    }
}

/// A PUT made twice, 300 ms apart, against the server answer `server`.
const fn cached(
    name: &'static str,
    server: &'static str,
    expect: Outcome,
    differs: &'static [(Engine, Outcome)],
) -> EngineScenario {
    EngineScenario {
        repeat_ms: Some(300),
        differs,
        ..asks(name, "PUT", server, expect)
    }
}

pub const ENGINE_SCENARIOS: &[EngineScenario] = &[
    // User-Agent: Chromium drops it (crbug 571722); Fetch and the others preflight it.
    EngineScenario {
        differs: &[(Engine::Chromium, ALLOWED)],
        ..sends(
            "user_agent_strict_server",
            &[("User-Agent", "probe-ua")],
            BLOCKED_AT_PREFLIGHT,
        )
    },
    EngineScenario {
        server: "ao=*&ah=user-agent",
        differs: &[(Engine::Chromium, ALLOWED)],
        ..sends(
            "user_agent_allowed_by_name",
            &[("User-Agent", "probe-ua")],
            ALLOWED_PREFLIGHTED,
        )
    },
    // Authorization under `*`: never in Fetch, yes in all three browsers.
    EngineScenario {
        server: "ao=*&ah=*",
        differs: BROWSERS_ALLOW_AUTH,
        ..sends(
            "authorization_under_wildcard",
            &[("Authorization", "Bearer x")],
            BLOCKED_AT_PREFLIGHT,
        )
    },
    EngineScenario {
        server: "ao=*&ah=authorization",
        ..sends(
            "authorization_listed",
            &[("Authorization", "Bearer x")],
            ALLOWED_PREFLIGHTED,
        )
    },
    EngineScenario {
        server: "ao=*&ah=*",
        ..sends(
            "custom_header_under_wildcard",
            &[("X-Custom", "1")],
            ALLOWED_PREFLIGHTED,
        )
    },
    EngineScenario {
        credentials: true,
        server: "ao={origin}&ac=true&ah=*",
        ..sends(
            "custom_header_wildcard_with_credentials",
            &[("X-Custom", "1")],
            BLOCKED_AT_PREFLIGHT,
        )
    },
    // Range forms.
    sends("range_lowercase", &[("Range", "bytes=0-4")], ALLOWED),
    EngineScenario {
        differs: RANGE_UNIT_CASE_PREFLIGHTED,
        ..sends("range_unit_capitalized", &[("Range", "Bytes=0-4")], ALLOWED)
    },
    EngineScenario {
        differs: RANGE_UNIT_CASE_PREFLIGHTED,
        ..sends("range_unit_uppercase", &[("Range", "BYTES=0-4")], ALLOWED)
    },
    sends(
        "range_suffix",
        &[("Range", "bytes=-5")],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends("range_open_end", &[("Range", "bytes=0-")], ALLOWED),
    sends(
        "range_spaces",
        &[("Range", "bytes = 0-4")],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends(
        "range_two_ranges",
        &[("Range", "bytes=0-4,6-7")],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends(
        "range_reversed",
        &[("Range", "bytes=4-0")],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends(
        "range_other_unit",
        &[("Range", "items=0-4")],
        BLOCKED_AT_PREFLIGHT,
    ),
    // Content-Type parsing.
    posts(
        "content_type_quoted_charset",
        &[("Content-Type", "text/plain; charset=\"utf-8\"")],
        BLOCKED_AT_PREFLIGHT,
    ),
    posts(
        "content_type_uppercase",
        &[("Content-Type", "TEXT/PLAIN")],
        ALLOWED,
    ),
    posts(
        "content_type_trailing_semicolon",
        &[("Content-Type", "text/plain;")],
        ALLOWED,
    ),
    posts(
        "content_type_two_types",
        &[("Content-Type", "text/plain, application/json")],
        BLOCKED_AT_PREFLIGHT,
    ),
    posts(
        "content_type_space_in_type",
        &[("Content-Type", "text /plain")],
        BLOCKED_AT_PREFLIGHT,
    ),
    // The 128-byte limit of safelisted values.
    sends("accept_128_bytes", &[("Accept", LONG_128)], ALLOWED),
    sends(
        "accept_129_bytes",
        &[("Accept", LONG_129)],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends(
        "accept_language_128_bytes",
        &[("Accept-Language", LONG_128)],
        ALLOWED,
    ),
    sends(
        "accept_language_129_bytes",
        &[("Accept-Language", LONG_129)],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends(
        "content_language_129_bytes",
        &[("Content-Language", LONG_129)],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends(
        "accept_unsafe_byte",
        &[("Accept", "a@b")],
        BLOCKED_AT_PREFLIGHT,
    ),
    // Method case: only the six Fetch normalizes are upper-cased.
    asks(
        "method_patch_lowercase_vs_upper_list",
        "patch",
        "ao=*&am=PATCH",
        BLOCKED_AT_PREFLIGHT,
    ),
    asks(
        "method_patch_lowercase_listed",
        "patch",
        "ao=*&am=patch",
        ALLOWED_PREFLIGHTED,
    ),
    asks(
        "method_delete_normalized",
        "delete",
        "ao=*&am=DELETE",
        ALLOWED_PREFLIGHTED,
    ),
    asks(
        "method_put_vs_lowercase_list",
        "put",
        "ao=*&am=put",
        BLOCKED_AT_PREFLIGHT,
    ),
    asks("method_wildcard", "PUT", "ao=*&am=*", ALLOWED_PREFLIGHTED),
    EngineScenario {
        credentials: true,
        ..asks(
            "method_wildcard_with_credentials",
            "PUT",
            "ao={origin}&ac=true&am=*",
            BLOCKED_AT_PREFLIGHT,
        )
    },
    // Forbidden headers: dropped silently, so never a preflight.
    sends("forbidden_cookie", &[("Cookie", "a=b")], ALLOWED),
    sends(
        "forbidden_referer",
        &[("Referer", "http://x.example/")],
        ALLOWED,
    ),
    sends("forbidden_sec_prefix", &[("Sec-Foo", "1")], ALLOWED),
    sends("forbidden_proxy_prefix", &[("Proxy-Foo", "1")], ALLOWED),
    sends("forbidden_dnt", &[("DNT", "1")], ALLOWED),
    sends(
        "forbidden_origin",
        &[("Origin", "http://evil.example")],
        ALLOWED,
    ),
    sends(
        "forbidden_request_method",
        &[("Access-Control-Request-Method", "PUT")],
        ALLOWED,
    ),
    sends(
        "method_override_trace_dropped",
        &[("X-HTTP-Method-Override", "TRACE")],
        ALLOWED,
    ),
    sends(
        "method_override_get_preflighted",
        &[("X-HTTP-Method-Override", "GET")],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends(
        "private_network_request_header",
        &[("Access-Control-Request-Private-Network", "true")],
        BLOCKED_AT_PREFLIGHT,
    ),
    sends(
        "allow_response_header_as_request_header",
        &[("Access-Control-Allow-Origin", "*")],
        BLOCKED_AT_PREFLIGHT,
    ),
    // The preflight cache (the second fetch 300 ms after the first).
    cached(
        "max_age_absent_cached",
        "ao=*&am=PUT",
        ALLOWED_PREFLIGHTED,
        &[],
    ),
    cached(
        "max_age_zero_not_cached",
        "ao=*&am=PUT&ma=0",
        PREFLIGHTED_TWICE,
        &[],
    ),
    cached(
        "max_age_unreadable_cached",
        "ao=*&am=PUT&ma=10s",
        ALLOWED_PREFLIGHTED,
        &[(Engine::Firefox, PREFLIGHTED_TWICE)],
    ),
    cached(
        "max_age_negative_cached",
        "ao=*&am=PUT&ma=-1",
        ALLOWED_PREFLIGHTED,
        &[
            (Engine::Chromium, PREFLIGHTED_TWICE),
            (Engine::Firefox, PREFLIGHTED_TWICE),
            (Engine::WebKit, PREFLIGHTED_TWICE),
        ],
    ),
    // Malformed answers.
    asks(
        "allow_origin_twice",
        "GET",
        "ao={origin},%20{origin}",
        BLOCKED,
    ),
    EngineScenario {
        server: "ao=*&ah=x-custom,%20(bad)",
        ..sends(
            "allow_headers_not_a_list",
            &[("X-Custom", "1")],
            BLOCKED_AT_PREFLIGHT,
        )
    },
    EngineScenario {
        credentials: true,
        ..asks(
            "allow_credentials_capitalized",
            "GET",
            "ao={origin}&ac=True",
            BLOCKED,
        )
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
