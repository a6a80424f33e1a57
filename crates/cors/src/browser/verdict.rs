//! What the browser concludes from an answer: a grant, or the reasons it
//! blocks and the fix for each.

use std::fmt;

use http::{HeaderMap, StatusCode};

use super::profile::Engine;
use crate::token::trim_http_whitespace;

/// Seconds the standard caches a preflight when `Access-Control-Max-Age` is
/// absent or unreadable (each engine's is in its profile).
pub const DEFAULT_MAX_AGE: u64 = 5;

const ACAO: &str = "Access-Control-Allow-Origin";
const ACAC: &str = "Access-Control-Allow-Credentials";
const ACAM: &str = "Access-Control-Allow-Methods";
const ACAH: &str = "Access-Control-Allow-Headers";
const ACEH: &str = "Access-Control-Expose-Headers";

/// How long the browser caches a successful preflight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge {
    /// What `Access-Control-Max-Age` asked for, when it was a number of seconds.
    pub requested: Option<u64>,
    /// The seconds the engine actually caches the preflight.
    pub effective: u64,
}

impl MaxAge {
    pub(super) fn from_headers(headers: &HeaderMap, engine: Engine) -> Self {
        let profile = engine.profile();
        let mut values = headers.get_all(http::header::ACCESS_CONTROL_MAX_AGE).iter();
        let (requested, unreadable) = match (values.next(), values.next()) {
            (None, _) => (None, false),
            (Some(value), None) => {
                let value = trim_http_whitespace(value.as_bytes());
                let negative = value
                    .strip_prefix(b"-")
                    .is_some_and(|digits| parse_delta_seconds(digits).is_some());
                match parse_delta_seconds(value) {
                    Some(seconds) => (Some(seconds), false),
                    None if negative && profile.negative_max_age_not_cached => (Some(0), false),
                    None => (None, true),
                }
            }
            (Some(_), Some(_)) => (None, true),
        };
        let seconds = match requested {
            Some(seconds) => seconds,
            None if unreadable && !profile.unreadable_max_age_gets_default => 0,
            None => profile.max_age_default,
        };
        Self {
            requested,
            effective: profile.max_age_cap.map_or(seconds, |cap| seconds.min(cap)),
        }
    }
}

/// `1*DIGIT`; values too large for `u64` saturate, since every engine caps them anyway.
fn parse_delta_seconds(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// What a successful preflight granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightGrant {
    /// The methods of `Access-Control-Allow-Methods`, as written.
    pub methods: Vec<String>,
    /// The header names of `Access-Control-Allow-Headers`, as written.
    pub header_names: Vec<String>,
    /// How long the grant is cached.
    pub max_age: MaxAge,
}

/// Why the browser refuses a response. Each reason knows its [`Fix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockReason {
    /// The preflight was answered with a redirect, which browsers never follow.
    PreflightRedirect {
        /// The redirect status.
        status: StatusCode,
        /// Where it pointed, if it said.
        location: Option<String>,
    },
    /// The preflight was answered with a status outside 200-299.
    PreflightStatus {
        /// The status received.
        status: StatusCode,
    },
    /// No `Access-Control-Allow-Origin` header.
    MissingAllowOrigin {
        /// The origin it had to name.
        origin: String,
    },
    /// `Access-Control-Allow-Origin` holds several values (several headers or a list).
    MultipleAllowOrigin {
        /// The values, joined.
        value: String,
        /// The origin it had to name.
        origin: String,
    },
    /// `Access-Control-Allow-Origin: *` on a credentialed request.
    WildcardOriginWithCredentials {
        /// The origin it had to name.
        origin: String,
    },
    /// `Access-Control-Allow-Origin` is not byte-equal to the request's origin.
    AllowOriginMismatch {
        /// The value received.
        value: String,
        /// The origin it had to equal.
        origin: String,
    },
    /// A credentialed request without `Access-Control-Allow-Credentials`.
    MissingAllowCredentials,
    /// `Access-Control-Allow-Credentials` is not exactly `true`.
    AllowCredentialsNotTrue {
        /// The value received.
        value: String,
    },
    /// `Access-Control-Allow-Methods` is not a comma-separated list of methods.
    InvalidAllowMethods {
        /// The value received.
        value: String,
        /// The request's method.
        method: String,
    },
    /// `Access-Control-Allow-Headers` is not a comma-separated list of names.
    InvalidAllowHeaders {
        /// The value received.
        value: String,
        /// The unsafe request header names it had to list.
        needed: Vec<String>,
    },
    /// The method is not in `Access-Control-Allow-Methods`.
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// `Access-Control-Allow-Methods` lists it in another case.
        case_mismatch: bool,
        /// `Access-Control-Allow-Methods: *` was sent, which does not count with credentials.
        wildcard_with_credentials: bool,
    },
    /// A header is not in `Access-Control-Allow-Headers`.
    HeaderNotAllowed {
        /// The lowercase header name.
        name: String,
        /// `Access-Control-Allow-Headers: *` was sent, which does not cover this header.
        wildcard: WildcardMiss,
    },
}

/// Why an `Access-Control-Allow-Headers: *` did not cover a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WildcardMiss {
    /// No `*` was sent.
    NoWildcard,
    /// `*` never covers `Authorization`.
    Authorization,
    /// `*` does not count on credentialed requests.
    Credentials,
}

/// What to change on the server so the browser accepts the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Send this header with exactly this value (replacing any other value).
    SetHeader {
        /// The header name.
        name: &'static str,
        /// The value to send.
        value: String,
        /// Why this value, when it is not obvious.
        note: Option<&'static str>,
    },
    /// Add an item to a comma-separated list header.
    AddToList {
        /// The header name.
        name: &'static str,
        /// The item to add, byte for byte.
        item: String,
        /// Why this spelling, when it is not obvious.
        note: Option<&'static str>,
    },
    /// Answer the `OPTIONS` preflight itself with a 2xx status (usually 204).
    AnswerPreflightWith2xx,
    /// Answer the preflight at the requested URL instead of redirecting it.
    AnswerPreflightWithoutRedirect {
        /// Where the server redirected, if it said.
        location: Option<String>,
    },
}

impl fmt::Display for Fix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SetHeader { name, value, note } => {
                write!(f, "send `{name}: {value}`")?;
                if let Some(note) = note {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Self::AddToList { name, item, note } => {
                write!(f, "add `{item}` to `{name}`")?;
                if let Some(note) = note {
                    write!(f, " ({note})")?;
                }
                Ok(())
            }
            Self::AnswerPreflightWith2xx => f.write_str(
                "answer the OPTIONS preflight with status 204 (any 2xx) and the CORS headers, before authentication or routing rejects it",
            ),
            Self::AnswerPreflightWithoutRedirect { location } => {
                f.write_str("answer the OPTIONS preflight at the requested URL instead of redirecting it")?;
                if let Some(location) = location {
                    write!(f, "; or make the page call `{location}` directly")?;
                }
                Ok(())
            }
        }
    }
}

impl BlockReason {
    /// A stable identifier for machine-readable output (e.g. `method_not_allowed`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::PreflightRedirect { .. } => "preflight_redirect",
            Self::PreflightStatus { .. } => "preflight_status",
            Self::MissingAllowOrigin { .. } => "missing_allow_origin",
            Self::MultipleAllowOrigin { .. } => "multiple_allow_origin",
            Self::WildcardOriginWithCredentials { .. } => "wildcard_origin_with_credentials",
            Self::AllowOriginMismatch { .. } => "allow_origin_mismatch",
            Self::MissingAllowCredentials => "missing_allow_credentials",
            Self::AllowCredentialsNotTrue { .. } => "allow_credentials_not_true",
            Self::InvalidAllowMethods { .. } => "invalid_allow_methods",
            Self::InvalidAllowHeaders { .. } => "invalid_allow_headers",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::HeaderNotAllowed { .. } => "header_not_allowed",
        }
    }

    /// The change on the server that makes the browser accept the response.
    pub fn fix(&self) -> Fix {
        const ORIGIN_NOTE: &str =
            "exactly the page's origin, once, no trailing slash; add `Vary: Origin` when it depends on the request";
        match self {
            Self::PreflightRedirect { location, .. } => Fix::AnswerPreflightWithoutRedirect {
                location: location.clone(),
            },
            Self::PreflightStatus { .. } => Fix::AnswerPreflightWith2xx,
            Self::MissingAllowOrigin { origin }
            | Self::AllowOriginMismatch { origin, .. }
            | Self::MultipleAllowOrigin { origin, .. } => Fix::SetHeader {
                name: ACAO,
                value: origin.clone(),
                note: Some(ORIGIN_NOTE),
            },
            Self::WildcardOriginWithCredentials { origin } => Fix::SetHeader {
                name: ACAO,
                value: origin.clone(),
                note: Some("`*` is refused on credentialed requests: echo the allowed origin and add `Vary: Origin`"),
            },
            Self::MissingAllowCredentials | Self::AllowCredentialsNotTrue { .. } => Fix::SetHeader {
                name: ACAC,
                value: "true".to_owned(),
                note: Some("exactly `true`, lowercase"),
            },
            Self::InvalidAllowMethods { method, .. } => Fix::AddToList {
                name: ACAM,
                item: method.clone(),
                note: Some("and make the header a comma-separated list of method names"),
            },
            Self::MethodNotAllowed {
                method,
                case_mismatch,
                wildcard_with_credentials,
            } => Fix::AddToList {
                name: ACAM,
                item: method.clone(),
                note: if *case_mismatch {
                    Some("methods are case-sensitive")
                } else if *wildcard_with_credentials {
                    Some("`*` does not count on credentialed requests")
                } else {
                    None
                },
            },
            Self::InvalidAllowHeaders { needed, .. } => Fix::SetHeader {
                name: ACAH,
                value: needed.join(", "),
                note: Some("a comma-separated list of header names"),
            },
            Self::HeaderNotAllowed { name, wildcard } => Fix::AddToList {
                name: ACAH,
                item: name.clone(),
                note: match wildcard {
                    WildcardMiss::NoWildcard => None,
                    WildcardMiss::Authorization => Some("`*` never covers Authorization: list it by name"),
                    WildcardMiss::Credentials => Some("`*` does not count on credentialed requests: list it by name"),
                },
            },
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreflightRedirect { status, location } => {
                write!(f, "the preflight was redirected ({status}")?;
                if let Some(location) = location {
                    write!(f, " to {location}")?;
                }
                f.write_str("); browsers do not follow redirects of preflights")
            }
            Self::PreflightStatus { status } => {
                write!(f, "the preflight answer has status {status}, and only 2xx counts as success")
            }
            Self::MissingAllowOrigin { .. } => {
                f.write_str("the response has no `Access-Control-Allow-Origin` header")
            }
            Self::MultipleAllowOrigin { value, .. } => write!(
                f,
                "`Access-Control-Allow-Origin` holds several values (`{value}`), and only one is allowed"
            ),
            Self::WildcardOriginWithCredentials { .. } => f.write_str(
                "`Access-Control-Allow-Origin` is `*`, which is refused when the request includes credentials",
            ),
            Self::AllowOriginMismatch { value, origin } => write!(
                f,
                "`Access-Control-Allow-Origin` is `{value}`, which is not byte-equal to the origin `{origin}`"
            ),
            Self::MissingAllowCredentials => f.write_str(
                "the request includes credentials and the response has no `Access-Control-Allow-Credentials: true`",
            ),
            Self::AllowCredentialsNotTrue { value } => write!(
                f,
                "`Access-Control-Allow-Credentials` is `{value}`; it must be exactly `true` for a credentialed request"
            ),
            Self::InvalidAllowMethods { value, .. } => {
                write!(f, "`Access-Control-Allow-Methods: {value}` is not a list of method names")
            }
            Self::InvalidAllowHeaders { value, .. } => {
                write!(f, "`Access-Control-Allow-Headers: {value}` is not a list of header names")
            }
            Self::MethodNotAllowed {
                method,
                case_mismatch,
                wildcard_with_credentials,
            } => {
                write!(f, "method `{method}` is not in `Access-Control-Allow-Methods`")?;
                if *case_mismatch {
                    f.write_str(" (it is listed in another case, and methods are compared byte for byte)")?;
                }
                if *wildcard_with_credentials {
                    f.write_str(" (`*` is only a wildcard for requests without credentials)")?;
                }
                Ok(())
            }
            Self::HeaderNotAllowed { name, wildcard } => {
                write!(f, "request header `{name}` is not in `Access-Control-Allow-Headers`")?;
                match wildcard {
                    WildcardMiss::NoWildcard => Ok(()),
                    WildcardMiss::Authorization => f.write_str(" (`*` never covers `Authorization`)"),
                    WildcardMiss::Credentials => {
                        f.write_str(" (`*` is only a wildcard for requests without credentials)")
                    }
                }
            }
        }
    }
}

/// A refused response: every reason found, the first being the one the
/// browser's console reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    reasons: Vec<BlockReason>,
    fixes: Vec<Fix>,
}

impl Blocked {
    pub(super) fn new(reasons: Vec<BlockReason>) -> Option<Self> {
        if reasons.is_empty() {
            return None;
        }
        let mut fixes: Vec<Fix> = Vec::new();
        for fix in reasons.iter().map(BlockReason::fix) {
            if !fixes.contains(&fix) {
                fixes.push(fix);
            }
        }
        Some(Self { reasons, fixes })
    }

    /// The reason the browser reports.
    pub fn primary(&self) -> &BlockReason {
        // `new` never builds an empty list, so the last arm is never taken.
        match self.reasons.first() {
            Some(reason) => reason,
            None => &BlockReason::PreflightStatus {
                status: StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// Every reason found, the browser's first.
    pub fn reasons(&self) -> &[BlockReason] {
        &self.reasons
    }

    /// The changes that make the browser accept the response, one per
    /// distinct problem, in the order of [`reasons`](Self::reasons).
    pub fn fixes(&self) -> &[Fix] {
        &self.fixes
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.primary(), f)
    }
}

impl std::error::Error for Blocked {}

/// The fix that makes `name` readable by script.
pub fn expose_fix(name: &str) -> Fix {
    Fix::AddToList {
        name: ACEH,
        item: name.to_owned(),
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::test_util::*;

    use http::StatusCode;

    #[test]
    fn every_block_reason_has_a_fix_that_names_a_header_or_the_status() {
        let all = [
            BlockReason::PreflightRedirect {
                status: StatusCode::FOUND,
                location: None,
            },
            BlockReason::PreflightStatus {
                status: StatusCode::NOT_FOUND,
            },
            BlockReason::MissingAllowOrigin {
                origin: ORIGIN.to_owned(),
            },
            BlockReason::MultipleAllowOrigin {
                value: "a, b".to_owned(),
                origin: ORIGIN.to_owned(),
            },
            BlockReason::WildcardOriginWithCredentials {
                origin: ORIGIN.to_owned(),
            },
            BlockReason::AllowOriginMismatch {
                value: "x".to_owned(),
                origin: ORIGIN.to_owned(),
            },
            BlockReason::MissingAllowCredentials,
            BlockReason::AllowCredentialsNotTrue {
                value: "True".to_owned(),
            },
            BlockReason::InvalidAllowMethods {
                value: "a b".to_owned(),
                method: "PUT".to_owned(),
            },
            BlockReason::InvalidAllowHeaders {
                value: "a b".to_owned(),
                needed: vec!["x-a".to_owned()],
            },
            BlockReason::MethodNotAllowed {
                method: "PUT".to_owned(),
                case_mismatch: false,
                wildcard_with_credentials: false,
            },
            BlockReason::HeaderNotAllowed {
                name: "x-a".to_owned(),
                wildcard: WildcardMiss::NoWildcard,
            },
        ];
        let mut codes = std::collections::HashSet::new();
        for reason in &all {
            assert!(
                codes.insert(reason.code()),
                "duplicate code {}",
                reason.code()
            );
            assert!(!reason.to_string().is_empty());
            let fix = reason.fix().to_string();
            assert!(
                fix.contains("Access-Control-") || fix.contains("preflight"),
                "{fix}"
            );
        }
        assert_eq!(
            BlockReason::WildcardOriginWithCredentials { origin: ORIGIN.to_owned() }.fix().to_string(),
            "send `Access-Control-Allow-Origin: https://app.example` (`*` is refused on credentialed requests: echo the allowed origin and add `Vary: Origin`)"
        );
    }
}
