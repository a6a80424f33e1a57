//! The target list of `crossgate audit --input FILE`: one URL per line;
//! blank lines and `#` comments (whole lines, or after whitespace at the end
//! of a line) are skipped.

use crate::run::parse_target;

/// A line of the list that is not an http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: `{text}` is not an absolute http:// or https:// URL")]
pub struct InputError {
    /// The 1-based line number.
    pub line: usize,
    /// What the line held, comment removed.
    pub text: String,
}

/// The URLs of `text`, in order, each once; the first bad line is an error.
pub fn read_targets(text: &str) -> Result<Vec<String>, InputError> {
    let mut targets: Vec<String> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let url = strip_comment(line).trim();
        if url.is_empty() {
            continue;
        }
        if parse_target(url).is_none() {
            return Err(InputError {
                line: index + 1,
                text: url.to_owned(),
            });
        }
        if !targets.iter().any(|t| t == url) {
            targets.push(url.to_owned());
        }
    }
    Ok(targets)
}

/// The line without its comment: `#` at the start or after whitespace. A
/// `#` glued to a URL stays part of it, for the URL check to judge.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    match cut {
        Some(i) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_repeats_are_skipped() {
        let text = "# APIs\n\nhttps://a.example/api   # the main one\n  http://127.0.0.1:8080/x\nhttps://a.example/api\n";
        assert_eq!(
            read_targets(text).unwrap(),
            ["https://a.example/api", "http://127.0.0.1:8080/x"]
        );
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let err = read_targets("https://a.example\nftp://b.example\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.text, "ftp://b.example");
        assert!(read_targets("not a url").is_err());
    }
}
