//! Engine profiles: where Chromium, Firefox and WebKit depart from the Fetch
//! standard, as data. Every value was observed in the browser version its
//! profile names, by the engine scenarios of the browser suite
//! (`crates/crossgate/tests/browser/engine_matrix.rs`); `docs/browsers.md`
//! lists each departure with the scenario that proves it.

use std::fmt;

use http::HeaderMap;

use super::request::CorsRequest;
use super::safelist::check_safelisted_request_header;
use crate::token::trim_http_whitespace;

/// The browser engine whose behaviour a check models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Chromium, Chrome, Edge, Opera.
    Chromium,
    /// Firefox.
    Firefox,
    /// WebKit: Safari and every iOS browser.
    WebKit,
    /// The Fetch standard to the letter.
    Spec,
}

/// A rule of the Fetch standard a browser does not follow (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Departure {
    /// A script-set `User-Agent` is dropped, so it never causes a preflight.
    DropsUserAgent,
    /// `Access-Control-Allow-Headers: *` also covers `Authorization`.
    WildcardCoversAuthorization,
    /// A `Range` unit other than lowercase `bytes` needs a preflight.
    RangeUnitCaseSensitive,
    /// An unreadable `Access-Control-Max-Age` means "do not cache" rather
    /// than the default.
    UnreadableMaxAgeNotCached,
    /// A negative `Access-Control-Max-Age` (`-1`) means "do not cache"
    /// rather than the default.
    NegativeMaxAgeNotCached,
}

impl Departure {
    /// The Fetch rule the browser departs from, with its link.
    pub fn rule(self) -> &'static str {
        match self {
            Self::DropsUserAgent => {
                "Fetch: `User-Agent` is not a forbidden request-header, so a script may set it and it is not CORS-safelisted (https://fetch.spec.whatwg.org/#forbidden-request-header)"
            }
            Self::WildcardCoversAuthorization => {
                "Fetch: `*` in `Access-Control-Allow-Headers` never covers `Authorization`; it must be listed by name (https://fetch.spec.whatwg.org/#cors-preflight-fetch, step 7.9)"
            }
            Self::RangeUnitCaseSensitive => {
                "Fetch: the `Range` unit is an ASCII case-insensitive match for `bytes` (https://fetch.spec.whatwg.org/#simple-range-header-value)"
            }
            Self::UnreadableMaxAgeNotCached | Self::NegativeMaxAgeNotCached => {
                "Fetch: an unreadable `Access-Control-Max-Age` counts as absent, so the default of 5 seconds applies (https://fetch.spec.whatwg.org/#cors-preflight-fetch, step 7.7)"
            }
        }
    }

    /// What the browser does instead.
    pub fn behaviour(self) -> &'static str {
        match self {
            Self::DropsUserAgent => {
                "drops a script-set `User-Agent` silently (crbug 571722): it sends its own and no preflight"
            }
            Self::WildcardCoversAuthorization => {
                "lets `Access-Control-Allow-Headers: *` cover `Authorization` on requests without credentials"
            }
            Self::RangeUnitCaseSensitive => {
                "preflights a `Range` whose unit is not lowercase `bytes` (`Bytes=0-4`)"
            }
            Self::UnreadableMaxAgeNotCached => {
                "does not cache a preflight whose `Access-Control-Max-Age` is unreadable (`10s`, `-1`)"
            }
            Self::NegativeMaxAgeNotCached => {
                "does not cache a preflight whose `Access-Control-Max-Age` is negative (`-1`)"
            }
        }
    }

    /// The engine scenario that shows it.
    pub fn scenario(self) -> &'static str {
        match self {
            Self::DropsUserAgent => "user_agent_strict_server",
            Self::WildcardCoversAuthorization => "authorization_under_wildcard",
            Self::RangeUnitCaseSensitive => "range_unit_capitalized",
            Self::UnreadableMaxAgeNotCached => "max_age_unreadable_cached",
            Self::NegativeMaxAgeNotCached => "max_age_negative_cached",
        }
    }
}

/// The departures of the request's engine that change something for
/// `request`, given the preflight's answer headers when one was received:
/// where the engine's verdict or cache differs from the standard's.
pub fn departures_applying(
    request: &CorsRequest,
    preflight_answer: Option<&HeaderMap>,
) -> Vec<Departure> {
    let profile = request.engine().profile();
    profile
        .departures
        .iter()
        .copied()
        .filter(|departure| match departure {
            Departure::DropsUserAgent => !request.engine_dropped_headers().is_empty(),
            Departure::RangeUnitCaseSensitive => request
                .headers()
                .get_all(http::header::RANGE)
                .iter()
                .any(|v| {
                    check_safelisted_request_header(
                        &http::header::RANGE,
                        v.as_bytes(),
                        request.engine(),
                    ) != check_safelisted_request_header(
                        &http::header::RANGE,
                        v.as_bytes(),
                        Engine::Spec,
                    )
                }),
            Departure::WildcardCoversAuthorization => {
                !request.credentials().is_include()
                    && request.headers().contains_key(http::header::AUTHORIZATION)
                    && preflight_answer.is_some_and(|h| {
                        let names = list_items(h, &http::header::ACCESS_CONTROL_ALLOW_HEADERS);
                        names.iter().any(|n| n == "*")
                            && !names
                                .iter()
                                .any(|n| n.eq_ignore_ascii_case("authorization"))
                    })
            }
            Departure::UnreadableMaxAgeNotCached | Departure::NegativeMaxAgeNotCached => {
                preflight_answer.is_some_and(|h| {
                    let values: Vec<&[u8]> = h
                        .get_all(http::header::ACCESS_CONTROL_MAX_AGE)
                        .iter()
                        .map(|v| trim_http_whitespace(v.as_bytes()))
                        .collect();
                    let readable = values.len() == 1
                        && !values[0].is_empty()
                        && values[0].iter().all(u8::is_ascii_digit);
                    let negative = values.len() == 1
                        && values[0]
                            .strip_prefix(b"-")
                            .is_some_and(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit));
                    !values.is_empty()
                        && !readable
                        && (negative || *departure == Departure::UnreadableMaxAgeNotCached)
                })
            }
        })
        .collect()
}

fn list_items(headers: &HeaderMap, name: &http::header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| {
            v.as_bytes()
                .split(|&b| b == b',')
                .map(|i| String::from_utf8_lossy(trim_http_whitespace(i)).into_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

impl fmt::Display for Departure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.behaviour())
    }
}

/// What one engine does where engines differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineProfile {
    /// `chromium`, `firefox`, `webkit` or `spec`.
    pub name: &'static str,
    /// The product people know it by, for messages.
    pub display: &'static str,
    /// The version every observed value below comes from.
    pub observed_in: &'static str,
    /// Request headers, besides Fetch's forbidden ones, that script cannot
    /// set: the engine drops them silently.
    pub dropped_request_headers: &'static [&'static str],
    /// Whether `Access-Control-Allow-Headers: *` covers `Authorization`
    /// (never with credentials, where `*` is a literal name).
    pub wildcard_covers_authorization: bool,
    /// Whether the `Range` unit must be lowercase `bytes` to be safelisted.
    pub range_unit_case_sensitive: bool,
    /// Seconds a preflight is cached without a readable `Access-Control-Max-Age`.
    pub max_age_default: u64,
    /// Whether an unreadable `Access-Control-Max-Age` (`10s`) gets the
    /// default; otherwise the preflight is not cached.
    pub unreadable_max_age_gets_default: bool,
    /// Whether a negative `Access-Control-Max-Age` (`-1`), unreadable to the
    /// standard, means "do not cache".
    pub negative_max_age_not_cached: bool,
    /// The longest a preflight is cached, in seconds (`None`: no cap). Not
    /// observable in a short test: the figure comes from the engine's source.
    pub max_age_cap: Option<u64>,
    /// The standard's rules this engine breaks, as checked by the scenarios.
    pub departures: &'static [Departure],
}

const CHROMIUM: EngineProfile = EngineProfile {
    name: "chromium",
    display: "Chromium",
    observed_in: "Chromium 156",
    dropped_request_headers: &["user-agent"],
    // CorsNonWildcardRequestHeadersSupport is off by default.
    wildcard_covers_authorization: true,
    range_unit_case_sensitive: true,
    max_age_default: 5,
    unreadable_max_age_gets_default: true,
    negative_max_age_not_cached: true,
    // services/network/public/cpp/cors/preflight_result.cc: kMaxTimeout, 2 h.
    max_age_cap: Some(7200),
    departures: &[
        Departure::DropsUserAgent,
        Departure::WildcardCoversAuthorization,
        Departure::RangeUnitCaseSensitive,
        Departure::NegativeMaxAgeNotCached,
    ],
};

const FIREFOX: EngineProfile = EngineProfile {
    name: "firefox",
    display: "Firefox",
    observed_in: "Firefox ESR 153.8",
    dropped_request_headers: &[],
    wildcard_covers_authorization: true,
    range_unit_case_sensitive: true,
    max_age_default: 5,
    unreadable_max_age_gets_default: false,
    negative_max_age_not_cached: true,
    // netwerk/protocol/http/nsCORSListenerProxy.cpp: at most 24 h.
    max_age_cap: Some(86400),
    departures: &[
        Departure::WildcardCoversAuthorization,
        Departure::RangeUnitCaseSensitive,
        Departure::UnreadableMaxAgeNotCached,
    ],
};

const WEBKIT: EngineProfile = EngineProfile {
    name: "webkit",
    display: "WebKit (Safari)",
    observed_in: "WebKitGTK 2.50.6",
    dropped_request_headers: &[],
    wildcard_covers_authorization: true,
    range_unit_case_sensitive: false,
    max_age_default: 5,
    unreadable_max_age_gets_default: true,
    negative_max_age_not_cached: true,
    // Source/WebCore/loader/CrossOriginPreflightResultCache.cpp: 10 minutes.
    max_age_cap: Some(600),
    departures: &[
        Departure::WildcardCoversAuthorization,
        Departure::NegativeMaxAgeNotCached,
    ],
};

const SPEC: EngineProfile = EngineProfile {
    name: "spec",
    display: "the Fetch standard",
    observed_in: "Fetch Living Standard",
    dropped_request_headers: &[],
    wildcard_covers_authorization: false,
    range_unit_case_sensitive: false,
    max_age_default: 5,
    unreadable_max_age_gets_default: true,
    negative_max_age_not_cached: false,
    max_age_cap: None,
    departures: &[],
};

impl Engine {
    /// Every profile, the default first.
    pub const ALL: [Engine; 4] = [Self::Chromium, Self::Firefox, Self::WebKit, Self::Spec];

    /// The data this engine is modelled by.
    pub fn profile(self) -> &'static EngineProfile {
        match self {
            Self::Chromium => &CHROMIUM,
            Self::Firefox => &FIREFOX,
            Self::WebKit => &WEBKIT,
            Self::Spec => &SPEC,
        }
    }

    /// `chromium`, `firefox`, `webkit` or `spec`.
    pub fn name(self) -> &'static str {
        self.profile().name
    }

    /// The longest time, in seconds, this engine caches a preflight.
    pub fn max_age_cap(self) -> Option<u64> {
        self.profile().max_age_cap
    }

    /// Whether this engine drops request header `name` (lowercase) although
    /// Fetch lets a script set it.
    pub fn drops_request_header(self, name: &str) -> bool {
        self.profile().dropped_request_headers.contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_departure_is_listed_exactly_where_the_data_departs_from_spec() {
        let spec = Engine::Spec.profile();
        for engine in Engine::ALL {
            let p = engine.profile();
            // Each departure, and whether this engine's data really differs from the spec there.
            let departs_from_spec = [
                (
                    Departure::DropsUserAgent,
                    p.dropped_request_headers.contains(&"user-agent"),
                ),
                (
                    Departure::WildcardCoversAuthorization,
                    p.wildcard_covers_authorization != spec.wildcard_covers_authorization,
                ),
                (
                    Departure::RangeUnitCaseSensitive,
                    p.range_unit_case_sensitive != spec.range_unit_case_sensitive,
                ),
                (
                    Departure::UnreadableMaxAgeNotCached,
                    p.unreadable_max_age_gets_default != spec.unreadable_max_age_gets_default,
                ),
                (
                    Departure::NegativeMaxAgeNotCached,
                    p.negative_max_age_not_cached && p.unreadable_max_age_gets_default,
                ),
            ];
            for (departure, departs) in departs_from_spec {
                assert_eq!(
                    p.departures.contains(&departure),
                    departs,
                    "{} {departure:?}",
                    p.name
                );
            }
        }
        assert!(spec.departures.is_empty());
    }
}
