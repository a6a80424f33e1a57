//! Upstream pools over real sockets: balancing, passive ejection and active
//! health checks against targets killed and restarted on the same port, the
//! 503 when every target is down, retries only for requests that cannot have
//! reached a target, per-target metrics, and the validation of the keys.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossgate::{CompiledConfig, ConfigSource, Metrics};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpSocket;
use tokio::task::{JoinHandle, JoinSet};

use crate::support::config::single_route;
use crate::support::{absent_upstream, send, TestGateway, PATIENCE};

const APP: &str = "https://app.example.com";

/// A target that answers `name:<path>`, sleeps on `/slow/<ms>`, and can be
/// killed (listener and every open connection) and started again on its port.
struct Target {
    addr: SocketAddr,
    name: &'static str,
    /// Paths of the requests it received, health checks included.
    paths: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<AtomicUsize>,
    task: Option<JoinHandle<()>>,
}

impl Target {
    async fn start(name: &'static str) -> Target {
        let mut target = Target {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            name,
            paths: Arc::default(),
            in_flight: Arc::default(),
            task: None,
        };
        target.listen().await;
        target
    }

    async fn listen(&mut self) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(self.addr).expect("bind target");
        let listener = socket.listen(128).expect("listen");
        self.addr = listener.local_addr().expect("addr");
        let (name, paths, in_flight) = (self.name, self.paths.clone(), self.in_flight.clone());
        self.task = Some(tokio::spawn(async move {
            // Connections live in the set, so aborting this task closes them too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (paths, in_flight) = (paths.clone(), in_flight.clone());
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        answer(name, paths.clone(), in_flight.clone(), request)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// Closes the listener and every connection, so the port refuses connections.
    async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        // The gateway's pooled connections see the close on their next poll.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests other than health checks.
    fn hits(&self) -> usize {
        self.paths
            .lock()
            .expect("paths")
            .iter()
            .filter(|path| !path.starts_with("/healthz"))
            .count()
    }

    fn hits_on(&self, prefix: &str) -> usize {
        self.paths
            .lock()
            .expect("paths")
            .iter()
            .filter(|path| path.starts_with(prefix))
            .count()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn answer(
    name: &'static str,
    paths: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<AtomicUsize>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    paths.lock().expect("paths").push(path.clone());
    in_flight.fetch_add(1, Ordering::SeqCst);
    if let Some((_, ms)) = path.rsplit_once("/slow/") {
        let ms = ms.parse().unwrap_or(3000);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(Response::new(Full::new(Bytes::from(format!(
        "{name}:{path}"
    )))))
}

fn config(upstream: &str) -> String {
    single_route(
        "connect_timeout = 1\nresponse_timeout = 5",
        APP,
        "/api/",
        &format!("upstream = {upstream}"),
    )
}

/// An `upstream` pool of the targets `a` and `b` with the pool keys `keys`.
fn pool_of(a: &Target, b: &Target, keys: &str) -> String {
    format!("{{ targets = [\"{}\", \"{}\"], {keys} }}", a.url(), b.url())
}

/// The value of `name{route="/api/",target="<target>"}` in `/metrics`.
fn target_metric(metrics: &Metrics, name: &str, target: &str) -> Option<u64> {
    let series = format!("{name}{{route=\"/api/\",target=\"{target}\"}} ");
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series).map(str::to_owned))
        .map(|value| value.parse().expect("a number"))
}

async fn get(gateway: &TestGateway, path: &str) -> crate::support::Reply {
    gateway.get(path, &[("origin", APP)]).await
}

/// Sends `count` GETs of `prefix/<i>` and asserts, saying `why`, that none
/// was attempted on the target `out` (out of rotation); gives the replies.
async fn gets_passing_by(
    gateway: &TestGateway,
    out: &str,
    prefix: &str,
    count: usize,
    why: &str,
) -> Vec<crate::support::Reply> {
    let attempts = || {
        target_metric(
            &gateway.metrics,
            "crossgate_upstream_target_requests_total",
            out,
        )
    };
    let before = attempts();
    let mut replies = Vec::new();
    for i in 0..count {
        replies.push(get(gateway, &format!("{prefix}/{i}")).await);
    }
    assert_eq!(attempts(), before, "{why}");
    replies
}

/// Polls `condition` every 20 ms until it holds, failing after [`PATIENCE`];
/// `condition` may send requests.
async fn until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn round_robin_spreads_requests_evenly_over_three_targets_and_counts_each() {
    let targets = [
        Target::start("a").await,
        Target::start("b").await,
        Target::start("c").await,
    ];
    let list = format!(
        "[\"{}\", \"{}\", \"{}\"]",
        targets[0].url(),
        targets[1].url(),
        targets[2].url()
    );
    let gateway = TestGateway::start(&config(&list)).await;
    for i in 0..30 {
        let reply = get(&gateway, &format!("/api/item/{i}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    for target in &targets {
        assert_eq!(
            target.hits(),
            10,
            "target {} got an uneven share",
            target.name
        );
        let url = target.url();
        let metric = |name| target_metric(&gateway.metrics, name, &url);
        assert_eq!(metric("crossgate_upstream_target_requests_total"), Some(10));
        assert_eq!(metric("crossgate_upstream_target_failures_total"), Some(0));
        assert_eq!(metric("crossgate_upstream_target_ejections_total"), Some(0));
        assert_eq!(metric("crossgate_upstream_target_healthy"), Some(1));
    }
}

#[tokio::test]
async fn least_requests_sends_new_requests_to_the_idle_target() {
    let (a, b) = (Target::start("a").await, Target::start("b").await);
    let gateway =
        TestGateway::start(&config(&pool_of(&a, &b, "balance = \"least_requests\""))).await;
    let addr = gateway.addr;
    let slow = tokio::spawn(async move { send(addr, "GET", "/api/slow/1500", &[], b"").await });
    until("the slow request to reach a target", || async {
        a.in_flight.load(Ordering::SeqCst) + b.in_flight.load(Ordering::SeqCst) == 1
    })
    .await;
    let (busy, idle) = if a.in_flight.load(Ordering::SeqCst) == 1 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    for i in 0..6 {
        let reply = get(&gateway, &format!("/api/quick/{i}")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(busy.hits(), 1, "the busy target got new requests");
    assert_eq!(idle.hits(), 6);
    assert_eq!(slow.await.expect("slow request").status, StatusCode::OK);
}

#[tokio::test]
async fn passive_health_ejects_a_killed_target_and_takes_it_back_once_restarted() {
    let (mut a, b) = (Target::start("a").await, Target::start("b").await);
    let gateway = TestGateway::start(&config(&pool_of(&a, &b, "eject_after = 2"))).await;
    let a_url = a.url();
    let metric = |name| target_metric(&gateway.metrics, name, &a_url);
    a.kill().await;
    // GETs that meet the dead target are retried on the other one.
    for i in 0..8 {
        let reply = get(&gateway, &format!("/api/x/{i}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    assert_eq!(metric("crossgate_upstream_target_failures_total"), Some(2));
    assert_eq!(metric("crossgate_upstream_target_ejections_total"), Some(1));
    assert_eq!(metric("crossgate_upstream_target_healthy"), Some(0));
    gets_passing_by(
        &gateway,
        &a_url,
        "/api/y",
        4,
        "an ejected target gets no attempts",
    )
    .await;

    a.listen().await;
    until("the restarted target to be back in rotation", || async {
        get(&gateway, "/api/back").await;
        a.hits() > 0
    })
    .await;
    assert_eq!(metric("crossgate_upstream_target_healthy"), Some(1));
}

#[tokio::test]
async fn active_health_checks_take_a_killed_target_out_and_bring_it_back() {
    let (mut a, b) = (Target::start("a").await, Target::start("b").await);
    // eject_after is high so that only the health checks decide.
    let pool = pool_of(
        &a,
        &b,
        "eject_after = 1000, health = { path = \"/healthz\", interval = 0.2, timeout = 0.15, healthy = 2, unhealthy = 2 }",
    );
    let gateway = TestGateway::start(&config(&pool)).await;
    let a_url = a.url();
    let metric = |name| target_metric(&gateway.metrics, name, &a_url);
    until("a health check on each target", || async {
        a.hits_on("/healthz") > 0 && b.hits_on("/healthz") > 0
    })
    .await;
    a.kill().await;
    until("the killed target to be marked unhealthy", || async {
        metric("crossgate_upstream_target_healthy") == Some(0)
    })
    .await;
    let before = b.hits();
    let why = "an unhealthy target gets no requests";
    for reply in gets_passing_by(&gateway, &a_url, "/api/x", 6, why).await {
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(b.hits(), before + 6);

    a.listen().await;
    until("the restarted target to pass its checks", || async {
        metric("crossgate_upstream_target_healthy") == Some(1)
    })
    .await;
    for i in 0..4 {
        get(&gateway, &format!("/api/z/{i}")).await;
    }
    assert!(a.hits() > 0, "the recovered target gets requests again");
}

#[tokio::test]
async fn with_every_target_down_the_answer_is_a_readable_503() {
    let (x, y) = (absent_upstream().await, absent_upstream().await);
    let pool = format!("{{ targets = [\"http://{x}\", \"http://{y}\"], eject_after = 1 }}");
    let gateway = TestGateway::start(&config(&pool)).await;
    // The first request tries both and ejects both.
    let first = get(&gateway, "/api/a").await;
    assert_eq!(first.status, StatusCode::BAD_GATEWAY, "{}", first.text());
    let allowed = get(&gateway, "/api/a").await;
    assert_eq!(allowed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        allowed.text().contains("no_healthy_upstream"),
        "{}",
        allowed.text()
    );
    assert_eq!(allowed.header("access-control-allow-origin"), Some(APP));
    assert_eq!(allowed.header("retry-after"), Some("1"));
    let other = gateway
        .get("/api/a", &[("origin", "https://evil.example")])
        .await;
    assert_eq!(other.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert!(gateway
        .metrics
        .render()
        .contains("crossgate_upstream_errors_total{route=\"/api/\",reason=\"no_healthy_upstream\",fault=\"upstream\"} 2"));
}

#[tokio::test]
async fn a_bodiless_get_is_retried_on_another_target_but_not_a_post_nor_a_put_with_a_body() {
    let absent = absent_upstream().await;
    let b = Target::start("b").await;
    // Never ejected, so every other first attempt meets the dead target.
    let pool = format!(
        "{{ targets = [\"http://{absent}\", \"{}\"], eject_after = 1000 }}",
        b.url()
    );
    let gateway = TestGateway::start(&config(&pool)).await;
    for i in 0..4 {
        let reply = get(&gateway, &format!("/api/get/{i}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert!(reply.text().starts_with("b:"));
    }
    let absent_url = format!("http://{absent}");
    let failures = target_metric(
        &gateway.metrics,
        "crossgate_upstream_target_failures_total",
        &absent_url,
    );
    assert!(
        failures >= Some(2),
        "the GETs met the dead target: {failures:?}"
    );
    // Not idempotent even without a body; idempotent but with a body.
    for (method, body) in [("POST", &b""[..]), ("POST", b"x"), ("PUT", b"x")] {
        let mut statuses = Vec::new();
        for i in 0..4 {
            let path = format!("/api/{method}/{i}");
            let reply = gateway.send(method, &path, &[("origin", APP)], body).await;
            statuses.push(reply.status.as_u16());
        }
        let refused = statuses.iter().filter(|s| **s == 502).count();
        assert_eq!(refused, 2, "{method} {body:?}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2);
    }
    assert_eq!(
        b.hits(),
        4 + 3 * 2,
        "no POST, nor a PUT with a body, was retried"
    );
}

#[tokio::test]
async fn a_reload_stops_the_old_generations_health_checks() {
    let (a, b) = (Target::start("a").await, Target::start("b").await);
    let with_path = |path: &str| {
        config(&pool_of(
            &a,
            &b,
            &format!("health = {{ path = \"{path}\", interval = 0.05, timeout = 0.04 }}"),
        ))
    };
    let gateway = TestGateway::start(&with_path("/healthz-old")).await;
    assert_eq!(gateway.gateway.current().health_checkers.len(), 2);
    until("the first generation's checks", || async {
        a.hits_on("/healthz-old") > 0
    })
    .await;
    gateway
        .reload_with(&with_path("/healthz-new"))
        .expect("reload");
    until("the second generation's checks", || async {
        a.hits_on("/healthz-new") > 0 && b.hits_on("/healthz-new") > 0
    })
    .await;
    let old = (a.hits_on("/healthz-old"), b.hits_on("/healthz-old"));
    let new = a.hits_on("/healthz-new");
    until("five more intervals", || async {
        a.hits_on("/healthz-new") >= new + 5
    })
    .await;
    assert_eq!(
        (a.hits_on("/healthz-old"), b.hits_on("/healthz-old")),
        old,
        "the replaced generation still checks"
    );
}

/// The problems compiling `routes` under a minimal `[server]` finds, as
/// (key, why, fix).
fn problems(routes: &str) -> Vec<(String, String, String)> {
    let text = format!("[server]\nlisten = \"127.0.0.1:0\"\n{routes}");
    match CompiledConfig::compile_text(&text, &ConfigSource::Demo, &Metrics::new()) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .0
            .into_iter()
            .map(|p| (p.key, p.why, p.fix))
            .collect(),
    }
}

#[test]
fn every_mistake_in_a_pool_is_reported_with_its_key_and_a_fix() {
    let found = problems(
        r#"
[[routes]]
path = "/empty/"
upstream = []

[[routes]]
path = "/balance/"
upstream = { targets = ["http://127.0.0.1:1", "http://127.0.0.1:2"], balance = "fastest" }

[[routes]]
path = "/single/"
upstream = { targets = ["http://127.0.0.1:1"], health = { path = "/healthz" } }

[[routes]]
path = "/bounds/"
upstream = { targets = ["http://127.0.0.1:1", "http://127.0.0.1:2"], health = { path = "healthz", interval = 1, timeout = 2, healthy = 0, unhealthy = -1 } }

[[routes]]
path = "/zero/"
upstream = { targets = ["http://127.0.0.1:1", "http://127.0.0.1:2"], eject_after = 0, health = { path = "/h", interval = 0 } }

[[routes]]
path = "/keys/"
upstream = { target = ["http://127.0.0.1:1"], health = { path = "/h", intervall = 2 } }

[[routes]]
path = "/urls/"
upstream = ["ftp://x", "http://127.0.0.1:1", "http://127.0.0.1:1", 5]
"#,
    );
    let has = |key: &str, fix: &str| {
        assert!(
            found.iter().any(|(k, _, f)| k == key && f.contains(fix)),
            "no problem at {key} with a fix containing {fix:?} in:\n{found:#?}"
        );
    };
    has("routes[0].upstream", "list at least one base URL");
    has(
        "routes[1].upstream.balance",
        "`round_robin`, `least_requests`, `random`",
    );
    has("routes[2].upstream.health", "add targets or remove health");
    has("routes[3].upstream.health.path", "\"/healthz\"");
    has("routes[3].upstream.health.timeout", "shorter than interval");
    has("routes[3].upstream.health.healthy", "at least 1");
    has("routes[3].upstream.health.unhealthy", "at least 1");
    has("routes[4].upstream.eject_after", "eject_after = 3");
    has("routes[4].upstream.health.interval", "positive");
    has("routes[5].upstream.target", "did you mean `targets`?");
    has(
        "routes[5].upstream.health.intervall",
        "did you mean `interval`?",
    );
    has("routes[6].upstream[3]", "as a string");
    // The list with a non-string is not compiled further; the URLs are
    // checked once it holds only strings.
    let urls = problems(
        r#"
[[routes]]
path = "/urls/"
upstream = ["ftp://x", "http://127.0.0.1:1", "http://127.0.0.1:1"]
"#,
    );
    let keys: Vec<&str> = urls.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["routes[0].upstream[0]", "routes[0].upstream[2]"],
        "{urls:#?}"
    );
}

#[test]
fn a_string_upstream_keeps_its_messages() {
    let found = problems(
        r#"
[[routes]]
path = "/a/"
upstream = "ftp://x"
"#,
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, "routes[0].upstream");
    assert_eq!(
        found[0].1,
        "\"ftp://x\" must start with http:// or https://"
    );
}
