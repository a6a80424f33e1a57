//! What the browser does when an actual CORS request is redirected.

use std::fmt;

use http::{HeaderMap, Method, StatusCode, Uri};

use super::lossy;
use super::request::CorsRequest;
use super::response::cors_check;
use super::site::serialize_origin;
use super::verdict::Blocked;

/// The most redirects a browser follows for one fetch.
pub const REDIRECT_LIMIT: usize = 20;

/// What the browser does with a redirect answer to an actual CORS request.
// One value per redirect, consumed at once: boxing the request would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RedirectStep {
    /// It fetches `location` next with `request` (method possibly changed to
    /// `GET`, origin possibly turned `null`), preflighting again if needed.
    Follow {
        /// The next URL.
        location: Uri,
        /// The request as it continues.
        request: CorsRequest,
    },
    /// There is no `Location` header: the browser hands the 3xx response
    /// itself to script, like any other answer.
    Deliver,
    /// It fails the fetch.
    Fail(RedirectFailure),
}

/// Why a redirect of an actual CORS request fails the fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectFailure {
    /// The redirect itself fails the CORS check.
    Cors(Blocked),
    /// No usable `Location` header.
    BadLocation(String),
    /// The target URL carries a username or password.
    CredentialsInUrl,
    /// More than 20 redirects.
    TooMany,
}

impl fmt::Display for RedirectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cors(blocked) => {
                write!(f, "the redirect response fails the CORS check: {blocked}")
            }
            Self::BadLocation(l) => {
                write!(f, "the redirect's Location `{l}` is missing or not a URL")
            }
            Self::CredentialsInUrl => f.write_str(
                "a CORS request cannot be redirected to a URL with a username or password",
            ),
            Self::TooMany => write!(f, "more than {REDIRECT_LIMIT} redirects"),
        }
    }
}

/// Whether the browser treats `status` as a redirect (Fetch's redirect
/// statuses); other 3xx answers are handed to script like any response.
pub fn is_redirect_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// What the browser does when an actual CORS request to `current` is
/// answered with redirect `status` (the caller has checked it with
/// [`is_redirect_status`]) after `redirects_so_far` redirects.
pub fn follow_redirect(
    request: &CorsRequest,
    current: &Uri,
    status: StatusCode,
    response_headers: &HeaderMap,
    redirects_so_far: usize,
) -> RedirectStep {
    if redirects_so_far >= REDIRECT_LIMIT {
        return RedirectStep::Fail(RedirectFailure::TooMany);
    }
    if let Some(blocked) = Blocked::new(cors_check(request, response_headers)) {
        return RedirectStep::Fail(RedirectFailure::Cors(blocked));
    }
    let Some(raw) = response_headers.get(http::header::LOCATION) else {
        return RedirectStep::Deliver;
    };
    let raw = lossy(raw.as_bytes());
    let Some(location) = resolve_location(current, &raw) else {
        return RedirectStep::Fail(RedirectFailure::BadLocation(raw));
    };
    if location
        .authority()
        .is_some_and(|a| a.as_str().contains('@'))
    {
        return RedirectStep::Fail(RedirectFailure::CredentialsInUrl);
    }
    let mut next = request.clone();
    let becomes_get = (matches!(status.as_u16(), 301 | 302) && next.method == Method::POST)
        || (status.as_u16() == 303 && next.method != Method::GET && next.method != Method::HEAD);
    if becomes_get {
        next = next.with_method(Method::GET);
        next.body = false;
        for name in [
            "content-encoding",
            "content-language",
            "content-location",
            "content-type",
        ] {
            next.headers.remove(name);
        }
    }
    let current_origin = serialize_origin(current);
    let location_origin = serialize_origin(&location);
    if current_origin != location_origin && Some(request.origin().to_owned()) != current_origin {
        next = next.with_null_origin();
    }
    RedirectStep::Follow {
        location,
        request: next,
    }
}

fn resolve_location(current: &Uri, location: &str) -> Option<Uri> {
    let base = url::Url::parse(&current.to_string()).ok()?;
    let joined = base.join(location).ok()?;
    match joined.scheme() {
        "http" | "https" => joined.as_str().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::test_util::*;
    use crate::browser::*;

    use http::{HeaderMap, Method, StatusCode, Uri};

    /// Where the browser goes next and with what request, for a redirect it
    /// follows as the first of the fetch.
    fn followed(
        from: &CorsRequest,
        current: &Uri,
        status: StatusCode,
        answer: &HeaderMap,
    ) -> (Uri, CorsRequest) {
        match follow_redirect(from, current, status, answer, 0) {
            RedirectStep::Follow { location, request } => (location, request),
            other => panic!("{status} should be followed: {other:?}"),
        }
    }

    #[test]
    fn redirects_change_method_and_taint_the_origin() {
        let api: Uri = "https://api.example/a".parse().unwrap();
        let ok = |location: &str| {
            response(&[("access-control-allow-origin", "*"), ("location", location)])
        };
        let post = request(
            "POST",
            CredentialsMode::Omit,
            &[("content-type", "text/plain")],
        );
        let (location, next) = followed(&post, &api, StatusCode::MOVED_PERMANENTLY, &ok("/b"));
        assert_eq!(location.to_string(), "https://api.example/b");
        assert_eq!(next.method(), Method::GET);
        assert!(!next.headers().contains_key("content-type"));
        // Cross-origin hop from a URL that is not the page's origin: `Origin: null`.
        assert_eq!(next.origin(), ORIGIN, "same-origin hop keeps the origin");
        let cdn = ok("https://cdn.example/c");
        let (_, next) = followed(&post, &api, StatusCode::TEMPORARY_REDIRECT, &cdn);
        assert_eq!(next.method(), Method::POST);
        assert_eq!(next.origin(), "null");
        let put = request("PUT", CredentialsMode::Omit, &[]);
        let (_, next) = followed(&put, &api, StatusCode::SEE_OTHER, &ok("/c"));
        assert_eq!(next.method(), Method::GET);
        // A redirect from the page's own origin elsewhere keeps the origin.
        let own: Uri = "https://app.example/start".parse().unwrap();
        let to_api = ok("https://api.example/x");
        let (_, next) = followed(&post, &own, StatusCode::FOUND, &to_api);
        assert_eq!(next.origin(), ORIGIN);
    }

    #[test]
    fn redirects_can_fail() {
        let api: Uri = "https://api.example/a".parse().unwrap();
        let r = request("GET", CredentialsMode::Omit, &[]);
        let fail =
            |h: HeaderMap, n: usize| match follow_redirect(&r, &api, StatusCode::FOUND, &h, n) {
                RedirectStep::Fail(f) => f,
                other => panic!("should fail: {other:?}"),
            };
        assert!(matches!(
            fail(response(&[("location", "/b")]), 0),
            RedirectFailure::Cors(_)
        ));
        assert!(matches!(
            follow_redirect(
                &r,
                &api,
                StatusCode::FOUND,
                &response(&[("access-control-allow-origin", "*")]),
                0
            ),
            RedirectStep::Deliver
        ));
        assert_eq!(
            fail(
                response(&[
                    ("access-control-allow-origin", "*"),
                    ("location", "http://[::1")
                ]),
                0
            ),
            RedirectFailure::BadLocation("http://[::1".to_owned())
        );
        assert_eq!(
            fail(
                response(&[
                    ("access-control-allow-origin", "*"),
                    ("location", "ftp://x/")
                ]),
                0
            ),
            RedirectFailure::BadLocation("ftp://x/".to_owned())
        );
        assert_eq!(
            fail(
                response(&[
                    ("access-control-allow-origin", "*"),
                    ("location", "https://u:p@b.example/")
                ]),
                0
            ),
            RedirectFailure::CredentialsInUrl
        );
        assert_eq!(
            fail(
                response(&[("access-control-allow-origin", "*"), ("location", "/b")]),
                REDIRECT_LIMIT
            ),
            RedirectFailure::TooMany
        );
    }

    #[test]
    fn only_fetch_redirect_statuses_redirect_and_a_get_drops_the_body() {
        for status in [301, 302, 303, 307, 308] {
            assert!(is_redirect_status(StatusCode::from_u16(status).unwrap()));
        }
        for status in [300, 304, 305, 306, 200, 404] {
            assert!(!is_redirect_status(StatusCode::from_u16(status).unwrap()));
        }
        let api: Uri = "https://api.example/a".parse().unwrap();
        let answer = response(&[("access-control-allow-origin", "*"), ("location", "/b")]);
        let put = request("PUT", CredentialsMode::Omit, &[])
            .with_text_body()
            .unwrap();
        let next =
            |status: u16| followed(&put, &api, StatusCode::from_u16(status).unwrap(), &answer).1;
        assert!(
            !next(303).has_body(),
            "303 turns PUT into a GET without a body"
        );
        assert!(next(307).has_body(), "307 keeps the method and the body");
    }
}
