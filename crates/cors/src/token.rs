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
    ///
    /// `known` is asked first about each name: when it returns `true` the name
    /// is accepted without the byte-by-byte token check, so it must only
    /// accept names that are tokens (an exact match against a validated
    /// list). Every other name is checked to be a token and then `visit`ed.
    pub(crate) fn feed<K, F>(
        &mut self,
        line: &[u8],
        known: K,
        mut visit: F,
    ) -> Result<bool, ListError>
    where
        K: Fn(&[u8]) -> bool,
        F: FnMut(&[u8]) -> bool,
    {
        let mut rest = line;
        loop {
            let (element, next) = match find_comma(rest) {
                Some(comma) => (&rest[..comma], Some(&rest[comma + 1..])),
                None => (rest, None),
            };
            let name = trim_http_whitespace(element);
            if name.is_empty() {
                self.empty += 1;
                if self.empty > MAX_EMPTY_ELEMENTS {
                    return Err(ListError::TooManyEmpty);
                }
            } else {
                let accepted = known(name);
                if !accepted && !is_token(name) {
                    return Err(ListError::NotAToken);
                }
                self.names += 1;
                if self.names > MAX_LIST_NAMES {
                    return Err(ListError::TooManyNames);
                }
                if !accepted && !visit(name) {
                    return Ok(false);
                }
            }
            match next {
                Some(next) => rest = next,
                None => return Ok(true),
            }
        }
    }

    /// How many names were seen.
    pub(crate) fn names(&self) -> usize {
        self.names
    }
}

/// The first comma in `bytes`, eight bytes at a time: most of a list is
/// names, and a byte-by-byte search was the largest part of its scan.
/// (memchr's SIMD search pays a dispatch per call that lists of a few short
/// names do not win back.)
fn find_comma(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    const COMMAS: u64 = ONES * b',' as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A zero byte of `x` is a comma of the chunk; the lowest set high bit
        // of this classic test marks the first one exactly.
        let x = u64::from_le_bytes(word) ^ COMMAS;
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b',')
        .map(|at| offset + at)
}

/// `bytes` without leading and trailing HTTP whitespace (space, tab, CR, LF).
/// Header values cannot hold CR or LF, so on them this is the OWS trim of
/// RFC 9110; `Headers.append()` input can, and Fetch strips those too.
pub(crate) fn trim_http_whitespace(mut bytes: &[u8]) -> &[u8] {
    let is_ws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    while let [first, rest @ ..] = bytes {
        if !is_ws(*first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !is_ws(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(lines: &[&[u8]]) -> Result<Vec<String>, ListError> {
        let mut list = TokenList::new();
        let mut out = Vec::new();
        for line in lines {
            list.feed(
                line,
                |_| false,
                |n| {
                    out.push(String::from_utf8_lossy(n).into_owned());
                    true
                },
            )?;
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
    fn commas_are_found_at_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut bytes = vec![b'a'; len];
                bytes[at] = b',';
                if at + 1 < len {
                    bytes[at + 1] = b',';
                }
                assert_eq!(find_comma(&bytes), Some(at), "len {len}, comma at {at}");
            }
            assert_eq!(find_comma(&vec![b'a'; len]), None);
            // Bytes next to a comma's value (0x2c) in the word test.
            assert_eq!(find_comma(&vec![0x2d; len]), None);
            assert_eq!(find_comma(&vec![0xac; len]), None);
        }
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
        let result = list.feed(
            &commas,
            |_| false,
            |_| {
                seen += 1;
                true
            },
        );
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
