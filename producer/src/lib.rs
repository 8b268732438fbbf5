//! `producer`: the camera simulator, its frame sources and the run loop.
#![forbid(unsafe_code)]

pub mod convert;
pub mod error;
pub mod integrity;
pub mod source;
#[cfg(test)]
mod temp_dir;

pub use convert::{Converter, convert};
pub use error::{ConvertError, SourceError, SourceSpecError, VerifyError};
pub use integrity::{decode_seq, verify};
pub use source::images::ImagesSource;
pub use source::pattern::{BARS, PatternSource, bar_colour, moving_bars_height};
pub use source::raw::RawSource;
pub use source::spec::{SOURCE_FORMS, SourceOptions, SourceSpec, open_source};
#[cfg(feature = "v4l2")]
pub use source::v4l2::V4l2Source;
pub use source::y4m::{Y4mInput, Y4mSource};
pub use source::{Filled, FrameSource};
