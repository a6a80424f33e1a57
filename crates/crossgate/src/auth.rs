//! Bearer tokens for `access = "private"` routes: inline tokens from `[auth]`
//! and HS256 JWTs whose `privileges` claim lists what they may do.

use http::header::AUTHORIZATION;
use http::{HeaderMap, Method};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::{AuthFile, Privilege, Report, TokenFile};

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Privileges {
    read: bool,
    write: bool,
}

impl Privileges {
    fn from_list<'a>(list: impl IntoIterator<Item = &'a Privilege>) -> Self {
        let mut privileges = Self::default();
        for privilege in list {
            match privilege {
                Privilege::Read => privileges.read = true,
                Privilege::Write => privileges.write = true,
            }
        }
        privileges
    }

    /// Whether these privileges cover `method`: `read` covers GET, HEAD and
    /// OPTIONS, `write` every other method.
    pub fn allow(&self, method: &Method) -> bool {
        if is_read(method) {
            self.read
        } else {
            self.write
        }
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD || method == Method::OPTIONS
}

/// Why a request's credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header (401).
    Missing,
    /// An `Authorization` header that is not a known or valid bearer token (401).
    Invalid,
    /// A valid token without the privilege the method needs (403).
    Insufficient,
}

impl AuthFailure {
    /// The log and metrics label.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Invalid => "token_invalid",
            Self::Insufficient => "privilege_missing",
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    privileges: Vec<String>,
}

/// The compiled `[auth]` section.
pub struct Auth {
    tokens: Vec<(Box<[u8]>, Privileges)>,
    jwt: Option<(DecodingKey, Validation)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Auth")
            .field("tokens", &self.tokens.len())
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

/// Bounds on what is read from an `Authorization` header.
const MAX_TOKEN_BYTES: usize = 8192;
const MIN_SECRET_BYTES: usize = 32;
const MIN_TOKEN_BYTES: usize = 16;

impl Auth {
    /// Checks and compiles `[auth]`.
    pub(crate) fn compile(
        auth: &AuthFile,
        tokens: &[(usize, TokenFile)],
        report: &mut Report,
    ) -> Option<Self> {
        let mut ok = true;
        let mut compiled: Vec<(Box<[u8]>, Privileges)> = Vec::with_capacity(tokens.len());
        for (index, entry) in tokens {
            let key = format!("auth.tokens[{index}]");
            let token = match entry.token.as_deref() {
                Some(token)
                    if !token.is_empty()
                        && token.len() <= MAX_TOKEN_BYTES
                        && token.bytes().all(is_token68) =>
                {
                    token
                }
                Some(_) => {
                    ok = false;
                    report.problem(
                        format!("{key}.token"),
                        "not a usable bearer token",
                        "use 16 to 8192 characters from A-Z a-z 0-9 - . _ ~ + / =",
                    );
                    continue;
                }
                None => {
                    ok = false;
                    report.problem(
                        format!("{key}.token"),
                        "the token is missing",
                        "add token = \"<a long random string>\"",
                    );
                    continue;
                }
            };
            if token.len() < MIN_TOKEN_BYTES {
                report.warning(
                    format!("{key}.token"),
                    "shorter than 16 characters: easy to guess; use a long random string",
                );
            }
            let privileges = match entry.privileges.as_deref() {
                Some(list) if !list.is_empty() => Privileges::from_list(list),
                _ => {
                    ok = false;
                    report.problem(
                        format!("{key}.privileges"),
                        "a token needs at least one privilege",
                        "add privileges = [\"read\"] or [\"read\", \"write\"]",
                    );
                    continue;
                }
            };
            if compiled
                .iter()
                .any(|(existing, _)| **existing == *token.as_bytes())
            {
                ok = false;
                report.problem(
                    format!("{key}.token"),
                    "the same token is listed twice",
                    "remove one of them",
                );
                continue;
            }
            compiled.push((token.as_bytes().into(), privileges));
        }
        let jwt = match auth.jwt_secret.as_deref() {
            None => None,
            Some("") => {
                ok = false;
                report.problem(
                    "auth.jwt_secret",
                    "the secret is empty",
                    "use at least 32 random bytes, or remove jwt_secret",
                );
                None
            }
            Some(secret) => {
                if secret.len() < MIN_SECRET_BYTES {
                    report.warning(
                        "auth.jwt_secret",
                        "shorter than 32 bytes: HS256 keys that short can be brute-forced",
                    );
                }
                let mut validation = Validation::new(Algorithm::HS256);
                // `exp` is checked when present; tokens without one never expire.
                validation.required_spec_claims.clear();
                validation.validate_aud = false;
                Some((DecodingKey::from_secret(secret.as_bytes()), validation))
            }
        };
        if auth.tokens.as_deref().unwrap_or_default().is_empty() && jwt.is_none() && ok {
            ok = false;
            report.problem(
                "auth",
                "[auth] accepts no token",
                "add [[auth.tokens]] entries with token and privileges, or jwt_secret",
            );
        }
        ok.then_some(Self {
            tokens: compiled,
            jwt,
        })
    }

    /// The privileges of the request's bearer token; `Err` when it has none or
    /// a bad one.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Privileges, AuthFailure> {
        let value = headers.get(AUTHORIZATION).ok_or(AuthFailure::Missing)?;
        let token = bearer_token(value.as_bytes()).ok_or(AuthFailure::Invalid)?;
        let mut found = None;
        // Compare against every token so the time taken does not reveal which one matched.
        for (known, privileges) in &self.tokens {
            if constant_time_eq(known, token) {
                found = Some(*privileges);
            }
        }
        if let Some(privileges) = found {
            return Ok(privileges);
        }
        let (key, validation) = self.jwt.as_ref().ok_or(AuthFailure::Invalid)?;
        let text = std::str::from_utf8(token).map_err(|_| AuthFailure::Invalid)?;
        let data = jsonwebtoken::decode::<Claims>(text, key, validation)
            .map_err(|_| AuthFailure::Invalid)?;
        let mut privileges = Privileges::default();
        for name in &data.claims.privileges {
            match name.as_str() {
                "read" => privileges.read = true,
                "write" => privileges.write = true,
                _ => {}
            }
        }
        Ok(privileges)
    }

    /// Authenticates and checks the privilege `method` needs.
    pub fn authorize(&self, method: &Method, headers: &HeaderMap) -> Result<(), AuthFailure> {
        let privileges = self.authenticate(headers)?;
        if privileges.allow(method) {
            Ok(())
        } else {
            Err(AuthFailure::Insufficient)
        }
    }
}

pub(crate) fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    if value.len() > MAX_TOKEN_BYTES + 7
        || value.len() < 7
        || !value[..7].eq_ignore_ascii_case(b"bearer ")
    {
        return None;
    }
    let token = value[7..].trim_ascii();
    (!token.is_empty() && token.iter().copied().all(is_token68)).then_some(token)
}

/// RFC 7235 token68 characters.
pub(crate) fn is_token68(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;
    use http::HeaderValue;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn auth() -> Auth {
        let mut report = Report::new(&ConfigSource::Demo);
        let file = AuthFile {
            tokens: None,
            jwt_secret: Some(SECRET.to_owned()),
        };
        let tokens = vec![(
            0,
            TokenFile {
                token: Some("reader-token-0123456789".to_owned()),
                privileges: Some(vec![Privilege::Read]),
            },
        )];
        Auth::compile(&file, &tokens, &mut report).expect("valid auth")
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("header"),
        );
        headers
    }

    #[test]
    fn inline_token_privileges() {
        let auth = auth();
        assert_eq!(
            auth.authorize(&Method::GET, &headers("Bearer reader-token-0123456789")),
            Ok(())
        );
        assert_eq!(
            auth.authorize(&Method::PUT, &headers("bearer reader-token-0123456789")),
            Err(AuthFailure::Insufficient)
        );
        assert_eq!(
            auth.authorize(&Method::GET, &headers("Bearer nope")),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            auth.authorize(&Method::GET, &headers("Basic abc")),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            auth.authorize(&Method::GET, &HeaderMap::new()),
            Err(AuthFailure::Missing)
        );
    }

    #[test]
    fn jwt_privileges_claim() {
        let auth = auth();
        let writer = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"privileges": ["write"]}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode");
        assert_eq!(
            auth.authorize(&Method::DELETE, &headers(&format!("Bearer {writer}"))),
            Ok(())
        );
        assert_eq!(
            auth.authorize(&Method::GET, &headers(&format!("Bearer {writer}"))),
            Err(AuthFailure::Insufficient)
        );
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"privileges": ["write"]}),
            &EncodingKey::from_secret(b"another secret, not the gateway's"),
        )
        .expect("encode");
        assert_eq!(
            auth.authorize(&Method::DELETE, &headers(&format!("Bearer {forged}"))),
            Err(AuthFailure::Invalid)
        );
    }
}
