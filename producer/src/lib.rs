//! `producer`: the camera simulator, its frame sources and the run loop.
#![forbid(unsafe_code)]

pub mod convert;
pub mod error;
pub mod integrity;
pub mod source;

pub use convert::{Converter, convert};
pub use error::{ConvertError, SourceError, VerifyError};
pub use integrity::{decode_seq, verify};
pub use source::pattern::{BARS, PatternSource, bar_colour};
pub use source::{Filled, FrameSource};
