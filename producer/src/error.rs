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
    /// The frame is too small for the test pattern's seq stamp.
    #[error(
        "a {format} frame is too small for the test pattern (it needs 16 bytes in the \
         first plane, e.g. 2x2 bgra or 4x4 gray8)"
    )]
    PatternTooSmall { format: FrameFormat },
    /// Converting a frame to the stream format failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

/// Why a frame is not the whole moving-pattern frame it should be (see
/// [`verify`](crate::verify)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The frame is not exactly one frame of its format.
    #[error("frame holds {got} bytes, a {format} frame needs {expected}")]
    Length {
        format: FrameFormat,
        expected: usize,
        got: usize,
    },
    /// The format is too small to carry a stamp.
    #[error("a {format} frame is too small to carry a pattern stamp")]
    TooSmall { format: FrameFormat },
    /// The first bytes are not a seq and its complement: not a moving-pattern frame.
    #[error("frame carries no seq stamp (not a moving-pattern frame, or corrupt)")]
    NoSeq,
    /// The header starts with a seq but a later copy of it differs: torn within a row.
    #[error("seq header of frame {seq} is torn or corrupt at byte {offset}")]
    HeaderTorn { seq: u64, offset: usize },
    /// The header carries another seq.
    #[error("expected frame {expected}, the frame carries seq {found}")]
    WrongSeq { expected: u64, found: u64 },
    /// A sample point holds other bytes than frame `seq` puts there: torn or corrupt.
    #[error(
        "sample at ({x}, {y}) (byte {offset}) is {found:#04x}, expected {expected:#04x}: \
         torn or corrupt frame"
    )]
    Sample {
        x: u32,
        y: u32,
        offset: usize,
        expected: u8,
        found: u8,
    },
}
