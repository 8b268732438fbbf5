//! Guards that hand out a slot's bytes only while the protocol proves the slot is owned.
//!
//! No `&[u8]` is ever formed over memory another process may be writing: a [`WriteSlot`]
//! exists only for a slot that is neither `latest` nor held by any seat, and a
//! [`FrameRef`] or an [`OwnedFrame`] only for a slot its seat holds (the producer never
//! picks a held slot).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use frame_vocab::FrameFormat;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::layout::Table;
use crate::liveness;
use crate::protocol::{self, SeatWord};
use crate::region::Region;

mod lent;

pub(crate) use lent::LendShare;
pub use lent::{Lender, LentSlot};

/// What a publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// The frame's sequence number.
    pub seq: u64,
    /// The slot it is in.
    pub slot: u32,
    /// When it was captured (CLOCK_MONOTONIC ns).
    pub capture_ns: u64,
    /// When it was published (CLOCK_MONOTONIC ns).
    pub publish_ns: u64,
}

/// What a [`WriteSlot`] publishes through: the [`Writer`](crate::Writer). A trait so that
/// this module, below the writer, does not import it.
pub(crate) trait Publisher {
    /// The seq the next published frame will carry.
    fn next_seq(&self) -> u64;
    /// Every-frame delivery: waits until `until_ns` for the every-frame seats to take the
    /// latest frame; whether the next may be published.
    fn await_delivery(&mut self, until_ns: u64) -> bool;
    /// Publishes the frame in `slot`, calling `notify` for each live seat after every wake.
    fn publish_slot(
        &mut self,
        slot: u32,
        capture_ns: Option<u64>,
        notify: &mut dyn FnMut(u32, &Published),
    ) -> Published;
}

/// What a consumer knows about a frame it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Sequence number within the region (1, 2, ...).
    pub seq: u64,
    /// The slot it lives in.
    pub slot: u32,
    /// When the producer captured it (CLOCK_MONOTONIC ns).
    pub capture_ns: u64,
    /// When the producer published it.
    pub publish_ns: u64,
    /// When this consumer took it.
    pub taken_ns: u64,
    /// Frames published between the previous frame this reader took and this one.
    pub skipped: u64,
    /// The reader asked for every frame and the producer has dropped it back to newest
    /// (it took nothing for the stall timeout): frames may be skipped from here on.
    pub demoted: bool,
}

/// A seat claimed in one region: the mapping, the seat word we set, and (through the
/// region's fd) the seat's lock. A [`Reader`] and each [`OwnedFrame`] it hands out share
/// it, so a frame keeps the mapping, the seat and its lock alive after a reopen moved the
/// reader elsewhere, and the seat is given back when the last of them drops.
/// ([`Reader`](crate::Reader) claims it.)
pub(crate) struct Seat {
    pub(crate) region: Region,
    pub(crate) index: u32,
    pub(crate) word: SeatWord,
    /// The seat was given back early (a reopen after garbage): nothing left to do on drop.
    pub(crate) left: AtomicBool,
}

impl Seat {
    pub(crate) fn table(&self) -> Table<'_> {
        self.region.table()
    }

    /// Gives the seat back (once): frees the word we set, then drops our claim on its lock,
    /// since our fd's lock would make the seat look taken to a new fd of ours.
    pub(crate) fn leave(&self) {
        // Relaxed: the flag is only ever touched by holders of this `Seat`, and the seat
        // word's own compare-and-swap in `leave` orders what the producer sees.
        if !self.left.swap(true, Ordering::Relaxed) {
            protocol::leave(&self.table(), self.index as usize, self.word);
            let _ = liveness::unlock(self.region.fd(), liveness::seat_byte(self.index));
            // A producer waiting for this seat to take a frame (every-frame delivery)
            // looks again and finds it gone.
            self.region.producer_wake().post_if_zero();
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.leave();
    }
}

/// A slot the producer may fill. Derefs to exactly one frame of the stream format.
/// Publish it with [`WriteSlot::publish`]; dropping it unpublished abandons the frame
/// (nobody ever sees its bytes).
#[must_use = "a slot that is not published is abandoned"]
pub struct WriteSlot<'w> {
    pub(crate) ready: ReadySlot<'w>,
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

impl std::fmt::Debug for WriteSlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSlot")
            .field("slot", &self.ready.slot)
            .field("len", &self.len)
            .finish()
    }
}

impl<'w> WriteSlot<'w> {
    /// The slot's index.
    pub fn slot(&self) -> u32 {
        self.ready.slot
    }

    /// The sequence number the frame will carry when published.
    pub fn seq(&self) -> u64 {
        self.ready.seq()
    }

    /// As [`ReadySlot::await_delivery`].
    pub fn await_delivery(&mut self, timeout: Duration) -> bool {
        self.ready.await_delivery(timeout)
    }

    /// The frame is written: gives up access to the bytes, leaving a slot to publish
    /// (what a caller holding written slots of more than one kind publishes through).
    #[cfg_attr(not(feature = "fault-injection"), allow(unused_mut))]
    pub fn written(mut self) -> ReadySlot<'w> {
        #[cfg(feature = "fault-injection")]
        {
            let seq = self.seq();
            crate::fault::mid_slot(seq, &mut self);
        }
        self.ready
    }

    /// Publishes the frame: consumers see it as the newest. `capture_ns` is when it was
    /// captured (CLOCK_MONOTONIC), `None` for "now".
    pub fn publish(self, capture_ns: Option<u64>) -> Published {
        self.written().publish(capture_ns)
    }

    /// As [`ReadySlot::publish_with`].
    pub fn publish_with(
        self,
        capture_ns: Option<u64>,
        notify: impl FnMut(u32, &Published),
    ) -> Published {
        self.written().publish_with(capture_ns, notify)
    }
}

/// A written slot to publish, without access to its bytes: a [`WriteSlot`] once
/// [`written`](WriteSlot::written), or a lent slot its borrower filled, adopted by
/// [`Writer::adopt_lent`](crate::Writer::adopt_lent) to publish in place. Dropping it
/// unpublished abandons the frame.
#[must_use = "a slot that is not published is abandoned"]
pub struct ReadySlot<'w> {
    pub(crate) writer: &'w mut dyn Publisher,
    pub(crate) slot: u32,
}

impl std::fmt::Debug for ReadySlot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadySlot")
            .field("slot", &self.slot)
            .finish()
    }
}

impl ReadySlot<'_> {
    /// The slot's index.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The sequence number the frame will carry when published.
    pub fn seq(&self) -> u64 {
        self.writer.next_seq()
    }

    /// Every-frame delivery: waits up to `timeout` until each live every-frame seat has
    /// taken the latest frame (demoting a seat past the stall timeout), and returns
    /// whether this frame may be published now. `publish` waits the same way, without an
    /// end; call this first, in a loop, to stay responsive (to a stop, a pause) while a
    /// seat is slow. Returns `true` at once when no every-frame seat lags.
    pub fn await_delivery(&mut self, timeout: Duration) -> bool {
        let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let until = frame_vocab::monotonic_ns().saturating_add(timeout_ns);
        self.writer.await_delivery(until)
    }

    /// Publishes the frame: consumers see it as the newest. `capture_ns` is when it was
    /// captured (CLOCK_MONOTONIC), `None` for "now".
    pub fn publish(self, capture_ns: Option<u64>) -> Published {
        self.publish_with(capture_ns, |_, _| {})
    }

    /// Publishes like [`ReadySlot::publish`], then calls `notify(seat, &published)` for
    /// each live seat, after every seat's semaphore was posted (to send it the frame's
    /// metadata without delaying any wake).
    pub fn publish_with(
        self,
        capture_ns: Option<u64>,
        mut notify: impl FnMut(u32, &Published),
    ) -> Published {
        self.writer.publish_slot(self.slot, capture_ns, &mut notify)
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
