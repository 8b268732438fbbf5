//! Guards that hand out a slot's bytes only while the protocol proves the slot is owned.
//!
//! No `&[u8]` is ever formed over memory another process may be writing: a [`WriteSlot`]
//! exists only for a slot that is neither `latest` nor held by any seat, and a
//! [`FrameRef`] or an [`OwnedFrame`] only for a slot its seat holds (the producer never
//! picks a held slot).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use frame_vocab::FrameFormat;

use crate::protocol;
use crate::reader::{FrameInfo, Seat};
use crate::writer::{Published, Writer};

/// A slot the producer may fill. Derefs to exactly one frame of the stream format.
/// Publish it with [`WriteSlot::publish`]; dropping it unpublished abandons the frame
/// (nobody ever sees its bytes).
#[must_use = "a slot that is not published is abandoned"]
pub struct WriteSlot<'w> {
    pub(crate) writer: &'w mut Writer,
    pub(crate) slot: u32,
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

impl std::fmt::Debug for WriteSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSlot")
            .field("slot", &self.slot)
            .field("len", &self.len)
            .finish()
    }
}

impl WriteSlot<'_> {
    /// The slot's index.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The sequence number the frame will carry when published.
    pub fn seq(&self) -> u64 {
        self.writer.next_seq()
    }

    /// Publishes the frame: consumers see it as the newest. `capture_ns` is when it was
    /// captured (CLOCK_MONOTONIC), `None` for "now".
    pub fn publish(self, capture_ns: Option<u64>) -> Published {
        self.publish_with(capture_ns, |_, _| {})
    }

    /// Publishes like [`WriteSlot::publish`], then calls `notify(seat, &published)` for each
    /// live seat, after every seat's semaphore was posted (to send it the frame's metadata
    /// without delaying any wake).
    pub fn publish_with(
        self,
        capture_ns: Option<u64>,
        notify: impl FnMut(u32, &Published),
    ) -> Published {
        self.writer.publish_slot(self.slot, capture_ns, notify)
    }
}

impl Deref for WriteSlot<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is one slot inside the producer's live mapping (validated
        // layout). The protocol chose this slot because it is neither `latest` nor held, so
        // no consumer reads it, and only the owner of the name writes slots.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl DerefMut for WriteSlot<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// A frame a consumer holds, borrowed from its [`Reader`](crate::Reader). Derefs to the
/// frame's bytes; the slot is released on drop.
pub struct FrameRef<'r> {
    seat: &'r Seat,
    info: FrameInfo,
    ptr: *const u8,
    len: usize,
}

impl std::fmt::Debug for FrameRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameRef")
            .field("info", &self.info)
            .field("len", &self.len)
            .finish()
    }
}

impl<'r> FrameRef<'r> {
    /// Wraps the slot `info` names, which `seat`'s `hold` holds.
    pub(crate) fn new(seat: &'r Seat, info: FrameInfo) -> FrameRef<'r> {
        FrameRef {
            seat,
            info,
            ptr: seat.region.slot_ptr(info.slot),
            len: seat.region.layout().format.frame_bytes(),
        }
    }

    /// Sequence number, timestamps and how many frames were skipped before this one.
    pub fn info(&self) -> FrameInfo {
        self.info
    }

    /// The frame's sequence number (1, 2, ... within one region).
    pub fn seq(&self) -> u64 {
        self.info.seq
    }

    /// The stream format of the bytes.
    pub fn format(&self) -> FrameFormat {
        self.seat.region.layout().format
    }
}

impl Deref for FrameRef<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is one slot inside the seat's read-only mapping of the
        // slots (validated layout), which lives as long as `seat`. This seat's `hold` names
        // the slot and the hazard fences guarantee the producer never picks a held slot, so
        // nobody writes these bytes while this guard lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for FrameRef<'_> {
    fn drop(&mut self) {
        protocol::release(&self.seat.table(), self.seat.index as usize);
    }
}

/// A frame a consumer holds that borrows nothing: it owns a share of the seat it was
/// taken through (the mapping, the seat word, the seat's lock) and that seat's `hold` on
/// its slot, until it is dropped. A reopen of its reader never leaves it dangling: the old
/// mapping and seat live on until the frame goes. While it lives, its reader refuses new
/// frames with [`WaitError::FrameInUse`](crate::WaitError::FrameInUse).
///
/// For bindings whose frames outlive a borrow (a numpy array, a GStreamer buffer).
pub struct OwnedFrame {
    seat: Arc<Seat>,
    /// Counts this frame among its reader's frames in use.
    _in_use: Arc<()>,
    info: FrameInfo,
    format: FrameFormat,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointer is into a read-only mapping owned (through `seat`) by this value, and
// the slot it names stays held until drop, so no thread — this one or another — ever sees
// it written; releasing the hold on drop is an atomic store, valid from any thread.
unsafe impl Send for OwnedFrame {}
// SAFETY: shared access only reads the held slot's bytes (see `Send`).
unsafe impl Sync for OwnedFrame {}

impl std::fmt::Debug for OwnedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedFrame")
            .field("info", &self.info)
            .field("format", &self.format)
            .finish()
    }
}

impl OwnedFrame {
    /// Wraps the slot `info` names, which `seat`'s `hold` holds.
    pub(crate) fn new(seat: Arc<Seat>, in_use: Arc<()>, info: FrameInfo) -> OwnedFrame {
        let format = seat.region.layout().format;
        OwnedFrame {
            ptr: seat.region.slot_ptr(info.slot),
            len: format.frame_bytes(),
            seat,
            _in_use: in_use,
            info,
            format,
        }
    }

    /// Sequence number, timestamps and how many frames were skipped before this one.
    pub fn info(&self) -> FrameInfo {
        self.info
    }

    /// The frame's sequence number (1, 2, ... within one region).
    pub fn seq(&self) -> u64 {
        self.info.seq
    }

    /// The format of the bytes (the format of the region it was taken from).
    pub fn format(&self) -> FrameFormat {
        self.format
    }

    /// The epoch of the region the frame lives in.
    pub fn epoch(&self) -> u64 {
        self.seat.region.layout().epoch
    }
}

impl Deref for OwnedFrame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is one slot inside the read-only mapping that `seat` keeps
        // alive (validated layout). The seat's `hold` names the slot until `drop`, and the
        // hazard fences guarantee the producer never picks a held slot.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for OwnedFrame {
    fn drop(&mut self) {
        // Before `seat` (and with it perhaps the seat and the mapping) goes.
        protocol::release(&self.seat.table(), self.seat.index as usize);
    }
}
