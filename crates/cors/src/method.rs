//! Methods: Fetch normalization and compiled method lists.

use std::borrow::Cow;

use http::HeaderValue;

use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use crate::token::is_token;

/// The upper-case name of `method` when it is one of the six that Fetch
/// upper-cases, whatever case a script wrote: DELETE, GET, HEAD, OPTIONS,
/// POST, PUT. Chosen by length first, so at most two names are compared.
fn fetch_normalized(method: &[u8]) -> Option<&'static str> {
    let is = |name: &'static str| method.eq_ignore_ascii_case(name.as_bytes()).then_some(name);
    match method.len() {
        3 => is("GET").or_else(|| is("PUT")),
        4 => is("POST").or_else(|| is("HEAD")),
        6 => is("DELETE"),
        7 => is("OPTIONS"),
        _ => None,
    }
}

/// Methods a browser sends without a preflight.
pub(crate) const SAFELISTED: [&str; 3] = ["GET", "HEAD", "POST"];

/// Normalizes a method name as the Fetch standard does: a case-insensitive
/// match for DELETE, GET, HEAD, OPTIONS, POST or PUT becomes upper case; every
/// other name is kept byte for byte, so `patch` stays `patch`.
///
/// ```
/// use crossgate_cors::normalize_method;
/// assert_eq!(normalize_method("delete"), "DELETE");
/// assert_eq!(normalize_method("patch"), "patch");
/// ```
pub fn normalize_method(method: &str) -> Cow<'_, str> {
    Cow::Borrowed(fetch_normalized(method.as_bytes()).unwrap_or(method))
}

/// `normalize_method` on bytes, without allocating.
pub(crate) fn normalized(method: &[u8]) -> &[u8] {
    fetch_normalized(method).map_or(method, str::as_bytes)
}

pub(crate) fn is_safelisted(normalized_method: &[u8]) -> bool {
    SAFELISTED.iter().any(|m| m.as_bytes() == normalized_method)
}

/// A compiled list of allowed methods and its `Access-Control-Allow-Methods`
/// value, built once and reused for every request.
///
/// A gateway uses it to answer preflights with the methods a *resource*
/// supports (see [`Policy::decide_for`](crate::Policy::decide_for)).
#[derive(Debug, Clone)]
pub struct AllowedMethods {
    rule: MethodRule,
}

#[derive(Debug, Clone)]
pub(crate) enum MethodRule {
    /// `["*"]`: any method token; preflights echo the requested one.
    Any,
    /// Normalized names in the order written, and their header value (none when empty).
    List {
        names: Vec<Box<[u8]>>,
        header: Option<HeaderValue>,
    },
}

impl AllowedMethods {
    /// Compiles a list of method names, or `["*"]`.
    ///
    /// ```
    /// let methods = crossgate_cors::AllowedMethods::new(["GET", "patch"]).unwrap();
    /// assert!(methods.allows("patch"));
    /// assert!(!methods.allows("PATCH"));
    /// assert!(methods.allows("POST")); // safelisted: always allowed
    /// assert!(crossgate_cors::AllowedMethods::new(["TRACE"]).is_err());
    /// ```
    pub fn new<I, S>(methods: I) -> Result<Self, ConfigErrors>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let methods: Vec<String> = methods.into_iter().map(|m| m.as_ref().to_owned()).collect();
        let mut errors = Vec::new();
        let compiled = Self::compile("methods", &methods, &mut errors);
        if errors.is_empty() {
            Ok(compiled)
        } else {
            Err(ConfigErrors::from_vec(errors))
        }
    }

    pub(crate) fn compile(key: &str, methods: &[String], errors: &mut Vec<ConfigError>) -> Self {
        if methods.iter().any(|m| m == "*") {
            if methods.len() > 1 {
                errors.push(ConfigError::new(
                    key,
                    methods.join(", "),
                    ConfigErrorKind::InvalidMethod,
                ));
            }
            return Self {
                rule: MethodRule::Any,
            };
        }
        let mut names: Vec<Box<[u8]>> = Vec::with_capacity(methods.len());
        for (i, method) in methods.iter().enumerate() {
            let at = format!("{key}[{i}]");
            if !is_token(method.as_bytes()) {
                errors.push(ConfigError::new(at, method, ConfigErrorKind::InvalidMethod));
                continue;
            }
            if ["CONNECT", "TRACE", "TRACK"]
                .iter()
                .any(|f| f.eq_ignore_ascii_case(method))
            {
                errors.push(ConfigError::new(
                    at,
                    method,
                    ConfigErrorKind::ForbiddenMethod,
                ));
                continue;
            }
            let name = normalized(method.as_bytes());
            if !names.iter().any(|n| &**n == name) {
                names.push(name.into());
            }
        }
        let header = (!names.is_empty()).then(|| {
            let joined = names
                .iter()
                .map(|n| String::from_utf8_lossy(n))
                .collect::<Vec<_>>()
                .join(", ");
            crate::headers::compiled_value(&joined)
        });
        Self {
            rule: MethodRule::List {
                names,
                header: header.flatten(),
            },
        }
    }

    /// Whether a request with this method (normalized as Fetch does) is allowed.
    pub fn allows(&self, method: &str) -> bool {
        self.allows_bytes(normalized(method.as_bytes()))
    }

    pub(crate) fn allows_bytes(&self, normalized_method: &[u8]) -> bool {
        is_safelisted(normalized_method)
            || match &self.rule {
                MethodRule::Any => true,
                MethodRule::List { names, .. } => names.iter().any(|n| **n == *normalized_method),
            }
    }

    pub(crate) fn rule(&self) -> &MethodRule {
        &self.rule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_normalizes_only_six_names() {
        for (input, expected) in [
            ("get", "GET"),
            ("Post", "POST"),
            ("options", "OPTIONS"),
            ("delete", "DELETE"),
            ("put", "PUT"),
            ("head", "HEAD"),
            ("patch", "patch"),
            ("PATCH", "PATCH"),
            ("propfind", "propfind"),
        ] {
            assert_eq!(normalize_method(input), expected);
        }
    }

    #[test]
    fn lists_are_normalized_deduplicated_and_joined() {
        let methods = AllowedMethods::new(["put", "PUT", "patch", "DELETE"]).unwrap();
        match methods.rule() {
            MethodRule::List { header, .. } => {
                assert_eq!(header.as_ref().unwrap(), "PUT, patch, DELETE");
            }
            MethodRule::Any => panic!("expected a list"),
        }
        assert!(methods.allows("put"));
        assert!(methods.allows("GET"));
        assert!(!methods.allows("OPTIONS"));
    }

    #[test]
    fn bad_methods_are_all_reported() {
        let errors = AllowedMethods::new(["CONNECT", "trace", "x y", "TRACK"]).unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key().to_owned()).collect();
        assert_eq!(
            keys,
            ["methods[0]", "methods[1]", "methods[2]", "methods[3]"]
        );
        assert!(AllowedMethods::new(["*", "PUT"]).is_err());
    }
}
