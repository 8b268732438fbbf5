//! The consumer side: attaching to a stream's seat and taking the newest frame.

mod attach;
mod options;

pub use options::{Delivery, ReaderOptions, ReaderStats, WaitStrategy};

use attach::{NotAlive, attach, producer_alive, state_error};

use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::{Corrupt, OpenError, WaitError};
use crate::layout::{Describe, FLAG_NO_BACKPRESSURE, Table};
use crate::predict::{self, Plan, Predictor, SpinBudget};
use crate::protocol::{self, Look, SlotTable, TakeCorrupt};
use crate::sem::Woken;
use crate::slot::{FrameInfo, FrameRef, OwnedFrame, Seat};
use frame_vocab::format::FrameFormat;
use frame_vocab::name::StreamName;
use frame_vocab::{Deadline, monotonic_ns};

/// Longest a wait sleeps before it checks the producer is still alive.
const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// A producer whose heartbeat is older than this, its lock still held, counts as stalled
/// (SIGSTOP, a hung machine): its consumers keep their seats and wait on.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);

/// How often the Spin strategy yields the core (2 vCPUs are shared).
const SPINS_PER_YIELD: u32 = 256;

/// A consumer bound to one seat of a stream. Takes one frame at a time (`FrameRef`
/// borrows it mutably; an [`OwnedFrame`] blocks new frames while it lives) and is `!Sync`:
/// one seat, one reader.
///
/// Dropping it frees the seat (once no owned frame of it lives).
pub struct Reader {
    name: StreamName,
    seat: Arc<Seat>,
    last_seq: u64,
    options: ReaderOptions,
    stats: ReaderStats,
    /// Gave its seat back in a `reopen` that then failed: no seat until one succeeds.
    detached: bool,
    /// One clone per live [`OwnedFrame`]: while any lives, no new frame is taken.
    frames_out: Arc<()>,
    /// What the `Predict` strategy learned (unused by the others; boxed, it is 1 KiB).
    predictor: Box<Predictor>,
    _not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("name", &self.name)
            .field("seat", &self.seat.index)
            .field("format", &self.format())
            .field("last_seq", &self.last_seq)
            .finish()
    }
}

impl Reader {
    /// Attaches to stream `name`, waiting up to `options.wait` for a live producer, and
    /// claims a free seat.
    pub fn open(name: &StreamName, options: ReaderOptions) -> Result<Reader, OpenError> {
        let seat = attach(name, Deadline::after(options.wait), options.delivery)?;
        Ok(Reader {
            name: name.clone(),
            seat: Arc::new(seat),
            last_seq: 0,
            options,
            stats: ReaderStats::default(),
            detached: false,
            frames_out: Arc::new(()),
            predictor: Box::new(Predictor::new(match options.strategy {
                WaitStrategy::Predict { spin_budget } => spin_budget,
                _ => SpinBudget::ZERO,
            })),
            _not_sync: PhantomData,
        })
    }

    /// Moves to the stream's current region (after `Replaced`, `Stopped`, `ProducerGone`
    /// or `Corrupt`), waiting up to `wait` for it.
    ///
    /// If the name still names the region we sit in (a reopen after garbage, not a
    /// replacement), our seat is given back first, since it may be the only one — unless an
    /// [`OwnedFrame`] still holds a slot through it: then the seat stays claimed until that
    /// frame drops, and we look for another. On error a reader that gave its seat back is
    /// detached: `wait_frame` reports `ProducerGone` until a `reopen` succeeds.
    pub fn reopen(&mut self, wait: Duration) -> Result<(), OpenError> {
        if !self.detached && !self.frame_in_use() && self.seat.region.is_current(&self.name) {
            self.seat.leave();
            self.detached = true;
        }
        let seat = attach(&self.name, Deadline::after(wait), self.options.delivery)?;
        // The old seat is given back as this drops, or, if an owned frame still holds it,
        // when that frame drops.
        self.seat = Arc::new(seat);
        self.detached = false;
        self.last_seq = 0;
        self.stats.reopens += 1;
        Ok(())
    }

    /// Whether an [`OwnedFrame`] of this reader is still alive.
    pub fn frame_in_use(&self) -> bool {
        Arc::strong_count(&self.frames_out) > 1
    }

    /// Waits up to `timeout` for a frame newer than the last one taken and takes it (the
    /// newest there is). Returns at once if one is already there.
    ///
    /// While an [`OwnedFrame`] of this reader lives, fails at once with
    /// [`WaitError::FrameInUse`]: a seat holds one slot at a time, and it never waits for
    /// its own frame to go.
    pub fn wait_frame(&mut self, timeout: Duration) -> Result<FrameRef<'_>, WaitError> {
        let info = self.wait_take(timeout)?;
        self.learn(&info);
        Ok(self.frame_ref(info))
    }

    /// Waits like [`Reader::wait_frame`], but hands out the frame as an [`OwnedFrame`] that
    /// borrows nothing: it keeps the mapping, the seat, its lock and the slot's hold alive
    /// until it is dropped, wherever a reopen takes this reader meanwhile.
    pub fn wait_frame_owned(&mut self, timeout: Duration) -> Result<OwnedFrame, WaitError> {
        let info = self.wait_take(timeout)?;
        self.learn(&info);
        Ok(OwnedFrame::new(
            Arc::clone(&self.seat),
            Arc::clone(&self.frames_out),
            info,
        ))
    }

    fn wait_take(&mut self, timeout: Duration) -> Result<FrameInfo, WaitError> {
        if self.frame_in_use() {
            return Err(WaitError::FrameInUse);
        }
        // The fast path (a frame is there) reads no clock.
        if let Some(info) = self.take_with(Step::Look)? {
            return Ok(info);
        }
        let start = monotonic_ns();
        let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let deadline = Deadline::from_ns(start.saturating_add(timeout_ns));
        let slice_ns = LIVENESS_SLICE.as_nanos() as u64;
        let mut next_check = start.saturating_add(slice_ns);
        // Every strategy is one plan: sleep on the semaphore until `spin_from`, spin until
        // `spin_until`, then sleep on the semaphore again.
        let plan = match self.options.strategy {
            WaitStrategy::Block => Plan::block(start),
            WaitStrategy::Spin => Plan {
                spin_from: start,
                spin_until: u64::MAX,
            },
            WaitStrategy::SpinThenBlock(d) => Plan {
                spin_from: start,
                spin_until: start.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            },
            WaitStrategy::Predict { .. } => self.predict_plan(start),
        };
        let predicting = matches!(self.options.strategy, WaitStrategy::Predict { .. });
        let (spin_from, spin_until) = (plan.spin_from, plan.spin_until);
        loop {
            let now = monotonic_ns();
            if now >= next_check || now >= deadline.as_ns() {
                self.check_alive()?;
                next_check = now.saturating_add(slice_ns);
                if now >= deadline.as_ns() {
                    return Err(WaitError::Timeout);
                }
            }
            let until = deadline.as_ns().min(next_check);
            if spin_from <= now && now < spin_until {
                self.spin(until.min(spin_until));
                if predicting {
                    self.predictor.spun(monotonic_ns().saturating_sub(now));
                }
                if let Some(info) = self.take_with(Step::Look)? {
                    return Ok(info);
                }
                continue;
            }
            // Before the spin window, sleep only until it opens.
            let until = if now < spin_from {
                until.min(spin_from)
            } else {
                until
            };
            let sem = self.seat.region.sem(self.seat.index);
            match sem.wait_until(Deadline::from_ns(until)) {
                // A wake is a hint to look again: a frame, or a state change.
                Woken::Posted | Woken::Interrupted => {}
                Woken::TimedOut => {
                    if predicting && until == spin_from {
                        self.predictor.slept(spin_from, monotonic_ns());
                    }
                    // No wake for a whole slice: the producer may have stopped waking us
                    // because garbage freed our seat.
                    self.check_seat()?;
                }
                // A garbage semaphore: poll `latest` every millisecond instead (degraded
                // latency, never a hang and never a busy loop).
                Woken::Failed(_) => std::thread::sleep(
                    Deadline::from_ns(until)
                        .remaining()
                        .min(Duration::from_millis(1)),
                ),
            }
            // After any return from the wait (a post may have come with a timeout) the
            // protocol's after-wake step: its fence, then a frame before the state.
            if let Some(info) = self.take_with(Step::AfterWake)? {
                return Ok(info);
            }
        }
    }

    /// The `Predict` strategy's plan for a wait starting at `now`.
    fn predict_plan(&mut self, now: u64) -> Plan {
        // Relaxed: a hint, written once before the region's magic.
        let fps_milli = self
            .seat
            .region
            .header()
            .nominal_fps_milli
            .load(Ordering::Relaxed);
        let plan = self
            .predictor
            .plan(now, predict::nominal_period_ns(fps_milli));
        if plan.sleeps_first(now) {
            predict::tighten_timer_slack();
        }
        plan
    }

    /// Lets the `Predict` strategy learn from a frame taken.
    fn learn(&mut self, info: &FrameInfo) {
        if matches!(self.options.strategy, WaitStrategy::Predict { .. }) {
            let epoch = self.seat.region.layout().epoch;
            self.predictor.observe(epoch, info.seq, info.publish_ns);
        }
    }

    /// Within a wait, once per slice: fails when the producer is dead (its lock is free),
    /// but not before one more look, so a frame published just before it died is still
    /// taken by the next call; and when our seat word is no longer ours (garbage: the
    /// producer would stop waking us). A stalled producer (lock held, heartbeat old) is no
    /// failure: we keep our seat and wait on ([`Reader::producer_stalled`] says so).
    fn check_alive(&mut self) -> Result<(), WaitError> {
        if let Err(NotAlive::Dead) =
            producer_alive(self.seat.region.header(), self.seat.region.fd())
            && !self.changed()
        {
            return Err(WaitError::ProducerGone);
        }
        self.check_seat()
    }

    /// Fails when our seat word is no longer the one we set. Only we (holding the seat's
    /// lock) change it, so anything else is garbage, after which the producer neither
    /// wakes us nor respects our hold: the caller reopens, claiming a seat anew.
    fn check_seat(&self) -> Result<(), WaitError> {
        // Relaxed: a single word compared with our own copy; nothing is read through it.
        let found = self
            .table()
            .seat_word(self.seat.index as usize)
            .load(Ordering::Relaxed);
        if found != self.seat.word.0 {
            return Err(Corrupt::SeatWord {
                seat: self.seat.index,
                expected: self.seat.word.0,
                found,
            }
            .into());
        }
        Ok(())
    }

    /// How old the producer's heartbeat is, if the producer is stalled: its lock is still
    /// held (it lives) but it has not stamped its heartbeat for [`HEARTBEAT_TIMEOUT`]
    /// (SIGSTOP, a hung machine). `None` while it is alive and well, or dead.
    pub fn producer_stalled(&self) -> Option<Duration> {
        match producer_alive(self.seat.region.header(), self.seat.region.fd()) {
            Err(NotAlive::Hung(age)) => Some(age),
            Ok(()) | Err(NotAlive::Dead) => None,
        }
    }

    /// Whether there is anything to look at since the last frame taken.
    fn changed(&self) -> bool {
        protocol::changed_since(&self.table(), self.last_seq)
    }

    /// Spins until something changed since the last frame taken (not since the spin
    /// began: a frame published between the last look and here is not missed), or until
    /// `until_ns`.
    fn spin(&self, until_ns: u64) {
        let mut spins = 0u32;
        while !self.changed() {
            std::hint::spin_loop();
            spins += 1;
            if spins % SPINS_PER_YIELD == 0 {
                std::thread::yield_now();
                if monotonic_ns() >= until_ns {
                    return;
                }
            }
        }
    }

    /// Takes a frame through the protocol's `look`, or its `after_wake` step.
    fn take_with(&mut self, step: Step) -> Result<Option<FrameInfo>, WaitError> {
        if self.detached {
            // No seat: the producer would not respect our hold.
            return Err(WaitError::ProducerGone);
        }
        let table = self.table();
        let (seat, last) = (self.seat.index as usize, self.last_seq);
        let look = match step {
            Step::Look => protocol::look(&table, seat, last),
            Step::AfterWake => protocol::after_wake(&table, seat, last),
        };
        let latest = match look {
            Look::Nothing => return Ok(None),
            Look::Ended(state) => return state_error(state).map(|()| None),
            Look::Corrupt(TakeCorrupt::SlotOutOfRange { word }) => {
                return Err(Corrupt::LatestSlot { word }.into());
            }
            Look::Corrupt(TakeCorrupt::SeqWentBack { seen, last }) => {
                return Err(Corrupt::SeqWentBack { seen, last }.into());
            }
            Look::Taken(latest) => latest,
        };
        let taken_ns = monotonic_ns();
        let meta = &self.seat.region.header().slots[latest.slot as usize];
        // Relaxed: ordered after the Acquire load of `latest` in `take`; the slot is held.
        let seq = meta.seq.load(Ordering::Relaxed);
        if seq != latest.seq {
            protocol::release(&table, self.seat.index as usize);
            return Err(Corrupt::SlotSeq {
                slot: latest.slot,
                expected: latest.seq,
                found: seq,
            }
            .into());
        }
        let demoted = match self.options.delivery {
            Delivery::Newest => false,
            Delivery::EveryFrame => {
                // Let a producer waiting for this frame go on, then see whether it has
                // given up on us (the delivery word is the authority; `Demoted` on the
                // queue is only a hint).
                protocol::record_taken(&table, seat, latest.seq);
                self.seat.region.producer_wake().post_if_zero();
                protocol::mode_of(&table, seat, self.seat.word) != protocol::Mode::EveryFrame
            }
        };
        let skipped = if self.last_seq == 0 {
            0
        } else {
            latest.seq - self.last_seq - 1
        };
        self.last_seq = latest.seq;
        self.stats.frames += 1;
        self.stats.skipped += skipped;
        Ok(Some(FrameInfo {
            seq: latest.seq,
            slot: latest.slot,
            capture_ns: meta.capture_ns.load(Ordering::Relaxed),
            publish_ns: meta.publish_ns.load(Ordering::Relaxed),
            taken_ns,
            skipped,
            demoted,
        }))
    }

    fn frame_ref(&self, info: FrameInfo) -> FrameRef<'_> {
        FrameRef::new(&self.seat, info)
    }

    fn table(&self) -> Table<'_> {
        self.seat.table()
    }

    /// Benchmarks only: waits on this seat's semaphore (nothing else) and returns the
    /// probe stamp a `Supervisor::probe` stored, or `None` at the deadline.
    #[doc(hidden)]
    pub fn probe_wait(&self, deadline: Deadline) -> Option<u64> {
        loop {
            match self.seat.region.sem(self.seat.index).wait_until(deadline) {
                // SYNC POINT: probe (Acquire side).
                Woken::Posted => {
                    return Some(self.seat.region.header().probe.0.load(Ordering::Acquire));
                }
                Woken::Interrupted => continue,
                Woken::TimedOut | Woken::Failed(_) => return None,
            }
        }
    }

    /// Benchmarks only: spins until the probe stamp differs from `last` and returns it, or
    /// `None` at the deadline.
    #[doc(hidden)]
    pub fn probe_spin(&self, last: u64, deadline: Deadline) -> Option<u64> {
        let probe = &self.seat.region.header().probe.0;
        let mut spins = 0u32;
        loop {
            // SYNC POINT: probe (Acquire side).
            let now = probe.load(Ordering::Acquire);
            if now != last {
                return Some(now);
            }
            std::hint::spin_loop();
            spins += 1;
            if spins % SPINS_PER_YIELD == 0 {
                std::thread::yield_now();
                if deadline.expired() {
                    return None;
                }
            }
        }
    }

    /// The stream format.
    pub fn format(&self) -> FrameFormat {
        self.seat.region.layout().format
    }

    /// The seat this reader sits in.
    pub fn seat(&self) -> u32 {
        self.seat.index
    }

    /// Number of seats of the stream.
    pub fn seats(&self) -> u32 {
        self.seat.region.layout().seats
    }

    /// The region's epoch.
    pub fn epoch(&self) -> u64 {
        self.seat.region.layout().epoch
    }

    /// The stream's name.
    pub fn name(&self) -> &StreamName {
        &self.name
    }

    /// The producer's pid as its header states it (for messages only).
    pub fn producer_pid(&self) -> u32 {
        self.seat
            .region
            .header()
            .producer_pid
            .load(Ordering::Relaxed)
    }

    /// What the producer says its frames come from (its source description).
    pub fn source_description(&self) -> String {
        Describe::read(self.seat.region.header()).source_text()
    }

    /// The producer's nominal frame rate (0: as fast as its source gives frames).
    pub fn nominal_fps(&self) -> f64 {
        Describe::read(self.seat.region.header()).nominal_fps_milli as f64 / 1000.0
    }

    /// Whether the producer said it never waits for any consumer (no every-frame seats).
    pub fn no_backpressure(&self) -> bool {
        Describe::read(self.seat.region.header()).flags & FLAG_NO_BACKPRESSURE != 0
    }

    /// The seq of the last frame taken (0 for none since (re)opening).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Counters since this reader opened.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// The options it was opened with.
    pub fn options(&self) -> ReaderOptions {
        self.options
    }
}

/// Which of the protocol's consumer steps a take goes through.
#[derive(Clone, Copy)]
enum Step {
    /// `protocol::look`: before any wait, and after a spin.
    Look,
    /// `protocol::after_wake`: after a semaphore wait returned.
    AfterWake,
}
