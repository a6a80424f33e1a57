//! The progress line of a command that sends many requests (`audit`): a
//! spinner and a count on stderr, only when stderr is a terminal and the
//! output is not JSON, so pipes, logs and scripts never see it.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A request counter drawn on stderr; erased when dropped.
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Starts the line for probing `target`, drawn only when `wanted` and
    /// stderr is a terminal.
    pub(crate) fn start(wanted: bool, target: &str) -> Self {
        if !(wanted && std::io::stderr().is_terminal()) {
            return Self {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::new_spinner().with_message(target.to_owned());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} probing {msg}: {pos} requests sent ({elapsed})")
        {
            bar.set_style(style);
        }
        // Ticks on its own, so a slow server still shows a live line.
        bar.enable_steady_tick(Duration::from_millis(100));
        Self { bar }
    }

    /// What the prober calls after each request.
    pub(crate) fn counter(&self) -> impl Fn() + Send + Sync + 'static {
        let bar = self.bar.clone();
        move || bar.inc(1)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
