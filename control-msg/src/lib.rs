//! `control-msg`: commands to the producer and per-frame metadata to consumers, over POSIX
//! message queues.
//!
//! - [`message`]: the typed [`Command`]s and [`Event`]s.
//! - [`wire`]: pure [`encode`]/[`decode`] to and from at most [`MSG_SIZE`] bytes.
//! - [`config`]: what a created queue asks the kernel for, and the limits that refuse it.
//! - [`reply`]: requests with an id and a reply address, and their [`Outcome`]s.
//! - [`controller`]: a [`Controller`] sends requests and waits for their answers.
//! - [`queue`]: the stream's queues, created by its owner, opened by peers; sends never
//!   block, receives wait on a CLOCK_MONOTONIC deadline.
//! - [`stats`]: what each queue handle sent, dropped, received and rejected.
//!
//! This crate never touches shared memory: the region's header is authoritative and these
//! queues are best-effort.
#![forbid(unsafe_code)]

pub mod config;
pub mod controller;
pub mod message;
mod mqueue;
pub mod queue;
pub mod reply;
pub mod stats;
pub mod wire;

pub use config::{ConfigProblem, KernelLimit, QueueConfig};
pub use controller::{Answer, ControlError, Controller};
pub use message::{Command, Event, MAX_FPS, valid_fps};
pub use mqueue::{CreateError, OpenError};
pub use queue::{
    CommandReceiver, CommandSender, EventReceiver, EventSender, Receiver, RecvError, SendError,
    Sender, queue_depth,
};
pub use reply::{MAX_DETAIL, Outcome, REPLY_QUEUES, Refusal, Request};
pub use stats::{RecvStats, Rejected, SendStats, Sent};
pub use wire::{DecodeError, EncodeError, MSG_SIZE, Message, decode, encode};
