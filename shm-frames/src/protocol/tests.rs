//! Unit tests of the slot protocol over a plain in-memory table (the loom model is beside).

use super::*;

struct Table {
    latest: AtomicU64,
    state: AtomicU32,
    words: Vec<AtomicU64>,
    holds: Vec<AtomicU32>,
    meta: Vec<[AtomicU64; 3]>,
    taken: Vec<AtomicU64>,
    delivery: Vec<AtomicU64>,
    slots: usize,
}

impl Table {
    fn new(seats: usize) -> Table {
        Table {
            latest: AtomicU64::new(0),
            state: AtomicU32::new(STATE_LIVE),
            words: (0..seats).map(|_| AtomicU64::new(0)).collect(),
            holds: (0..seats).map(|_| AtomicU32::new(NO_SLOT)).collect(),
            meta: (0..seats + 2).map(|_| Default::default()).collect(),
            taken: (0..seats).map(|_| AtomicU64::new(0)).collect(),
            delivery: (0..seats).map(|_| AtomicU64::new(0)).collect(),
            slots: seats + 2,
        }
    }

    fn publish(&self, seq: u64, slot: u32) -> Wake {
        let stamp = Stamp {
            seq,
            capture_ns: seq * 10,
            publish_ns: seq * 10 + 1,
        };
        publish_frame(self, slot, stamp)
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
    fn state(&self) -> &AtomicU32 {
        &self.state
    }
    fn slot_meta(&self, slot: usize) -> [&AtomicU64; 3] {
        let [a, b, c] = &self.meta[slot];
        [a, b, c]
    }
    fn taken(&self, seat: usize) -> &AtomicU64 {
        &self.taken[seat]
    }
    fn delivery(&self, seat: usize) -> &AtomicU64 {
        &self.delivery[seat]
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
    assert_eq!(choose_slot(&t, None, &[0, 0, 0], 0), Some(0));
    // Slot 1 is latest; slot 2 was written more recently than slot 0.
    assert_eq!(choose_slot(&t, Some(1), &[1, 3, 2], 0), Some(2));
    // A live seat holds slot 2: slot 0 is the only one left.
    let claimed = claim(&t, 0, SeatWord(0), 7).unwrap();
    go_live(&t, 0, claimed).unwrap();
    t.holds[0].store(2, Ordering::Relaxed);
    assert_eq!(choose_slot(&t, Some(1), &[1, 3, 2], 0), Some(0));
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
    assert_eq!(choose_slot(&t, Some(1), &[0; 4], 0), Some(2));
    // With fewer slots than busy ones (only garbage can do this) the frame is skipped.
    let small = Table {
        slots: 2,
        ..Table::new(2)
    };
    for w in &small.words {
        w.store(SeatWord::new(SeatState::Live, 1, 1).0, Ordering::Relaxed);
    }
    small.holds[0].store(0, Ordering::Relaxed);
    assert_eq!(choose_slot(&small, Some(1), &[0; 2], 0), None);
}

#[test]
fn take_sees_only_newer_frames_and_rejects_garbage() {
    let t = Table::new(1);
    assert_eq!(take(&t, 0, 0), Take::Nothing);
    t.publish(1, 2);
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
fn publish_stores_metadata_and_names_the_seats_to_wake() {
    let t = Table::new(3);
    assert_eq!(
        t.publish(1, 0),
        Wake::default(),
        "nobody sits: nobody to wake"
    );
    assert_eq!(t.meta[0][0].load(Ordering::Relaxed), 1);
    assert_eq!(t.meta[0][1].load(Ordering::Relaxed), 10);
    assert_eq!(t.meta[0][2].load(Ordering::Relaxed), 11);
    let claimed = claim(&t, 0, SeatWord(0), 7).unwrap();
    let live = claim(&t, 2, SeatWord(0), 8).unwrap();
    go_live(&t, 2, live).unwrap();
    let wake = t.publish(2, 1);
    assert_eq!(wake.occupied, 0b101, "a claiming seat is woken too");
    assert_eq!(wake.live, 0b100, "only a live seat is sent metadata");
    assert_eq!(Wake::seats(wake.occupied).collect::<Vec<_>>(), [0, 2]);
    assert!(go_live(&t, 0, claimed).is_some());
}

#[test]
fn a_frame_published_before_the_stop_is_still_taken() {
    let t = Table::new(1);
    let seat = go_live(&t, 0, claim(&t, 0, SeatWord(0), 7).unwrap()).unwrap();
    assert_eq!(look(&t, 0, 0), Look::Nothing);
    t.publish(1, 0);
    assert!(changed_since(&t, 0));
    announce(&t.state, STATE_STOPPING);
    assert_eq!(
        after_wake(&t, 0, 0),
        Look::Taken(Latest { seq: 1, slot: 0 })
    );
    release(&t, 0);
    assert_eq!(after_wake(&t, 0, 1), Look::Ended(STATE_STOPPING));
    assert!(changed_since(&t, 1), "a state change stops a spin too");
    assert!(leave(&t, 0, seat));
}

#[test]
fn spin_condition_is_relative_to_the_last_frame_taken() {
    let t = Table::new(1);
    assert!(!changed_since(&t, 0));
    t.publish(1, 0);
    // Published between a look and the spin: still seen.
    assert!(changed_since(&t, 0));
    assert!(!changed_since(&t, 1));
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

/// Claims seat `seat` with `mode` as `reader::claim_seat` does: claim, delivery, live.
fn join(t: &Table, seat: usize, mode: Mode) -> SeatWord {
    let observed = SeatWord(t.words[seat].load(Ordering::Relaxed));
    let claimed = claim(t, seat, observed, 7).unwrap();
    set_delivery(t, seat, claimed, mode);
    go_live(t, seat, claimed).unwrap()
}

#[test]
fn delivery_word_round_trips_and_belongs_to_one_generation() {
    for mode in [Mode::Newest, Mode::EveryFrame, Mode::Demoted] {
        let w = DeliveryWord::new(0xFF_FFFF, mode);
        assert_eq!(w.generation(), 0xFF_FFFF);
        assert_eq!(w.mode_for(0xFF_FFFF), mode);
    }
    // A previous occupant's word, garbage modes and garbage high bits all mean Newest.
    assert_eq!(
        DeliveryWord::new(3, Mode::EveryFrame).mode_for(4),
        Mode::Newest
    );
    assert_eq!(DeliveryWord((3 << 8) | 9).mode_for(3), Mode::Newest);
    assert_eq!(DeliveryWord(u64::MAX).mode_for(0xFF_FFFF), Mode::Newest);
}

#[test]
fn only_live_every_frame_seats_behind_the_awaited_frame_are_waited_for() {
    let t = Table::new(3);
    let every = join(&t, 0, Mode::EveryFrame);
    join(&t, 1, Mode::Newest);
    t.publish(1, 0);
    assert_eq!(laggards(&t, 0).mask, 0, "nothing published before: no wait");
    let lag = laggards(&t, 1);
    assert_eq!(lag.mask, 0b1, "the newest seat is never waited for");
    assert_eq!(
        lag.observed[0],
        DeliveryWord::new(every.generation(), Mode::EveryFrame).0
    );
    // The seat takes frame 1: the producer may publish frame 2.
    let Take::Taken(l) = take(&t, 0, 0) else {
        panic!("frame 1 is there")
    };
    record_taken(&t, 0, l.seq);
    assert_eq!(laggards_after_wake(&t, 1).mask, 0);
    // Garbage above the awaited seq releases the producer rather than hanging it.
    t.taken[0].store(u64::MAX, Ordering::Relaxed);
    assert_eq!(laggards(&t, 2).mask, 0);
    // A claiming every-frame seat is not waited for until it is live.
    let observed = SeatWord(t.words[2].load(Ordering::Relaxed));
    let claimed = claim(&t, 2, observed, 8).unwrap();
    set_delivery(&t, 2, claimed, Mode::EveryFrame);
    assert_eq!(laggards(&t, 1).mask, 0);
    go_live(&t, 2, claimed).unwrap();
    assert_eq!(
        laggards(&t, 1).mask,
        0b100,
        "live now, and it took nothing yet"
    );
}

#[test]
fn a_demotion_acts_only_on_the_exact_delivery_word() {
    let t = Table::new(1);
    let first = join(&t, 0, Mode::EveryFrame);
    t.publish(1, 0);
    let lag = laggards(&t, 1);
    assert_eq!(mode_of(&t, 0, first), Mode::EveryFrame);
    // The seat leaves and a new every-frame consumer takes it before the demotion lands.
    assert!(leave(&t, 0, first));
    let second = join(&t, 0, Mode::EveryFrame);
    assert!(
        !demote(&t, 0, lag.observed[0]),
        "a stale observation demotes nobody"
    );
    assert_eq!(mode_of(&t, 0, second), Mode::EveryFrame);
    let lag = laggards(&t, 1);
    assert!(demote(&t, 0, lag.observed[0]));
    assert_eq!(mode_of(&t, 0, second), Mode::Demoted);
    assert_eq!(laggards(&t, 1).mask, 0, "a demoted seat is not waited for");
    assert_eq!(
        SeatWord(t.words[0].load(Ordering::Relaxed)),
        second,
        "seat word untouched"
    );
}

#[test]
fn an_offered_slot_goes_to_whoever_swaps_first_and_a_lent_one_is_never_chosen() {
    // One seat: three slots; the writer published slot 1, the seat holds nothing.
    let t = Table::new(1);
    let lends = Lends::new();
    let written = [1, 3, 2];
    assert_eq!(offer(&lends, &t, Some(1), &written, 1), Some(2));
    assert_eq!(
        offer(&lends, &t, Some(1), &written, 1),
        None,
        "one offer at a time"
    );
    assert_eq!(lend(&lends), Some(2));
    assert_eq!(lend(&lends), None, "an offer is taken once");
    assert_eq!(reclaim_offer(&lends), None, "the lender had it first");
    assert_eq!(lends.lent(), 0b100);
    // The writer's own choice skips the lent slot; at the limit nothing more is offered.
    assert_eq!(choose_slot(&t, Some(1), &written, lends.lent()), Some(0));
    assert_eq!(
        offer(&lends, &t, Some(1), &written, 1),
        None,
        "limit reached"
    );
    // Published (latest now), the lent slot no longer counts against the limit.
    assert!(adopt(&lends, 2));
    assert!(!adopt(&lends, 2), "adopted once");
    assert_eq!(offer(&lends, &t, Some(2), &written, 1), Some(1));
    assert_eq!(
        reclaim_offer(&lends),
        Some(1),
        "the writer may take it back"
    );
    end_lend(&lends, 2);
    assert_eq!(lends.lent(), 0);
    assert!(!adopt(&lends, 2), "a lend that ended cannot be adopted");
}

#[test]
fn nothing_is_offered_when_every_slot_is_latest_held_or_lent() {
    let t = Table::new(1);
    let claimed = claim(&t, 0, SeatWord(0), 7).unwrap();
    go_live(&t, 0, claimed).unwrap();
    t.holds[0].store(0, Ordering::Relaxed);
    let lends = Lends::new();
    assert_eq!(offer(&lends, &t, Some(1), &[0; 3], 2), Some(2));
    assert_eq!(lend(&lends), Some(2));
    assert_eq!(offer(&lends, &t, Some(1), &[0; 3], 2), None, "no slot left");
    assert!(!adopt(&lends, 40), "a slot out of range is never lent");
}
