//! The slot protocol: hazard-slot triple buffering over a few atomic words.
//!
//! Free of syscalls and of the mapping (it sees the shared words only through
//! [`SlotTable`]), so loom can run it unchanged (`sync.rs`). Three roles touch these words:
//!
//! - the producer picks a slot that is neither `latest` nor held by a non-free seat,
//!   writes it, stores `latest` (Release), issues a SeqCst fence and names the seats to
//!   wake ([`publish_frame`]);
//! - a consumer stores the slot it is about to read in its seat's `hold`, issues a SeqCst
//!   fence and re-loads `latest`; if the word is unchanged, the slot is its own ([`take`]);
//! - the reclaimer frees the seat of a dead consumer by compare-and-swap on the exact seat
//!   word it observed ([`reclaim`]), so a seat claimed meanwhile is never wiped.
//!
//! Why the fences suffice: the producer only writes a slot it chose after the fence that
//! followed a newer `latest`. If the consumer's fence comes first in the single total order
//! of SeqCst fences, the producer's later `hold` loads see the consumer's hold; if the
//! producer's comes first, the consumer's re-load sees the newer `latest` and it retries.
//! Either way a held slot is never chosen. The loom model (`protocol/loom_model.rs`) runs
//! these very functions, the ones `Writer` and `Reader` call, and checks this.

// The loom build models only the parts of the protocol that race; the rest goes unused.
#![cfg_attr(loom, allow(dead_code))]

use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};

mod delivery;
mod lend;

// The loom build of the library alone (not its model) calls none of these.
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use delivery::{
    DeliveryWord, Laggards, Mode, demote, laggards, laggards_after_wake, mode_of, record_taken,
    set_delivery,
};
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use lend::{Lends, adopt, end_lend, lend, offer, reclaim_offer};

/// `hold` value meaning "reading nothing".
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// Bits of the `latest` word that carry the slot index; the rest carry the sequence number.
const SLOT_BITS: u32 = 8;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// Largest sequence number the `latest` word can carry (56 bits: 2^56 frames at 1 MHz
/// last more than 2000 years).
pub(crate) const MAX_SEQ: u64 = (1 << (64 - SLOT_BITS)) - 1;

/// How often [`take`] re-tries when `latest` keeps changing under it before giving up for
/// now (a garbage writer flipping `latest` must not livelock a consumer).
const TAKE_RETRIES: u32 = 64;

/// The shared words the protocol works on.
pub(crate) trait SlotTable {
    /// Number of frame slots (validated: at most 255).
    fn slot_count(&self) -> usize;
    /// Number of consumer seats.
    fn seat_count(&self) -> usize;
    /// The `latest` word: `seq << 8 | slot`, 0 before the first publish.
    fn latest(&self) -> &AtomicU64;
    /// Seat `seat`'s word: {state, generation, pid}.
    fn seat_word(&self, seat: usize) -> &AtomicU64;
    /// The slot seat `seat` is reading, or [`NO_SLOT`].
    fn hold(&self, seat: usize) -> &AtomicU32;
    /// The producer's state word ([`STATE_LIVE`], [`STATE_STOPPING`], [`STATE_REPLACED`]).
    fn state(&self) -> &AtomicU32;
    /// Slot `slot`'s metadata words: seq, capture ns, publish ns.
    fn slot_meta(&self, slot: usize) -> [&AtomicU64; 3];
    /// Seat `seat`'s `taken` word: the seq of the last frame it took (every-frame seats).
    fn taken(&self, seat: usize) -> &AtomicU64;
    /// Seat `seat`'s delivery word: {generation, mode} ([`DeliveryWord`]).
    fn delivery(&self, seat: usize) -> &AtomicU64;
}

/// The producer is live.
pub(crate) const STATE_LIVE: u32 = 1;
/// The producer is exiting cleanly; the object is about to be unlinked.
pub(crate) const STATE_STOPPING: u32 = 2;
/// A new object (epoch + 1) replaces this one under the same name.
pub(crate) const STATE_REPLACED: u32 = 3;

/// A decoded `latest` word: which slot holds frame `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Latest {
    pub seq: u64,
    pub slot: u32,
}

impl Latest {
    /// Packs into one atomic word; `seq` must be in 1..=MAX_SEQ and `slot` < 256.
    pub(crate) fn pack(self) -> u64 {
        debug_assert!((1..=MAX_SEQ).contains(&self.seq) && u64::from(self.slot) <= SLOT_MASK);
        (self.seq << SLOT_BITS) | (u64::from(self.slot) & SLOT_MASK)
    }

    /// Unpacks a word; `None` when nothing was published yet (seq 0).
    pub(crate) fn unpack(word: u64) -> Option<Latest> {
        let seq = word >> SLOT_BITS;
        (seq != 0).then_some(Latest {
            seq,
            slot: (word & SLOT_MASK) as u32,
        })
    }
}

/// What a seat is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SeatState {
    /// Nobody sits here.
    Free,
    /// A consumer holds the seat's lock and is setting up.
    Claiming,
    /// A consumer reads frames.
    Live,
    /// The reclaimer is clearing the seat of a dead consumer.
    Reclaiming,
    /// Not a state this version writes: garbage. Treated as occupied until reclaimed.
    Unknown(u8),
}

impl SeatState {
    fn code(self) -> u8 {
        match self {
            SeatState::Free => 0,
            SeatState::Claiming => 1,
            SeatState::Live => 2,
            SeatState::Reclaiming => 3,
            SeatState::Unknown(c) => c,
        }
    }

    fn from_code(code: u8) -> SeatState {
        match code {
            0 => SeatState::Free,
            1 => SeatState::Claiming,
            2 => SeatState::Live,
            3 => SeatState::Reclaiming,
            c => SeatState::Unknown(c),
        }
    }
}

/// A seat word: state (8 bits) | generation (24 bits) | pid (32 bits), in one AtomicU64 so
/// every change is one compare-and-swap on the exact word observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeatWord(pub u64);

const GENERATION_MASK: u64 = (1 << 24) - 1;

impl SeatWord {
    pub(crate) fn new(state: SeatState, generation: u32, pid: u32) -> SeatWord {
        SeatWord(
            (u64::from(state.code()) << 56)
                | ((u64::from(generation) & GENERATION_MASK) << 32)
                | u64::from(pid),
        )
    }

    pub(crate) fn state(self) -> SeatState {
        SeatState::from_code((self.0 >> 56) as u8)
    }

    pub(crate) fn generation(self) -> u32 {
        ((self.0 >> 32) & GENERATION_MASK) as u32
    }

    pub(crate) fn pid(self) -> u32 {
        self.0 as u32
    }

    fn with_state(self, state: SeatState) -> SeatWord {
        SeatWord::new(state, self.generation(), self.pid())
    }
}

/// Producer: the slot to write next, or `None` when every slot is `latest` or held (only
/// garbage holds can cause that, since there are `seats + 2` slots). Among the free ones it
/// picks the most recently written (`last_written[i]` is the seq last written to slot `i`,
/// 0 if never), so the working set stays in cache.
///
/// Must run after the fence of the previous [`publish_frame`] (it does: the producer publishes,
/// then asks for the next slot).
pub(crate) fn choose_slot<T: SlotTable>(
    table: &T,
    latest_slot: Option<u32>,
    last_written: &[u64],
    exclude: u64,
) -> Option<u32> {
    let slots = table.slot_count().min(last_written.len()).min(64);
    // One bit per slot that may not be written (the layout caps slot_count at 18); the
    // caller's own exclusions are the slots it has lent out (`lend.rs`).
    let mut busy: u64 = exclude;
    if let Some(slot) = latest_slot {
        busy |= 1u64.checked_shl(slot).unwrap_or(0);
    }
    for seat in 0..table.seat_count() {
        // SYNC POINT: seat-release. Acquire pairs with the consumer's Release when it frees
        // its seat, so its last reads happen before we write that slot again.
        let word = SeatWord(table.seat_word(seat).load(Ordering::Acquire));
        if word.state() == SeatState::Free {
            continue;
        }
        // SYNC POINT: hold-release. Acquire pairs with every Release store of `hold`, so
        // the consumer's reads of the slot it held before happen before our writes.
        let hold = table.hold(seat).load(Ordering::Acquire);
        // A garbage hold (>= slot_count) protects nothing and is ignored.
        if (hold as usize) < slots {
            busy |= 1 << hold;
        }
    }
    (0..slots as u32)
        .filter(|&slot| busy & (1 << slot) == 0)
        .max_by_key(|&slot| {
            // Ties (never-written slots) go to the lowest index.
            (last_written[slot as usize], std::cmp::Reverse(slot))
        })
}

/// A frame's metadata as the producer publishes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub seq: u64,
    pub capture_ns: u64,
    pub publish_ns: u64,
}

/// The seats to wake after a publish or a state change: bit `k` is seat `k`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Wake {
    /// Every non-free seat: post its semaphore (one still setting up must not miss a frame).
    pub occupied: u32,
    /// The live ones among them: send them the frame's metadata, after every post.
    pub live: u32,
}

impl Wake {
    /// Iterates the seat indices of `mask`.
    pub(crate) fn seats(mask: u32) -> impl Iterator<Item = u32> {
        (0..u32::BITS).filter(move |seat| mask & (1 << seat) != 0)
    }
}

/// Producer: the whole publish sequence of a frame written into `slot`: the slot's
/// metadata, then `latest` (Release), then a SeqCst fence, then the seats to wake. The
/// caller posts every `occupied` seat's semaphore if it is 0 (binary wake), and only after
/// all the posts sends the `live` seats the frame's metadata.
///
/// The real `Writer` and the loom model both call this; nothing else stores `latest`.
pub(crate) fn publish_frame<T: SlotTable>(table: &T, slot: u32, stamp: Stamp) -> Wake {
    let [seq, capture_ns, publish_ns] = table.slot_meta(slot as usize);
    // Relaxed: published by the Release store of `latest` below.
    seq.store(stamp.seq, Ordering::Relaxed);
    capture_ns.store(stamp.capture_ns, Ordering::Relaxed);
    publish_ns.store(stamp.publish_ns, Ordering::Relaxed);
    let latest = Latest {
        seq: stamp.seq,
        slot,
    };
    // SYNC POINT: latest-publish. Release pairs with the Acquire loads in `take`: the
    // pixels and slot metadata written before are visible to whoever takes this word.
    table.latest().store(latest.pack(), Ordering::Release);
    // SYNC POINT: hazard-fence. Ordered against the consumer's fence in `take` (see the
    // module comment); it also orders this store before the seat-word and semaphore reads
    // that decide whom to wake, so a consumer about to sleep (its own fence after the
    // wake or in `go_live`) either sees this frame or gets a post.
    fence(Ordering::SeqCst);
    seats_to_wake(table)
}

/// The non-free and the live seats, read after the caller's fence.
fn seats_to_wake<T: SlotTable>(table: &T) -> Wake {
    let mut wake = Wake::default();
    for seat in 0..table.seat_count().min(u32::BITS as usize) {
        if let Some(word) = seat_is_occupied(table, seat) {
            wake.occupied |= 1 << seat;
            if word.state() == SeatState::Live {
                wake.live |= 1 << seat;
            }
        }
    }
    wake
}

/// Producer (or a replacer): sets the region's state (Stopping or Replaced). The caller
/// then posts every seat's semaphore, unconditionally, so sleepers look; a consumer that
/// sees the new state still takes a frame published before it ([`look`]).
pub(crate) fn announce(state_word: &AtomicU32, state: u32) {
    // SYNC POINT: state. Release pairs with the Acquire load in `look`: whoever sees the
    // new state also sees every `latest` stored before it.
    state_word.store(state, Ordering::Release);
}

/// Producer: whether seat `seat` should be woken after a publish (any non-free seat: one
/// that is setting up must not miss a frame either).
pub(crate) fn seat_is_occupied<T: SlotTable>(table: &T, seat: usize) -> Option<SeatWord> {
    // Relaxed: after a publish the hazard fence orders this load (see `publish_frame`);
    // the reclaimer acts on it only through a compare-and-swap on the exact word.
    let word = SeatWord(table.seat_word(seat).load(Ordering::Relaxed));
    (word.state() != SeatState::Free).then_some(word)
}

/// Why a `take` found something it cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TakeCorrupt {
    /// `latest` names a slot that does not exist.
    SlotOutOfRange { word: u64 },
    /// `latest` went back to an older sequence number within one region.
    SeqWentBack { seen: u64, last: u64 },
}

/// Result of a `take`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// No frame newer than the last one taken.
    Nothing,
    /// This seat now holds `latest.slot`, which carries frame `latest.seq`.
    Taken(Latest),
    /// `latest` kept changing; try again later (hold was cleared).
    Contended,
    /// `latest` holds a value no honest producer writes (hold was cleared).
    Corrupt(TakeCorrupt),
}

/// Consumer: takes the newest frame if it is newer than `last_seq`, marking its slot as
/// held by `seat`.
pub(crate) fn take<T: SlotTable>(table: &T, seat: usize, last_seq: u64) -> Take {
    // SYNC POINT: latest-publish (Acquire side).
    let mut word = table.latest().load(Ordering::Acquire);
    for _ in 0..TAKE_RETRIES {
        let Some(latest) = Latest::unpack(word) else {
            return Take::Nothing;
        };
        if latest.slot as usize >= table.slot_count() {
            return Take::Corrupt(TakeCorrupt::SlotOutOfRange { word });
        }
        if latest.seq < last_seq {
            return Take::Corrupt(TakeCorrupt::SeqWentBack {
                seen: latest.seq,
                last: last_seq,
            });
        }
        if latest.seq == last_seq {
            return Take::Nothing;
        }
        // SYNC POINT: hold-release. Release so that a producer which reads this value also
        // sees our earlier reads of the slot we held before as finished.
        table.hold(seat).store(latest.slot, Ordering::Release);
        // SYNC POINT: hazard-fence (consumer side; see the module comment).
        fence(Ordering::SeqCst);
        // SYNC POINT: latest-publish (Acquire side).
        let again = table.latest().load(Ordering::Acquire);
        if again == word {
            return Take::Taken(latest);
        }
        word = again;
    }
    release(table, seat);
    Take::Contended
}

/// What a consumer's look at the region found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// This seat now holds `latest.slot`, which carries frame `latest.seq`.
    Taken(Latest),
    /// Nothing newer than the last frame taken; the producer is live.
    Nothing,
    /// Nothing newer, and the region's state is no longer Live (Stopping, Replaced or
    /// garbage): every frame published before that state change has been taken.
    Ended(u32),
    /// `latest` holds a value no honest producer writes (hold was cleared).
    Corrupt(TakeCorrupt),
}

/// Consumer: one look at the region: the newest frame if there is one newer than
/// `last_seq`, else the state. A frame wins over the state: the state is loaded first
/// (Acquire), so if it says Stopping or Replaced, the `take` that follows sees every
/// frame published before that state was set, and a finite stream's last frame is taken.
pub(crate) fn look<T: SlotTable>(table: &T, seat: usize, last_seq: u64) -> Look {
    // SYNC POINT: state (Acquire side).
    let state = table.state().load(Ordering::Acquire);
    match take(table, seat, last_seq) {
        Take::Taken(latest) => Look::Taken(latest),
        // Contended only happens under garbage; the next look tries again.
        Take::Nothing | Take::Contended if state == STATE_LIVE => Look::Nothing,
        Take::Nothing | Take::Contended => Look::Ended(state),
        Take::Corrupt(c) => Look::Corrupt(c),
    }
}

/// Consumer: the step after every semaphore wake: a fence, then [`look`].
pub(crate) fn after_wake<T: SlotTable>(table: &T, seat: usize, last_seq: u64) -> Look {
    // SYNC POINT: hazard-fence (wake side). The producer read our semaphore after its own
    // fence; glibc reads the value relaxed, so a post skipped because the value was still 1
    // (from an older post) is covered only by this fence: the wait's decrement comes before
    // it, so either the producer saw 0 and posted, or our look below sees its frame.
    fence(Ordering::SeqCst);
    look(table, seat, last_seq)
}

/// Consumer (Spin strategy): whether anything may have changed since the frame `last_seq`
/// was taken: a newer `latest`, or a state other than Live. Spinning on this, and not on
/// "latest changed since I loaded it", never misses a frame published between a look and
/// the spin.
pub(crate) fn changed_since<T: SlotTable>(table: &T, last_seq: u64) -> bool {
    // Relaxed: only a hint to stop spinning; the `look` that follows loads with Acquire.
    let latest = Latest::unpack(table.latest().load(Ordering::Relaxed)).map_or(0, |l| l.seq);
    latest != last_seq || table.state().load(Ordering::Relaxed) != STATE_LIVE
}

/// Consumer: stops holding any slot.
pub(crate) fn release<T: SlotTable>(table: &T, seat: usize) {
    // SYNC POINT: hold-release. Our reads of the slot happen before the producer, having
    // loaded this value with Acquire, writes it.
    table.hold(seat).store(NO_SLOT, Ordering::Release);
}

/// Consumer: claims seat `seat` if its word is exactly `observed` and free. The caller
/// already holds the seat's lock, so no reclaimer acts on it meanwhile.
pub(crate) fn claim<T: SlotTable>(
    table: &T,
    seat: usize,
    observed: SeatWord,
    pid: u32,
) -> Option<SeatWord> {
    if observed.state() != SeatState::Free {
        return None;
    }
    let claimed = SeatWord::new(
        SeatState::Claiming,
        observed.generation().wrapping_add(1),
        pid,
    );
    // SYNC POINT: seat-release (claim side). Acquire pairs with the Release that freed the
    // seat (`leave`, `reclaim`): the reclaimer's clearing of `hold` happens before our own
    // `hold` stores, so it can never land after them and wipe our hold. What the producer
    // must see of the word is ordered by the hazard fences.
    table
        .seat_word(seat)
        .compare_exchange(observed.0, claimed.0, Ordering::Acquire, Ordering::Relaxed)
        .ok()?;
    table.hold(seat).store(NO_SLOT, Ordering::Release);
    Some(claimed)
}

/// Consumer: `Claiming` -> `Live`, only if the seat is still exactly `claimed`.
pub(crate) fn go_live<T: SlotTable>(table: &T, seat: usize, claimed: SeatWord) -> Option<SeatWord> {
    let live = claimed.with_state(SeatState::Live);
    // SYNC POINT: delivery. Release pairs with the producer's Acquire load of the seat word
    // in `laggards`: whoever sees this seat Live also sees the `taken` and delivery words
    // `set_delivery` stored for this very generation.
    table
        .seat_word(seat)
        .compare_exchange(claimed.0, live.0, Ordering::Release, Ordering::Relaxed)
        .ok()?;
    // SYNC POINT: hazard-fence (seat side). A producer that published before this fence
    // and found the seat still free did not wake us: this fence makes our first look at
    // `latest` see that frame instead (the store-buffering pattern needs a fence per side).
    fence(Ordering::SeqCst);
    Some(live)
}

/// Consumer: gives up its seat (exactly `mine`) when it closes.
pub(crate) fn leave<T: SlotTable>(table: &T, seat: usize, mine: SeatWord) -> bool {
    release(table, seat);
    let free = mine.with_state(SeatState::Free);
    // SYNC POINT: seat-release. Release: our reads of the last slot are done before the
    // producer, seeing the seat free, stops respecting its hold.
    table
        .seat_word(seat)
        .compare_exchange(mine.0, free.0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

/// Reclaimer: frees a seat whose consumer is dead (the caller checked its lock is free),
/// only if its word is still exactly `observed`. Goes through `Reclaiming` so that clearing
/// `hold` can never wipe the hold of a consumer that claims the seat meanwhile (a consumer
/// claims only a `Free` word).
pub(crate) fn reclaim<T: SlotTable>(table: &T, seat: usize, observed: SeatWord) -> bool {
    if observed.state() == SeatState::Free {
        return false;
    }
    let reclaiming = observed.with_state(SeatState::Reclaiming);
    let word = table.seat_word(seat);
    if word
        .compare_exchange(
            observed.0,
            reclaiming.0,
            Ordering::Relaxed,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return false;
    }
    table.hold(seat).store(NO_SLOT, Ordering::Relaxed);
    let free = SeatWord::new(SeatState::Free, observed.generation(), 0);
    // Only we move a seat out of Reclaiming, so this cannot fail unless garbage was written
    // meanwhile; then the next heartbeat tries again.
    word.compare_exchange(reclaiming.0, free.0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

#[cfg(all(test, loom))]
mod loom_model;

#[cfg(all(test, not(loom)))]
mod tests;
