//! The colors of the human reports. Renderers always write them; the report
//! is printed through anstream, which strips them unless stdout is a
//! terminal and `NO_COLOR` is unset (or `--color always` forces them), so
//! pipes, files and `--json` never see an escape sequence.

use anstyle::{AnsiColor, Style};

/// A verdict that fails: BLOCKED, FAIL, a high or critical finding.
pub(crate) const BAD: Style = AnsiColor::Red.on_default().bold();
/// A verdict that passes: ALLOWED, PASS.
pub(crate) const GOOD: Style = AnsiColor::Green.on_default().bold();
/// Worth a look: a medium finding, a note.
pub(crate) const WARN: Style = AnsiColor::Yellow.on_default().bold();
/// No risk by itself: a low or info finding.
pub(crate) const MILD: Style = AnsiColor::Cyan.on_default();
/// What to change.
pub(crate) const FIX: Style = AnsiColor::Green.on_default();
/// Headings: the report's first line, each step.
pub(crate) const HEADING: Style = Style::new().bold();
/// Raw traffic: the headers sent and received.
pub(crate) const TRAFFIC: Style = Style::new().dimmed();
