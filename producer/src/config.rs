//! The producer's validated configuration: what `cli.rs` makes of the command line, and
//! what the run loop takes.

use std::time::Duration;

use frame_vocab::PatternKind;
use frame_vocab::{FrameFormat, StreamName};

use crate::source::spec::SourceSpec;

/// The frame rate when neither `--fps` nor the source gives one.
pub const DEFAULT_FPS: f64 = 60.0;

/// Everything a producer run needs, already validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The stream to produce.
    pub stream: StreamName,
    /// The requested frame format (a file source may bring its own size).
    pub format: FrameFormat,
    /// Whether `--format` was given (a file source otherwise keeps its own pixel format).
    pub pixel_explicit: bool,
    /// Frames per second; `None` = the source's own rate, else [`DEFAULT_FPS`]; `Some(0.0)`
    /// = as fast as the source gives frames.
    pub fps: Option<f64>,
    /// Consumer seats (1..=16).
    pub seats: u32,
    /// Permission bits of the region and queues.
    pub mode: u32,
    /// Where frames come from.
    pub source: SourceSpec,
    /// The test pattern for `--source pattern`.
    pub pattern: PatternKind,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Loop a file source at its end.
    pub looping: bool,
    /// Publish nothing until this many seats are live.
    pub wait_seats: Option<u32>,
    /// How long `wait_seats` waits.
    pub wait: Duration,
    /// How long an every-frame seat may take nothing before it is demoted (`None`: never).
    pub stall_timeout: Option<Duration>,
    /// Refuse every-frame seats: the producer never waits for any consumer.
    pub no_backpressure: bool,
}
