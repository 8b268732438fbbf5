//! The slot protocol: hazard-slot triple buffering over a few atomic words.
//!
//! Free of syscalls and of the mapping (it sees the shared words only through
//! [`SlotTable`]), so loom can run it unchanged (`sync.rs`). Three roles touch these words:
//!
//! - the producer picks a slot that is neither `latest` nor held by a non-free seat,
//!   writes it, stores `latest` (Release) and issues a SeqCst fence ([`publish`]);
//! - a consumer stores the slot it is about to read in its seat's `hold`, issues a SeqCst
//!   fence and re-loads `latest`; if the word is unchanged, the slot is its own ([`take`]);
//! - the reclaimer frees the seat of a dead consumer by compare-and-swap on the exact seat
//!   word it observed ([`reclaim`]), so a seat claimed meanwhile is never wiped.
//!
//! Why the fences suffice: the producer only writes a slot it chose after the fence that
//! followed a newer `latest`. If the consumer's fence comes first in the single total order
//! of SeqCst fences, the producer's later `hold` loads see the consumer's hold; if the
//! producer's comes first, the consumer's re-load sees the newer `latest` and it retries.
//! Either way a held slot is never chosen. The loom model at the bottom checks this.

// The loom build models only the parts of the protocol that race; the rest goes unused.
#![cfg_attr(loom, allow(dead_code))]

use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};

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
}

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
/// Must run after the fence of the previous [`publish`] (it does: the producer publishes,
/// then asks for the next slot).
pub(crate) fn choose_slot<T: SlotTable>(
    table: &T,
    latest_slot: Option<u32>,
    last_written: &[u64],
) -> Option<u32> {
    let slots = table.slot_count().min(last_written.len()).min(64);
    // One bit per slot that may not be written (the layout caps slot_count at 18).
    let mut busy: u64 = 0;
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

/// Producer: makes `latest` the newest frame. The slot's pixels and metadata must be
/// written before this call.
pub(crate) fn publish<T: SlotTable>(table: &T, latest: Latest) {
    // SYNC POINT: latest-publish. Release pairs with the Acquire loads in `take`: the
    // pixels and slot metadata written before are visible to whoever takes this word.
    table.latest().store(latest.pack(), Ordering::Release);
    // SYNC POINT: hazard-fence. Ordered against the consumer's fence in `take` (see the
    // module comment); it also orders this store before the semaphore reads that decide
    // whom to wake, so a consumer about to sleep either sees this frame or gets a post.
    fence(Ordering::SeqCst);
}

/// Producer: whether seat `seat` should be woken after a publish (any non-free seat: one
/// that is setting up must not miss a frame either).
pub(crate) fn seat_is_occupied<T: SlotTable>(table: &T, seat: usize) -> Option<SeatWord> {
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
    // Relaxed: the seat word carries no data; what the producer must see of it is ordered
    // by the hazard fences (and Release when the seat is freed).
    table
        .seat_word(seat)
        .compare_exchange(observed.0, claimed.0, Ordering::Relaxed, Ordering::Relaxed)
        .ok()?;
    table.hold(seat).store(NO_SLOT, Ordering::Release);
    Some(claimed)
}

/// Consumer: `Claiming` -> `Live`, only if the seat is still exactly `claimed`.
pub(crate) fn go_live<T: SlotTable>(table: &T, seat: usize, claimed: SeatWord) -> Option<SeatWord> {
    let live = claimed.with_state(SeatState::Live);
    table
        .seat_word(seat)
        .compare_exchange(claimed.0, live.0, Ordering::Relaxed, Ordering::Relaxed)
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    struct Table {
        latest: AtomicU64,
        words: Vec<AtomicU64>,
        holds: Vec<AtomicU32>,
        slots: usize,
    }

    impl Table {
        fn new(seats: usize) -> Table {
            Table {
                latest: AtomicU64::new(0),
                words: (0..seats).map(|_| AtomicU64::new(0)).collect(),
                holds: (0..seats).map(|_| AtomicU32::new(NO_SLOT)).collect(),
                slots: seats + 2,
            }
        }
    }

    impl SlotTable for Table {
        fn slot_count(&self) -> usize {
            self.slots
        }
        fn seat_count(&self) -> usize {
            self.words.len()
        }
        fn latest(&self) -> &AtomicU64 {
            &self.latest
        }
        fn seat_word(&self, seat: usize) -> &AtomicU64 {
            &self.words[seat]
        }
        fn hold(&self, seat: usize) -> &AtomicU32 {
            &self.holds[seat]
        }
    }

    #[test]
    fn latest_word_round_trips() {
        for (seq, slot) in [(1, 0), (2, 17), (MAX_SEQ, 255)] {
            let l = Latest { seq, slot };
            assert_eq!(Latest::unpack(l.pack()), Some(l));
        }
        assert_eq!(Latest::unpack(0), None);
        assert_eq!(
            Latest::unpack(5),
            None,
            "slot bits without a seq mean nothing published"
        );
    }

    #[test]
    fn seat_word_round_trips() {
        let w = SeatWord::new(SeatState::Live, 0xFF_FFFF, 4_000_000_000);
        assert_eq!(w.state(), SeatState::Live);
        assert_eq!(w.generation(), 0xFF_FFFF);
        assert_eq!(w.pid(), 4_000_000_000);
        assert_eq!(SeatWord(u64::MAX).state(), SeatState::Unknown(255));
    }

    #[test]
    fn chooses_most_recent_free_slot() {
        let t = Table::new(1);
        // Never written: lowest index first.
        assert_eq!(choose_slot(&t, None, &[0, 0, 0]), Some(0));
        // Slot 1 is latest; slot 2 was written more recently than slot 0.
        assert_eq!(choose_slot(&t, Some(1), &[1, 3, 2]), Some(2));
        // A live seat holds slot 2: slot 0 is the only one left.
        let claimed = claim(&t, 0, SeatWord(0), 7).unwrap();
        go_live(&t, 0, claimed).unwrap();
        t.holds[0].store(2, Ordering::Relaxed);
        assert_eq!(choose_slot(&t, Some(1), &[1, 3, 2]), Some(0));
    }

    #[test]
    fn garbage_holds_never_stall_or_escape_range() {
        let t = Table::new(2);
        for w in &t.words {
            w.store(
                SeatWord::new(SeatState::Unknown(9), 1, 1).0,
                Ordering::Relaxed,
            );
        }
        t.holds[0].store(7_000, Ordering::Relaxed);
        t.holds[1].store(0, Ordering::Relaxed);
        assert_eq!(choose_slot(&t, Some(1), &[0; 4]), Some(2));
        // With fewer slots than busy ones (only garbage can do this) the frame is skipped.
        let small = Table {
            slots: 2,
            ..Table::new(2)
        };
        for w in &small.words {
            w.store(SeatWord::new(SeatState::Live, 1, 1).0, Ordering::Relaxed);
        }
        small.holds[0].store(0, Ordering::Relaxed);
        assert_eq!(choose_slot(&small, Some(1), &[0; 2]), None);
    }

    #[test]
    fn take_sees_only_newer_frames_and_rejects_garbage() {
        let t = Table::new(1);
        assert_eq!(take(&t, 0, 0), Take::Nothing);
        publish(&t, Latest { seq: 1, slot: 2 });
        assert_eq!(take(&t, 0, 0), Take::Taken(Latest { seq: 1, slot: 2 }));
        assert_eq!(t.holds[0].load(Ordering::Relaxed), 2);
        assert_eq!(take(&t, 0, 1), Take::Nothing);
        assert!(matches!(
            take(&t, 0, 5),
            Take::Corrupt(TakeCorrupt::SeqWentBack { .. })
        ));
        t.latest
            .store(Latest { seq: 9, slot: 200 }.pack(), Ordering::Relaxed);
        assert!(matches!(
            take(&t, 0, 1),
            Take::Corrupt(TakeCorrupt::SlotOutOfRange { .. })
        ));
    }

    #[test]
    fn reclaim_only_the_exact_word() {
        let t = Table::new(1);
        let claimed = claim(&t, 0, SeatWord(0), 42).unwrap();
        let live = go_live(&t, 0, claimed).unwrap();
        t.holds[0].store(1, Ordering::Relaxed);
        // A stale observation (the claiming word) must not free the live seat.
        assert!(!reclaim(&t, 0, claimed));
        assert_eq!(SeatWord(t.words[0].load(Ordering::Relaxed)), live);
        assert!(reclaim(&t, 0, live));
        let freed = SeatWord(t.words[0].load(Ordering::Relaxed));
        assert_eq!(freed.state(), SeatState::Free);
        assert_eq!(t.holds[0].load(Ordering::Relaxed), NO_SLOT);
        // The next claim bumps the generation.
        let again = claim(&t, 0, freed, 43).unwrap();
        assert_eq!(again.generation(), live.generation() + 1);
        // A claim on a stale free word fails.
        assert!(claim(&t, 0, freed, 44).is_none());
    }
}

/// The loom model of the protocol: one producer and two consumers, every interleaving.
///
/// Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=1 cargo test -p shm-frames
/// --release --lib loom` (as `.ci/run` does; `LOOM_FRAMES` sets the frames published). Each slot's pixels are a loom `UnsafeCell`, so a write to a slot
/// while a consumer reads it is reported as a data race: that is "a held slot is never
/// written". Semaphores are modelled as counters read relaxed, as glibc's `sem_getvalue`
/// does, with the binary wake the producer uses.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::{Arc, Notify};
    use loom::thread;

    const SEATS: usize = 2;
    const SLOTS: usize = SEATS + 2;
    /// Frames the producer publishes per execution (`LOOM_FRAMES`, default 3).
    fn frames() -> u64 {
        std::env::var("LOOM_FRAMES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3)
    }

    struct Model {
        latest: AtomicU64,
        words: [AtomicU64; SEATS],
        holds: [AtomicU32; SEATS],
        sems: [AtomicU32; SEATS],
        /// The futex under each semaphore: a sleeper parks here until a post.
        futex: [Notify; SEATS],
        /// The pixels of each slot: the seq of the frame written there.
        pixels: [UnsafeCell<u64>; SLOTS],
        /// Slot metadata: seq, as the header's per-slot seq.
        slot_seq: [AtomicU64; SLOTS],
        /// Ghost: the newest seq the producer has published (for "newest at acquire time").
        published: AtomicU64,
    }

    impl SlotTable for Model {
        fn slot_count(&self) -> usize {
            SLOTS
        }
        fn seat_count(&self) -> usize {
            SEATS
        }
        fn latest(&self) -> &AtomicU64 {
            &self.latest
        }
        fn seat_word(&self, seat: usize) -> &AtomicU64 {
            &self.words[seat]
        }
        fn hold(&self, seat: usize) -> &AtomicU32 {
            &self.holds[seat]
        }
    }

    impl Model {
        fn new() -> Model {
            Model {
                latest: AtomicU64::new(0),
                words: [AtomicU64::new(0), AtomicU64::new(0)],
                holds: [AtomicU32::new(NO_SLOT), AtomicU32::new(NO_SLOT)],
                sems: [AtomicU32::new(0), AtomicU32::new(0)],
                futex: [Notify::new(), Notify::new()],
                pixels: std::array::from_fn(|_| UnsafeCell::new(0)),
                slot_seq: std::array::from_fn(|_| AtomicU64::new(0)),
                published: AtomicU64::new(0),
            }
        }

        /// `sem_post` if `sem_getvalue` (a relaxed read in glibc) says 0.
        fn wake(&self, seat: usize) {
            if self.sems[seat].load(Ordering::Relaxed) == 0 {
                self.sems[seat].fetch_add(1, Ordering::Release);
                self.futex[seat].notify();
            }
        }

        /// `sem_wait`: decrement when positive, else sleep on the futex until posted.
        fn sleep(&self, seat: usize) {
            loop {
                let v = self.sems[seat].load(Ordering::Relaxed);
                if v > 0
                    && self.sems[seat]
                        .compare_exchange(v, v - 1, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    return;
                }
                self.futex[seat].wait();
            }
        }
    }

    fn producer(m: &Model) {
        let mut last_written = [0u64; SLOTS];
        let mut latest_slot = None;
        for seq in 1..=frames() {
            let slot = choose_slot(m, latest_slot, &last_written).expect("a free slot");
            // "Write the frame": a data race here if a consumer reads this slot.
            // SAFETY: loom checks the claim this test exists for: no consumer reads the slot.
            m.pixels[slot as usize].with_mut(|p| unsafe { *p = seq });
            m.slot_seq[slot as usize].store(seq, Ordering::Relaxed);
            last_written[slot as usize] = seq;
            publish(m, Latest { seq, slot });
            latest_slot = Some(slot);
            m.published.store(seq, Ordering::Release);
            for seat in 0..SEATS {
                if seat_is_occupied(m, seat).is_some() {
                    m.wake(seat);
                }
            }
        }
    }

    fn consumer(m: &Model, seat: usize) {
        let claimed = claim(m, seat, SeatWord(0), seat as u32 + 1).expect("seat is free");
        let live = go_live(m, seat, claimed).expect("nobody reclaims in this model");
        let mut last = 0;
        loop {
            let floor = m.published.load(Ordering::Acquire);
            match take(m, seat, last) {
                Take::Taken(l) => {
                    assert!(l.seq > last, "seqs increase");
                    assert!(
                        l.seq >= floor,
                        "got {} though {} was published",
                        l.seq,
                        floor
                    );
                    let seq = m.slot_seq[l.slot as usize].load(Ordering::Relaxed);
                    // SAFETY: the slot is held; loom reports a race if the producer writes it.
                    let pixels = m.pixels[l.slot as usize].with(|p| unsafe { *p });
                    assert_eq!(pixels, l.seq, "torn: slot holds another frame");
                    assert_eq!(seq, l.seq, "slot metadata matches latest");
                    release(m, seat);
                    last = l.seq;
                    if last == frames() {
                        break;
                    }
                }
                Take::Nothing | Take::Contended => {
                    // A lost wake-up leaves us asleep forever once the producer is done,
                    // which loom reports as a deadlock.
                    m.sleep(seat);
                    // Pairs with the producer's fence: after a wake, look again.
                    fence(Ordering::SeqCst);
                }
                Take::Corrupt(c) => panic!("corrupt {c:?}"),
            }
        }
        assert!(leave(m, seat, live));
    }

    #[test]
    fn loom_slot_protocol() {
        loom::model(|| {
            let m = Arc::new(Model::new());
            let consumers: Vec<_> = (0..SEATS)
                .map(|seat| {
                    let m = m.clone();
                    thread::spawn(move || consumer(&m, seat))
                })
                .collect();
            producer(&m);
            for c in consumers {
                c.join().unwrap();
            }
        });
    }
}
