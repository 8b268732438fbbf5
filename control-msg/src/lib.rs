//! `control-msg`: commands to the producer and per-frame metadata to consumers, over POSIX
//! message queues.
//!
//! - [`message`]: the typed [`Command`]s and [`Event`]s.
//! - [`wire`]: pure [`encode`]/[`decode`] to and from at most [`MSG_SIZE`] bytes.
//! - [`queue`]: the stream's queues, created by its owner, opened by peers; sends never
//!   block, receives wait on a CLOCK_MONOTONIC deadline.
//! - [`stats`]: what each queue handle sent, dropped, received and rejected.
//!
//! This crate never touches shared memory: the region's header is authoritative and these
//! queues are best-effort.
#![forbid(unsafe_code)]

pub mod message;
pub mod queue;
pub mod stats;
pub mod wire;

pub use message::{Command, Event, MAX_FPS, valid_fps};
pub use queue::{
    CommandReceiver, CommandSender, ConfigProblem, CreateError, EventReceiver, EventSender,
    KernelLimit, OpenError, QueueConfig, Receiver, RecvError, SendError, Sender,
};
pub use stats::{RecvStats, Rejected, SendStats, Sent};
pub use wire::{DecodeError, EncodeError, MSG_SIZE, Message, decode, encode};
