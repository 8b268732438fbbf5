//! The one error type of the measuring code: what failed, and the cause.
#![forbid(unsafe_code)]

use std::io;

/// A measurement could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// A system call (or an I/O operation) failed.
    #[error("{what}: {cause}")]
    Sys {
        /// What was being done.
        what: String,
        /// The OS error (in the message, so it is not also a `source`).
        cause: io::Error,
    },
    /// A framepipe library call (shm-frames, control-msg, frame-vocab) failed.
    #[error("{what}: {cause}")]
    Library {
        /// What was being done.
        what: String,
        /// The library's typed error (in the message, so it is not also a `source`).
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A child process did not start, said something unexpected, or went away.
    #[error("child `{role}`: {reason}")]
    Child {
        /// The child's role.
        role: String,
        /// What went wrong.
        reason: String,
    },
    /// Nothing arrived before the deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The bytes received are not the bytes sent.
    #[error("wrong data: {0}")]
    Data(String),
}

/// `Result` with [`MeasureError`].
pub type Result<T, E = MeasureError> = std::result::Result<T, E>;

/// Wraps an OS error with what was being done.
pub fn sys(what: impl Into<String>) -> impl FnOnce(io::Error) -> MeasureError {
    let what = what.into();
    move |cause| MeasureError::Sys { what, cause }
}

/// Wraps a nix errno with what was being done.
pub fn errno(what: impl Into<String>) -> impl FnOnce(nix::Error) -> MeasureError {
    let what = what.into();
    move |e| MeasureError::Sys {
        what,
        cause: io::Error::from(e),
    }
}

/// Wraps a library error with what was being done.
pub fn lib<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> MeasureError {
    let what = what.into();
    move |e| MeasureError::Library {
        what,
        cause: Box::new(e),
    }
}
