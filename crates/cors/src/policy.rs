//! The compiled policy: decides on requests and writes response headers.

use std::borrow::Cow;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HOST, ORIGIN,
};

use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::browser::is_forbidden_or_protocol_request_header;
use crate::decision::{Decision, Denial, Malformed, Outcome, RequestKind};
use crate::error::{ConfigError, ConfigErrorKind, ConfigErrors, ConfigWarning};
use crate::headers::{
    compiled_value, merge_vary, strip_cors_headers, ALLOW_PRIVATE_NETWORK, REQUEST_PRIVATE_NETWORK,
};
use crate::method::{normalized, AllowedMethods, MethodRule};
use crate::origin::OriginMatcher;
use crate::token::{is_token, ListError, TokenList, TokenText};
use crate::{PolicyConfig, UpstreamHeaders};

/// Above this, browsers cap `Access-Control-Max-Age` (Firefox at 86400 s,
/// Chromium already at 7200 s).
const MAX_AGE_HONOURED: i64 = 86_400;

/// The longest name `request_headers` accepts; no real header name comes near.
const MAX_HEADER_NAME: usize = 128;

/// A validated, compiled CORS policy.
///
/// Build one with [`PolicyConfig::compile`] or [`PolicyConfig::builder`]. It
/// is immutable and cheap to share (`Arc<Policy>`); deciding on a request and
/// writing the response headers do not allocate.
#[derive(Debug, Clone)]
pub struct Policy {
    origins: OriginMatcher,
    credentials: bool,
    methods: AllowedMethods,
    request_headers: HeaderRule,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
    private_network: bool,
    preflight_status: StatusCode,
    block_disallowed: bool,
    upstream_headers: UpstreamHeaders,
    /// `Vary` for responses to actual and non-CORS requests; none when the
    /// headers do not depend on the origin (`*` without credentials).
    vary_actual: Option<HeaderValue>,
    vary_preflight: HeaderValue,
    /// The whole answer to an allowed preflight that gets the policy's own
    /// lists, built once: answering is one clone and the origin's echo
    /// instead of eight inserts into a growing map.
    preflight_answer: HeaderMap,
    warnings: Vec<ConfigWarning>,
}

#[derive(Debug, Clone)]
enum HeaderRule {
    /// `["*"]`: any valid name; preflights echo the requested list.
    Any,
    List {
        /// Lowercase, sorted by length and then by bytes, for a binary search
        /// that rejects most names by their length alone.
        names: Vec<Box<[u8]>>,
        header: Option<HeaderValue>,
    },
}

/// The headers a preflight is decided on, found in one pass: the first
/// value of each, and how many lines came where that matters.
#[derive(Default)]
struct PreflightHeaders<'a> {
    origin: Option<&'a HeaderValue>,
    origins: usize,
    method: Option<&'a HeaderValue>,
    methods: usize,
    request_headers: Option<&'a HeaderValue>,
    header_lines: usize,
    private_network: Option<&'a HeaderValue>,
}

/// What an allowed preflight is granted, borrowed from the policy or the
/// request until the decision is built.
struct Grant<'a> {
    methods: Option<&'a HeaderValue>,
    headers: Option<Cow<'a, HeaderValue>>,
    private_network: bool,
}

/// The `Access-Control-Request-Method` of a preflight.
struct RequestedMethod<'a> {
    value: &'a HeaderValue,
    /// Whether the header came more than once.
    several: bool,
}

const TRUE: HeaderValue = HeaderValue::from_static("true");
const ANY: HeaderValue = HeaderValue::from_static("*");

impl Policy {
    pub(crate) fn compile(config: &PolicyConfig) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let origins = OriginMatcher::compile(
            &config.origins,
            &config.origin_regex,
            config.credentials,
            &mut errors,
            &mut warnings,
        );
        let methods = AllowedMethods::compile("methods", &config.methods, &mut errors);
        let request_headers = compile_request_headers(&config.request_headers, &mut errors);
        let expose_headers =
            compile_expose_headers(&config.expose_headers, config.credentials, &mut errors);
        let max_age = match config.max_age {
            Some(age) if age < 0 => {
                errors.push(ConfigError::new(
                    "max_age",
                    age.to_string(),
                    ConfigErrorKind::NegativeMaxAge,
                ));
                None
            }
            Some(age) => {
                if age > MAX_AGE_HONOURED {
                    warnings.push(ConfigWarning::new(
                        "max_age",
                        age.to_string(),
                        "browsers cap the preflight cache (Chromium at 7200 s, Firefox at 86400 s), so a larger value has no further effect",
                    ));
                }
                compiled_value(&age.to_string())
            }
            None => None,
        };
        let preflight_status = match config.preflight_status {
            200 => StatusCode::OK,
            204 => StatusCode::NO_CONTENT,
            other => {
                errors.push(ConfigError::new(
                    "preflight_status",
                    other.to_string(),
                    ConfigErrorKind::InvalidPreflightStatus,
                ));
                StatusCode::NO_CONTENT
            }
        };
        if !errors.is_empty() {
            return Err(ConfigErrors::from_vec(errors));
        }
        let public = origins.allows_any() && !config.credentials;
        let vary_preflight = if config.private_network {
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, Access-Control-Request-Private-Network"
        } else {
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        };
        let mut policy = Self {
            origins,
            credentials: config.credentials,
            methods,
            request_headers,
            expose_headers,
            max_age,
            private_network: config.private_network,
            preflight_status,
            block_disallowed: config.block_disallowed,
            upstream_headers: config.upstream_headers,
            vary_actual: (!public).then_some(HeaderValue::from_static("Origin")),
            vary_preflight: HeaderValue::from_static(vary_preflight),
            preflight_answer: HeaderMap::new(),
            warnings,
        };
        policy.preflight_answer = policy.build_preflight_answer();
        Ok(policy)
    }

    /// The headers `apply` writes for an allowed preflight whose decision
    /// [`answers_with_policy_lists`](Self::answers_with_policy_lists), with a
    /// placeholder `Access-Control-Allow-Origin` that each answer overwrites.
    fn build_preflight_answer(&self) -> HeaderMap {
        let mut decision = Decision::new(Outcome::PreflightAllowed);
        decision.allow_origin = Some(ANY);
        let (methods, names) = self.policy_lists();
        decision.allow_methods = methods.cloned();
        decision.allow_headers = names.cloned();
        let mut answer = HeaderMap::new();
        self.apply_preflight(&decision, &mut answer);
        answer
    }

    /// The policy's own `Access-Control-Allow-Methods` and
    /// `Access-Control-Allow-Headers` values, when it has lists.
    fn policy_lists(&self) -> (Option<&HeaderValue>, Option<&HeaderValue>) {
        let methods = match self.methods.rule() {
            MethodRule::List { header, .. } => header.as_ref(),
            MethodRule::Any => None,
        };
        let names = match &self.request_headers {
            HeaderRule::List { header, .. } => header.as_ref(),
            HeaderRule::Any => None,
        };
        (methods, names)
    }

    /// Whether an allowed preflight's answer is exactly `preflight_answer`
    /// but for the origin: the methods and headers are the policy's lists (not
    /// a route's methods, not an echo) and private-network access is not asked.
    fn answers_with_policy_lists(&self, grant: &Grant<'_>, resource_methods: bool) -> bool {
        !resource_methods
            && !grant.private_network
            && matches!(self.methods.rule(), MethodRule::List { .. })
            && match &self.request_headers {
                HeaderRule::List { header, .. } => grant.headers.is_some() == header.is_some(),
                HeaderRule::Any => false,
            }
    }

    /// Values that were accepted but deserve a second look.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// What happens to CORS headers an upstream already set.
    pub fn upstream_headers(&self) -> UpstreamHeaders {
        self.upstream_headers
    }

    /// Classifies a request as the Fetch standard does: a preflight is an
    /// `OPTIONS` request with both `Origin` and `Access-Control-Request-Method`;
    /// any other request with `Origin` is an actual CORS request.
    pub fn classify(method: &Method, headers: &HeaderMap) -> RequestKind {
        if !headers.contains_key(ORIGIN) {
            RequestKind::NotCors
        } else if method == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            RequestKind::Preflight
        } else {
            RequestKind::Actual
        }
    }

    /// Decides on a request from its method and headers.
    pub fn decide(&self, method: &Method, headers: &HeaderMap) -> Decision {
        self.decide_for(method, headers, None)
    }

    /// Decides on a request; for a preflight, `resource_methods` (when given)
    /// are the methods the target resource supports: a method must be allowed
    /// by both, and `Access-Control-Allow-Methods` lists the resource's.
    pub fn decide_for(
        &self,
        method: &Method,
        headers: &HeaderMap,
        resource_methods: Option<&AllowedMethods>,
    ) -> Decision {
        if method == Method::OPTIONS {
            return self.decide_options(headers, resource_methods);
        }
        let mut origins = headers.get_all(ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return self.not_cors();
        };
        let several_origins = origins.next().is_some();
        self.actual(origin, several_origins, headers)
    }

    fn not_cors(&self) -> Decision {
        let mut decision = Decision::new(Outcome::NotCors);
        if self.vary_actual.is_none() {
            decision.allow_origin = Some(ANY);
        }
        decision
    }

    /// An `OPTIONS` request reads up to four headers; one pass over its few
    /// headers, comparing names, is cheaper than four hashed lookups (the
    /// private-network one hashes a 38-byte custom name byte by byte).
    fn decide_options(
        &self,
        headers: &HeaderMap,
        resource_methods: Option<&AllowedMethods>,
    ) -> Decision {
        let mut seen = PreflightHeaders::default();
        for (name, value) in headers {
            if *name == ORIGIN {
                seen.origins += 1;
                seen.origin.get_or_insert(value);
            } else if *name == ACCESS_CONTROL_REQUEST_METHOD {
                seen.methods += 1;
                seen.method.get_or_insert(value);
            } else if *name == ACCESS_CONTROL_REQUEST_HEADERS {
                seen.header_lines += 1;
                seen.request_headers.get_or_insert(value);
            } else if *name == REQUEST_PRIVATE_NETWORK {
                seen.private_network.get_or_insert(value);
            }
        }
        let Some(origin) = seen.origin else {
            return self.not_cors();
        };
        let several_origins = seen.origins > 1;
        match seen.method {
            Some(value) => {
                let method = RequestedMethod {
                    value,
                    several: seen.methods > 1,
                };
                self.preflight(
                    origin,
                    several_origins,
                    &method,
                    &seen,
                    headers,
                    resource_methods,
                )
            }
            None => self.actual(origin, several_origins, headers),
        }
    }

    /// Decides on a WebSocket handshake (RFC 6455 §10.2). Browsers send
    /// `Origin` with it but apply no CORS, so the page's script gets the
    /// socket whatever the answer's headers say: a disallowed origin is
    /// [`Outcome::Blocked`] (answer 403 without running the handler), and so
    /// is a handshake without `Origin` when `require_origin` is set. Without
    /// `Origin` otherwise (a non-browser client) it is [`Outcome::NotCors`].
    pub fn decide_websocket(&self, headers: &HeaderMap, require_origin: bool) -> Decision {
        let mut origins = headers.get_all(ORIGIN).iter();
        let Some(origin) = origins.next() else {
            return Decision::new(if require_origin {
                Outcome::Blocked(Denial::WebSocketOriginNotAllowed)
            } else {
                Outcome::NotCors
            });
        };
        if origins.next().is_some() {
            return Decision::new(Outcome::Blocked(Denial::Malformed(
                Malformed::SeveralOrigins,
            )));
        }
        if !self.origins.allows(origin.as_bytes()) {
            return Decision::new(Outcome::Blocked(Denial::WebSocketOriginNotAllowed));
        }
        let mut decision = Decision::new(Outcome::ActualAllowed);
        decision.allow_origin = Some(self.allow_origin(origin));
        decision
    }

    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.vary_actual.is_none() {
            ANY
        } else {
            origin.clone()
        }
    }

    fn actual(&self, origin: &HeaderValue, several_origins: bool, headers: &HeaderMap) -> Decision {
        let denial = if several_origins {
            Denial::Malformed(Malformed::SeveralOrigins)
        } else if self.origins.allows(origin.as_bytes()) {
            let mut decision = Decision::new(Outcome::ActualAllowed);
            decision.allow_origin = Some(self.allow_origin(origin));
            return decision;
        } else {
            Denial::OriginNotAllowed
        };
        if self.block_disallowed && !is_same_origin(origin, headers) {
            Decision::new(Outcome::Blocked(denial))
        } else {
            Decision::new(Outcome::ActualDenied(denial))
        }
    }

    fn preflight(
        &self,
        origin: &HeaderValue,
        several_origins: bool,
        method: &RequestedMethod<'_>,
        seen: &PreflightHeaders<'_>,
        headers: &HeaderMap,
        resource_methods: Option<&AllowedMethods>,
    ) -> Decision {
        let grant = match self.check_preflight(
            origin,
            several_origins,
            method,
            seen,
            headers,
            resource_methods,
        ) {
            Ok(grant) => grant,
            Err(denial) => return Decision::new(Outcome::PreflightDenied(denial)),
        };
        let mut decision = Decision::new(Outcome::PreflightAllowed);
        decision.allow_origin = Some(self.allow_origin(origin));
        decision.preflight_status = self.preflight_status;
        decision.private_network = grant.private_network;
        decision.prepared_answer =
            self.answers_with_policy_lists(&grant, resource_methods.is_some());
        // The prepared answer already holds the policy's lists.
        if !decision.prepared_answer {
            decision.allow_methods = grant.methods.cloned();
            decision.allow_headers = grant.headers.map(Cow::into_owned);
        }
        decision
    }

    fn check_preflight<'a>(
        &'a self,
        origin: &HeaderValue,
        several_origins: bool,
        method: &RequestedMethod<'a>,
        seen: &PreflightHeaders<'a>,
        headers: &HeaderMap,
        resource_methods: Option<&'a AllowedMethods>,
    ) -> Result<Grant<'a>, Denial> {
        if several_origins {
            return Err(Denial::Malformed(Malformed::SeveralOrigins));
        }
        if !self.origins.allows(origin.as_bytes()) {
            return Err(Denial::OriginNotAllowed);
        }
        let methods = self.check_method(method, resource_methods)?;
        let names = self.check_request_headers(seen, headers)?;
        let private_network = seen
            .private_network
            .is_some_and(|v| v.as_bytes() == b"true");
        if private_network && !self.private_network {
            return Err(Denial::PrivateNetworkNotAllowed);
        }
        Ok(Grant {
            methods,
            headers: names,
            private_network,
        })
    }

    /// Checks `Access-Control-Request-Method` and returns the
    /// `Access-Control-Allow-Methods` value to send.
    fn check_method<'a>(
        &'a self,
        requested: &RequestedMethod<'a>,
        resource_methods: Option<&'a AllowedMethods>,
    ) -> Result<Option<&'a HeaderValue>, Denial> {
        if requested.several {
            return Err(Denial::Malformed(Malformed::SeveralRequestMethods));
        }
        let requested = requested.value;
        let raw = requested.as_bytes();
        if !is_token(raw) {
            return Err(Denial::Malformed(Malformed::InvalidRequestMethod));
        }
        let method = normalized(raw);
        let allowed = self.methods.allows_bytes(method)
            && resource_methods.is_none_or(|resource| resource.allows_bytes(method));
        if !allowed {
            return Err(Denial::MethodNotAllowed(TokenText::new(raw)));
        }
        let rule = resource_methods.unwrap_or(&self.methods).rule();
        Ok(match rule {
            MethodRule::Any => Some(requested),
            MethodRule::List { header, .. } => header.as_ref(),
        })
    }

    /// Checks `Access-Control-Request-Headers` in one bounded pass and returns
    /// the `Access-Control-Allow-Headers` value to send.
    fn check_request_headers<'a>(
        &'a self,
        seen: &PreflightHeaders<'a>,
        headers: &HeaderMap,
    ) -> Result<Option<Cow<'a, HeaderValue>>, Denial> {
        let Some(first) = seen.request_headers else {
            return Ok(None);
        };
        let mut list = TokenList::new();
        let mut refused: Option<TokenText> = None;
        let mut feed = |line: &HeaderValue| {
            list.feed(
                line.as_bytes(),
                |name| self.knows_request_header(name),
                |name| {
                    if self.allows_request_header(name) {
                        true
                    } else {
                        refused = Some(TokenText::new(name));
                        false
                    }
                },
            )
            .map_err(|error| {
                Denial::Malformed(match error {
                    ListError::NotAToken => Malformed::InvalidRequestHeaders,
                    ListError::TooManyEmpty | ListError::TooManyNames => {
                        Malformed::TooManyRequestHeaders
                    }
                })
            })
        };
        if seen.header_lines == 1 {
            feed(first)?;
        } else {
            for line in headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
                if !feed(line)? {
                    break;
                }
            }
        }
        if let Some(name) = refused {
            return Err(Denial::HeaderNotAllowed(name));
        }
        if list.names() == 0 {
            return Ok(None);
        }
        Ok(match &self.request_headers {
            HeaderRule::List { header, .. } => header.as_ref().map(Cow::Borrowed),
            HeaderRule::Any if seen.header_lines == 1 => Some(Cow::Borrowed(first)),
            // Several lines are one list; joining them is the only allocation,
            // and browsers always send one line.
            HeaderRule::Any => {
                let joined = headers
                    .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
                    .iter()
                    .map(|v| v.as_bytes())
                    .filter(|v| !v.trim_ascii().is_empty())
                    .collect::<Vec<_>>()
                    .join(&b","[..]);
                HeaderValue::from_bytes(&joined).ok().map(Cow::Owned)
            }
        })
    }

    /// Whether `name` is, byte for byte, one of the allowed names: browsers
    /// send them lowercase, so this exact search (length, then memcmp) is the
    /// usual answer, and a name found this way needs no token check.
    fn knows_request_header(&self, name: &[u8]) -> bool {
        match &self.request_headers {
            HeaderRule::Any => false,
            // Sorted by length: skip to the names of this length, then
            // compare for equality (no ordering, so no memcmp).
            HeaderRule::List { names, .. } => names
                [names.partition_point(|allowed| allowed.len() < name.len())..]
                .iter()
                .take_while(|allowed| allowed.len() == name.len())
                .any(|allowed| **allowed == *name),
        }
    }

    /// Whether a valid token that [`knows_request_header`](Self::knows_request_header)
    /// did not find is allowed: any name for `*`, otherwise one that matches
    /// an allowed name when folded to lowercase.
    fn allows_request_header(&self, name: &[u8]) -> bool {
        match &self.request_headers {
            HeaderRule::Any => true,
            HeaderRule::List { names, .. } => {
                name.iter().any(u8::is_ascii_uppercase)
                    && names
                        .binary_search_by(|allowed| compare_lowercased(allowed, name))
                        .is_ok()
            }
        }
    }

    /// Writes the CORS headers for `decision` into a response's headers.
    ///
    /// `Vary` is merged into what the response already has. With
    /// [`UpstreamHeaders::Override`] any CORS header already present is
    /// replaced; with [`UpstreamHeaders::Defer`], a response that already
    /// carries `Access-Control-Allow-Origin` is left as it is.
    pub fn apply(&self, decision: &Decision, response: &mut HeaderMap) {
        match &decision.outcome {
            // A fresh map (the usual preflight answer) gets the prepared one;
            // a map that already has room or headers gets the inserts.
            Outcome::PreflightAllowed if decision.prepared_answer && response.capacity() == 0 => {
                *response = self.preflight_answer.clone();
                // The prepared answer starts with the origin's placeholder,
                // so the echo needs no hashed lookup.
                if let Some(origin) = &decision.allow_origin {
                    match response.iter_mut().next() {
                        Some((name, slot)) if *name == ACCESS_CONTROL_ALLOW_ORIGIN => {
                            slot.clone_from(origin);
                        }
                        _ => {
                            response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                        }
                    }
                }
            }
            Outcome::PreflightAllowed => self.apply_preflight(decision, response),
            Outcome::PreflightDenied(_) => {
                strip_cors_headers(response);
                merge_vary(response, &self.vary_preflight);
            }
            Outcome::NotCors
            | Outcome::ActualAllowed
            | Outcome::ActualDenied(_)
            | Outcome::Blocked(_) => {
                if self.upstream_headers == UpstreamHeaders::Defer
                    && response.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN)
                {
                    return;
                }
                strip_cors_headers(response);
                if decision.allow_origin.is_some() {
                    self.insert_origin(decision, response);
                    if let Some(expose) = &self.expose_headers {
                        response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
                    }
                }
                if let Some(vary) = &self.vary_actual {
                    merge_vary(response, vary);
                }
            }
        }
    }

    fn apply_preflight(&self, decision: &Decision, response: &mut HeaderMap) {
        // Up to nine headers go in; growing the map once, up front,
        // is cheaper than rehashing half-way.
        response.reserve(9);
        strip_cors_headers(response);
        self.insert_origin(decision, response);
        let (methods, names) = if decision.prepared_answer {
            self.policy_lists()
        } else {
            (
                decision.allow_methods.as_ref(),
                decision.allow_headers.as_ref(),
            )
        };
        if let Some(methods) = methods {
            response.insert(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
        }
        if let Some(names) = names {
            response.insert(ACCESS_CONTROL_ALLOW_HEADERS, names.clone());
        }
        // Browsers ignore it on a preflight, but systems such as Huawei
        // APIG and RESTHeart send it there, and users compare.
        if let Some(expose) = &self.expose_headers {
            response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
        if let Some(age) = &self.max_age {
            response.insert(ACCESS_CONTROL_MAX_AGE, age.clone());
        }
        if decision.private_network {
            response.insert(ALLOW_PRIVATE_NETWORK, TRUE);
        }
        merge_vary(response, &self.vary_preflight);
    }

    fn insert_origin(&self, decision: &Decision, response: &mut HeaderMap) {
        if let Some(origin) = &decision.allow_origin {
            response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            if self.credentials {
                response.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
            }
        }
    }
}

/// Orders an allowed name (lowercase) against a requested one as if the
/// requested one were lowercased: by length, then byte by byte, without
/// copying it.
fn compare_lowercased(allowed: &[u8], requested: &[u8]) -> std::cmp::Ordering {
    if allowed.len() != requested.len() {
        return allowed.len().cmp(&requested.len());
    }
    for (&a, &r) in allowed.iter().zip(requested) {
        let r = r.to_ascii_lowercase();
        if a != r {
            return a.cmp(&r);
        }
    }
    std::cmp::Ordering::Equal
}

/// Whether the request comes from the server's own origin, which
/// `block_disallowed` must never refuse: browsers send `Origin` on same-origin
/// POSTs too.
fn is_same_origin(origin: &HeaderValue, headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() == b"same-origin")
    {
        return true;
    }
    let Some(host) = headers.get(HOST) else {
        return false;
    };
    let origin = origin.as_bytes();
    origin
        .windows(3)
        .position(|w| w == b"://")
        .is_some_and(|at| origin[at + 3..].eq_ignore_ascii_case(host.as_bytes()))
}

fn compile_request_headers(names: &[String], errors: &mut Vec<ConfigError>) -> HeaderRule {
    if names.iter().any(|n| n == "*") {
        if names.len() > 1 {
            errors.push(ConfigError::new(
                "request_headers",
                names.join(", "),
                ConfigErrorKind::InvalidHeaderName,
            ));
        }
        return HeaderRule::Any;
    }
    let mut lowercase: Vec<Box<[u8]>> = Vec::with_capacity(names.len());
    let mut written: Vec<&str> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let key = format!("request_headers[{i}]");
        if !is_token(name.as_bytes()) || name.len() > MAX_HEADER_NAME {
            errors.push(ConfigError::new(
                key,
                name,
                ConfigErrorKind::InvalidHeaderName,
            ));
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if is_forbidden_or_protocol_request_header(&lower) {
            errors.push(ConfigError::new(
                key,
                name,
                ConfigErrorKind::ForbiddenRequestHeader,
            ));
            continue;
        }
        let lower = lower.into_bytes().into_boxed_slice();
        if !lowercase.contains(&lower) {
            lowercase.push(lower);
            written.push(name);
        }
    }
    let header = (!written.is_empty())
        .then(|| compiled_value(&written.join(", ")))
        .flatten();
    lowercase.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    HeaderRule::List {
        names: lowercase,
        header,
    }
}

fn compile_expose_headers(
    names: &[String],
    credentials: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<HeaderValue> {
    if names.iter().any(|n| n == "*") {
        if credentials {
            errors.push(ConfigError::new(
                "expose_headers",
                "*",
                ConfigErrorKind::WildcardExposeWithCredentials,
            ));
        }
        if names.len() > 1 {
            errors.push(ConfigError::new(
                "expose_headers",
                names.join(", "),
                ConfigErrorKind::InvalidHeaderName,
            ));
        }
        return Some(ANY);
    }
    let mut written: Vec<&str> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let key = format!("expose_headers[{i}]");
        if !is_token(name.as_bytes()) {
            errors.push(ConfigError::new(
                key,
                name,
                ConfigErrorKind::InvalidHeaderName,
            ));
        } else if name.eq_ignore_ascii_case("set-cookie")
            || name.eq_ignore_ascii_case("set-cookie2")
        {
            errors.push(ConfigError::new(
                key,
                name,
                ConfigErrorKind::ForbiddenExposedHeader,
            ));
        } else if !written.iter().any(|w| w.eq_ignore_ascii_case(name)) {
            written.push(name);
        }
    }
    (!written.is_empty())
        .then(|| compiled_value(&written.join(", ")))
        .flatten()
}
