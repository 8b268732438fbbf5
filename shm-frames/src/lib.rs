//! `shm-frames`: the zero-copy frame region shared by one producer and its consumers.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod clock;
pub mod format;
pub mod name;
pub mod owner;
mod region;

pub use clock::{Deadline, monotonic_ns};
pub use format::{FormatError, FrameFormat, MAX_DIMENSION, PixelFormat, UnknownPixelFormat};
pub use name::{DEFAULT_STREAM, InvalidStreamName, STREAM_ENV, StreamName};
pub use owner::{ClaimError, StreamOwner};
