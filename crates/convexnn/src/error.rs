//! Errors returned by the library. Every variant names what was wrong and where, so that a front end
//! can print it as it is. `Err` is for bad input and impossible requests only: how a solve ended is a
//! [`crate::solver::Status`], never an error.

use std::path::PathBuf;

/// The library's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file's content is malformed; `location` is e.g. "line 4, column 3 (\"x2\")" or "byte 16".
    #[error("{path}: {location}: {message}")]
    Parse {
        path: PathBuf,
        location: String,
        message: String,
    },
    /// Data that is well formed but unusable (NaN, empty, mismatched lengths, ...).
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// A setting that is out of range or inconsistent with the others.
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// The run would need more memory than allowed; the message names the knob to turn.
    #[error("out of memory budget: {0}")]
    Memory(String),
    /// The exact interior-point backend failed to set up the problem.
    #[error("exact backend: {0}")]
    Backend(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A parse error in `path` at `location`.
    pub fn parse(
        path: impl Into<PathBuf>,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Parse {
            path: path.into(),
            location: location.into(),
            message: message.into(),
        }
    }
}
