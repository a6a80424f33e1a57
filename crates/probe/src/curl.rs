//! `crossgate check --curl '…'`: the request of a DevTools "Copy as cURL
//! (bash)" command, as the fetch a script made.
//!
//! DevTools copies every header the browser sent, its own among them. Those
//! the browser sets itself (forbidden headers, `User-Agent`, `Sec-*`,
//! `Accept-Language`, ...) are set aside and listed, never taken as the
//! script's: they would wrongly count as non-safelisted headers and predict a
//! preflight the browser never sends. `Origin` gives the page's origin
//! (`Referer` when there is none); a `Cookie` header or `-b` means the script
//! used `credentials: 'include'`.

use http::HeaderName;
use serde::Serialize;

use crate::check::CheckInput;
use crossgate_cors::browser::{self, Engine};

/// A header of the command that the browser, not the script, set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredHeader {
    /// The header's name, lowercase.
    pub name: String,
    /// Why it is not the script's.
    pub reason: &'static str,
}

/// The fetch read from the command, and what was set aside.
#[derive(Debug, Clone)]
pub struct CurlFetch {
    /// The fetch, for [`check_with`](crate::check::check_with).
    pub input: CheckInput,
    /// Headers the browser set itself, in command order.
    pub ignored: Vec<IgnoredHeader>,
    /// Where the page's origin came from.
    pub origin_from: &'static str,
}

/// Why a command could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurlError {
    /// Unbalanced quotes or the like.
    #[error("the curl command is not valid shell syntax (unbalanced quotes?)")]
    Syntax,
    /// It does not start with `curl`.
    #[error("the command must start with `curl` (DevTools: Network, right-click the request, Copy as cURL (bash))")]
    NotCurl,
    /// An option this reader does not know.
    #[error("curl option `{0}` is not supported here; remove it (DevTools' Copy as cURL (bash) never writes it)")]
    Unsupported(String),
    /// An option without its value.
    #[error("curl option `{0}` needs a value")]
    MissingValue(String),
    /// No URL, or two.
    #[error("the curl command must name exactly one URL")]
    Url,
    /// `-H` without a colon.
    #[error("`{0}` is not a header: curl writes them as 'name: value'")]
    Header(String),
    /// `-d @file` reads a file this command cannot see.
    #[error("`{0} @FILE` reads the body from a file; paste the body with --data-raw instead")]
    BodyFile(String),
    /// The page's origin is unknown.
    #[error("the command has no Origin (nor Referer) header, so the page's origin is unknown: pass --origin")]
    NoOrigin,
}

/// Options that take no value and change nothing about the fetch.
const IGNORED_FLAGS: [&str; 12] = [
    "--compressed",
    "-s",
    "--silent",
    "-i",
    "--include",
    "-k",
    "--insecure",
    "-L",
    "--location",
    "-v",
    "--verbose",
    "--http1.1",
];

/// Body options; several are joined with `&`, as curl does.
const DATA_OPTIONS: [&str; 6] = [
    "-d",
    "--data",
    "--data-raw",
    "--data-binary",
    "--data-ascii",
    "--json",
];

/// Reads a "Copy as cURL (bash)" command. `origin` (from `--origin`)
/// overrides the command's `Origin` header.
pub fn parse_curl(
    command: &str,
    origin: Option<&str>,
    engine: Engine,
) -> Result<CurlFetch, CurlError> {
    let words = shlex::split(&bash_to_posix(command)).ok_or(CurlError::Syntax)?;
    let mut words = words.into_iter();
    if words.next().as_deref() != Some("curl") {
        return Err(CurlError::NotCurl);
    }
    let mut url: Option<String> = None;
    let mut method: Option<String> = None;
    let mut raw_headers: Vec<(String, String)> = Vec::new();
    let mut body: Option<String> = None;
    let mut cookies = false;
    while let Some(word) = words.next() {
        let mut value = |name: &str| {
            words
                .next()
                .ok_or_else(|| CurlError::MissingValue(name.to_owned()))
        };
        match word.as_str() {
            "-X" | "--request" => method = Some(value(&word)?),
            "-H" | "--header" => {
                let header = value(&word)?;
                let (name, v) = header
                    .split_once(':')
                    .filter(|(n, _)| !n.trim().is_empty())
                    .ok_or_else(|| CurlError::Header(header.clone()))?;
                raw_headers.push((name.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
            "-b" | "--cookie" => {
                value(&word)?;
                cookies = true;
            }
            "--url" => {
                let u = value(&word)?;
                if url.replace(u).is_some() {
                    return Err(CurlError::Url);
                }
            }
            w if DATA_OPTIONS.contains(&w) => {
                let data = value(&word)?;
                if data.starts_with('@') && w != "--data-raw" {
                    return Err(CurlError::BodyFile(word));
                }
                body = Some(match body {
                    Some(earlier) => format!("{earlier}&{data}"),
                    None => data,
                });
            }
            w if IGNORED_FLAGS.contains(&w) => {}
            w if w.starts_with('-') => return Err(CurlError::Unsupported(word)),
            _ => {
                if url.replace(word).is_some() {
                    return Err(CurlError::Url);
                }
            }
        }
    }
    let url = url.ok_or(CurlError::Url)?;

    let mut headers = Vec::new();
    let mut ignored = Vec::new();
    let mut origin_header = None;
    let mut referer = None;
    for (name, value) in raw_headers {
        match browser_set(&name, &value) {
            Some(reason) => {
                match name.as_str() {
                    "origin" => origin_header = Some(value),
                    "referer" => referer = Some(value),
                    "cookie" => cookies = true,
                    _ => {}
                }
                ignored.push(IgnoredHeader { name, reason });
            }
            None => headers.push((name, value)),
        }
    }
    let (origin, origin_from) = match (origin, origin_header, referer) {
        (Some(o), _, _) => (o.to_owned(), "--origin"),
        (None, Some(o), _) => (o, "the Origin header"),
        (None, None, Some(r)) => (
            r.parse::<http::Uri>()
                .ok()
                .and_then(|u| browser::serialize_origin(&u))
                .ok_or(CurlError::NoOrigin)?,
            "the Referer header (the command has no Origin)",
        ),
        (None, None, None) => return Err(CurlError::NoOrigin),
    };
    let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_owned());
    Ok(CurlFetch {
        input: CheckInput {
            url,
            origin,
            method,
            headers,
            body,
            credentials: cookies,
            engine,
        },
        ignored,
        origin_from,
    })
}

/// Why header `name` (lowercase) with `value` is the browser's, not the script's.
pub(crate) fn browser_set(name: &str, value: &str) -> Option<&'static str> {
    match name {
        "origin" => return Some("the browser sets it; it gives the page's origin"),
        "referer" => return Some("the browser sets it"),
        "cookie" => {
            return Some("the browser sends cookies; their presence means credentials: 'include'")
        }
        "user-agent"
        | "accept-language"
        | "priority"
        | "upgrade-insecure-requests"
        | "x-client-data" => return Some("the browser sets it on every request"),
        "accept" if value == "*/*" => return Some("fetch()'s default Accept"),
        "pragma" | "cache-control" if value == "no-cache" => {
            return Some("DevTools' \"Disable cache\" adds it")
        }
        _ => {}
    }
    let header = HeaderName::from_bytes(name.as_bytes()).ok()?;
    browser::is_forbidden_request_header(&header, value.as_bytes())
        .then_some("a forbidden header: only the browser sets it")
}

/// Joins backslash-newline continued lines and rewrites bash's ANSI-C quoted
/// words (`$'…'`, which Copy as cURL (bash) writes for values holding a
/// quote, a newline or non-ASCII) as single-quoted words, which shlex reads.
/// shlex knows neither; this handles the
/// escapes DevTools writes (`\\`, `\'`, `\"`, `\n`, `\r`, `\t`, `\xHH`,
/// `\uHHHH`) and keeps any other backslash sequence as it is.
fn bash_to_posix(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    let mut chars = command.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '$') if chars.peek() == Some(&'\'') => {
                chars.next();
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\'' => break,
                        '\\' => match chars.next() {
                            Some('n') => text.push('\n'),
                            Some('r') => text.push('\r'),
                            Some('t') => text.push('\t'),
                            Some('x') => push_code(&mut text, &mut chars, 2, 'x'),
                            Some('u') => push_code(&mut text, &mut chars, 4, 'u'),
                            Some(other @ ('\\' | '\'' | '"')) => text.push(other),
                            Some(other) => {
                                text.push('\\');
                                text.push(other);
                            }
                            None => text.push('\\'),
                        },
                        other => text.push(other),
                    }
                }
                // Close, escape a quote as '\'' and reopen: plain POSIX quoting.
                out.push('\'');
                out.push_str(&text.replace('\'', "'\\''"));
                out.push('\'');
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            // A backslash-newline outside quotes continues the line.
            (None, '\\') => match chars.next() {
                Some('\n') => {}
                Some('\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                }
                Some(next) => {
                    out.push(c);
                    out.push(next);
                }
                None => out.push(c),
            },
            (Some('"'), '\\') => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `\xHH` or `\uHHHH`: up to `digits` hex digits as one character.
fn push_code(
    text: &mut String,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    digits: usize,
    letter: char,
) {
    let mut hex = String::new();
    while hex.len() < digits && chars.peek().is_some_and(char::is_ascii_hexdigit) {
        hex.extend(chars.next());
    }
    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
        Some(c) => text.push(c),
        None => {
            text.push('\\');
            text.push(letter);
            text.push_str(&hex);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Chromium's "Copy as cURL (bash)" writes for a credentialed JSON PUT.
    const CHROMIUM: &str = r#"curl 'https://api.example.com/items/1' \
  -X 'PUT' \
  -H 'accept: */*' \
  -H 'accept-language: en-US,en;q=0.9' \
  -H 'authorization: Bearer abc' \
  -H 'content-type: application/json' \
  -b 'session=s3cret; theme=dark' \
  -H 'origin: https://app.example.com' \
  -H 'priority: u=1, i' \
  -H 'referer: https://app.example.com/page' \
  -H 'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"' \
  -H 'sec-ch-ua-mobile: ?0' \
  -H 'sec-fetch-dest: empty' \
  -H 'sec-fetch-mode: cors' \
  -H 'sec-fetch-site: same-site' \
  -H 'user-agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0' \
  -H 'x-request-id: 7' \
  --data-raw $'{"name":"it\'s","n":1}'"#;

    #[test]
    fn a_chromium_copy_gives_the_script_s_fetch() {
        let fetch = parse_curl(CHROMIUM, None, Engine::Chromium).unwrap();
        let input = &fetch.input;
        assert_eq!(input.url, "https://api.example.com/items/1");
        assert_eq!(input.method, "PUT");
        assert_eq!(input.origin, "https://app.example.com");
        assert!(input.credentials);
        assert_eq!(input.body.as_deref(), Some(r#"{"name":"it's","n":1}"#));
        let names: Vec<&str> = input.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["authorization", "content-type", "x-request-id"]);
        let ignored: Vec<&str> = fetch.ignored.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            ignored,
            [
                "accept",
                "accept-language",
                "origin",
                "priority",
                "referer",
                "sec-ch-ua",
                "sec-ch-ua-mobile",
                "sec-fetch-dest",
                "sec-fetch-mode",
                "sec-fetch-site",
                "user-agent"
            ]
        );
    }

    #[test]
    fn without_origin_the_referer_gives_it_and_data_means_post() {
        let fetch = parse_curl(
            "curl 'http://127.0.0.1:9/x' -H 'Referer: http://localhost:3000/a/b?c' --data-raw 'a=1' --compressed",
            None,
            Engine::Chromium,
        )
        .unwrap();
        assert_eq!(fetch.input.origin, "http://localhost:3000");
        assert_eq!(fetch.input.method, "POST");
        assert!(!fetch.input.credentials);
        assert!(fetch.origin_from.contains("Referer"));
    }

    #[test]
    fn bad_commands_get_a_clear_error() {
        let e = |c: &str| parse_curl(c, None, Engine::Chromium).unwrap_err();
        assert_eq!(e("wget https://x"), CurlError::NotCurl);
        assert_eq!(e("curl 'https://x"), CurlError::Syntax);
        assert_eq!(
            e("curl https://x -H 'origin: https://a' -F a=b"),
            CurlError::Unsupported("-F".into())
        );
        assert_eq!(e("curl https://x"), CurlError::NoOrigin);
        assert_eq!(
            e("curl https://x https://y -H 'origin: https://a'"),
            CurlError::Url
        );
        assert_eq!(
            e("curl https://x -H 'origin: https://a' -d @body.json"),
            CurlError::BodyFile("-d".into())
        );
        assert_eq!(e("curl https://x -H"), CurlError::MissingValue("-H".into()));
    }

    #[test]
    fn ansi_c_quotes_are_read_like_bash() {
        assert_eq!(
            bash_to_posix(r"a $'x\ny\'z\u00e9' 'q\'"),
            "a 'x\ny'\\''z\u{e9}' 'q\\'"
        );
        assert_eq!(
            shlex::split(&bash_to_posix(r#"curl $'it\'s' "$'no'""#)).unwrap(),
            ["curl", "it's", "$'no'"]
        );
    }
}
