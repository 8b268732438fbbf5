//! The `FrameSource` trait: anything that writes frames straight into a slot, and
//! `SourceError`, why a source could not open or give a frame.
//!
//! The run loop hands a source the slot's bytes (`&mut [u8]`, exactly one frame of the
//! stream format) so a camera or a file drops in without an extra copy.

mod canvas;
mod digits;
pub mod images;
pub mod pattern;
pub mod raw;
pub mod spec;
#[cfg(feature = "v4l2")]
pub mod v4l2;
pub mod y4m;

use std::io;
use std::path::PathBuf;

use frame_vocab::PatternKind;
use frame_vocab::{ConvertError, FormatError, FrameFormat};

/// What `fill` produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filled {
    /// A whole frame was written. `capture_ns` is when it was captured on CLOCK_MONOTONIC
    /// (a camera's own timestamp), or `None` to let the caller stamp "now".
    Frame { capture_ns: Option<u64> },
    /// The input ended; nothing was written.
    End,
}

/// A producer of frames.
pub trait FrameSource: Send {
    /// The format of the frames this source writes.
    fn format(&self) -> FrameFormat;

    /// A one-line description for logs ("pattern moving", "y4m clip.y4m 320x240 i420 25 fps").
    fn describe(&self) -> String;

    /// The rate the content is meant to play at (a file's own rate), if it has one.
    fn native_fps(&self) -> Option<f64> {
        None
    }

    /// Whether the source paces itself (a camera blocks until its next frame is ready).
    fn paces_itself(&self) -> bool {
        false
    }

    /// Writes frame number `seq` (1, 2, ...) into `dst`, exactly `format().frame_bytes()`
    /// bytes. On error or `End`, `dst` may hold anything; the caller abandons the slot.
    fn fill(&mut self, seq: u64, dst: &mut [u8]) -> Result<Filled, SourceError>;

    /// Switches to another frame format (a `SetFormat` command), for sources that can.
    fn set_format(&mut self, format: FrameFormat) -> Result<(), SourceError>;

    /// Switches the test pattern (a `SetPattern` command), for sources that draw one.
    fn set_pattern(&mut self, pattern: PatternKind) -> Result<(), SourceError>;
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
    /// A file could not be opened.
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading a frame from an input failed.
    #[error("{input}: reading frame {frame} failed")]
    Read {
        input: String,
        frame: u64,
        #[source]
        source: io::Error,
    },
    /// Raw input ended inside a frame.
    #[error("{input}: truncated raw frame {frame}: got {got} of {expected} bytes")]
    TruncatedRaw {
        input: String,
        frame: u64,
        got: usize,
        expected: usize,
    },
    /// An image directory could not be listed.
    #[error("cannot read image directory {dir}")]
    ImagesDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An image directory holds no files.
    #[error("image directory {dir} holds no PNG or JPEG files")]
    ImagesEmpty { dir: PathBuf },
    /// A file of an image directory does not decode as PNG or JPEG.
    #[error("cannot decode {path} as a PNG or JPEG image")]
    ImageDecode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// The Y4M colour space is not one framepipe reads.
    #[error(
        "{input}: unsupported y4m colour space {colorspace} (framepipe reads 8-bit 4:2:0 \
         C420/C420jpeg/C420paldv/C420mpeg2 and Cmono; convert with ffmpeg -pix_fmt yuv420p)"
    )]
    Y4mColorspace { input: String, colorspace: String },
    /// The Y4M frame size is not a valid stream format.
    #[error("{input}: unusable y4m frame size")]
    Y4mFormat {
        input: String,
        #[source]
        source: FormatError,
    },
    /// The `y4m` decoder refused the stream's header.
    #[error("{input}: the y4m decoder refused the header")]
    Y4mDecoder {
        input: String,
        #[source]
        source: ::y4m::Error,
    },
    /// The `y4m` decoder failed on a frame.
    #[error("{input}: cannot decode y4m frame {frame}")]
    Y4m {
        input: String,
        frame: u64,
        #[source]
        source: ::y4m::Error,
    },
    /// Y4M input ended inside a frame.
    #[error(
        "{input}: truncated y4m frame {frame}: the input ended {got} bytes into it (a FRAME \
         line and {frame_bytes} bytes of pixels)"
    )]
    TruncatedY4m {
        input: String,
        frame: u64,
        got: u64,
        frame_bytes: usize,
    },
    /// A looping Y4M file changed format between passes.
    #[error("{input}: the file changed from {was} to {now} while looping")]
    Y4mChanged {
        input: String,
        was: FrameFormat,
        now: FrameFormat,
    },
    /// The camera could not be opened, configured or read.
    #[error("camera {path}: {what} failed")]
    V4l2 {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The camera offers or chose a format framepipe cannot stream.
    #[error("camera {path}: {detail}")]
    V4l2Format { path: PathBuf, detail: String },
    /// The camera keeps delivering unusable frames.
    #[error("camera {path}: {detail}")]
    V4l2Frame { path: PathBuf, detail: String },
    /// The source needs a cargo feature this build does not have.
    #[error(
        "{spec} needs the producer built with `--features {feature}` (which needs \
         libclang-dev to build)"
    )]
    FeatureDisabled { spec: String, feature: &'static str },
    /// Converting a frame to the stream format failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary wraps these in `anyhow::Error` and may send them across threads.
    #[test]
    fn errors_are_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<SourceError>();
        check::<spec::SourceSpecError>();
    }
}
