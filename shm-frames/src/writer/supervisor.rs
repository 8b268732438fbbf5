//! The service thread's side of a producer: heartbeat, seat reclaim, wakes, and the stop
//! of a stream whose frame thread is blocked.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::layout::STATE_STOPPING;
use crate::liveness;
use crate::protocol::{self, SeatState};
use crate::region::Region;
use frame_vocab::clock::monotonic_ns;

/// A consumer seat as the producer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeatInfo {
    /// Seat index.
    pub seat: u32,
    /// The pid the consumer stated (for messages only).
    pub pid: u32,
    /// Whether the consumer is set up and reading (else it is still claiming).
    pub live: bool,
}

/// The service thread's handle on a producer's region: heartbeat and seat reclaim. Cheap to
/// clone, `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Supervisor {
    pub(super) region: Arc<Region>,
}

impl Supervisor {
    /// Stamps the heartbeat and frees the seats of dead consumers (whose lock is free),
    /// each only by compare-and-swap on the exact word observed. Returns the freed seats.
    /// Call it at least every 100 ms.
    pub fn beat(&self) -> Vec<SeatInfo> {
        let header = self.region.header();
        header.heartbeat_ns.store(monotonic_ns(), Ordering::Relaxed);
        let table = self.region.table();
        let mut reclaimed = Vec::new();
        for seat in 0..self.region.layout().seats {
            let Some(word) = protocol::seat_is_occupied(&table, seat as usize) else {
                continue;
            };
            // An error (never expected) counts as "alive": never free a seat on doubt.
            let alive =
                liveness::is_held(self.region.fd(), liveness::seat_byte(seat)).unwrap_or(true);
            if !alive && protocol::reclaim(&table, seat as usize, word) {
                // A frame thread waiting for this seat (every-frame) looks again.
                self.region.producer_wake().post_if_zero();
                tracing::info!(
                    seat,
                    pid = word.pid(),
                    "reclaimed the seat of a dead consumer"
                );
                reclaimed.push(SeatInfo {
                    seat,
                    pid: word.pid(),
                    live: word.state() == SeatState::Live,
                });
            }
        }
        reclaimed
    }

    /// The occupied seats.
    pub fn seats(&self) -> Vec<SeatInfo> {
        let table = self.region.table();
        (0..self.region.layout().seats)
            .filter_map(|seat| {
                protocol::seat_is_occupied(&table, seat as usize).map(|word| SeatInfo {
                    seat,
                    pid: word.pid(),
                    live: word.state() == SeatState::Live,
                })
            })
            .collect()
    }

    /// Runs `f` only if no `consumer ctl` holds reply queue `index`'s lock, holding that
    /// lock itself meanwhile so that none can claim the queue under `f` (which recreates a
    /// dead `ctl`'s queue). `None` when a live `ctl` holds it.
    pub fn while_reply_queue_unclaimed<R>(&self, index: u32, f: impl FnOnce() -> R) -> Option<R> {
        crate::reply_lock::while_unclaimed(&self.region, index, f)
    }

    /// The epoch of the region this handle follows.
    pub fn epoch(&self) -> u64 {
        self.region.layout().epoch
    }

    /// Wakes the frame thread if it waits for an every-frame seat, so it looks at a stop,
    /// a pause or a format change now rather than at the end of its 100 ms slice.
    pub fn wake_frame_thread(&self) {
        self.region.producer_wake().post_if_zero();
    }

    /// Wakes seat `seat` (posts its semaphore if it is 0): every message sent to a consumer
    /// is followed by a wake, since consumers look at their queue after each wake.
    pub fn wake(&self, seat: u32) {
        if seat < self.region.layout().seats {
            self.region.sem(seat).post_if_zero();
        }
    }

    /// Benchmarks only: stamps "now" into the header's probe word and posts seat `seat`'s
    /// semaphore, so a reader can measure the bare wake-up (`Reader::probe_wait`) and the
    /// bare spinning atomic (`Reader::probe_spin`) beside the slot protocol, in one region.
    #[doc(hidden)]
    pub fn probe(&self, seat: u32) {
        // SYNC POINT: probe. Release pairs with the Acquire loads in the probe readers.
        self.region
            .header()
            .probe
            .0
            .store(monotonic_ns(), Ordering::Release);
        if seat < self.region.layout().seats {
            self.region.sem(seat).post();
        }
    }

    /// Ends the stream on behalf of a writer that cannot (its thread is blocked in a
    /// source): state Stopping, every seat woken, the name unlinked. Only for a process
    /// about to exit; the writer's own drop, if it ever runs, repeats the unlink harmlessly
    /// since the name stays ours while we live.
    pub fn stop_stream(&self) {
        self.region.set_state_and_wake(STATE_STOPPING);
        self.region.unlink();
    }
}
