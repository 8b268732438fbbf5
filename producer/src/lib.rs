//! `producer`: the camera simulator, its frame sources and the run loop.
#![forbid(unsafe_code)]

pub mod convert;
pub mod error;
pub mod source;

pub use convert::{Converter, convert};
pub use error::{ConvertError, SourceError};
pub use source::{Filled, FrameSource};
