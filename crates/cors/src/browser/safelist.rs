//! CORS-safelisted methods and request headers: what a page may send
//! without a preflight.

use std::cmp::Ordering;
use std::fmt;

use http::header::HeaderName;
use http::{HeaderMap, Method};

use super::profile::Engine;
use crate::method::is_safelisted;
use crate::token::{is_token, trim_http_whitespace};

/// The longest value a safelisted request header may have, in bytes.
pub const SAFELISTED_VALUE_LIMIT: usize = 128;

/// The most bytes all safelisted request header values may add up to before
/// every one of them needs a preflight.
pub const SAFELISTED_TOTAL_LIMIT: usize = 1024;

/// Whether `method` (already normalized) is CORS-safelisted: `GET`, `HEAD` or
/// `POST`, byte for byte.
pub fn is_cors_safelisted_method(method: &Method) -> bool {
    is_safelisted(method.as_str().as_bytes())
}

/// Whether `b` may not appear in a safelisted `Accept` or `Content-Type` value:
/// control bytes other than tab, `"():<>?@[\]{}` and DEL.
pub fn is_cors_unsafe_request_header_byte(b: u8) -> bool {
    (b < 0x20 && b != 0x09)
        || matches!(
            b,
            b'"' | b'('
                | b')'
                | b':'
                | b'<'
                | b'>'
                | b'?'
                | b'@'
                | b'['
                | b'\\'
                | b']'
                | b'{'
                | b'}'
                | 0x7f
        )
}

/// Why a request header is not CORS-safelisted, so that it needs a preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSafelisted {
    /// Only `Accept`, `Accept-Language`, `Content-Language`, `Content-Type`
    /// and `Range` can be safelisted.
    Name,
    /// The value is longer than 128 bytes.
    ValueTooLong {
        /// The value's length in bytes.
        len: usize,
    },
    /// `Accept` or `Content-Type` contains a CORS-unsafe byte.
    UnsafeByte {
        /// The offending byte.
        byte: u8,
    },
    /// `Accept-Language` or `Content-Language` contains a byte outside
    /// `0-9 A-Z a-z`, space and `*,-.;=`.
    LanguageByte {
        /// The offending byte.
        byte: u8,
    },
    /// `Content-Type` is not a MIME type.
    ContentTypeUnparsable,
    /// `Content-Type` is a MIME type other than the three a form can send.
    ContentTypeEssence {
        /// The type/subtype, lowercased.
        essence: String,
    },
    /// `Range` is not a single `bytes=START-[END]` range.
    RangeNotSingleByteRange,
    /// `Range` is a suffix range (`bytes=-500`), which needs a preflight.
    RangeSuffix,
    /// `Range` spells its unit other than `bytes` (`Bytes=0-4`), which the
    /// standard allows and Chromium and Firefox preflight.
    RangeUnitNotLowercase,
    /// The safelisted values together exceed 1024 bytes, so none of them is safelisted.
    TotalTooLong {
        /// The total length of the safelisted values.
        total: usize,
    },
}

impl fmt::Display for NotSafelisted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name => f.write_str("it is not one of the CORS-safelisted request headers"),
            Self::ValueTooLong { len } => write!(
                f,
                "its value is {len} bytes long, over the {SAFELISTED_VALUE_LIMIT}-byte limit for safelisted values"
            ),
            Self::UnsafeByte { byte } => write!(f, "its value contains the CORS-unsafe byte {}", show_byte(*byte)),
            Self::LanguageByte { byte } => write!(
                f,
                "its value contains {}, and a safelisted language value may only hold 0-9 A-Z a-z, space and *,-.;=",
                show_byte(*byte)
            ),
            Self::ContentTypeUnparsable => f.write_str("its value is not a MIME type"),
            Self::ContentTypeEssence { essence } => write!(
                f,
                "`{essence}` is not application/x-www-form-urlencoded, multipart/form-data or text/plain"
            ),
            Self::RangeNotSingleByteRange => f.write_str("its value is not a single `bytes=START-[END]` range"),
            Self::RangeSuffix => f.write_str("it asks for a suffix range (`bytes=-N`), which is not safelisted"),
            Self::RangeUnitNotLowercase => f.write_str("its unit is not lowercase `bytes`, which this browser requires (the standard does not)"),
            Self::TotalTooLong { total } => write!(
                f,
                "the safelisted header values add up to {total} bytes, over the {SAFELISTED_TOTAL_LIMIT}-byte limit"
            ),
        }
    }
}

fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("`{}`", char::from(b))
    } else {
        format!("0x{b:02X}")
    }
}

/// Checks one header against the CORS-safelisted request-header rules,
/// including the value rules and the 128-byte limit (but not the 1024-byte
/// total, which concerns the whole list: see [`cors_unsafe_request_headers`]),
/// as `engine` applies them.
pub fn check_safelisted_request_header(
    name: &HeaderName,
    value: &[u8],
    engine: Engine,
) -> Result<(), NotSafelisted> {
    let kind = match name.as_str() {
        "accept" | "accept-language" | "content-language" | "content-type" | "range" => {
            name.as_str()
        }
        _ => return Err(NotSafelisted::Name),
    };
    if value.len() > SAFELISTED_VALUE_LIMIT {
        return Err(NotSafelisted::ValueTooLong { len: value.len() });
    }
    match kind {
        "accept" => first_unsafe_byte(value),
        "accept-language" | "content-language" => {
            match value
                .iter()
                .find(|&&b| !(b.is_ascii_alphanumeric() || b" *,-.;=".contains(&b)))
            {
                Some(&byte) => Err(NotSafelisted::LanguageByte { byte }),
                None => Ok(()),
            }
        }
        "content-type" => {
            first_unsafe_byte(value)?;
            let essence = mime_essence(value).ok_or(NotSafelisted::ContentTypeUnparsable)?;
            match essence.as_str() {
                "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain" => {
                    Ok(())
                }
                _ => Err(NotSafelisted::ContentTypeEssence { essence }),
            }
        }
        _ => match parse_single_byte_range(value) {
            Some(ByteRange { start: Some(_) })
                if engine.profile().range_unit_case_sensitive && !value.starts_with(b"bytes") =>
            {
                Err(NotSafelisted::RangeUnitNotLowercase)
            }
            Some(ByteRange { start: Some(_) }) => Ok(()),
            Some(ByteRange { start: None }) => Err(NotSafelisted::RangeSuffix),
            None => Err(NotSafelisted::RangeNotSingleByteRange),
        },
    }
}

fn first_unsafe_byte(value: &[u8]) -> Result<(), NotSafelisted> {
    match value
        .iter()
        .find(|&&b| is_cors_unsafe_request_header_byte(b))
    {
        Some(&byte) => Err(NotSafelisted::UnsafeByte { byte }),
        None => Ok(()),
    }
}

/// The `type/subtype` of a MIME type, lowercased, per the WHATWG MIME Sniffing
/// parser (parameters never make parsing fail, so they are not read).
fn mime_essence(value: &[u8]) -> Option<String> {
    let value = trim_http_whitespace(value);
    let slash = value.iter().position(|&b| b == b'/')?;
    let (kind, rest) = value.split_at(slash);
    let rest = rest.get(1..)?;
    let subtype_end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
    let subtype = trim_http_whitespace(rest.get(..subtype_end)?);
    if !is_token(kind) || !is_token(subtype) {
        return None;
    }
    let mut essence = String::with_capacity(kind.len() + 1 + subtype.len());
    essence.extend(kind.iter().map(|b| char::from(b.to_ascii_lowercase())));
    essence.push('/');
    essence.extend(subtype.iter().map(|b| char::from(b.to_ascii_lowercase())));
    Some(essence)
}

/// A valid `bytes=` range; only whether it has a start matters for safelisting.
struct ByteRange<'a> {
    start: Option<&'a [u8]>,
}

/// Parses `bytes=START-END` with either bound optional but not both, no
/// whitespace, and START not after END; bounds are kept as digit strings so
/// that any length compares correctly; the unit is case-insensitive.
fn parse_single_byte_range(value: &[u8]) -> Option<ByteRange<'_>> {
    let (unit, rest) = value.split_at(
        value
            .iter()
            .position(|&b| !b.is_ascii_alphabetic())
            .unwrap_or(value.len()),
    );
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let rest = rest.strip_prefix(b"=")?;
    let dash = rest
        .iter()
        .position(|&b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    let (start, rest) = rest.split_at(dash);
    let end = rest.strip_prefix(b"-")?;
    if !end.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let start = (!start.is_empty()).then_some(start);
    let end = (!end.is_empty()).then_some(end);
    match (start, end) {
        (None, None) => None,
        (Some(s), Some(e)) if compare_decimal(s, e) == Ordering::Greater => None,
        (start, _) => Some(ByteRange { start }),
    }
}

fn compare_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |d: &[u8]| -> usize { d.iter().position(|&b| b != b'0').unwrap_or(d.len()) };
    let (a, b) = (
        a.get(strip(a)..).unwrap_or(&[]),
        b.get(strip(b)..).unwrap_or(&[]),
    );
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A request header that makes a preflight necessary, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeHeader {
    /// The header's lowercase name.
    pub name: HeaderName,
    /// Why it is not safelisted.
    pub reason: NotSafelisted,
}

/// The CORS-unsafe request-header names of `headers`, sorted by byte and
/// deduplicated, each with its reason, as `engine` judges them; this is
/// exactly the list a browser puts in `Access-Control-Request-Headers`.
///
/// Each value of `headers` is judged on its own, as the standard's header
/// list does; Chromium joins repeated headers into one value first, which
/// [`CorsRequest::with_header`](super::CorsRequest::with_header) also does, so a request built that way is
/// judged as Chromium judges it.
pub fn cors_unsafe_request_headers(headers: &HeaderMap, engine: Engine) -> Vec<UnsafeHeader> {
    let mut unsafe_headers = Vec::new();
    let mut safelisted = Vec::new();
    let mut total = 0usize;
    for (name, value) in headers {
        match check_safelisted_request_header(name, value.as_bytes(), engine) {
            Ok(()) => {
                total = total.saturating_add(value.len());
                safelisted.push(name.clone());
            }
            Err(reason) => unsafe_headers.push(UnsafeHeader {
                name: name.clone(),
                reason,
            }),
        }
    }
    if total > SAFELISTED_TOTAL_LIMIT {
        unsafe_headers.extend(safelisted.into_iter().map(|name| UnsafeHeader {
            name,
            reason: NotSafelisted::TotalTooLong { total },
        }));
    }
    // Stable sort: for a name listed twice, the first reason found is kept.
    unsafe_headers.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    unsafe_headers.dedup_by(|later, earlier| later.name == earlier.name);
    unsafe_headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::test_util::*;

    use http::header::HeaderValue;
    use http::{HeaderMap, Method};

    fn safelisted(n: &str, value: &[u8]) -> Result<(), NotSafelisted> {
        check_safelisted_request_header(&name(n), value, Engine::Spec)
    }

    #[test]
    fn only_get_head_post_are_safelisted_methods() {
        for m in ["GET", "HEAD", "POST"] {
            assert!(is_cors_safelisted_method(
                &Method::from_bytes(m.as_bytes()).unwrap()
            ));
        }
        for m in ["PUT", "DELETE", "PATCH", "patch", "OPTIONS", "get"] {
            assert!(
                !is_cors_safelisted_method(&Method::from_bytes(m.as_bytes()).unwrap()),
                "{m}"
            );
        }
    }

    #[test]
    fn unsafe_bytes_are_exactly_the_listed_ones() {
        let listed: Vec<u8> = b"\"():<>?@[\\]{}\x7f".to_vec();
        for b in 0u8..=255 {
            let expected = (b < 0x20 && b != 0x09) || listed.contains(&b);
            assert_eq!(
                is_cors_unsafe_request_header_byte(b),
                expected,
                "byte {b:#04x}"
            );
        }
    }

    #[test]
    fn accept_rejects_unsafe_bytes_only() {
        assert_eq!(
            safelisted("accept", b"text/html, application/json;q=0.9, */*"),
            Ok(())
        );
        assert_eq!(safelisted("accept", b"a\tb"), Ok(()));
        assert_eq!(
            safelisted("accept", b"text/(html)"),
            Err(NotSafelisted::UnsafeByte { byte: b'(' })
        );
        assert_eq!(
            safelisted("accept", b"a@b"),
            Err(NotSafelisted::UnsafeByte { byte: b'@' })
        );
        assert_eq!(
            safelisted("accept", b"a\x01"),
            Err(NotSafelisted::UnsafeByte { byte: 1 })
        );
    }

    #[test]
    fn language_headers_allow_a_narrow_alphabet() {
        for n in ["accept-language", "content-language"] {
            assert_eq!(safelisted(n, b"en-US,en;q=0.9, *"), Ok(()), "{n}");
            assert_eq!(
                safelisted(n, b"en_US"),
                Err(NotSafelisted::LanguageByte { byte: b'_' })
            );
            assert_eq!(
                safelisted(n, b"en\tUS"),
                Err(NotSafelisted::LanguageByte { byte: b'\t' })
            );
            assert_eq!(
                safelisted(n, "fr-é".as_bytes()),
                Err(NotSafelisted::LanguageByte { byte: 0xc3 })
            );
        }
    }

    #[test]
    fn content_type_has_three_safelisted_essences() {
        for ok in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "TEXT/Plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=----x",
            "text/plain ;foo=bar",
            "text/plain;;;",
        ] {
            assert_eq!(safelisted("content-type", ok.as_bytes()), Ok(()), "{ok}");
        }
        let essence = |essence: &str| NotSafelisted::ContentTypeEssence {
            essence: essence.to_owned(),
        };
        for (value, refusal) in [
            ("application/json", essence("application/json")),
            ("text/html", essence("text/html")),
            ("text", NotSafelisted::ContentTypeUnparsable),
            ("/plain", NotSafelisted::ContentTypeUnparsable),
            ("text/", NotSafelisted::ContentTypeUnparsable),
            ("te xt/plain", NotSafelisted::ContentTypeUnparsable),
            // Quotes are CORS-unsafe bytes even inside a valid parameter.
            (
                "text/plain; charset=\"utf-8\"",
                NotSafelisted::UnsafeByte { byte: b'"' },
            ),
        ] {
            assert_eq!(
                safelisted("content-type", value.as_bytes()),
                Err(refusal),
                "{value}"
            );
        }
    }

    #[test]
    fn range_must_be_a_single_byte_range_with_a_start() {
        for ok in [
            "bytes=0-",
            "bytes=0-10",
            "bytes=5-5",
            "BYTES=1-2",
            "bytes=00-1",
        ] {
            assert_eq!(safelisted("range", ok.as_bytes()), Ok(()), "{ok}");
        }
        assert_eq!(
            safelisted("range", b"bytes=-500"),
            Err(NotSafelisted::RangeSuffix)
        );
        // Observed: Chromium 156 and Firefox 153 preflight `Bytes=`, WebKit does not.
        for engine in Engine::ALL {
            let lowercase_only = matches!(engine, Engine::Chromium | Engine::Firefox);
            for value in ["Bytes=0-4", "BYTES=1-2"] {
                assert_eq!(
                    check_safelisted_request_header(&name("range"), value.as_bytes(), engine),
                    if lowercase_only {
                        Err(NotSafelisted::RangeUnitNotLowercase)
                    } else {
                        Ok(())
                    },
                    "{engine:?} {value}"
                );
            }
            assert_eq!(
                check_safelisted_request_header(&name("range"), b"bytes=0-4", engine),
                Ok(())
            );
        }
        for bad in [
            "bytes=10-5",
            "bytes = 0-",
            "bytes=0-1,2-3",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes=a-",
            "bytes=0-1 ",
        ] {
            assert_eq!(
                safelisted("range", bad.as_bytes()),
                Err(NotSafelisted::RangeNotSingleByteRange),
                "{bad}"
            );
        }
        assert_eq!(
            safelisted(
                "range",
                b"bytes=99999999999999999999999-100000000000000000000000"
            ),
            Ok(())
        );
        assert_eq!(
            safelisted(
                "range",
                b"bytes=100000000000000000000000-99999999999999999999999"
            ),
            Err(NotSafelisted::RangeNotSingleByteRange)
        );
    }

    #[test]
    fn values_over_128_bytes_are_never_safelisted() {
        let at_limit = vec![b'a'; 128];
        let over = vec![b'a'; 129];
        assert_eq!(safelisted("accept", &at_limit), Ok(()));
        assert_eq!(
            safelisted("accept", &over),
            Err(NotSafelisted::ValueTooLong { len: 129 })
        );
        assert_eq!(
            safelisted("accept-language", &over),
            Err(NotSafelisted::ValueTooLong { len: 129 })
        );
        assert_eq!(safelisted("x-custom", b"a"), Err(NotSafelisted::Name));
        assert_eq!(
            safelisted("authorization", b"Bearer x"),
            Err(NotSafelisted::Name)
        );
    }

    #[test]
    fn safelisted_values_over_1024_bytes_in_total_all_become_unsafe() {
        // The standard's header list can hold one name several times; nine
        // 120-byte `accept` values are each fine but 1080 bytes together.
        let value = HeaderValue::from_bytes(&[b'a'; 120]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-language", HeaderValue::from_static("en"));
        for _ in 0..8 {
            headers.append("accept", value.clone());
        }
        assert!(
            cors_unsafe_request_headers(&headers, Engine::Spec).is_empty(),
            "962 bytes is under the limit"
        );
        headers.append("accept", value);
        let names: Vec<(String, NotSafelisted)> =
            cors_unsafe_request_headers(&headers, Engine::Spec)
                .into_iter()
                .map(|h| (h.name.to_string(), h.reason))
                .collect();
        assert_eq!(
            names,
            [
                (
                    "accept".to_owned(),
                    NotSafelisted::TotalTooLong { total: 1082 }
                ),
                (
                    "content-language".to_owned(),
                    NotSafelisted::TotalTooLong { total: 1082 }
                ),
            ]
        );
    }
}
