//! Lending slots: a producer that lets another thread of its process fill a slot in place
//! (a GStreamer buffer pool whose buffers are slots) before the frame is published.
//!
//! The writer alone chooses slots. Right after each publish, in the writer's own program
//! order (where it would choose the next frame's slot anyway, after the hazard fence), it
//! may *offer* one: [`offer`] picks it with [`choose_slot`](super::choose_slot) and parks
//! it in a process-local word. A lender thread *takes* the offer ([`lend`]) by one
//! compare-and-swap that moves it from "offered" to "lent"; the writer may as well take it
//! back for its own next frame ([`reclaim_offer`]) — whichever swap lands first has it.
//! A lent slot is excluded from every later choice until the lend ends ([`end_lend`]), and
//! is published at most once ([`adopt`]).
//!
//! Why consumers never read a lent slot before its publish: when it was chosen it was
//! neither `latest` nor held (the protocol's usual proof), and a consumer can only come
//! to hold the slot `latest` names. A lent slot becomes `latest` only when it is
//! published, so the frames published meanwhile, into other slots, change nothing. The
//! loom model lends a slot, fills it on another thread while the writer publishes into
//! the others, then publishes it.
//!
//! The word never leaves the process (it is not in the shared header), so garbage from a
//! peer cannot reach it.

use crate::sync::{AtomicU64, Ordering};

use super::{SlotTable, choose_slot};

/// Bits 0..8: the offered slot + 1 (0: none). Bits 8..32: the lent slots. Bits 32..56:
/// those of them adopted (published, or about to be). The layout caps slots at 18.
const OFFER_MASK: u64 = 0xff;
const LENT_SHIFT: u32 = 8;
const ADOPTED_SHIFT: u32 = 32;
const SLOT_FIELD: u64 = (1 << 24) - 1;

/// The process-local lending word of one region.
#[derive(Debug, Default)]
pub(crate) struct Lends(AtomicU64);

fn offered(word: u64) -> Option<u32> {
    (word & OFFER_MASK).checked_sub(1).map(|slot| slot as u32)
}

fn lent(word: u64) -> u64 {
    (word >> LENT_SHIFT) & SLOT_FIELD
}

fn adopted(word: u64) -> u64 {
    (word >> ADOPTED_SHIFT) & SLOT_FIELD
}

fn bit(slot: u32) -> u64 {
    1u64.checked_shl(slot).unwrap_or(0) & SLOT_FIELD
}

impl Lends {
    pub(crate) fn new() -> Lends {
        Lends(AtomicU64::new(0))
    }

    /// The slots lent out now (bit `k` is slot `k`): no choice may pick them.
    pub(crate) fn lent(&self) -> u64 {
        // SYNC POINT: lend-end. Acquire pairs with the Release in `end_lend`: the lender's
        // writes to a slot happen before the writer writes it again.
        lent(self.0.load(Ordering::Acquire))
    }
}

/// Writer, right after a publish (or when lending starts): offers a slot for lending when
/// none is offered and fewer than `limit` slots other than `latest_slot` are lent. Returns
/// the slot offered.
pub(crate) fn offer<T: SlotTable>(
    lends: &Lends,
    table: &T,
    latest_slot: Option<u32>,
    last_written: &[u64],
    limit: u32,
) -> Option<u32> {
    let word = lends.0.load(Ordering::Acquire);
    if offered(word).is_some() {
        return None;
    }
    let latest = latest_slot.map_or(0, bit);
    if (lent(word) & !latest).count_ones() >= limit {
        return None;
    }
    let slot = choose_slot(table, latest_slot, last_written, lent(word))?;
    // Only the writer sets an offer, so the word can only have lost lends meanwhile (an
    // `end_lend`) or gained an adoption: the update never re-chooses.
    update(lends, |word| {
        Some((word & !OFFER_MASK) | u64::from(slot + 1))
    })?;
    Some(slot)
}

/// Writer: takes the offered slot back for its own next frame, if no lender took it.
pub(crate) fn reclaim_offer(lends: &Lends) -> Option<u32> {
    let word = update(lends, |word| offered(word).map(|_| word & !OFFER_MASK))?;
    offered(word)
}

/// Lender (any thread): takes the offered slot, now lent until [`end_lend`].
pub(crate) fn lend(lends: &Lends) -> Option<u32> {
    // SYNC POINT: lend. The Acquire in `update` pairs with the writer's Release when it
    // offered: the slot was chosen (after a publish and its fence) before the lender
    // writes it.
    let word = update(lends, |word| {
        offered(word).map(|slot| (word & !OFFER_MASK) | (bit(slot) << LENT_SHIFT))
    })?;
    offered(word)
}

/// Writer: claims lent `slot` for publishing, once. `false` if it is not lent or was
/// already adopted (a buffer rendered twice must not be published twice).
pub(crate) fn adopt(lends: &Lends, slot: u32) -> bool {
    let b = bit(slot);
    update(lends, |word| {
        let lendable = b != 0 && lent(word) & b != 0 && adopted(word) & b == 0;
        lendable.then_some(word | (b << ADOPTED_SHIFT))
    })
    .is_some()
}

/// One compare-and-swap loop on the word (AcqRel; Acquire when `f` declines): the word
/// it replaced, or `None` if `f` declined.
fn update(lends: &Lends, f: impl FnMut(u64) -> Option<u64>) -> Option<u64> {
    lends
        .0
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, f)
        .ok()
}

/// Lender, when the lent slot's last user lets go: the slot may be chosen again.
pub(crate) fn end_lend(lends: &Lends, slot: u32) {
    let b = bit(slot);
    // SYNC POINT: lend-end. Release pairs with the Acquire in `Lends::lent`.
    lends.0.fetch_and(
        !((b << LENT_SHIFT) | (b << ADOPTED_SHIFT)),
        Ordering::Release,
    );
}
