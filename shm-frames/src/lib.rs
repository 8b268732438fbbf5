//! `shm-frames`: the zero-copy frame region shared by one producer and its consumers.
//!
//! A producer owns a stream name ([`StreamOwner`]), creates its region
//! ([`RegionBuilder`]) and publishes frames through a [`Writer`]: it asks for a slot,
//! fills it in place and publishes it, never waiting for anyone. A consumer attaches a
//! [`Reader`] to a free seat and takes the newest complete frame ([`FrameRef`]), never a
//! torn one. See DESIGN.md for the protocol and ARCHITECTURE.md for the invariants.
#![deny(unsafe_op_in_unsafe_fn)]

mod protocol;
mod sync;

#[cfg(not(loom))]
mod error;
#[cfg(all(feature = "fault-injection", not(loom)))]
pub mod fault;
#[cfg(not(loom))]
mod layout;
#[cfg(not(loom))]
mod liveness;
#[cfg(not(loom))]
mod peek;
mod predict;
#[cfg(not(loom))]
mod reader;
#[cfg(not(loom))]
mod region;
#[cfg(not(loom))]
mod reply_lock;
#[cfg(not(loom))]
mod sem;
#[cfg(not(loom))]
mod slot;
#[cfg(not(loom))]
mod writer;

#[cfg(all(feature = "testing", not(loom)))]
pub mod testing;

#[cfg(not(loom))]
pub use error::{Corrupt, CreateError, OpenError, WaitError};
#[cfg(not(loom))]
pub use layout::{LAYOUT_VERSION, MAX_SEATS, SOURCE_BYTES, offsets};
#[cfg(not(loom))]
pub use peek::{
    DeliveryMode, Health, Hold, PeekError, Peeked, ProducerState, RegionView, SeatStatus, SeatView,
    SlotView, measured_fps, own_streams, peek,
};
#[cfg(not(loom))]
pub use predict::SpinBudget;
#[cfg(not(loom))]
pub use reader::{Delivery, HEARTBEAT_TIMEOUT, Reader, ReaderOptions, ReaderStats, WaitStrategy};
#[cfg(not(loom))]
pub use reply_lock::{REPLY_QUEUES, ReplyLock, ReplyLockError};
#[cfg(not(loom))]
pub use slot::{
    FrameInfo, FrameRef, Lender, LentSlot, OwnedFrame, Published, ReadySlot, WriteSlot,
};
#[cfg(not(loom))]
pub use writer::{
    DEFAULT_MODE, DEFAULT_STALL_TIMEOUT, RegionBuilder, ReplaceError, SeatInfo, Supervisor, Writer,
};
