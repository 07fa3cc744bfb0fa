//! One error type for the library; `main` maps it to an exit code in one place.

use std::fmt;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job file is missing, unreadable, malformed or has an unknown key.
    #[error("job file {file}: {message}")]
    Config {
        /// The job file.
        file: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A command-line value or location cannot be used.
    #[error("{0}")]
    Usage(String),
    /// A raw file breaks the data contract: missing column, wrong type, unreadable Parquet.
    #[error("{file}: column `{column}`: expected {expected}, found {found}")]
    Schema {
        /// The file, relative to the input location.
        file: String,
        /// The column.
        column: String,
        /// What the contract expects.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// A raw file cannot be read as Parquet, or the lake layout is wrong.
    #[error("{file}: {message}")]
    BadInput {
        /// The file or folder, relative to the input location.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// `explain` was asked about an id that the run does not know.
    #[error("{0}")]
    NotFound(String),
    /// Object storage failed (after the store's own retries).
    #[error("storage: {0}")]
    Storage(#[from] object_store::Error),
    /// The dataframe engine failed.
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// Local I/O failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// JSON (de)serialization failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// An invariant of the pipeline broke: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How a failure ends the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: the run succeeded and was published.
    Success = 0,
    /// 1: any failure that is not the input's or the configuration's fault.
    Failure = 1,
    /// 2: bad configuration or bad input; the message names the file and the column.
    BadInput = 2,
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config { .. }
            | Error::Usage(_)
            | Error::Schema { .. }
            | Error::BadInput { .. }
            | Error::NotFound(_) => ExitCode::BadInput,
            Error::Storage(_)
            | Error::Polars(_)
            | Error::Io(_)
            | Error::Json(_)
            | Error::Internal(_) => ExitCode::Failure,
        }
    }

    pub(crate) fn schema(
        file: impl fmt::Display,
        column: impl fmt::Display,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> Self {
        Error::Schema {
            file: file.to_string(),
            column: column.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    pub(crate) fn bad_input(file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::BadInput {
            file: file.to_string(),
            message: message.to_string(),
        }
    }
}
