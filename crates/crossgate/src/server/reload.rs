//! Configuration reload triggers: SIGHUP and changes of the config file.
//!
//! The file is polled (metadata and a hash of its content) rather than watched
//! with inotify (`notify`): editors and Kubernetes ConfigMaps replace the file
//! by renaming over it or swapping a symlink, which silently detaches an
//! inotify watch on the file, and inotify events do not arrive on many network
//! and overlay filesystems. Reading a small config file twice a second costs
//! nothing measurable. The content hash catches edits that keep the length
//! and land within the filesystem's mtime granularity (or restore the mtime).
//!
//! Triggers are debounced: a reload runs once no trigger has arrived for the
//! debounce time and the file has stopped changing, so an editor's burst of
//! writes or a volley of SIGHUPs costs one reload. Reloads run one at a time.

use std::collections::VecDeque;
use std::fmt::Display;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::ops::metrics::Metrics;

/// What triggers a reload, and how eagerly.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// The config file to watch; `None` watches no file.
    pub watch: Option<PathBuf>,
    /// Reload on SIGHUP.
    pub sighup: bool,
    /// How often the file is checked.
    pub poll_interval: Duration,
    /// Quiet time after the last trigger before reloading.
    pub debounce: Duration,
}

impl ReloadOptions {
    /// SIGHUP on, the file (if any) polled every 500 ms, 200 ms debounce.
    pub fn new(watch: Option<PathBuf>) -> ReloadOptions {
        ReloadOptions {
            watch,
            sighup: true,
            poll_interval: Duration::from_millis(500),
            debounce: Duration::from_millis(200),
        }
    }
}

/// Reloads kept by [`ReloadHistory`]; older ones are dropped.
const HISTORY_CAPACITY: usize = 32;
/// Lines of a failed reload's error kept (one per problem), and their length.
const HISTORY_ERROR_LINES: usize = 16;
const HISTORY_ERROR_LINE_CHARS: usize = 512;

/// One reload attempt, as the admin dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadRecord {
    /// Unix seconds when it finished.
    pub time: u64,
    /// `sighup` or `file_change`.
    pub trigger: &'static str,
    /// Whether the new configuration was put in force.
    pub ok: bool,
    /// The configuration generation in force afterwards.
    pub generation: u64,
    /// For a failed reload, the reasons (one problem a line, cut to a bound).
    pub errors: Vec<String>,
}

/// The configuration generation (1 for the configuration loaded at start, one
/// more per successful reload) and the last reloads, bounded.
#[derive(Debug)]
pub struct ReloadHistory(Mutex<HistoryState>);

/// What [`ReloadHistory::snapshot`] returns.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryState {
    /// The generation in force.
    pub generation: u64,
    /// The last reloads, newest first.
    pub reloads: VecDeque<ReloadRecord>,
}

impl Default for ReloadHistory {
    fn default() -> Self {
        ReloadHistory::new()
    }
}

impl ReloadHistory {
    /// Generation 1, no reloads yet.
    pub fn new() -> ReloadHistory {
        ReloadHistory(Mutex::new(HistoryState {
            generation: 1,
            reloads: VecDeque::with_capacity(HISTORY_CAPACITY),
        }))
    }

    /// A copy of the generation and the retained reloads.
    pub fn snapshot(&self) -> HistoryState {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, trigger: Trigger, error: Option<&str>) {
        let errors = error.map_or_else(Vec::new, |error| {
            error
                .lines()
                .filter(|line| !line.trim().is_empty())
                .take(HISTORY_ERROR_LINES)
                .map(|line| line.chars().take(HISTORY_ERROR_LINE_CHARS).collect())
                .collect()
        });
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        // Plain data: a panic elsewhere cannot leave it inconsistent.
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if error.is_none() {
            state.generation += 1;
        }
        if state.reloads.len() == HISTORY_CAPACITY {
            state.reloads.pop_back();
        }
        let generation = state.generation;
        state.reloads.push_front(ReloadRecord {
            time,
            trigger: trigger.as_str(),
            ok: error.is_none(),
            generation,
            errors,
        });
    }
}

/// The running reload trigger. Dropping it stops reloading.
#[must_use = "dropping the ReloadTask stops reloading"]
pub struct ReloadTask(JoinHandle<()>);

impl Drop for ReloadTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug, Clone, Copy)]
enum Trigger {
    Sighup,
    FileChange,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Sighup => "sighup",
            Trigger::FileChange => "file_change",
        }
    }
}

/// What the watcher compares between polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    content_hash: u64,
}

fn hash_content(content: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    content.hash(&mut hasher);
    hasher.finish()
}

/// `None` when the file cannot be read (e.g. mid-replacement); the watcher
/// waits for it to come back rather than reloading a missing file.
async fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let metadata = tokio::fs::metadata(path).await.ok()?;
    let content = tokio::fs::read(path).await.ok()?;
    Some(Fingerprint {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        content_hash: hash_content(&content),
    })
}

fn fingerprint_now(path: &Path) -> Option<Fingerprint> {
    let metadata = std::fs::metadata(path).ok()?;
    let content = std::fs::read(path).ok()?;
    Some(Fingerprint {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        content_hash: hash_content(&content),
    })
}

/// Starts the reload triggers on the current tokio runtime.
///
/// `reload` re-reads, validates and swaps in the configuration; it runs on a
/// blocking thread. Its result is counted in `metrics`, kept in `history` and
/// logged here (an error as the reason the running configuration was kept). The SIGHUP handler
/// is installed before this returns, so a SIGHUP sent afterwards never kills
/// the process.
pub fn spawn<F, E>(
    options: ReloadOptions,
    metrics: Arc<Metrics>,
    history: Arc<ReloadHistory>,
    reload: F,
) -> io::Result<ReloadTask>
where
    F: Fn() -> Result<(), E> + Send + Sync + 'static,
    E: Display + Send + 'static,
{
    let hangups = if options.sighup {
        Some(signal(SignalKind::hangup())?)
    } else {
        None
    };
    // Taken now, not in the task, so an edit right after startup is not
    // mistaken for the baseline.
    let baseline = options.watch.as_deref().and_then(fingerprint_now);
    let trigger_loop = TriggerLoop {
        options,
        metrics,
        history,
        reload: Arc::new(reload),
        hangups,
        observed: baseline,
    };
    Ok(ReloadTask(tokio::spawn(trigger_loop.run())))
}

struct TriggerLoop<F> {
    options: ReloadOptions,
    metrics: Arc<Metrics>,
    history: Arc<ReloadHistory>,
    reload: Arc<F>,
    hangups: Option<Signal>,
    observed: Option<Fingerprint>,
}

impl<F, E> TriggerLoop<F>
where
    F: Fn() -> Result<(), E> + Send + Sync + 'static,
    E: Display + Send + 'static,
{
    async fn run(mut self) {
        let mut poll = tokio::time::interval(self.options.poll_interval);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pending: Option<(Instant, Trigger)> = None;
        loop {
            let deadline = pending.map_or_else(far_future, |(at, _)| at);
            tokio::select! {
                received = next_hangup(&mut self.hangups) => {
                    if received {
                        pending = Some((Instant::now() + self.options.debounce, Trigger::Sighup));
                    } else {
                        // The signal stream ended; without this the branch would fire forever.
                        self.hangups = None;
                    }
                }
                _ = poll.tick(), if self.options.watch.is_some() => {
                    if self.file_changed().await {
                        pending = Some((Instant::now() + self.options.debounce, Trigger::FileChange));
                    }
                }
                () = tokio::time::sleep_until(deadline), if pending.is_some() => {
                    // Still being written: wait for it to settle before reading it.
                    if self.file_changed().await {
                        pending = pending.map(|(_, trigger)| (Instant::now() + self.options.debounce, trigger));
                        continue;
                    }
                    if let Some((_, trigger)) = pending.take() {
                        self.reload_now(trigger).await;
                    }
                }
            }
        }
    }

    /// Whether the watched file differs from what was last observed (a missing
    /// or unreadable file is not a change to reload on).
    async fn file_changed(&mut self) -> bool {
        let Some(path) = self.options.watch.as_deref() else {
            return false;
        };
        let current = fingerprint(path).await;
        if current == self.observed {
            return false;
        }
        self.observed = current;
        current.is_some()
    }

    async fn reload_now(&self, trigger: Trigger) {
        let reload = Arc::clone(&self.reload);
        let outcome =
            tokio::task::spawn_blocking(move || reload().map_err(|e| e.to_string())).await;
        match outcome {
            Ok(Ok(())) => {
                self.metrics.reload_succeeded();
                self.history.record(trigger, None);
                tracing::info!(trigger = trigger.as_str(), "configuration reloaded");
            }
            Ok(Err(error)) => {
                self.metrics.reload_failed();
                self.history.record(trigger, Some(&error));
                tracing::error!(
                    trigger = trigger.as_str(),
                    %error,
                    "configuration reload failed; keeping the running configuration"
                );
            }
            Err(join_error) => {
                self.metrics.reload_failed();
                self.history.record(trigger, Some("the reload panicked"));
                tracing::error!(
                    trigger = trigger.as_str(),
                    error = %join_error,
                    "configuration reload panicked; keeping the running configuration"
                );
            }
        }
    }
}

/// Waits for the next SIGHUP; `false` when the stream has ended. Never
/// completes when SIGHUP is not being listened to.
async fn next_hangup(hangups: &mut Option<Signal>) -> bool {
    match hangups {
        Some(hangups) => hangups.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

/// A deadline that is never reached in practice; only used while its
/// `select!` branch is disabled.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A config file in a fresh temp directory, removed on drop.
    struct TempConfig {
        dir: PathBuf,
        path: PathBuf,
    }

    impl TempConfig {
        fn new(name: &str, content: &str) -> TempConfig {
            let dir = std::env::temp_dir()
                .join(format!("crossgate-reload-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let path = dir.join("crossgate.toml");
            std::fs::write(&path, content).expect("write config");
            TempConfig { dir, path }
        }

        fn write(&self, content: &str) {
            std::fs::write(&self.path, content).expect("rewrite config");
        }
    }

    impl Drop for TempConfig {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Counts reload calls and remembers the content each one read.
    #[derive(Clone, Default)]
    struct Recorder {
        calls: Arc<AtomicUsize>,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Recorder {
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        fn last_seen(&self) -> Option<String> {
            self.seen.lock().expect("recorder lock").last().cloned()
        }

        /// A reload callback that reads `path` and fails when it says "invalid".
        fn callback(
            &self,
            path: Option<PathBuf>,
        ) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
            let recorder = self.clone();
            move || {
                recorder.calls.fetch_add(1, Ordering::SeqCst);
                let content = match &path {
                    Some(path) => std::fs::read_to_string(path).map_err(|e| e.to_string())?,
                    None => String::new(),
                };
                recorder
                    .seen
                    .lock()
                    .expect("recorder lock")
                    .push(content.clone());
                if content.contains("invalid") {
                    Err(format!("rejected: {content}"))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn fast_options(watch: Option<PathBuf>) -> ReloadOptions {
        ReloadOptions {
            watch,
            sighup: false,
            poll_interval: Duration::from_millis(20),
            debounce: Duration::from_millis(100),
        }
    }

    /// A reloader watching `config` with [`fast_options`], reporting to `recorder`.
    fn watch_file(
        config: &TempConfig,
        recorder: &Recorder,
        metrics: Arc<Metrics>,
        history: Arc<ReloadHistory>,
    ) -> ReloadTask {
        spawn(
            fast_options(Some(config.path.clone())),
            metrics,
            history,
            recorder.callback(Some(config.path.clone())),
        )
        .expect("spawn reloader")
    }

    async fn wait_for_calls(recorder: &Recorder, at_least: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while recorder.calls() < at_least {
            assert!(
                Instant::now() < deadline,
                "expected {at_least} reload(s) within 5 s, got {}",
                recorder.calls()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the `calls`-th reload and checks that it read `content`.
    async fn wait_for_reload_reading(recorder: &Recorder, calls: usize, content: &str) {
        wait_for_calls(recorder, calls).await;
        assert_eq!(recorder.last_seen().as_deref(), Some(content));
    }

    /// The callback returns before its result is counted, so poll the counters.
    async fn wait_for_reload_counts(metrics: &Metrics, ok: u64, failed: u64) {
        let expected = (ok.to_string(), failed.to_string());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let counts = reload_counts(metrics);
            if counts == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "reload counters (ok, failed) = {counts:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn reload_counts(metrics: &Metrics) -> (String, String) {
        let text = metrics.render();
        let find = |result: &str| {
            let prefix = format!("crossgate_config_reloads_total{{result=\"{result}\"}} ");
            text.lines()
                .find_map(|line| line.strip_prefix(&prefix))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        (find("ok"), find("failed"))
    }

    #[tokio::test]
    async fn unchanged_file_is_not_reloaded() {
        let config = TempConfig::new("unchanged", "version = 1");
        let recorder = Recorder::default();
        let metrics = Arc::new(Metrics::new());
        let _task = watch_file(&config, &recorder, metrics, Arc::default());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(recorder.calls(), 0);
    }

    #[tokio::test]
    async fn a_burst_of_writes_reloads_once_with_the_final_content() {
        let config = TempConfig::new("burst", "version = 1");
        let recorder = Recorder::default();
        let metrics = Arc::new(Metrics::new());
        let _task = watch_file(&config, &recorder, metrics.clone(), Arc::default());
        for version in 2..=6 {
            config.write(&format!("version = {version}"));
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        wait_for_calls(&recorder, 1).await;
        // Several debounce periods later, still exactly one reload.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(recorder.calls(), 1);
        assert_eq!(recorder.last_seen().as_deref(), Some("version = 6"));
        wait_for_reload_counts(&metrics, 1, 0).await;
    }

    #[tokio::test]
    async fn same_length_edit_is_detected_by_content() {
        let config = TempConfig::new("samelen", "version = 1");
        let recorder = Recorder::default();
        let _task = watch_file(&config, &recorder, Arc::new(Metrics::new()), Arc::default());
        let original_mtime = std::fs::metadata(&config.path)
            .and_then(|m| m.modified())
            .expect("mtime");
        config.write("version = 2");
        // Put the old mtime back: only the content hash can tell the files apart.
        let file = std::fs::File::options()
            .write(true)
            .open(&config.path)
            .expect("open config");
        file.set_modified(original_mtime).expect("restore mtime");
        drop(file);
        wait_for_reload_reading(&recorder, 1, "version = 2").await;
    }

    #[tokio::test]
    async fn failed_reload_is_counted_and_later_good_edit_reloads() {
        let config = TempConfig::new("failed", "version = 1");
        let recorder = Recorder::default();
        let metrics = Arc::new(Metrics::new());
        let history = Arc::new(ReloadHistory::new());
        let _task = watch_file(&config, &recorder, metrics.clone(), history.clone());
        config.write("invalid = true");
        wait_for_calls(&recorder, 1).await;
        wait_for_reload_counts(&metrics, 0, 1).await;
        config.write("version = 3");
        wait_for_calls(&recorder, 2).await;
        wait_for_reload_counts(&metrics, 1, 1).await;

        let state = history.snapshot();
        assert_eq!(state.generation, 2, "one successful reload after the start");
        let reloads: Vec<_> = state.reloads.iter().collect();
        assert_eq!(reloads.len(), 2);
        assert!(reloads[0].ok && reloads[0].errors.is_empty());
        assert_eq!(reloads[0].generation, 2);
        assert_eq!(reloads[0].trigger, "file_change");
        assert!(!reloads[1].ok);
        assert_eq!(reloads[1].generation, 1);
        assert_eq!(reloads[1].errors, ["rejected: invalid = true"]);
    }

    #[test]
    fn history_is_bounded_and_keeps_bounded_error_lines() {
        let history = ReloadHistory::new();
        let long_line = "x".repeat(10_000);
        let many_lines = vec![long_line.as_str(); 100].join("\n");
        for _ in 0..HISTORY_CAPACITY + 5 {
            history.record(Trigger::Sighup, Some(&many_lines));
        }
        history.record(Trigger::FileChange, None);
        let state = history.snapshot();
        assert_eq!(state.generation, 2);
        assert_eq!(state.reloads.len(), HISTORY_CAPACITY);
        assert!(state.reloads[0].ok);
        let failed = &state.reloads[1];
        assert_eq!(failed.errors.len(), HISTORY_ERROR_LINES);
        assert!(failed
            .errors
            .iter()
            .all(|line| line.chars().count() == HISTORY_ERROR_LINE_CHARS));
    }

    #[tokio::test]
    async fn a_missing_file_waits_until_it_is_back() {
        let config = TempConfig::new("missing", "version = 1");
        let recorder = Recorder::default();
        let _task = watch_file(&config, &recorder, Arc::new(Metrics::new()), Arc::default());
        std::fs::remove_file(&config.path).expect("remove config");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            recorder.calls(),
            0,
            "a missing file must not trigger a reload"
        );
        config.write("version = 2");
        wait_for_reload_reading(&recorder, 1, "version = 2").await;
    }

    #[tokio::test]
    async fn dropping_the_task_stops_reloading() {
        let config = TempConfig::new("dropped", "version = 1");
        let recorder = Recorder::default();
        let task = watch_file(&config, &recorder, Arc::new(Metrics::new()), Arc::default());
        drop(task);
        config.write("version = 2");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(recorder.calls(), 0);
    }

    /// The only test in this binary that raises SIGHUP; the others do not
    /// listen for it, so their counts cannot be disturbed by it.
    #[tokio::test]
    async fn sighups_are_debounced_into_one_reload_each_burst() {
        let recorder = Recorder::default();
        let metrics = Arc::new(Metrics::new());
        // Long enough that the three `kill` processes land in one window even on a busy machine.
        let options = ReloadOptions {
            sighup: true,
            debounce: Duration::from_millis(500),
            ..fast_options(None)
        };
        let _task = spawn(
            options,
            metrics.clone(),
            Arc::default(),
            recorder.callback(None),
        )
        .expect("spawn reloader");
        let hangup = || {
            // The shell's built-in kill: no dependency on a procps binary.
            let status = std::process::Command::new("sh")
                .args(["-c", &format!("kill -s HUP {}", std::process::id())])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -HUP failed");
        };
        hangup();
        hangup();
        hangup();
        wait_for_calls(&recorder, 1).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(recorder.calls(), 1, "three quick SIGHUPs make one reload");
        hangup();
        wait_for_calls(&recorder, 2).await;
        wait_for_reload_counts(&metrics, 2, 0).await;
    }
}
