//! Errors of the producer library: converting pixels, and opening or reading frame sources.

use shm_frames::{FormatError, FrameFormat, PixelFormat};

/// Why a frame could not be converted to another pixel format.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The frame size does not fit the target pixel format (e.g. an odd width for `i420`).
    #[error("cannot convert a {from} frame to {to}")]
    Format {
        from: FrameFormat,
        to: PixelFormat,
        #[source]
        source: FormatError,
    },
    /// The source slice is not exactly one frame of its format.
    #[error("source of a {format} conversion holds {got} bytes, expected {expected}")]
    SourceLength {
        format: FrameFormat,
        expected: usize,
        got: usize,
    },
    /// The destination slice is not exactly one frame of the target format.
    #[error("destination of a {format} conversion holds {got} bytes, expected {expected}")]
    DestinationLength {
        format: FrameFormat,
        expected: usize,
        got: usize,
    },
    /// The `yuv` crate refused the conversion.
    #[error("converting a {from} frame to {to} failed")]
    Yuv {
        from: FrameFormat,
        to: PixelFormat,
        #[source]
        source: yuv::YuvError,
    },
}

/// Why a frame source could not be opened or could not give a frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source cannot do what was asked (e.g. change the format of a file).
    #[error("{0}")]
    Unsupported(String),
    /// `dst` handed to `fill` is not exactly one frame of the source's format.
    #[error("frame buffer holds {got} bytes, a {format} frame needs {expected}")]
    FrameLength {
        format: FrameFormat,
        expected: usize,
        got: usize,
    },
    /// Converting a frame to the stream format failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}
