//! The loom model of the slot protocol: every interleaving of the functions `Writer` and
//! `Reader` call, in the order they call them.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=1 cargo test -p shm-frames
//! --release --lib loom` (as `.ci/run` does; `LOOM_FRAMES` sets the frames published).
//! Each slot's pixels are a loom `UnsafeCell`, so a write to a slot while a consumer reads
//! it is reported as a data race: that is "a held slot is never written". A lost wake-up
//! leaves a consumer asleep with nobody left to post, which loom reports as a deadlock.
//! Semaphores are counters read relaxed, as glibc's `sem_getvalue` does, with the binary
//! wake the producer uses.

use super::*;
use loom::cell::UnsafeCell;
use loom::sync::{Arc, Notify};
use loom::thread;

const SEATS: usize = 2;
const SLOTS: usize = SEATS + 2;
/// The index of the producer's own wake semaphore among the model's semaphores.
const PRODUCER: usize = SEATS;

/// Frames the producer publishes per execution of the main model (`LOOM_FRAMES`, default 3).
fn frames() -> u64 {
    std::env::var("LOOM_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

struct Model {
    latest: AtomicU64,
    state: AtomicU32,
    words: [AtomicU64; SEATS],
    holds: [AtomicU32; SEATS],
    taken: [AtomicU64; SEATS],
    delivery: [AtomicU64; SEATS],
    /// One semaphore per seat, and the producer's own wake at index [`PRODUCER`].
    sems: [AtomicU32; SEATS + 1],
    /// The futex under each semaphore: a sleeper parks here until a post.
    futex: [Notify; SEATS + 1],
    /// The pixels of each slot: the seq of the frame written there.
    pixels: [UnsafeCell<u64>; SLOTS],
    /// Slot metadata: seq, capture ns, publish ns, as the header's per-slot words.
    meta: [[AtomicU64; 3]; SLOTS],
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

impl Model {
    fn new() -> Model {
        Model {
            latest: AtomicU64::new(0),
            state: AtomicU32::new(STATE_LIVE),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
            holds: std::array::from_fn(|_| AtomicU32::new(NO_SLOT)),
            taken: std::array::from_fn(|_| AtomicU64::new(0)),
            delivery: std::array::from_fn(|_| AtomicU64::new(0)),
            sems: std::array::from_fn(|_| AtomicU32::new(0)),
            futex: std::array::from_fn(|_| Notify::new()),
            pixels: std::array::from_fn(|_| UnsafeCell::new(0)),
            meta: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            published: AtomicU64::new(0),
        }
    }

    /// `sem_post`.
    fn post(&self, seat: usize) {
        self.sems[seat].fetch_add(1, Ordering::Release);
        self.futex[seat].notify();
    }

    /// `Semaphore::post_if_zero`: `sem_post` if `sem_getvalue` (a relaxed read in glibc)
    /// says 0.
    fn post_if_zero(&self, seat: usize) {
        if self.sems[seat].load(Ordering::Relaxed) == 0 {
            self.post(seat);
        }
    }

    /// `sem_trywait`: one post without waiting.
    fn try_wait(&self, seat: usize) -> bool {
        let v = self.sems[seat].load(Ordering::Relaxed);
        v > 0
            && self.sems[seat]
                .compare_exchange(v, v - 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// `sem_wait`: decrement when positive, else sleep on the futex until posted.
    fn wait(&self, seat: usize) {
        while !self.try_wait(seat) {
            self.futex[seat].wait();
        }
    }

    /// What `Writer::slot` + fill + `Writer::publish_slot` do: choose, write, publish,
    /// post every occupied seat (the metadata sends that follow touch no shared word).
    fn publish(&self, seq: u64, latest_slot: Option<u32>, last_written: &mut [u64]) -> u32 {
        let slot = choose_slot(self, latest_slot, last_written, 0).expect("a free slot");
        self.write(slot, seq);
        self.publish_written(seq, slot, last_written);
        slot
    }

    /// "Writes the frame": a data race here if a consumer reads this slot.
    fn write(&self, slot: u32, seq: u64) {
        // SAFETY: loom checks the claim this test exists for: no consumer reads the slot.
        self.pixels[slot as usize].with_mut(|p| unsafe { *p = seq });
    }

    /// What `Writer::publish_slot` does with a slot already written.
    fn publish_written(&self, seq: u64, slot: u32, last_written: &mut [u64]) {
        last_written[slot as usize] = seq;
        let stamp = Stamp {
            seq,
            capture_ns: seq,
            publish_ns: seq,
        };
        let wake = publish_frame(self, slot, stamp);
        self.published.store(seq, Ordering::Release);
        for seat in Wake::seats(wake.occupied) {
            self.post_if_zero(seat as usize);
        }
    }

    /// What `Writer`'s drop does: Stopping, then a post to every seat.
    fn stop(&self) {
        announce(&self.state, STATE_STOPPING);
        for seat in 0..SEATS {
            self.post(seat);
        }
    }

    /// What `reader::claim_seat` does once it holds the seat's lock: claim the exact word
    /// read, drain the semaphore, go Live.
    fn join(&self, seat: usize, pid: u32) -> Option<SeatWord> {
        self.join_as(seat, pid, Mode::Newest)
    }

    /// [`Model::join`] with a delivery mode.
    fn join_as(&self, seat: usize, pid: u32, mode: Mode) -> Option<SeatWord> {
        let observed = SeatWord(self.words[seat].load(Ordering::Relaxed));
        let claimed = claim(self, seat, observed, pid)?;
        set_delivery(self, seat, claimed, mode);
        while self.try_wait(seat) {}
        go_live(self, seat, claimed)
    }

    /// What `Writer::await_every_frame` does before it publishes the frame after
    /// `awaited`: wait on the producer's semaphore until no live every-frame seat lags.
    /// With `stall` (a stall timeout that has already run out, as loom has no clock) it
    /// demotes the laggards instead of waiting. Returns the seats it demoted.
    fn await_every_frame(&self, awaited: u64, stall: bool) -> u32 {
        let mut lag = laggards(self, awaited);
        let mut demoted = 0;
        while lag.mask != 0 {
            if stall {
                for seat in Wake::seats(lag.mask) {
                    if demote(self, seat as usize, lag.observed[seat as usize]) {
                        demoted |= 1 << seat;
                    }
                }
                lag = laggards(self, awaited);
                continue;
            }
            self.wait(PRODUCER);
            lag = laggards_after_wake(self, awaited);
        }
        demoted
    }

    /// What an every-frame `Reader` does after each take: record it, wake the producer.
    fn took(&self, seat: usize, seq: u64) {
        record_taken(self, seat, seq);
        self.post_if_zero(PRODUCER);
    }

    /// What `Seat::leave` does: give the seat back, then wake a producer that may be
    /// waiting for it.
    fn leave_seat(&self, seat: usize, mine: SeatWord) -> bool {
        let left = leave(self, seat, mine);
        self.post_if_zero(PRODUCER);
        left
    }

    /// Reads a frame the seat holds, checks it, releases it (what a `FrameRef` is for).
    fn read(&self, seat: usize, latest: Latest, last: u64) {
        assert!(latest.seq > last, "seqs increase");
        let [seq, ..] = self.slot_meta(latest.slot as usize);
        // SAFETY: the slot is held; loom reports a race if the producer writes it.
        let pixels = self.pixels[latest.slot as usize].with(|p| unsafe { *p });
        assert_eq!(pixels, latest.seq, "torn: slot holds another frame");
        assert_eq!(seq.load(Ordering::Relaxed), latest.seq, "metadata matches");
        release(self, seat);
    }

    /// `Reader::wait_frame`'s loop (Block strategy) until the producer stops; returns the
    /// last seq taken.
    fn follow(&self, seat: usize) -> u64 {
        let mut last = 0;
        let mut step: fn(&Model, usize, u64) -> Look = look;
        loop {
            let floor = self.published.load(Ordering::Acquire);
            match step(self, seat, last) {
                Look::Taken(l) => {
                    assert!(l.seq >= floor, "got {} though {floor} was out", l.seq);
                    self.read(seat, l, last);
                    last = l.seq;
                    step = look;
                }
                Look::Nothing => {
                    self.wait(seat);
                    step = after_wake;
                }
                Look::Ended(state) => {
                    assert_eq!(state, STATE_STOPPING);
                    return last;
                }
                Look::Corrupt(c) => panic!("corrupt {c:?}"),
            }
        }
    }
}

/// One producer publishes `LOOM_FRAMES` frames and stops; two consumers follow it. No torn
/// frame, no held slot written, no lost wake-up, and each consumer's last frame is the
/// last one published, though the stop comes right after it.
#[test]
fn loom_slot_protocol() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let consumers: Vec<_> = (0..SEATS)
            .map(|seat| {
                let m = m.clone();
                thread::spawn(move || {
                    let live = m.join(seat, seat as u32 + 1).expect("seat is free");
                    let last = m.follow(seat);
                    assert!(leave(&*m, seat, live));
                    last
                })
            })
            .collect();
        let mut last_written = [0u64; SLOTS];
        let mut latest_slot = None;
        for seq in 1..=frames() {
            latest_slot = Some(m.publish(seq, latest_slot, &mut last_written));
        }
        m.stop();
        for c in consumers {
            assert_eq!(c.join().unwrap(), frames(), "the last frame was lost");
        }
    });
}

/// The `Predict` strategy's wait switches mid-wait between the three moves every
/// strategy has: a timed sleep on the semaphore that ends before any post (modelled as a
/// `sem_trywait` that may or may not find one), then a bounded spin on `changed_since`,
/// then a look, then a blocking sleep on the semaphore. Wherever the producer's publish
/// lands among those switches, no wake is lost (loom would report the sleeper's deadlock)
/// and the last frame is taken.
#[test]
fn loom_a_strategy_switch_mid_wait_loses_no_wake() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let consumer = {
            let m = m.clone();
            thread::spawn(move || {
                m.join(0, 1).expect("seat is free");
                let mut last = 0;
                loop {
                    let mut found = look(&*m, 0, last);
                    if found == Look::Nothing {
                        // The timed sleep until the window opens: it ends with or without a
                        // post, and the after-wake step follows either way.
                        let _ = m.try_wait(0);
                        found = after_wake(&*m, 0, last);
                    }
                    if found == Look::Nothing {
                        // The spin across the window, cut short (bounded, as every spin).
                        for _ in 0..2 {
                            if changed_since(&*m, last) {
                                break;
                            }
                            thread::yield_now();
                        }
                        found = look(&*m, 0, last);
                    }
                    if found == Look::Nothing {
                        // The window closed: block.
                        m.wait(0);
                        found = after_wake(&*m, 0, last);
                    }
                    match found {
                        Look::Taken(l) => {
                            m.read(0, l, last);
                            last = l.seq;
                        }
                        Look::Nothing => {}
                        Look::Ended(state) => {
                            assert_eq!(state, STATE_STOPPING);
                            return last;
                        }
                        Look::Corrupt(c) => panic!("corrupt {c:?}"),
                    }
                }
            })
        };
        let mut last_written = [0u64; SLOTS];
        let slot = m.publish(1, None, &mut last_written);
        m.publish(2, Some(slot), &mut last_written);
        m.stop();
        assert_eq!(consumer.join().unwrap(), 2, "the last frame was lost");
    });
}

/// A consumer joins while the producer publishes its only frame and then goes quiet (a
/// paused or slow source: no later post comes). The producer saw the seat free and did not
/// wake it, so `go_live`'s fence must make the joiner's first look see that frame.
#[test]
fn loom_late_joiner_sees_the_frame_it_was_not_woken_for() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let consumer = {
            let m = m.clone();
            thread::spawn(move || {
                m.join(0, 1).expect("seat is free");
                loop {
                    match look(&*m, 0, 0) {
                        Look::Taken(l) => return m.read(0, l, 0),
                        Look::Nothing => m.wait(0),
                        other => panic!("{other:?}"),
                    }
                }
            })
        };
        let mut last_written = [0u64; SLOTS];
        m.publish(1, None, &mut last_written);
        consumer.join().unwrap();
    });
}

/// Litmus for the after-wake fence (the full model reaches this state only with more
/// preemptions than `.ci/run` allows). The consumer has taken frame 1 without waiting, so
/// frame 1's post is still pending; the producer publishes frame 2, reads the value 1
/// (relaxed, as glibc does) and does not post again. The consumer's wait takes the old
/// post, and only the after-wake fence makes its look see frame 2: without it, both reads
/// may be stale (store buffering) and the consumer sleeps for good.
#[test]
fn loom_a_stale_post_still_shows_the_newer_frame() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        m.join(0, 1).expect("seat is free");
        let mut last_written = [0u64; SLOTS];
        let slot = m.publish(1, None, &mut last_written);
        let Look::Taken(first) = look(&*m, 0, 0) else {
            panic!("frame 1 is there")
        };
        m.read(0, first, 0);
        assert_eq!(
            m.sems[0].load(Ordering::Relaxed),
            1,
            "frame 1's post pending"
        );
        let consumer = {
            let m = m.clone();
            thread::spawn(move || {
                loop {
                    m.wait(0);
                    match after_wake(&*m, 0, 1) {
                        Look::Taken(l) => return m.read(0, l, 1),
                        Look::Nothing => {}
                        other => panic!("{other:?}"),
                    }
                }
            })
        };
        m.publish(2, Some(slot), &mut last_written);
        consumer.join().unwrap();
    });
}

/// A dead consumer's seat (Live, holding slot 0) is reclaimed while a new consumer claims
/// it and takes a frame. The reclaimer works only on the exact word it observed and a
/// claimer only on a Free one, so the new consumer's word and hold are never wiped.
#[test]
fn loom_reclaim_never_wipes_a_new_claim() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let dead = SeatWord::new(SeatState::Live, 1, 9);
        m.words[0].store(dead.0, Ordering::Relaxed);
        m.holds[0].store(0, Ordering::Relaxed);
        m.latest
            .store(Latest { seq: 1, slot: 1 }.pack(), Ordering::Relaxed);
        m.meta[1][0].store(1, Ordering::Relaxed);
        let reclaimer = {
            let m = m.clone();
            thread::spawn(move || {
                // `Supervisor::beat`, with the seat's lock found free.
                if let Some(observed) = seat_is_occupied(&*m, 0) {
                    reclaim(&*m, 0, observed);
                }
            })
        };
        // The new consumer: its first try may see the dead word; it tries once more, as
        // `attach` does after "awaiting reclaim".
        let live = m.join(0, 2).or_else(|| {
            thread::yield_now();
            m.join(0, 2)
        });
        if let Some(live) = live {
            let Look::Taken(l) = look(&*m, 0, 0) else {
                panic!("frame 1 is there")
            };
            assert_eq!(l.slot, 1);
            reclaimer.join().unwrap();
            assert_eq!(SeatWord(m.words[0].load(Ordering::Relaxed)), live);
            assert_eq!(m.holds[0].load(Ordering::Relaxed), 1, "hold wiped");
            assert!(leave(&*m, 0, live));
        } else {
            reclaimer.join().unwrap();
        }
    });
}

/// A consumer leaves its seat while a reclaimer that observed it Live acts on it and a
/// new consumer claims it: the stale observation frees nothing, and the generation tells
/// the new claim from the old.
#[test]
fn loom_leave_races_reclaim_and_a_new_claim() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let mine = m.join(0, 1).expect("seat is free");
        m.holds[0].store(0, Ordering::Relaxed);
        let observed = seat_is_occupied(&*m, 0).expect("occupied");
        let reclaimer = {
            let m = m.clone();
            thread::spawn(move || reclaim(&*m, 0, observed))
        };
        let leaver = {
            let m = m.clone();
            thread::spawn(move || leave(&*m, 0, mine))
        };
        let newcomer = m.join(0, 2);
        let reclaimed = reclaimer.join().unwrap();
        let left = leaver.join().unwrap();
        assert!(reclaimed != left, "exactly one of them frees the seat");
        let word = SeatWord(m.words[0].load(Ordering::Relaxed));
        match newcomer {
            Some(live) => {
                assert_eq!(word, live, "a new claim is never wiped");
                assert_eq!(live.generation(), mine.generation() + 1);
            }
            None => assert_ne!(word.state(), SeatState::Live),
        }
    });
}

/// `Reader::wait_frame`'s loop for an every-frame seat: like [`Model::follow`], recording
/// each take; returns every seq taken, and whether the seat was demoted.
fn follow_every_frame(m: &Model, seat: usize, mine: SeatWord) -> (Vec<u64>, bool) {
    let mut seqs = Vec::new();
    let mut last = 0;
    let mut step: fn(&Model, usize, u64) -> Look = look;
    loop {
        match step(m, seat, last) {
            Look::Taken(l) => {
                m.took(seat, l.seq);
                m.read(seat, l, last);
                seqs.push(l.seq);
                last = l.seq;
                step = look;
            }
            Look::Nothing => {
                m.wait(seat);
                step = after_wake;
            }
            Look::Ended(state) => {
                assert_eq!(state, STATE_STOPPING);
                return (seqs, mode_of(m, seat, mine) == Mode::Demoted);
            }
            Look::Corrupt(c) => panic!("corrupt {c:?}"),
        }
    }
}

/// An every-frame consumer and a newest-frame one follow a producer that waits for the
/// former before each publish: the every-frame seat takes every frame, 1..=N in order,
/// with no lost wake on either side (a lost producer wake is a deadlock loom reports),
/// and no held slot is written while the producer runs ahead into free slots.
#[test]
fn loom_every_frame_seat_takes_every_frame() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let every = {
            let m = m.clone();
            thread::spawn(move || {
                let mine = m.join_as(0, 1, Mode::EveryFrame).expect("seat is free");
                let seen = follow_every_frame(&m, 0, mine);
                assert!(m.leave_seat(0, mine));
                seen
            })
        };
        let newest = {
            let m = m.clone();
            thread::spawn(move || {
                let mine = m.join(1, 2).expect("seat is free");
                let last = m.follow(1);
                assert!(m.leave_seat(1, mine));
                last
            })
        };
        let mut last_written = [0u64; SLOTS];
        let mut latest_slot = None;
        for seq in 1..=frames() {
            assert_eq!(m.await_every_frame(seq - 1, false), 0);
            latest_slot = Some(m.publish(seq, latest_slot, &mut last_written));
        }
        m.stop();
        let (seqs, demoted) = every.join().unwrap();
        assert!(!demoted);
        // It may have gone live after frame 1 was out: the guarantee starts at its first
        // take, and from there no seq is missing.
        let first = *seqs.first().expect("it took the last frame at least");
        assert_eq!(
            seqs,
            (first..=frames()).collect::<Vec<_>>(),
            "a frame was skipped"
        );
        assert_eq!(newest.join().unwrap(), frames());
    });
}

/// The producer's stall timeout runs out while an every-frame consumer takes frames: it
/// demotes the seat by compare-and-swap on the delivery word it observed. Whatever the
/// interleaving, no torn frame is read, the consumer learns of the demotion from its own
/// delivery word, and a seat that was not demoted missed nothing.
#[test]
fn loom_a_demotion_racing_takes_is_seen_and_tears_nothing() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let every = {
            let m = m.clone();
            thread::spawn(move || {
                let mine = m.join_as(0, 1, Mode::EveryFrame).expect("seat is free");
                let seen = follow_every_frame(&m, 0, mine);
                m.leave_seat(0, mine);
                seen
            })
        };
        let mut last_written = [0u64; SLOTS];
        let mut latest_slot = None;
        let mut demoted = 0;
        for seq in 1..=frames().min(2) {
            demoted |= m.await_every_frame(seq - 1, true);
            latest_slot = Some(m.publish(seq, latest_slot, &mut last_written));
        }
        m.stop();
        let (seqs, seen_demoted) = every.join().unwrap();
        assert_eq!(
            seen_demoted,
            demoted != 0,
            "the delivery word is the authority"
        );
        if !seen_demoted {
            let first = *seqs.first().expect("took the last frame");
            assert_eq!(seqs, (first..=frames().min(2)).collect::<Vec<_>>());
        }
    });
}

/// The producer waits for an every-frame seat whose consumer leaves instead of taking
/// the frame (a consumer closing, or dying and being reclaimed, which also posts): the
/// post after the seat is freed wakes the producer, which then stops waiting for it.
#[test]
fn loom_a_seat_leaving_mid_wait_releases_the_producer() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let mine = m.join_as(0, 1, Mode::EveryFrame).expect("seat is free");
        let mut last_written = [0u64; SLOTS];
        let slot = m.publish(1, None, &mut last_written);
        let leaver = {
            let m = m.clone();
            thread::spawn(move || assert!(m.leave_seat(0, mine)))
        };
        assert_eq!(m.await_every_frame(1, false), 0);
        m.publish(2, Some(slot), &mut last_written);
        leaver.join().unwrap();
    });
}

/// Litmus for the producer's after-wake fence, the mirror of
/// `loom_a_stale_post_still_shows_the_newer_frame`. The every-frame consumer's take of
/// frame 1 left a post pending on the producer's semaphore (the producer never waited for
/// it). Frame 2 is out; the consumer takes it, records it and reads the value 1, so it does
/// not post again. The producer's wait takes the old post, and only the fence in
/// `laggards_after_wake` makes its re-check see `taken` = 2: without it, both reads may be
/// stale and the producer sleeps for good (a deadlock loom reports).
#[test]
fn loom_a_stale_producer_post_still_shows_the_newer_take() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let mine = m.join_as(0, 1, Mode::EveryFrame).expect("seat is free");
        let mut last_written = [0u64; SLOTS];
        let slot = m.publish(1, None, &mut last_written);
        let Look::Taken(first) = look(&*m, 0, 0) else {
            panic!("frame 1 is there")
        };
        m.took(0, first.seq);
        m.read(0, first, 0);
        assert_eq!(
            m.sems[PRODUCER].load(Ordering::Relaxed),
            1,
            "a post pending"
        );
        assert_eq!(m.await_every_frame(1, false), 0, "frame 1 is taken");
        m.publish(2, Some(slot), &mut last_written);
        let consumer = {
            let m = m.clone();
            thread::spawn(move || {
                let Look::Taken(second) = look(&*m, 0, 1) else {
                    panic!("frame 2 is there")
                };
                m.took(0, second.seq);
                m.read(0, second, 1);
            })
        };
        assert_eq!(m.await_every_frame(2, false), 0);
        consumer.join().unwrap();
        assert!(m.leave_seat(0, mine));
    });
}

/// Lending (`protocol/lend.rs`): right after frame 1 the writer offers a slot; a lender
/// thread takes it and fills it with frame 3 while the writer publishes frame 2 (into the
/// offer, if it reclaimed it first, or another slot), then the writer adopts the lent slot
/// and publishes it in place. A consumer follows throughout (one: with two, the deeper
/// search of `.ci/run` takes ten minutes here): the lender's writes never
/// race a read (loom would report it), nobody sees the lent slot before its publish, and
/// the last frame is taken.
#[test]
fn loom_a_lent_slot_is_filled_beside_publishes_and_read_only_after_its_own() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let lends = Arc::new(Lends::new());
        let consumer = {
            let m = m.clone();
            thread::spawn(move || {
                let live = m.join(0, 1).expect("seat is free");
                let last = m.follow(0);
                assert!(leave(&*m, 0, live));
                last
            })
        };
        let limit = (SLOTS - SEATS - 1) as u32;
        let mut last_written = [0u64; SLOTS];
        let first = m.publish(1, None, &mut last_written);
        let offered = offer(&*lends, &*m, Some(first), &last_written, limit).expect("a spare slot");
        let lender = {
            let (m, lends) = (m.clone(), lends.clone());
            thread::spawn(move || {
                let slot = lend(&lends)?;
                m.write(slot, 3);
                Some(slot)
            })
        };
        // `Writer::slot`: the offer if still there, else a choice that skips lent slots.
        let second = reclaim_offer(&lends)
            .or_else(|| choose_slot(&*m, Some(first), &last_written, lends.lent()))
            .expect("a free slot");
        m.write(second, 2);
        m.publish_written(2, second, &mut last_written);
        let frames = match lender.join().unwrap() {
            Some(lent) => {
                assert_eq!(lent, offered);
                assert_ne!(lent, second, "a lent slot was chosen");
                assert!(adopt(&lends, lent));
                m.publish_written(3, lent, &mut last_written);
                end_lend(&lends, lent);
                3
            }
            None => 2,
        };
        m.stop();
        assert_eq!(consumer.join().unwrap(), frames, "the last frame was lost");
    });
}
