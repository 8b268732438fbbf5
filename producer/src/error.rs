//! Errors of frame sources.

/// Why a frame source could not be opened or could not give a frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source cannot do what was asked (e.g. change the format of a file).
    #[error("{0}")]
    Unsupported(String),
}
