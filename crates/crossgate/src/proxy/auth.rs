//! Bearer tokens for `access = "private"` routes: inline tokens from `[auth]`
//! and HS256 JWTs whose `privileges` claim lists what they may do.

use http::header::AUTHORIZATION;
use http::{HeaderMap, Method};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::file::{AuthFile, Privilege, TokenFile};
use crate::config::Report;

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
    // jsonwebtoken 9 treats an `exp` or `nbf` it cannot read as a u64 ("1",
    // null, -1, true, {}) as absent, so with `jwt_allow_missing_exp` such a
    // token would never expire, and a malformed `nbf` would never be checked.
    // Typing them here refuses the token instead; the library's Validation
    // still does the comparisons with the clock.
    #[serde(default, rename = "exp", deserialize_with = "numeric_date")]
    _exp: Option<()>,
    #[serde(default, rename = "nbf", deserialize_with = "numeric_date")]
    _nbf: Option<()>,
}

/// Accepts a present claim only if it is a NumericDate jsonwebtoken can
/// compare: a finite, non-negative JSON number (the library's own rule; a
/// negative date is before 1970, refused as malformed rather than expired,
/// the answer is the same 401). `null` is refused, not taken as absence.
fn numeric_date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<()>, D::Error> {
    struct NumericDate;
    impl serde::de::Visitor<'_> for NumericDate {
        type Value = Option<()>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative number of seconds since 1970")
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Some(()))
        }

        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Self::Value, E> {
            if value.is_finite() && value >= 0.0 && value < u64::MAX as f64 {
                Ok(Some(()))
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Float(value), &self))
            }
        }
    }
    deserializer.deserialize_any(NumericDate)
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

/// `[auth] jwt_leeway` default and bound, in seconds: clock skew tolerated on
/// `exp` and `nbf`. The bound keeps an expired token from living on for long.
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 30;
const MAX_JWT_LEEWAY_SECS: i64 = 300;

/// The `[auth]` keys that only matter with `jwt_secret`.
const JWT_ONLY_KEYS: [&str; 4] = [
    "jwt_leeway",
    "jwt_audience",
    "jwt_issuer",
    "jwt_allow_missing_exp",
];

/// jsonwebtoken's Validation for `[auth]`: HS256 only, `exp` required unless
/// `jwt_allow_missing_exp`, `nbf` checked, `aud` and `iss` required and
/// matched when configured. `None` after reporting a problem.
fn jwt_validation(auth: &AuthFile, report: &mut Report) -> Option<Validation> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_nbf = true;
    validation.leeway = match auth.jwt_leeway {
        None => DEFAULT_JWT_LEEWAY_SECS,
        Some(secs @ 0..=MAX_JWT_LEEWAY_SECS) => secs.unsigned_abs(),
        Some(secs) => {
            report.problem(
                "auth.jwt_leeway",
                format!("{secs} is not a number of seconds between 0 and {MAX_JWT_LEEWAY_SECS}"),
                format!("use e.g. jwt_leeway = {DEFAULT_JWT_LEEWAY_SECS} (the default)"),
            );
            return None;
        }
    };
    let mut required = Vec::with_capacity(3);
    if auth.jwt_allow_missing_exp != Some(true) {
        required.push("exp");
    }
    if let Some(audience) = expected_claim("jwt_audience", &auth.jwt_audience, report)? {
        validation.set_audience(&[audience]);
        required.push("aud");
    }
    if let Some(issuer) = expected_claim("jwt_issuer", &auth.jwt_issuer, report)? {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    Some(validation)
}

/// A configured `jwt_audience` or `jwt_issuer`; `None` (outer) after
/// reporting an empty one.
fn expected_claim<'a>(
    key: &str,
    value: &'a Option<String>,
    report: &mut Report,
) -> Option<Option<&'a str>> {
    match value.as_deref() {
        Some("") => {
            report.problem(
                format!("auth.{key}"),
                "an empty value matches no token",
                format!("set {key} to the value your tokens carry, or remove it"),
            );
            None
        }
        other => Some(other),
    }
}

fn warn_unused_jwt_keys(auth: &AuthFile, report: &mut Report) {
    let set = [
        auth.jwt_leeway.is_some(),
        auth.jwt_audience.is_some(),
        auth.jwt_issuer.is_some(),
        auth.jwt_allow_missing_exp.is_some(),
    ];
    for (key, _) in JWT_ONLY_KEYS.iter().zip(set).filter(|(_, set)| *set) {
        report.warning(
            format!("auth.{key}"),
            "has no effect without jwt_secret (JWTs are refused)",
        );
    }
}

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
            None => {
                warn_unused_jwt_keys(auth, report);
                None
            }
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
                match jwt_validation(auth, report) {
                    Some(validation) => {
                        Some((DecodingKey::from_secret(secret.as_bytes()), validation))
                    }
                    None => {
                        ok = false;
                        None
                    }
                }
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
    use serde_json::{json, Value};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn jwt_file() -> AuthFile {
        AuthFile {
            jwt_secret: Some(SECRET.to_owned()),
            ..AuthFile::default()
        }
    }

    fn compile(file: &AuthFile) -> Result<Auth, Report> {
        let mut report = Report::new(&ConfigSource::Demo);
        let tokens = vec![(
            0,
            TokenFile {
                token: Some("reader-token-0123456789".to_owned()),
                privileges: Some(vec![Privilege::Read]),
            },
        )];
        Auth::compile(file, &tokens, &mut report).ok_or(report)
    }

    fn auth() -> Auth {
        compile(&jwt_file()).expect("valid auth")
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("header"),
        );
        headers
    }

    fn now() -> i64 {
        i64::try_from(jsonwebtoken::get_current_timestamp()).expect("clock")
    }

    fn signed(algorithm: Algorithm, claims: &Value) -> String {
        let token = jsonwebtoken::encode(
            &Header::new(algorithm),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("encode");
        format!("Bearer {token}")
    }

    /// `claims` plus `privileges: ["read"]`, signed with the gateway's secret.
    fn reader(mut claims: Value) -> HeaderMap {
        claims["privileges"] = json!(["read"]);
        headers(&signed(Algorithm::HS256, &claims))
    }

    fn reads(auth: &Auth, claims: Value) -> Result<(), AuthFailure> {
        auth.authorize(&Method::GET, &reader(claims))
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
        let writer = signed(
            Algorithm::HS256,
            &json!({"privileges": ["write"], "exp": now() + 600}),
        );
        assert_eq!(auth.authorize(&Method::DELETE, &headers(&writer)), Ok(()));
        assert_eq!(
            auth.authorize(&Method::GET, &headers(&writer)),
            Err(AuthFailure::Insufficient)
        );
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"privileges": ["write"], "exp": now() + 600}),
            &EncodingKey::from_secret(b"another secret, not the gateway's"),
        )
        .expect("encode");
        assert_eq!(
            auth.authorize(&Method::DELETE, &headers(&format!("Bearer {forged}"))),
            Err(AuthFailure::Invalid)
        );
    }

    #[test]
    fn exp_is_required_unless_explicitly_allowed_missing() {
        assert_eq!(reads(&auth(), json!({})), Err(AuthFailure::Invalid));
        let lenient = compile(&AuthFile {
            jwt_allow_missing_exp: Some(true),
            ..jwt_file()
        })
        .expect("valid auth");
        assert_eq!(reads(&lenient, json!({})), Ok(()));
        assert_eq!(
            reads(&lenient, json!({"exp": now() - 600})),
            Err(AuthFailure::Invalid),
            "a present exp is still checked"
        );
    }

    #[test]
    fn malformed_time_claims_are_refused_even_when_exp_may_be_missing() {
        let strict = auth();
        let lenient = compile(&AuthFile {
            jwt_allow_missing_exp: Some(true),
            ..jwt_file()
        })
        .expect("valid auth");
        let far = now() + 600;
        for malformed in [
            json!("1"),
            json!(far.to_string()),
            Value::Null,
            json!(-1),
            json!(true),
            json!({}),
            json!([far]),
        ] {
            for auth in [&strict, &lenient] {
                assert_eq!(
                    reads(auth, json!({"exp": malformed})),
                    Err(AuthFailure::Invalid),
                    "exp {malformed}"
                );
                assert_eq!(
                    reads(auth, json!({"exp": far, "nbf": malformed})),
                    Err(AuthFailure::Invalid),
                    "nbf {malformed}"
                );
            }
        }
        assert_eq!(
            reads(&strict, json!({"exp": (far as f64) + 0.5})),
            Ok(()),
            "a fractional NumericDate is a number (RFC 7519 §2)"
        );
    }

    #[test]
    fn nbf_is_enforced_with_the_leeway() {
        let auth = auth();
        let exp = now() + 600;
        assert_eq!(
            reads(&auth, json!({"exp": exp, "nbf": now() + 120})),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            reads(&auth, json!({"exp": exp, "nbf": now() + 10})),
            Ok(()),
            "within the default 30 s leeway"
        );
        assert_eq!(reads(&auth, json!({"exp": exp, "nbf": now() - 10})), Ok(()));
    }

    #[test]
    fn leeway_is_configurable_down_to_zero() {
        let default = auth();
        let exact = compile(&AuthFile {
            jwt_leeway: Some(0),
            ..jwt_file()
        })
        .expect("valid auth");
        let just_expired = json!({"exp": now() - 10});
        assert_eq!(reads(&default, just_expired.clone()), Ok(()));
        assert_eq!(reads(&exact, just_expired), Err(AuthFailure::Invalid));
        assert_eq!(
            reads(&default, json!({"exp": now() - 60})),
            Err(AuthFailure::Invalid),
            "the default leeway is 30 s, not the library's 60 s"
        );
        let almost_valid = json!({"exp": now() + 600, "nbf": now() + 10});
        assert_eq!(reads(&exact, almost_valid), Err(AuthFailure::Invalid));
    }

    #[test]
    fn audience_and_issuer_are_required_and_matched_when_configured() {
        let matched = compile(&AuthFile {
            jwt_audience: Some("crossgate".to_owned()),
            jwt_issuer: Some("https://issuer.test".to_owned()),
            ..jwt_file()
        })
        .expect("valid auth");
        let exp = now() + 600;
        let good = json!({"exp": exp, "aud": "crossgate", "iss": "https://issuer.test"});
        assert_eq!(reads(&matched, good), Ok(()));
        for claims in [
            json!({"exp": exp, "aud": "other", "iss": "https://issuer.test"}),
            json!({"exp": exp, "aud": "crossgate", "iss": "https://evil.test"}),
            json!({"exp": exp, "iss": "https://issuer.test"}),
            json!({"exp": exp, "aud": "crossgate"}),
            json!({"exp": exp, "aud": 7, "iss": "https://issuer.test"}),
        ] {
            assert_eq!(
                reads(&matched, claims.clone()),
                Err(AuthFailure::Invalid),
                "{claims}"
            );
        }
        assert_eq!(
            reads(&auth(), json!({"exp": exp, "aud": "someone-else"})),
            Err(AuthFailure::Invalid),
            "a token addressed to an audience is refused where none is configured (RFC 7519 §4.1.3)"
        );
    }

    #[test]
    fn algorithms_other_than_hs256_are_refused() {
        let auth = auth();
        let claims = json!({"privileges": ["read"], "exp": now() + 600});
        for algorithm in [Algorithm::HS384, Algorithm::HS512] {
            assert_eq!(
                auth.authorize(&Method::GET, &headers(&signed(algorithm, &claims))),
                Err(AuthFailure::Invalid),
                "{algorithm:?}"
            );
        }
        // `alg: none` with the same claims and no signature. The header is
        // base64url of {"alg":"none","typ":"JWT"}.
        let signed_token = signed(Algorithm::HS256, &claims);
        let payload = signed_token.split('.').nth(1).expect("payload");
        let unsigned = format!("Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(
            auth.authorize(&Method::GET, &headers(&unsigned)),
            Err(AuthFailure::Invalid)
        );
    }

    #[test]
    fn jwt_keys_are_validated() {
        for (file, key) in [
            (
                AuthFile {
                    jwt_leeway: Some(-1),
                    ..jwt_file()
                },
                "auth.jwt_leeway",
            ),
            (
                AuthFile {
                    jwt_leeway: Some(301),
                    ..jwt_file()
                },
                "auth.jwt_leeway",
            ),
            (
                AuthFile {
                    jwt_audience: Some(String::new()),
                    ..jwt_file()
                },
                "auth.jwt_audience",
            ),
            (
                AuthFile {
                    jwt_issuer: Some(String::new()),
                    ..jwt_file()
                },
                "auth.jwt_issuer",
            ),
        ] {
            let report = compile(&file).expect_err(key);
            assert!(
                report.problems.iter().any(|problem| problem.key == key),
                "{key}: {:?}",
                report.problems
            );
        }
        let mut report = Report::new(&ConfigSource::Demo);
        let without_secret = AuthFile {
            // What `[[auth.tokens]]` parsed from; the entries are `tokens`.
            tokens: Some(vec![toml::Value::Boolean(true)]),
            jwt_leeway: Some(5),
            ..AuthFile::default()
        };
        let tokens = vec![(
            0,
            TokenFile {
                token: Some("reader-token-0123456789".to_owned()),
                privileges: Some(vec![Privilege::Read]),
            },
        )];
        assert!(Auth::compile(&without_secret, &tokens, &mut report).is_some());
        assert!(report
            .warnings
            .iter()
            .any(|warning| warning.key == "auth.jwt_leeway"));
    }
}
