//! Slots lent out of the writer, to be filled in place by another thread of the producer's
//! process (a GStreamer buffer pool's buffers), then published without a copy.
//!
//! The protocol side (who may choose what, and why no consumer reads a lent slot early) is
//! `protocol/lend.rs`. Here: the handles. A [`Lender`] takes the slot the writer offers; the
//! [`LentSlot`] it returns keeps the region mapped and the slot out of every choice until it
//! is dropped, even after the writer moved to a new region or was dropped itself.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use frame_vocab::FrameFormat;

use crate::protocol::{self, Lends};
use crate::region::Region;

/// One region's lending state, shared by its writer, its lenders and their lent slots.
#[derive(Debug)]
pub(crate) struct LendShare {
    pub(crate) region: Arc<Region>,
    pub(crate) lends: Lends,
}

impl LendShare {
    /// Nothing lent yet from `region`.
    pub(crate) fn new(region: &Arc<Region>) -> Arc<LendShare> {
        Arc::new(LendShare {
            region: region.clone(),
            lends: Lends::new(),
        })
    }
}

/// Borrows slots of one region for filling in place (from any thread), never waiting:
/// [`Lender::lend`] returns the slot the writer offered, or `None`. Get one from
/// [`Writer::lender`](crate::Writer::lender); after
/// [`Writer::replace`](crate::Writer::replace) get a new one (this one then lends nothing).
#[derive(Clone, Debug)]
pub struct Lender {
    pub(crate) share: Arc<LendShare>,
}

impl Lender {
    /// A slot to fill, or `None` when the writer has none to spare now (the caller falls
    /// back to its own memory and the writer copies it: never a wait).
    pub fn lend(&self) -> Option<LentSlot> {
        let slot = protocol::lend(&self.share.lends)?;
        let region = &self.share.region;
        Some(LentSlot {
            ptr: region.slot_ptr(slot),
            len: region.layout().format.frame_bytes(),
            share: self.share.clone(),
            slot,
        })
    }

    /// The format of the frames its slots hold.
    pub fn format(&self) -> FrameFormat {
        self.share.region.layout().format
    }
}

/// A slot lent out of the writer: one frame's bytes to fill, published without a copy by
/// [`Writer::adopt_lent`](crate::Writer::adopt_lent). Fill it before handing it to the
/// writer and never after: once adopted it is the frame consumers read. Dropping it
/// ends the lend (the writer may choose the slot again).
pub struct LentSlot {
    share: Arc<LendShare>,
    slot: u32,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the pointer is into the producer's mapping, which `share` keeps alive. While the
// slot is lent no choice of the writer picks it and no consumer can hold it (it is not
// `latest` until adopted and published), so this value is its only writer; ending the lend
// on drop is an atomic operation, valid from any thread.
unsafe impl Send for LentSlot {}
// SAFETY: shared access only reads the bytes, as `Send` explains.
unsafe impl Sync for LentSlot {}

impl std::fmt::Debug for LentSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LentSlot")
            .field("slot", &self.slot)
            .field("len", &self.len)
            .field("epoch", &self.epoch())
            .finish()
    }
}

impl LentSlot {
    /// The slot's index.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// The epoch of the region it belongs to.
    pub fn epoch(&self) -> u64 {
        self.share.region.layout().epoch
    }
}

impl Deref for LentSlot {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is one slot inside the mapping `share` keeps alive
        // (validated layout); while lent only this value writes it (see `Send`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl DerefMut for LentSlot {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference in this process,
        // and no consumer reads the slot before the writer adopts and publishes it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl AsRef<[u8]> for LentSlot {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for LentSlot {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl Drop for LentSlot {
    fn drop(&mut self) {
        protocol::end_lend(&self.share.lends, self.slot);
    }
}
