//! Every-frame delivery in the slot protocol: each seat's delivery word and `taken` seq,
//! the laggards a publish waits for, and the demotion after a stall. Like the rest of the
//! protocol, free of syscalls and run unchanged by the loom model.

use super::{GENERATION_MASK, SeatState, SeatWord, SlotTable};
use crate::sync::{Ordering, fence};

/// How a seat asked to be served, in its delivery word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The newest complete frame; the producer never waits for this seat (also what a
    /// word of another generation, or garbage, means).
    Newest,
    /// Every frame from the first take: the producer publishes frame n+1 only once this
    /// seat has taken frame n.
    EveryFrame,
    /// Asked for every frame, and the producer dropped it back to newest after a stall.
    Demoted,
}

/// A delivery word: generation (the seat word's, 24 bits) << 8 | mode (8 bits). A word
/// whose generation is not the seat's is a previous occupant's and means [`Mode::Newest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeliveryWord(pub u64);

impl DeliveryWord {
    pub(crate) fn new(generation: u32, mode: Mode) -> DeliveryWord {
        let code = match mode {
            Mode::Newest => 0,
            Mode::EveryFrame => 1,
            Mode::Demoted => 2,
        };
        DeliveryWord(((u64::from(generation) & GENERATION_MASK) << 8) | code)
    }

    pub(crate) fn generation(self) -> u32 {
        ((self.0 >> 8) & GENERATION_MASK) as u32
    }

    /// The mode this word gives a seat of generation `generation`.
    pub(crate) fn mode_for(self, generation: u32) -> Mode {
        if self.0 >> 32 != 0 || self.generation() != generation & GENERATION_MASK as u32 {
            return Mode::Newest;
        }
        match self.0 & 0xFF {
            1 => Mode::EveryFrame,
            2 => Mode::Demoted,
            _ => Mode::Newest,
        }
    }
}

/// Consumer, between [`claim`] and [`go_live`]: how seat `seat` (claimed as `claimed`)
/// wants its frames. `taken` starts at 0, so an every-frame seat is waited for from its
/// first take on (the frame that is `latest` when it goes live).
pub(crate) fn set_delivery<T: SlotTable>(table: &T, seat: usize, claimed: SeatWord, mode: Mode) {
    // Relaxed: published by `go_live`'s Release.
    table.taken(seat).store(0, Ordering::Relaxed);
    table.delivery(seat).store(
        DeliveryWord::new(claimed.generation(), mode).0,
        Ordering::Relaxed,
    );
}

/// Consumer (every-frame seat), right after taking frame `seq`: records it, so a producer
/// waiting to publish the next frame may go on. The caller then posts the producer's wake
/// semaphore if its value is 0 (binary wake, as the producer does for seats).
pub(crate) fn record_taken<T: SlotTable>(table: &T, seat: usize, seq: u64) {
    // SYNC POINT: taken. Release pairs with the producer's Acquire load in `laggards`.
    table.taken(seat).store(seq, Ordering::Release);
    // SYNC POINT: producer-wake fence. The store-buffering pair of the producer's fence in
    // `laggards_after_wake`: either the producer's re-check sees this `taken`, or our read
    // of its semaphore (relaxed, in glibc) sees 0 and we post.
    fence(Ordering::SeqCst);
}

/// Consumer: this seat's mode now, as the producer may have changed it (a demotion).
pub(crate) fn mode_of<T: SlotTable>(table: &T, seat: usize, mine: SeatWord) -> Mode {
    // SYNC POINT: delivery (Acquire side of `demote`'s compare-and-swap).
    DeliveryWord(table.delivery(seat).load(Ordering::Acquire)).mode_for(mine.generation())
}

/// The every-frame seats a publish must wait for: bit `k` is seat `k`, with the exact
/// delivery word observed (a demotion acts only on that word).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Laggards {
    pub mask: u32,
    pub observed: [u64; 32],
}

/// Producer, before it stores `latest` for the frame after `awaited`: the live
/// every-frame seats that have not taken frame `awaited` yet. Claiming seats are not
/// waited for (their guarantee starts at their first take), and neither is a seat whose
/// `taken` is garbage above `awaited` (never a hang on garbage).
pub(crate) fn laggards<T: SlotTable>(table: &T, awaited: u64) -> Laggards {
    let mut lag = Laggards::default();
    for seat in 0..table.seat_count().min(32) {
        // SYNC POINT: delivery (Acquire side of `go_live`'s Release).
        let word = SeatWord(table.seat_word(seat).load(Ordering::Acquire));
        if word.state() != SeatState::Live {
            continue;
        }
        let delivery = DeliveryWord(table.delivery(seat).load(Ordering::Acquire));
        if delivery.mode_for(word.generation()) != Mode::EveryFrame {
            continue;
        }
        // SYNC POINT: taken (Acquire side).
        if table.taken(seat).load(Ordering::Acquire) >= awaited {
            continue;
        }
        lag.mask |= 1 << seat;
        lag.observed[seat] = delivery.0;
    }
    lag
}

/// Producer: [`laggards`] after a wait on its wake semaphore returned (a post, a timeout
/// or a signal): the fence first (see [`record_taken`]).
pub(crate) fn laggards_after_wake<T: SlotTable>(table: &T, awaited: u64) -> Laggards {
    // SYNC POINT: producer-wake fence (producer side).
    fence(Ordering::SeqCst);
    laggards(table, awaited)
}

/// Producer: drops seat `seat` back to newest-frame delivery, only if its delivery word is
/// still exactly `observed` (never touching the seat word, so a seat reclaimed or claimed
/// anew meanwhile keeps its own choice).
pub(crate) fn demote<T: SlotTable>(table: &T, seat: usize, observed: u64) -> bool {
    let demoted = DeliveryWord::new(DeliveryWord(observed).generation(), Mode::Demoted);
    // SYNC POINT: delivery (Release side of the demotion; `mode_of` loads with Acquire).
    table
        .delivery(seat)
        .compare_exchange(observed, demoted.0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}
