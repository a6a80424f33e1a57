//! HTTP tokens, and a copy of one that lives on the stack.

use std::fmt;

/// `tchar` as a table: one load per byte instead of a chain of range checks,
/// which made token checks the largest part of a preflight's decision.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
            | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
        b += 1;
    }
    table
};

/// Whether `b` may appear in an HTTP token (RFC 9110, `tchar`).
pub(crate) const fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// Whether `s` is a non-empty HTTP token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The longest name a [`TokenText`] keeps; longer ones are cut and marked.
const TOKEN_TEXT_CAPACITY: usize = 64;

/// A method or header name copied out of a request into a fixed-size inline
/// buffer, so that a [`Denial`](crate::Denial) can say which name was refused
/// without allocating. Names longer than 64 bytes are cut, and the cut is
/// shown with a trailing `…`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenText {
    bytes: [u8; TOKEN_TEXT_CAPACITY],
    len: u8,
    truncated: bool,
}

impl TokenText {
    /// Copies `name`; bytes that are not visible ASCII are replaced with `?`
    /// so that the text is always safe to log.
    pub fn new(name: &[u8]) -> Self {
        let mut bytes = [0u8; TOKEN_TEXT_CAPACITY];
        let len = name.len().min(TOKEN_TEXT_CAPACITY);
        for (slot, &b) in bytes.iter_mut().zip(&name[..len]) {
            *slot = if b.is_ascii_graphic() { b } else { b'?' };
        }
        Self {
            bytes,
            len: len as u8,
            truncated: name.len() > TOKEN_TEXT_CAPACITY,
        }
    }

    /// The (possibly cut) name.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever stored, which is valid UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }

    /// Whether the name was longer than what is kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenText({self})")
    }
}

/// Why a comma-separated list of tokens was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListError {
    /// An element that is not a token.
    NotAToken,
    /// More empty elements than a browser would ever send.
    TooManyEmpty,
    /// More names than a browser would ever send.
    TooManyNames,
}

/// Browsers send no empty elements; a few are tolerated from hand-written
/// clients, and more end the parse at once so that a header of a megabyte of
/// commas costs no more than a short one.
pub(crate) const MAX_EMPTY_ELEMENTS: usize = 16;
/// A generous bound on the names of one `Access-Control-Request-Headers`: a
/// page that sets more custom headers than this is not a real client.
pub(crate) const MAX_LIST_NAMES: usize = 64;

/// Walks a comma-separated list of tokens (RFC 9110 `#token`) in one bounded
/// pass, calling `visit` on each name with optional whitespace removed.
/// Stops at the first error, or when `visit` returns `false`.
pub(crate) struct TokenList {
    empty: usize,
    names: usize,
}

impl TokenList {
    pub(crate) fn new() -> Self {
        Self { empty: 0, names: 0 }
    }

    /// Feeds one header line; several lines of the same header are one list.
    pub(crate) fn feed<F>(&mut self, line: &[u8], mut visit: F) -> Result<bool, ListError>
    where
        F: FnMut(&[u8]) -> bool,
    {
        for element in line.split(|&b| b == b',') {
            let name = trim_http_whitespace(element);
            if name.is_empty() {
                self.empty += 1;
                if self.empty > MAX_EMPTY_ELEMENTS {
                    return Err(ListError::TooManyEmpty);
                }
                continue;
            }
            if !is_token(name) {
                return Err(ListError::NotAToken);
            }
            self.names += 1;
            if self.names > MAX_LIST_NAMES {
                return Err(ListError::TooManyNames);
            }
            if !visit(name) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// How many names were seen.
    pub(crate) fn names(&self) -> usize {
        self.names
    }
}

/// `bytes` without leading and trailing HTTP whitespace (space, tab, CR, LF).
/// Header values cannot hold CR or LF, so on them this is the OWS trim of
/// RFC 9110; `Headers.append()` input can, and Fetch strips those too.
pub(crate) fn trim_http_whitespace(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(lines: &[&[u8]]) -> Result<Vec<String>, ListError> {
        let mut list = TokenList::new();
        let mut out = Vec::new();
        for line in lines {
            list.feed(line, |n| {
                out.push(String::from_utf8_lossy(n).into_owned());
                true
            })?;
        }
        Ok(out)
    }

    #[test]
    fn lists_accept_whitespace_case_and_several_lines() {
        assert_eq!(
            collect(&[b" X-Foo ,\tcontent-type", b"x-bar"]).unwrap(),
            ["X-Foo", "content-type", "x-bar"]
        );
        assert_eq!(collect(&[b"a,,b"]).unwrap(), ["a", "b"]);
        assert_eq!(collect(&[b""]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn lists_refuse_non_tokens() {
        assert_eq!(collect(&[b"x foo"]), Err(ListError::NotAToken));
        assert_eq!(collect(&[b"x/foo"]), Err(ListError::NotAToken));
        assert_eq!(collect(&[b"caf\xc3\xa9"]), Err(ListError::NotAToken));
    }

    #[test]
    fn tchar_is_exactly_the_rfc_9110_set() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn a_megabyte_of_commas_stops_after_a_few_bytes() {
        let commas = vec![b','; 1 << 20];
        let mut list = TokenList::new();
        let mut seen = 0usize;
        let result = list.feed(&commas, |_| {
            seen += 1;
            true
        });
        assert_eq!(result, Err(ListError::TooManyEmpty));
        assert_eq!(seen, 0);
    }

    #[test]
    fn ten_thousand_names_are_refused() {
        let many = "x-a,".repeat(10_000);
        assert_eq!(collect(&[many.as_bytes()]), Err(ListError::TooManyNames));
    }

    #[test]
    fn token_text_is_bounded_and_printable() {
        let long = [b'a'; 100];
        let text = TokenText::new(&long);
        assert!(text.is_truncated());
        assert_eq!(text.as_str().len(), 64);
        assert!(text.to_string().ends_with('…'));
        assert_eq!(TokenText::new(b"x\x01y").as_str(), "x?y");
    }
}
