//! Where a configuration comes from, and how it is named in messages.

use std::path::{Path, PathBuf};

/// Where a configuration comes from: a file, or the demo built into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file given with `--config`.
    File(PathBuf),
    /// The embedded `examples/demo.toml`.
    Demo,
}

impl ConfigSource {
    /// The name used in messages: the path as given, or `examples/demo.toml (built in)`.
    pub fn display_name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Demo => "examples/demo.toml (built in)".to_owned(),
        }
    }

    /// The file behind this source, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Demo => None,
        }
    }

    /// The directory relative paths (TLS files) are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self {
            Self::File(path) => path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            Self::Demo => PathBuf::from("."),
        }
    }
}
