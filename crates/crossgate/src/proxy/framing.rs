//! Message framing at the gateway's two edges: a message whose length two
//! parties could read differently is refused, and what is forwarded carries
//! at most one `Content-Length` line (RFC 9112 §6.3, RFC 9110 §8.6,
//! RFC 9113 §8.1.1), so the gateway and the next hop always agree on where a
//! message ends.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, StatusCode};

/// Why a message's framing was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A `Content-Length` value is not a decimal number of octets.
    #[error("a Content-Length value is not a decimal length")]
    InvalidLength,
    /// `Content-Length` lines (or list members) declare different lengths.
    #[error("Content-Length values differ")]
    DifferingLengths,
    /// Both `Content-Length` and `Transfer-Encoding`: the classic smuggling pair.
    #[error("both Content-Length and Transfer-Encoding are present")]
    LengthAndTransferEncoding,
    /// A 1xx other than 100 and 103, which no browser-facing answer needs.
    #[error("unexpected informational status {0}")]
    UnexpectedInformational(u16),
    /// `101 Switching Protocols` to a request that asked for no upgrade (the
    /// gateway forwards `Upgrade` only for a WebSocket handshake, whose `101`
    /// [`crate::proxy::upstream::forward`] accepts before this check).
    #[error(
        "101 Switching Protocols to a request that asked for no upgrade, or to another protocol"
    )]
    UnexpectedUpgrade,
}

/// Leaves exactly one canonical `Content-Length` line when every line and
/// list member declares the same length, and refuses the message otherwise.
///
/// RFC 9110 §8.6 lets a recipient either reject repeated equal values or
/// replace them with one; replacing keeps well-meant duplicates (added by a
/// proxy that combined lines) working while the next hop can only ever see
/// one length, whatever its parser does with `01` or a second line.
/// Differing or non-decimal values are always refused. (hyper's HTTP/1 parser
/// and the h2 crate refuse those already; this check does not depend on it.)
pub fn normalize_content_length(headers: &mut HeaderMap) -> Result<(), FramingError> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return Ok(());
    };
    // The common case, one plain canonical value, is left untouched.
    if values.next().is_none() && is_canonical(first.as_bytes()) {
        return Ok(());
    }
    let length = declared_length(headers)?;
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    Ok(())
}

/// Checks an upstream response head before anything of it is forwarded.
pub fn check_response(status: StatusCode, headers: &mut HeaderMap) -> Result<(), FramingError> {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        // Only a WebSocket handshake asks for a 101, and its answer is
        // accepted before this check when it switches to WebSocket.
        return Err(FramingError::UnexpectedUpgrade);
    }
    if headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH) {
        return Err(FramingError::LengthAndTransferEncoding);
    }
    normalize_content_length(headers)
}

/// Whether an informational status may precede the final answer: `100
/// Continue` and `103 Early Hints`. hyper's client consumes every 1xx itself;
/// others (102, 104..199) are refused as a sign of a confused upstream.
pub fn is_expected_informational(status: StatusCode) -> bool {
    matches!(status.as_u16(), 100 | 103)
}

fn is_canonical(value: &[u8]) -> bool {
    match value {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() < 19 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// The one length every `Content-Length` line and list member agrees on.
/// Hand-written because neither `http` nor hyper exposes hyper's parser; the
/// grammar is RFC 9110's `1*DIGIT`, members separated by `,` and optional
/// whitespace.
fn declared_length(headers: &HeaderMap) -> Result<u64, FramingError> {
    let mut agreed: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for member in value.as_bytes().split(|byte| *byte == b',') {
            let digits = member.trim_ascii();
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(FramingError::InvalidLength);
            }
            let length = digits.iter().try_fold(0u64, |sum, digit| {
                sum.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
            });
            let Some(length) = length else {
                return Err(FramingError::InvalidLength);
            };
            match agreed {
                Some(previous) if previous != length => return Err(FramingError::DifferingLengths),
                _ => agreed = Some(length),
            }
        }
    }
    agreed.ok_or(FramingError::InvalidLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lengths: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for length in lengths {
            headers.append(
                CONTENT_LENGTH,
                HeaderValue::from_str(length).expect("value"),
            );
        }
        headers
    }

    fn normalized(lengths: &[&str]) -> Result<Vec<String>, FramingError> {
        let mut headers = headers(lengths);
        normalize_content_length(&mut headers)?;
        Ok(headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect())
    }

    #[test]
    fn equal_lengths_become_one_canonical_line() {
        assert_eq!(normalized(&[]), Ok(vec![]));
        assert_eq!(normalized(&["5"]), Ok(vec!["5".to_owned()]));
        assert_eq!(normalized(&["1", "01"]), Ok(vec!["1".to_owned()]));
        assert_eq!(normalized(&["7, 7"]), Ok(vec!["7".to_owned()]));
        assert_eq!(normalized(&["000"]), Ok(vec!["0".to_owned()]));
    }

    #[test]
    fn differing_or_invalid_lengths_are_refused() {
        assert_eq!(normalized(&["1", "2"]), Err(FramingError::DifferingLengths));
        assert_eq!(normalized(&["3, 4"]), Err(FramingError::DifferingLengths));
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            "0x10",
            "1 2",
            "99999999999999999999",
            "1,",
        ] {
            assert_eq!(
                normalized(&[bad]),
                Err(FramingError::InvalidLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn responses_with_both_framings_or_an_unasked_upgrade_are_refused() {
        let mut both = headers(&["5"]);
        both.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        assert_eq!(
            check_response(StatusCode::OK, &mut both),
            Err(FramingError::LengthAndTransferEncoding)
        );
        assert_eq!(
            check_response(StatusCode::SWITCHING_PROTOCOLS, &mut HeaderMap::new()),
            Err(FramingError::UnexpectedUpgrade)
        );
        assert!(is_expected_informational(StatusCode::CONTINUE));
        assert!(is_expected_informational(StatusCode::EARLY_HINTS));
        assert!(!is_expected_informational(StatusCode::PROCESSING));
    }
}
