//! `producer`: the camera simulator, its frame sources and the run loop.
#![forbid(unsafe_code)]

pub mod error;
pub mod source;

pub use error::SourceError;
pub use source::{Filled, FrameSource};
