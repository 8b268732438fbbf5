//! `frame-vocab`: the words every part of framepipe shares, and nothing that moves frames.
//!
//! - [`format`]: [`PixelFormat`] and [`FrameFormat`], the one place strides and sizes are
//!   computed.
//! - [`name`]: [`StreamName`] and the names of a stream's kernel objects.
//! - [`access`]: who may use a stream's objects (ownership and mode checks).
//! - [`owner`]: [`StreamOwner`], the abstract socket that proves a process owns a name.
//! - [`clock`]: CLOCK_MONOTONIC and the [`Deadline`] every wait uses.
//! - [`convert`]: pixel conversions between any two formats (the `yuv` crate).
//! - [`integrity`]: the moving pattern's stamp and [`verify`], used by every side.
//! - [`pattern`]: [`PatternKind`], the test images a producer can show.
//!
//! This crate depends on no other framepipe crate; `shm-frames` and `control-msg` both
//! build on it and never on each other.
#![forbid(unsafe_code)]

pub mod access;
pub mod clock;
pub mod convert;
pub mod format;
pub mod integrity;
pub mod name;
pub mod owner;
pub mod pattern;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Deadline, monotonic_ns};
pub use convert::{ConvertError, Converter, convert};
pub use format::{FormatError, FrameFormat, MAX_DIMENSION, PixelFormat, UnknownPixelFormat};
pub use integrity::{VerifyError, decode_seq, verify};
pub use name::{DEFAULT_STREAM, InvalidStreamName, REPLY_QUEUES, STREAM_ENV, StreamName};
pub use owner::{ClaimError, Holder, StreamOwner};
pub use pattern::{PatternKind, UnknownPattern};
