//! `control-msg`: commands to the producer and per-frame metadata to consumers, over POSIX
//! message queues.
#![forbid(unsafe_code)]

pub mod pattern;

pub use pattern::{PatternKind, UnknownPattern};
