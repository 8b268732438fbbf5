//! The `FrameSource` trait: anything that writes frames straight into a slot.
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

use frame_vocab::FrameFormat;
use frame_vocab::PatternKind;

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
    fn fill(&mut self, seq: u64, dst: &mut [u8]) -> Result<Filled, crate::SourceError>;

    /// Switches to another frame format (a `SetFormat` command), for sources that can.
    fn set_format(&mut self, format: FrameFormat) -> Result<(), crate::SourceError>;

    /// Switches the test pattern (a `SetPattern` command), for sources that draw one.
    fn set_pattern(&mut self, pattern: PatternKind) -> Result<(), crate::SourceError>;
}
