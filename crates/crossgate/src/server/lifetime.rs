//! A deadline for every state of a client connection, so that no socket holds
//! a `max_connections` slot (or a file descriptor) for longer than its state
//! allows:
//!
//! | state | deadline |
//! |---|---|
//! | accepted, TLS handshake, protocol detection, until the first request head is complete | `header_read_timeout` from accept |
//! | HTTP/1 between requests, nothing received | `idle_timeout` from the end of the last response |
//! | HTTP/1 between requests, a new head has begun | `header_read_timeout` from its first byte |
//! | HTTP/2 with no open stream | `idle_timeout` from the end of the last stream |
//! | a write to the client making no progress (any state) | `send_timeout` from when it stalled |
//!
//! hyper has a header-read timer, but it runs from the end of the previous
//! response, so it cannot tell a keep-alive pause from a slow head, and it
//! does not cover hyper-util's protocol detection, TLS, HTTP/2 or writes;
//! this module replaces it with one supervisor per connection.
//!
//! The same bookkeeping counts requests whose handling was abandoned before
//! a response was ready (an HTTP/2 stream reset after it was accepted), to
//! close connections that use resets to make the upstream work for nothing.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// The timeouts a connection lives by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// From accept to the first complete request head, and from the first
    /// byte of any later head to its end.
    pub header_read: Duration,
    /// Between requests (HTTP/1) or with no open stream (HTTP/2).
    pub idle: Duration,
    /// Without progress writing to the client.
    pub send: Duration,
}

/// How long a connection told to go away (idle, or shutting down with nothing
/// in flight) may take to say goodbye before it is dropped.
const GOODBYE_GRACE: Duration = Duration::from_millis(500);

/// Requests abandoned before their response within one [`RESET_WINDOW`]
/// that close the connection. Browsers cancel a few requests when a page is
/// left; a rapid-reset flood cancels hundreds a second.
const RESET_BUDGET: u64 = 100;
const RESET_WINDOW: Duration = Duration::from_secs(10);

/// What one connection is doing, shared by its IO, its requests and its
/// supervisor. Times are nanoseconds since `epoch`, plus one; 0 means unset.
pub struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    served: AtomicBool,
    http2: AtomicBool,
    idle_since: AtomicU64,
    head_started: AtomicU64,
    write_stalled: AtomicU64,
    abandoned: AtomicU64,
    abandoned_window: AtomicU64,
    changed: Notify,
}

/// Why a connection was closed by its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The connection ended by itself (client closed, or an error).
    Ended,
    /// No complete request head within `header_read_timeout`.
    HeaderTimeout,
    /// `idle_timeout` passed with nothing in flight.
    Idle,
    /// The client did not read for `send_timeout`.
    SendTimeout,
    /// Too many requests abandoned before their response.
    Resets,
    /// The server is shutting down and nothing was in flight.
    Shutdown,
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            idle_since: AtomicU64::new(1),
            head_started: AtomicU64::new(0),
            write_stalled: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            abandoned_window: AtomicU64::new(1),
            changed: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn at(&self, stamp: u64) -> Instant {
        self.epoch + Duration::from_nanos(stamp.saturating_sub(1))
    }

    /// A request head is complete and its handling begins; the guard ends it.
    pub fn request_started(self: &Arc<Self>, version: http::Version) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served.store(true, Ordering::SeqCst);
        if version == http::Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.head_started.store(0, Ordering::SeqCst);
        InFlight {
            activity: Some(self.clone()),
            answered: false,
        }
    }

    fn request_ended(&self, answered: bool) {
        if !answered {
            self.count_abandoned();
        }
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle_since.store(self.now(), Ordering::SeqCst);
            self.head_started.store(0, Ordering::SeqCst);
            self.changed.notify_one();
        }
    }

    fn count_abandoned(&self) {
        let now = self.now();
        let window = self.abandoned_window.load(Ordering::SeqCst);
        let window_nanos = u64::try_from(RESET_WINDOW.as_nanos()).unwrap_or(u64::MAX);
        if now.saturating_sub(window) > window_nanos {
            self.abandoned_window.store(now, Ordering::SeqCst);
            self.abandoned.store(0, Ordering::SeqCst);
        }
        if self.abandoned.fetch_add(1, Ordering::SeqCst) + 1 == RESET_BUDGET {
            self.changed.notify_one();
        }
    }

    fn read_some(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(self.now(), Ordering::SeqCst);
            self.changed.notify_one();
        }
    }

    fn write_progressed(&self) {
        if self.write_stalled.load(Ordering::Relaxed) != 0 {
            self.write_stalled.store(0, Ordering::SeqCst);
        }
    }

    fn write_blocked(&self) {
        if self.write_stalled.load(Ordering::Relaxed) == 0 {
            self.write_stalled.store(self.now(), Ordering::SeqCst);
            self.changed.notify_one();
        }
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// The earliest deadline in force and what passing it means; `None` when
    /// only a change of state can bring one (a request in flight, writing).
    fn next_deadline(&self, deadlines: &Deadlines) -> Option<(Instant, Closed)> {
        let http2 = self.http2.load(Ordering::Relaxed);
        let mut next: Option<(Instant, Closed)> = None;
        let mut consider = |at: Instant, why: Closed| {
            if next.is_none_or(|(earliest, _)| at < earliest) {
                next = Some((at, why));
            }
        };
        if self.abandoned.load(Ordering::SeqCst) >= RESET_BUDGET {
            consider(Instant::now(), Closed::Resets);
        }
        let stalled = self.write_stalled.load(Ordering::SeqCst);
        if stalled != 0 {
            consider(self.at(stalled) + deadlines.send, Closed::SendTimeout);
        }
        if self.idle() {
            let head_started = self.head_started.load(Ordering::SeqCst);
            if !self.served.load(Ordering::SeqCst) {
                consider(self.epoch + deadlines.header_read, Closed::HeaderTimeout);
            } else if head_started != 0 && !http2 {
                consider(
                    self.at(head_started) + deadlines.header_read,
                    Closed::HeaderTimeout,
                );
            } else {
                let since = self.idle_since.load(Ordering::SeqCst);
                consider(self.at(since) + deadlines.idle, Closed::Idle);
            }
        }
        next
    }
}

/// One request being handled; dropping it ends the request. A request whose
/// guard is dropped before [`InFlight::answered`] was abandoned.
pub struct InFlight {
    activity: Option<Arc<Activity>>,
    answered: bool,
}

impl InFlight {
    /// The response head is ready; the request ends when its body is done.
    pub fn answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.request_ended(self.answered);
        }
    }
}

/// A response body that keeps its request in flight until it is sent.
pub struct TrackedBody<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> TrackedBody<B> {
    /// `body`, ending `in_flight` when dropped.
    pub fn new(body: B, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for TrackedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The client's socket (or TLS stream), reporting reads and write progress
/// to the connection's [`Activity`].
pub struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> WatchedIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }

    fn written<R>(&self, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match &poll {
            Poll::Ready(_) => self.activity.write_progressed(),
            Poll::Pending => self.activity.write_blocked(),
        }
        poll
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.written(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.written(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.written(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.written(poll)
    }
}

/// Drives `connection` until it ends or a deadline of `activity` passes.
/// `go_away` starts hyper's graceful shutdown (GOAWAY on HTTP/2, close after
/// the current response on HTTP/1). When `shutdown` turns true, idle
/// connections are told to go away at once and busy ones after their
/// requests; the caller bounds the whole drain.
pub async fn supervise<C, E>(
    connection: C,
    go_away: impl Fn(Pin<&mut C>),
    activity: &Activity,
    deadlines: Deadlines,
    shutdown: watch::Receiver<bool>,
) -> (Closed, Result<(), E>)
where
    C: Future<Output = Result<(), E>>,
{
    let mut connection = std::pin::pin!(connection);
    let mut shutting_down = *shutdown.borrow();
    if shutting_down {
        go_away(connection.as_mut());
    }
    // Set once the connection has been told to go away: when it must be gone.
    let mut goodbye: Option<(Instant, Closed)> = None;
    // One timer for the whole connection, moved only to an earlier instant:
    // most state changes (each request's start and end) push the deadline
    // later, and a timer that fires early only has the deadline looked at
    // again. Creating a timer per change cost a timer-wheel insert and
    // removal each, per request.
    let mut timer = std::pin::pin!(tokio::time::sleep_until(Instant::now()));
    let mut armed: Option<Instant> = None;
    // Kept across turns of the loop: it registers with the channel when
    // polled, which each turn would otherwise pay again.
    let mut stop = std::pin::pin!(stopping(shutdown));
    loop {
        if shutting_down && goodbye.is_none() && activity.idle() {
            goodbye = Some((Instant::now() + GOODBYE_GRACE, Closed::Shutdown));
        }
        if let Some((at, _)) = goodbye.or_else(|| activity.next_deadline(&deadlines)) {
            if armed.is_none_or(|armed| at < armed) {
                timer.as_mut().reset(at);
                armed = Some(at);
            }
        }
        tokio::select! {
            result = connection.as_mut() => return (Closed::Ended, result),
            () = timer.as_mut(), if armed.is_some() => {
                armed = None;
                if let Some((at, why)) = goodbye {
                    if at <= Instant::now() {
                        return (why, Ok(()));
                    }
                    continue;
                }
                // The deadline may have moved since the timer was set.
                let Some((at, why)) = activity.next_deadline(&deadlines) else {
                    continue;
                };
                if at > Instant::now() {
                    continue;
                }
                match why {
                    Closed::Idle | Closed::Resets => {
                        go_away(connection.as_mut());
                        goodbye = Some((Instant::now() + GOODBYE_GRACE, why));
                    }
                    _ => return (why, Ok(())),
                }
            }
            () = activity.changed.notified() => {}
            () = stop.as_mut(), if !shutting_down => {
                shutting_down = true;
                go_away(connection.as_mut());
            }
        }
    }
}

/// Ends when `shutdown` turns true or its sender is gone.
async fn stopping(mut shutdown: watch::Receiver<bool>) {
    while shutdown.changed().await.is_ok() {
        if *shutdown.borrow_and_update() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINES: Deadlines = Deadlines {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
        send: Duration::from_secs(30),
    };

    fn next(activity: &Activity) -> (Duration, Closed) {
        let (at, why) = activity
            .next_deadline(&DEADLINES)
            .expect("a deadline in force");
        (at.duration_since(activity.epoch), why)
    }

    #[tokio::test]
    async fn before_the_first_request_the_head_deadline_runs_from_accept() {
        let activity = Activity::new();
        assert_eq!(
            next(&activity),
            (DEADLINES.header_read, Closed::HeaderTimeout)
        );
        activity.read_some();
        assert_eq!(
            next(&activity),
            (DEADLINES.header_read, Closed::HeaderTimeout)
        );
    }

    #[tokio::test]
    async fn a_request_in_flight_has_no_deadline_until_a_write_stalls() {
        let activity = Activity::new();
        let request = activity.request_started(http::Version::HTTP_11);
        assert!(activity.next_deadline(&DEADLINES).is_none());
        activity.write_blocked();
        let (after, why) = next(&activity);
        assert_eq!(why, Closed::SendTimeout);
        assert!(after >= DEADLINES.send);
        activity.write_progressed();
        assert!(activity.next_deadline(&DEADLINES).is_none());
        drop(request);
    }

    #[tokio::test]
    async fn between_http1_requests_idle_until_a_new_head_begins() {
        let activity = Activity::new();
        drop(activity.request_started(http::Version::HTTP_11));
        let (idle, why) = next(&activity);
        assert_eq!(why, Closed::Idle);
        assert!(idle >= DEADLINES.idle);
        activity.read_some();
        let (head, why) = next(&activity);
        assert_eq!(why, Closed::HeaderTimeout);
        assert!(head < DEADLINES.idle);
    }

    #[tokio::test]
    async fn http2_frames_between_streams_do_not_start_a_head_deadline() {
        let activity = Activity::new();
        drop(activity.request_started(http::Version::HTTP_2));
        activity.read_some();
        assert_eq!(next(&activity).1, Closed::Idle);
    }

    #[tokio::test]
    async fn abandoned_requests_beyond_the_budget_close_the_connection() {
        let activity = Activity::new();
        for _ in 0..RESET_BUDGET - 1 {
            drop(activity.request_started(http::Version::HTTP_2));
        }
        assert_eq!(next(&activity).1, Closed::Idle);
        let mut answered = activity.request_started(http::Version::HTTP_2);
        answered.answered();
        drop(answered);
        assert_eq!(
            next(&activity).1,
            Closed::Idle,
            "answered requests do not count"
        );
        drop(activity.request_started(http::Version::HTTP_2));
        assert_eq!(next(&activity).1, Closed::Resets);
    }
}
