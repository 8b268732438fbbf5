//! The atomics the slot protocol uses: std's, or loom's when model checking (`--cfg loom`).
//!
//! Keeping the protocol behind this shim (as crossbeam does) lets `protocol.rs` run
//! unchanged under loom, which explores every interleaving of it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
