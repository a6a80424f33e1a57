//! The request path, read once: the gateway routes, authorizes and forwards
//! the same normalized path, so that what was authorized is exactly what the
//! upstream serves.
//!
//! Upstreams (nginx, Express, Spring, Tomcat) percent-decode the path and
//! merge `//` before they route. Routing on the raw path let
//! `/api/%61dmin/users` pass as a request for the public `/api/` while the
//! upstream served the private `/api/admin/users`.
//!
//! [`normalize`] gives the normal form (RFC 3986 §6.2.2, stricter where
//! upstreams decode more than the RFC lets a normalizer decode):
//! - segments are split at `/`; empty segments are dropped (`//` merges), a
//!   trailing `/` is kept;
//! - each segment is percent-decoded once, then re-encoded so that a byte is
//!   written raw exactly when it is in [`is_plain`] (unreserved, sub-delims
//!   other than `;`, `:` and `@`) and as `%XX` with upper-case hex otherwise.
//!   RFC 3986 only decodes unreserved characters, but upstreams decode
//!   `%3A` or `%2B` too, so a gateway that kept them encoded would route
//!   `/a%3Ab` and `/a:b` differently while the upstream serves one resource;
//! - whatever an upstream could read as structure is refused (see
//!   [`PathRejection`]), because no re-encoding stops a decoding upstream from
//!   reinterpreting it.
//!
//! Because the normal form encodes each byte one way, and `/` and `%` are
//! never plain bytes inside a segment, a route prefix (itself in normal form,
//! checked at load) is a prefix of the normal form exactly when it is a
//! prefix of the decoded path the upstream routes on.

use std::borrow::Cow;

use percent_encoding::{percent_decode, percent_encode, AsciiSet, CONTROLS};

/// Bytes written as `%XX` in the normal form: every ASCII byte that is not
/// [`is_plain`] (non-ASCII bytes are always encoded by `percent_encode`).
/// A decoded `%` stays `%25`. `/`, `\`, `;`, `?`, `#` and controls never
/// reach the encoder (they are refused); they are listed so that the set
/// matches [`is_plain`] byte for byte (a unit test checks that).
const ENCODED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b';')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// How many times [`widest_reading`] percent-decodes: chains of decoding
/// proxies are short, and each round costs a pass over the path.
const DECODING_ROUNDS: usize = 4;

/// Whether `byte` is written raw inside a segment of the normal form:
/// RFC 3986 `pchar` without `;` and `%` (unreserved, sub-delims, `:`, `@`).
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

/// Why a path is refused with 400. Each is something at least one common
/// upstream reads differently from the gateway, so it cannot be normalized
/// into one meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRejection {
    /// The target is not a path starting with `/` (`*`, or empty).
    NotOriginForm,
    /// A `%` not followed by two hex digits: upstreams disagree on what it
    /// means (kept, refused, or IIS's `%u002e`).
    MalformedEscape,
    /// `%2F` inside a segment: nginx and Express decode it into a separator.
    EncodedSlash,
    /// A raw `\` or `%5C`: Tomcat, Spring, IIS and browsers treat it as `/`.
    Backslash,
    /// `;` raw or as `%3B`: Tomcat, Jetty and Spring strip `;...` from a
    /// segment, so `/admin;x/` is `/admin/` and `..;` is `..`.
    PathParameters,
    /// `%3F` or `%23`: a decoding proxy in front of the application
    /// forwards them as `?` and `#`, which end the path.
    EncodedDelimiter,
    /// `%00` to `%1F` or `%7F`: NUL truncates paths in C code; CR and LF
    /// split log lines and headers built from the path.
    ControlCharacter,
    /// `%25` followed by two hex digits (`%2561`): an upstream that decodes
    /// twice reads `a`.
    DoubleEncoding,
    /// The decoded bytes are not UTF-8 (including overlong forms such as
    /// `%C0%AE`, which old decoders read as `.`).
    NotUtf8,
    /// A `.` or `..` segment, plain or encoded: it could step out of the
    /// route's prefix upstream. Browsers resolve them before sending.
    DotSegment,
    /// A segment starting or ending with a space: Spring's path matcher trims
    /// tokens (CVE-2016-5007), so `/admin%20` matched `/admin`.
    EdgeSpace,
}

/// Each rejection's `error` code and message, written once for the message
/// (configuration problems) and the static JSON body of the 400.
macro_rules! rejection_texts {
    ($($variant:ident => $code:literal, $message:literal;)*) => {
        impl PathRejection {
            /// What is wrong, for people.
            pub fn message(self) -> &'static str {
                match self { $(Self::$variant => $message,)* }
            }

            /// The JSON body of the gateway's 400.
            pub fn body(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!(
                        r#"{"error":""#, $code, r#"","message":""#, $message, r#""}"#
                    ),)*
                }
            }
        }
    };
}

rejection_texts! {
    NotOriginForm => "not_origin_form", "the request target must be a path starting with /";
    MalformedEscape => "malformed_escape", "a % in the path is not followed by two hex digits";
    EncodedSlash => "encoded_slash", "the path contains an encoded / (%2F)";
    Backslash => "backslash", "the path contains a backslash, raw or as %5C";
    PathParameters => "path_parameters", "the path contains ; (segment parameters), raw or as %3B";
    EncodedDelimiter => "encoded_delimiter", "the path contains an encoded ? or # (%3F, %23)";
    ControlCharacter => "control_character", "the path contains an encoded control character or NUL";
    DoubleEncoding => "double_encoding", "the path is percent-encoded twice (%25 followed by hex)";
    NotUtf8 => "not_utf8", "the decoded path is not UTF-8";
    DotSegment => "dot_segments", "the path contains . or .. segments; send the normalized path";
    EdgeSpace => "edge_space", "a path segment starts or ends with a space";
}

/// The normal form of `raw` (see the module documentation), borrowed when
/// `raw` is already normal, which is the common case and allocates nothing.
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, PathRejection> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(PathRejection::NotOriginForm);
    };
    if is_normal(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut normal = String::with_capacity(raw.len());
    for segment in rest.split('/') {
        if segment.is_empty() {
            continue;
        }
        let decoded = decode_segment(segment)?;
        normal.push('/');
        normal.extend(percent_encode(&decoded, ENCODED));
    }
    if raw.ends_with('/') || normal.is_empty() {
        normal.push('/');
    }
    Ok(Cow::Owned(normal))
}

/// Whether `path` (starting with `/`) is already in normal form: plain bytes
/// and single `/` only, and no dot segment.
fn is_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().all(|&b| b == b'/' || is_plain(b))
        && !bytes.windows(2).any(|pair| pair == b"//")
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
}

/// One raw segment (between two raw `/`), checked and decoded.
fn decode_segment(segment: &str) -> Result<Cow<'_, [u8]>, PathRejection> {
    let raw = segment.as_bytes();
    for (at, _) in segment.match_indices('%') {
        let escape = raw.get(at + 1..at + 3);
        if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
            return Err(PathRejection::MalformedEscape);
        }
    }
    // Raw and decoded bytes are checked together: `\` and `%5C` alike.
    let decoded: Cow<'_, [u8]> = percent_decode(raw).into();
    for (at, &byte) in decoded.iter().enumerate() {
        let rejection = match byte {
            b'/' => PathRejection::EncodedSlash,
            b'\\' => PathRejection::Backslash,
            b';' => PathRejection::PathParameters,
            b'?' | b'#' => PathRejection::EncodedDelimiter,
            0..=0x1f | 0x7f => PathRejection::ControlCharacter,
            b'%' if decoded
                .get(at + 1..at + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) =>
            {
                PathRejection::DoubleEncoding
            }
            _ => continue,
        };
        return Err(rejection);
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(PathRejection::NotUtf8);
    }
    if matches!(&decoded[..], b"." | b"..") {
        return Err(PathRejection::DotSegment);
    }
    if decoded.first() == Some(&b' ') || decoded.last() == Some(&b' ') {
        return Err(PathRejection::EdgeSpace);
    }
    Ok(decoded)
}

/// The widest reading an upstream, or a chain of them, could make of a path
/// that [`normalize`] refuses: decoded up to [`DECODING_ROUNDS`] times, cut
/// at a decoded `?` or `#`, `\` taken as `/`, `;...` stripped from each
/// segment, `//` merged. Routing a refused path on this reading is what
/// keeps a `path_normalization = "off"` route from reaching another route's
/// resources: the route is the one the most permissive upstream would pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidestReading {
    /// The reading, in normal-form encoding, to match route prefixes against.
    pub path: String,
    /// Whether a segment of the reading is `.` or `..`.
    pub dot_segments: bool,
}

/// See [`WidestReading`].
pub fn widest_reading(raw: &str) -> WidestReading {
    let mut bytes: Cow<'_, [u8]> = Cow::Borrowed(raw.as_bytes());
    for _ in 0..DECODING_ROUNDS {
        if !bytes.contains(&b'%') {
            break;
        }
        let decoded: Vec<u8> = percent_decode(&bytes).collect();
        if decoded.len() == bytes.len() {
            break;
        }
        bytes = Cow::Owned(decoded);
    }
    let end = bytes
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(bytes.len());
    let bytes = &bytes[..end];
    let mut path = String::with_capacity(bytes.len() + 1);
    let mut dot_segments = false;
    for segment in bytes.split(|&b| b == b'/' || b == b'\\') {
        let segment = match segment.iter().position(|&b| b == b';') {
            Some(at) => &segment[..at],
            None => segment,
        };
        if segment.is_empty() {
            continue;
        }
        dot_segments |= segment == b"." || segment == b"..";
        path.push('/');
        path.extend(percent_encode(segment, ENCODED));
    }
    if bytes.ends_with(b"/") || bytes.ends_with(b"\\") || path.is_empty() {
        path.push('/');
    }
    WidestReading { path, dot_segments }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn normal(raw: &str) -> String {
        match normalize(raw) {
            Ok(path) => path.into_owned(),
            Err(rejection) => panic!("{raw:?} refused: {rejection:?}"),
        }
    }

    fn refused(raw: &str) -> PathRejection {
        match normalize(raw) {
            Ok(path) => panic!("{raw:?} accepted as {path:?}"),
            Err(rejection) => rejection,
        }
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for path in [
            "/",
            "/api/items",
            "/api/",
            "/a/.well-known/x",
            "/a/...",
            "/a:b@c+d",
        ] {
            assert!(
                matches!(normalize(path), Ok(Cow::Borrowed(p)) if p == path),
                "{path}"
            );
        }
    }

    #[test]
    fn decodes_what_upstreams_decode_and_merges_slashes() {
        assert_eq!(normal("/api/%61dmin/users"), "/api/admin/users");
        assert_eq!(normal("/api/%41dmin"), "/api/Admin");
        assert_eq!(normal("/%69nternal"), "/internal");
        assert_eq!(normal("/api//admin//users"), "/api/admin/users");
        assert_eq!(normal("//internal"), "/internal");
        assert_eq!(normal("//"), "/");
        assert_eq!(normal("/a//"), "/a/");
        assert_eq!(normal("/a%3Ab%2bc%40d%7e"), "/a:b+c@d~");
        assert_eq!(normal("/%2e%2e%2e"), "/...");
    }

    #[test]
    fn keeps_the_rest_encoded_with_upper_case_hex() {
        assert_eq!(normal("/a%20b"), "/a%20b");
        assert_eq!(normal("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(normal("/café"), "/caf%C3%A9");
        assert_eq!(normal("/{x}|y"), "/%7Bx%7D%7Cy");
        assert_eq!(normal("/100%25"), "/100%25");
        assert_eq!(normal("/100%25zz"), "/100%25zz");
    }

    #[test]
    fn refuses_what_an_upstream_could_reinterpret() {
        for (raw, rejection) in [
            ("*", PathRejection::NotOriginForm),
            ("", PathRejection::NotOriginForm),
            ("/a%2", PathRejection::MalformedEscape),
            ("/a%zz", PathRejection::MalformedEscape),
            ("/a%u002e", PathRejection::MalformedEscape),
            ("/api/admin%2fusers", PathRejection::EncodedSlash),
            ("/api/admin%2Fusers", PathRejection::EncodedSlash),
            ("/a\\b", PathRejection::Backslash),
            ("/a%5cb", PathRejection::Backslash),
            ("/admin;x/", PathRejection::PathParameters),
            ("/a/..;/b", PathRejection::PathParameters),
            ("/a%3bb", PathRejection::PathParameters),
            ("/internal%3f", PathRejection::EncodedDelimiter),
            ("/internal%23x", PathRejection::EncodedDelimiter),
            ("/a%00b", PathRejection::ControlCharacter),
            ("/a%0d%0ab", PathRejection::ControlCharacter),
            ("/a%7f", PathRejection::ControlCharacter),
            ("/api/%2561dmin", PathRejection::DoubleEncoding),
            ("/api/%25%36%31dmin", PathRejection::DoubleEncoding),
            ("/a%ff", PathRejection::NotUtf8),
            ("/a%c0%ae", PathRejection::NotUtf8),
            ("/a%ed%a0%80", PathRejection::NotUtf8),
            ("/a/../b", PathRejection::DotSegment),
            ("/a/./b", PathRejection::DotSegment),
            ("/..", PathRejection::DotSegment),
            ("/a/%2e%2E/b", PathRejection::DotSegment),
            ("/a/.%2e", PathRejection::DotSegment),
            ("/internal%20", PathRejection::EdgeSpace),
            ("/%20internal", PathRejection::EdgeSpace),
        ] {
            assert_eq!(refused(raw), rejection, "{raw:?}");
        }
    }

    #[test]
    fn the_encoded_set_is_the_complement_of_plain_bytes() {
        for byte in 0u8..0x80 {
            let encoded = percent_encode(&[byte], ENCODED).to_string();
            assert_eq!(encoded.len() == 1, is_plain(byte), "byte {byte:#04x}");
        }
    }

    #[test]
    fn the_widest_reading_decodes_strips_and_merges() {
        let reading = |raw: &str| widest_reading(raw).path;
        assert_eq!(reading("/files/a;x/b"), "/files/a/b");
        assert_eq!(reading("/files/%2561dmin"), "/files/admin");
        assert_eq!(reading("/a%2fb\\c//d/"), "/a/b/c/d/");
        assert_eq!(reading("/internal%3f.css"), "/internal");
        assert_eq!(reading("*"), "/*");
        assert!(widest_reading("/files/%252e%252e/x").dot_segments);
        assert!(widest_reading("/files/..;/x").dot_segments);
        assert!(widest_reading("/files/..%5cx").dot_segments);
        assert!(!widest_reading("/files/...").dot_segments);
    }

    fn path_like() -> impl Strategy<Value = String> {
        // Weighted so that most paths normalize and the properties below
        // are exercised, while every kind of refusal still shows up.
        let piece = prop_oneof![
            10 => "[a-zA-Z0-9._~:@!$&'()*+,=-]{1,4}",
            4 => Just("/".to_owned()),
            2 => Just("//".to_owned()),
            1 => Just(".".to_owned()),
            1 => Just("..".to_owned()),
            1 => Just(";".to_owned()),
            1 => Just("\\".to_owned()),
            4 => "%[2-7][0-9a-fA-F]",
            2 => "%[0-9a-fA-F]{2}",
            1 => "%25[0-9a-fA-F]{2}",
            1 => "%[0-9a-zA-Z]?",
            3 => "[ \"{}|^\\[\\]é€]",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
    }

    proptest! {
        // About a third of the generated paths normalize.
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn normalization_is_idempotent_and_canonical(raw in path_like()) {
            if let Ok(once) = normalize(&raw) {
                let twice = normalize(&once);
                prop_assert_eq!(twice.as_deref(), Ok(&*once));
                prop_assert!(once.starts_with('/'));
                prop_assert!(!once.contains("//"), "{}", once);
                prop_assert!(!once.split('/').any(|s| s == "." || s == ".."), "{}", once);
                for (at, _) in once.match_indices('%') {
                    let hex = &once[at + 1..at + 3];
                    let byte = u8::from_str_radix(hex, 16).expect("hex");
                    prop_assert!(!is_plain(byte), "{} keeps %{} encoded", once, hex);
                    prop_assert_eq!(hex.to_ascii_uppercase(), hex);
                }
                // Routing on the normal form agrees with routing on the
                // decoded path: the widest reading adds nothing.
                prop_assert_eq!(&widest_reading(&raw).path, &*once);
            }
        }

        #[test]
        fn arbitrary_input_never_panics(raw in "\\PC*") {
            let _ = normalize(&raw);
            let _ = widest_reading(&raw);
        }
    }
}
