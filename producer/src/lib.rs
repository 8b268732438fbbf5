//! `producer`: the camera simulator, its frame sources and the run loop.
//!
//! - [`source`]: the [`FrameSource`] trait and the sources (pattern, images, Y4M, raw,
//!   V4L2), each writing straight into a slot.
//! - [`cli`] / [`config`]: the command line and its validated [`Config`].
//! - [`pacing`]: absolute-deadline frame pacing.
//! - [`run`]: the frame thread and the service thread (heartbeat, control queue, signals).
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod pacing;
mod replies;
pub mod run;
mod seats;
mod service;
pub mod source;

pub use cli::{ConfigError, ProducerArgs};
pub use config::{Config, DEFAULT_FPS};
pub use run::{RunError, StopReason, Summary, run, run_with};
pub use source::images::ImagesSource;
pub use source::pattern::{BARS, PatternSource, bar_colour, moving_bars_height};
pub use source::raw::RawSource;
pub use source::spec::{SOURCE_FORMS, SourceOptions, SourceSpec, SourceSpecError, open_source};
#[cfg(feature = "v4l2")]
pub use source::v4l2::V4l2Source;
pub use source::y4m::{Y4mInput, Y4mSource};
pub use source::{Filled, FrameSource, SourceError};
