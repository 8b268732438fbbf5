//! Shared helpers for framepipe's criterion benchmarks, and the "which mechanism when"
//! matrix: the measuring code that both `benches/mechanisms.rs` and the `report` binary run.
//!
//! Every module but [`futex`] forbids `unsafe`; that one holds the shared-memory words (a
//! futex and raw_sync's Event) whose APIs are raw pointers and syscalls.
#![deny(unsafe_code)]

pub mod child;
pub mod complexity;
pub mod copy;
pub mod error;
pub mod fanout;
#[allow(unsafe_code)]
pub mod futex;
pub mod matrix;
pub mod measure;
pub mod mq;
pub mod plot;
pub mod report;
pub mod roundtrip;
pub mod shm;
pub mod size;
pub mod wake;
