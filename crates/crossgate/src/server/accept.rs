//! Accepting connections without spinning when the process runs out of file
//! descriptors (`EMFILE`, `ENFILE`) or socket buffers: `accept` then fails at
//! once, again and again, for as long as the condition lasts.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

/// First pause after a failed accept; it doubles on every further failure.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause: the listener checks at least this often whether
/// descriptors were freed.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// One warning per this interval, however many accepts fail.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The back-off state of one listener.
pub struct AcceptBackoff {
    listener: &'static str,
    pause: Duration,
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptBackoff {
    /// For the listener named `listener` in log lines.
    pub fn new(listener: &'static str) -> Self {
        Self {
            listener,
            pause: FIRST_PAUSE,
            last_logged: None,
            unlogged: 0,
        }
    }

    /// An accept succeeded: the next failure starts from the shortest pause.
    pub fn succeeded(&mut self) {
        self.pause = FIRST_PAUSE;
    }

    /// An accept failed with `error`: logs (at most once per interval) and
    /// waits before the next attempt, unless the failure concerned only the
    /// one connection that was being accepted.
    pub async fn failed(&mut self, error: &io::Error) {
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
        ) {
            return;
        }
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|logged| now.duration_since(logged) >= LOG_INTERVAL)
        {
            tracing::warn!(
                listener = self.listener,
                %error,
                failures_since_last_warning = self.unlogged,
                pause_ms = u64::try_from(self.pause.as_millis()).unwrap_or(u64::MAX),
                "accept failed; pausing before accepting again"
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
    }
}
