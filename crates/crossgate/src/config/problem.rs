//! The one vocabulary of configuration errors, for the gateway's keys and the
//! engine's alike: a [`Problem`] names its file, key path, what is wrong and
//! the fix; a [`Report`] collects every problem and warning of one load.

use std::fmt;

use crossgate_cors::{ConfigError, ConfigErrors};

use super::ConfigSource;

/// One thing wrong with a configuration: where, why, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as named by [`ConfigSource::display_name`].
    pub file: String,
    /// The key path, e.g. `policies.web.origins[1]` or `routes[2].policy`; empty for the file itself.
    pub key: String,
    /// What is wrong.
    pub why: String,
    /// What to write instead.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}\n    fix: {}", self.file, self.why, self.fix)
        } else {
            write!(
                f,
                "{}: {}: {}\n    fix: {}",
                self.file, self.key, self.why, self.fix
            )
        }
    }
}

/// Something accepted that probably is not what the author wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file, as named by [`ConfigSource::display_name`].
    pub file: String,
    /// The key path.
    pub key: String,
    /// Why it deserves a second look and what to do.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}: {}", self.file, self.key, self.message)
    }
}

/// Every problem of a configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        let count = self.0.len();
        write!(
            f,
            "\n{count} problem{} found",
            if count == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Problems {}

/// Collects problems and warnings while a file is checked.
#[derive(Debug)]
pub struct Report {
    file: String,
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<Warning>,
}

impl Report {
    pub(crate) fn new(source: &ConfigSource) -> Self {
        Self {
            file: source.display_name(),
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(crate) fn problem(
        &mut self,
        key: impl Into<String>,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem {
            file: self.file.clone(),
            key: key.into(),
            why: why.into(),
            fix: fix.into(),
        });
    }

    pub(crate) fn warning(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            file: self.file.clone(),
            key: key.into(),
            message: message.into(),
        });
    }

    /// Records the engine's errors with their keys placed under `prefix`:
    /// the one place an engine key (`origins[1]`) becomes a key path of the
    /// file (`policies.web.origins[1]`).
    pub(crate) fn engine_errors(&mut self, prefix: &str, errors: &ConfigErrors) {
        for error in errors.iter() {
            let Found { key, why, fix } = Found::from(error);
            self.problem(format!("{prefix}.{key}"), why, fix);
        }
    }

    pub(crate) fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    pub(crate) fn into_problems(self) -> Problems {
        Problems(self.problems)
    }
}

/// A problem not yet placed in a file or under a table.
struct Found {
    key: String,
    why: String,
    fix: String,
}

impl From<&ConfigError> for Found {
    fn from(error: &ConfigError) -> Self {
        let why = if error.value().is_empty() {
            error.problem()
        } else {
            format!("{:?}: {}", error.value(), error.problem())
        };
        Self {
            key: error.key().to_owned(),
            why,
            fix: error.fix(),
        }
    }
}
