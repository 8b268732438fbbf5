//! The producer side: creating a region, publishing frames, supervising seats.

mod supervisor;

pub use supervisor::{SeatInfo, Supervisor};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::error::CreateError;
use crate::layout::{Describe, FLAG_NO_BACKPRESSURE, MAX_SLOTS, STATE_REPLACED, STATE_STOPPING};

use crate::protocol::{self, Latest, MAX_SEQ, Stamp, Wake};
use crate::region::Region;
use crate::sem::Woken;
use crate::slot::{LendShare, Lender, Published, Publisher, ReadySlot, WriteSlot};
use frame_vocab::Deadline;
use frame_vocab::clock::monotonic_ns;
use frame_vocab::format::FrameFormat;
use frame_vocab::name::StreamName;
use frame_vocab::owner::StreamOwner;

/// Default permissions of the region and queues: owner read/write only.
pub const DEFAULT_MODE: u32 = 0o600;

/// How long an every-frame seat may take nothing before the producer drops it back to
/// newest-frame delivery (`producer --stall-timeout`).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest one sleep of the every-frame wait, so the seats are re-checked (and a reclaimed
/// or departed seat noticed) even if a post is lost to garbage.
const DELIVERY_SLICE: Duration = Duration::from_millis(100);

/// Builds (creates) the region of a stream the caller owns.
#[derive(Debug)]
pub struct RegionBuilder<'a> {
    owner: &'a StreamOwner,
    format: FrameFormat,
    seats: u32,
    mode: u32,
    describe: Describe,
    stall_timeout: Option<Duration>,
}

impl<'a> RegionBuilder<'a> {
    /// A region for `format` frames, one seat, mode 0600.
    pub fn new(owner: &'a StreamOwner, format: FrameFormat) -> RegionBuilder<'a> {
        RegionBuilder {
            owner,
            format,
            seats: 1,
            mode: DEFAULT_MODE,
            describe: Describe::default(),
            stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
        }
    }

    /// How long an every-frame seat may take nothing (counted from the publish of the
    /// frame it has not taken) before it is dropped back to newest-frame delivery; `None`
    /// waits for it for as long as it lives (offline work that takes longer per frame).
    /// Default [`DEFAULT_STALL_TIMEOUT`].
    pub fn stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// What the frames come from, for `consumer info` and readers
    /// ([`Reader::source_description`](crate::Reader::source_description)); cut to 64
    /// bytes.
    pub fn source_description(mut self, text: &str) -> Self {
        self.describe.set_source(text);
        self
    }

    /// Marks the stream as one whose producer never waits for any consumer
    /// (`producer --no-backpressure`): every-frame delivery will be refused on it.
    pub fn no_backpressure(mut self, on: bool) -> Self {
        if on {
            self.describe.flags |= FLAG_NO_BACKPRESSURE;
        } else {
            self.describe.flags &= !FLAG_NO_BACKPRESSURE;
        }
        self
    }

    /// The nominal frame rate (0 for "as fast as the source gives frames"), for readers
    /// ([`Reader::nominal_fps`](crate::Reader::nominal_fps)).
    pub fn nominal_fps(mut self, fps: f64) -> Self {
        // Saturating float-to-int: NaN and negatives become 0.
        self.describe.nominal_fps_milli = (fps * 1000.0).round() as u64;
        self
    }

    /// Number of consumer seats (1..=16); the region has `seats + 2` slots.
    pub fn seats(mut self, seats: u32) -> Self {
        self.seats = seats;
        self
    }

    /// Permission bits, set with `fchmod`: 0o600 (default) or 0o660 to share with the
    /// group; `create` refuses anything else.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Retires any object left under the name (a crashed producer's) and creates a new
    /// one with the next epoch.
    pub fn create(self) -> Result<Writer, CreateError> {
        if !frame_vocab::access::MODES.contains(&self.mode) {
            return Err(CreateError::InvalidMode { mode: self.mode });
        }
        let region = create_region(
            self.owner.name(),
            self.format,
            self.seats,
            self.mode,
            0,
            &self.describe,
        )?;
        Ok(Writer {
            owner: self.owner.clone(),
            region: Arc::new(region),
            mode: self.mode,
            describe: self.describe,
            next_seq: 1,
            latest: None,
            last_written: [0; MAX_SLOTS],
            skipped: 0,
            retired: false,
            delivery: Box::new(DeliveryWait {
                stall_timeout: self.stall_timeout,
                ..DeliveryWait::default()
            }),
            lending: None,
        })
    }
}

/// Creates the region with an epoch above both `previous` (ours, already retired) and
/// whatever object is left under the name.
fn create_region(
    name: &StreamName,
    format: FrameFormat,
    seats: u32,
    mode: u32,
    previous: u64,
    describe: &Describe,
) -> Result<Region, CreateError> {
    let left = Region::retire(name)?.unwrap_or(0);
    let epoch = left.max(previous).saturating_add(1);
    let region = Region::create(name, format, seats, mode, epoch, describe)?;
    tracing::debug!(stream = %name, %format, seats, epoch, "region created");
    Ok(region)
}

/// The producer's handle on its region. Wait-free: it never waits for a consumer.
///
/// Dropping it ends the stream cleanly: state Stopping, every seat woken, name unlinked.
#[derive(Debug)]
pub struct Writer {
    owner: StreamOwner,
    region: Arc<Region>,
    mode: u32,
    describe: Describe,
    next_seq: u64,
    latest: Option<Latest>,
    /// The seq last written to each slot, for LIFO slot choice.
    last_written: [u64; MAX_SLOTS],
    skipped: u64,
    retired: bool,
    /// Boxed: its per-seat arrays would triple the writer's size.
    delivery: Box<DeliveryWait>,
    /// Set once a [`Lender`] was asked for: the current region's lending state.
    lending: Option<Arc<LendShare>>,
}

/// The writer's every-frame bookkeeping.
#[derive(Debug, Default)]
struct DeliveryWait {
    stall_timeout: Option<Duration>,
    /// When the latest frame was published, and which seats were live then (their stall
    /// counts from that publish; a seat that went live later, from when it was first seen
    /// lagging, so a newcomer is never demoted before it had a chance).
    latest_publish_ns: u64,
    live_at_publish: u32,
    first_seen_ns: [u64; 32],
    first_seen_word: [u64; 32],
    /// The seq last counted as a stall (each awaited frame counts once).
    stalled_on: u64,
    stalls: u64,
    demotions: u64,
    /// Seats demoted since the last `take_demoted`.
    demoted: u32,
}

impl Writer {
    /// A slot to fill with the next frame, or `None` when no slot is free (only garbage
    /// holds can cause that): the frame is skipped and counted, never waited for.
    pub fn slot(&mut self) -> Option<WriteSlot<'_>> {
        let lends = self.lending.as_ref().map(|share| &share.lends);
        // The slot offered for lending, if no lender took it, is as good as a fresh choice
        // (it was chosen right after a publish); otherwise every lent slot is excluded.
        let chosen = lends.and_then(protocol::reclaim_offer).or_else(|| {
            protocol::choose_slot(
                &self.region.table(),
                self.latest.map(|l| l.slot),
                &self.last_written,
                lends.map_or(0, protocol::Lends::lent),
            )
        });
        let Some(slot) = chosen.filter(|_| self.next_seq <= MAX_SEQ) else {
            self.skipped += 1;
            self.region
                .header()
                .skipped_no_slot
                .fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let ptr = self.region.slot_ptr(slot);
        let len = self.region.layout().format.frame_bytes();
        Some(WriteSlot {
            ready: ReadySlot { writer: self, slot },
            ptr,
            len,
        })
    }

    /// A handle that lends slots of this region to other threads, to be filled in place
    /// and published with [`Writer::adopt_lent`] without a copy. From now on, right after
    /// each publish, the writer sets one slot aside for lending when it can spare one: at
    /// most `slot_count − seats − 1` are lent at once (not counting the one that is
    /// `latest`), so a full set of seat holds still leaves this writer a slot. A slot set
    /// aside and not taken is the writer's own next slot. After [`Writer::replace`] ask
    /// for a new lender.
    pub fn lender(&mut self) -> Lender {
        let share = self
            .lending
            .get_or_insert_with(|| LendShare::new(&self.region))
            .clone();
        self.offer_lend();
        Lender { share }
    }

    /// The lent slot whose bytes start at `data` (`len` bytes, a whole frame), to publish
    /// in place: `None` if `data` is not a slot of this region lent by its [`Lender`], or
    /// that slot was adopted before (the caller copies instead). The pointer is only
    /// compared, never read.
    pub fn adopt_lent(&mut self, data: *const u8, len: usize) -> Option<ReadySlot<'_>> {
        let share = self.lending.as_ref()?;
        if len != self.region.layout().format.frame_bytes() || self.next_seq > MAX_SEQ {
            return None;
        }
        let slot = (0..self.region.layout().slots)
            .find(|&slot| std::ptr::eq(self.region.slot_ptr(slot).cast_const(), data))?;
        if !protocol::adopt(&share.lends, slot) {
            return None;
        }
        Some(ReadySlot { writer: self, slot })
    }

    /// Sets a slot aside for the lender, if lending and one can be spared (see
    /// [`Writer::lender`]). Runs where the next slot would be chosen: right after a publish.
    fn offer_lend(&mut self) {
        let Some(share) = &self.lending else {
            return;
        };
        let layout = self.region.layout();
        let limit = layout.slots.saturating_sub(layout.seats + 1);
        protocol::offer(
            &share.lends,
            &self.region.table(),
            self.latest.map(|l| l.slot),
            &self.last_written,
            limit,
        );
    }

    /// The stream format.
    pub fn format(&self) -> FrameFormat {
        self.region.layout().format
    }

    /// Number of consumer seats.
    pub fn seats(&self) -> u32 {
        self.region.layout().seats
    }

    /// This region's epoch (1 for a fresh name, +1 per restart or format change).
    pub fn epoch(&self) -> u64 {
        self.region.layout().epoch
    }

    /// The stream's name.
    pub fn name(&self) -> &StreamName {
        self.owner.name()
    }

    /// The owner token (for creating the stream's queues).
    pub fn owner(&self) -> &StreamOwner {
        &self.owner
    }

    /// Frames published so far.
    pub fn published(&self) -> u64 {
        self.next_seq - 1
    }

    /// Frames skipped because no slot was free.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Publishes that had to wait for an every-frame seat to take the frame before.
    pub fn stalls(&self) -> u64 {
        self.delivery.stalls
    }

    /// Every-frame seats dropped back to newest-frame delivery after a stall.
    pub fn demotions(&self) -> u64 {
        self.delivery.demotions
    }

    /// The seats demoted since the last call (bit `k` is seat `k`), to tell each of them
    /// (a hint: their delivery word is the authority).
    pub fn take_demoted(&mut self) -> u32 {
        std::mem::take(&mut self.delivery.demoted)
    }

    /// Every-frame delivery: waits until every live every-frame seat has taken the latest
    /// frame, until `until_ns` (CLOCK_MONOTONIC), demoting a seat that stalls past the
    /// stall timeout. Returns whether the next frame may be published.
    fn await_every_frame(&mut self, until_ns: u64) -> bool {
        let Some(latest) = self.latest else {
            return true; // Nothing published in this region: nobody to wait for.
        };
        if self.describe.flags & FLAG_NO_BACKPRESSURE != 0 {
            return true;
        }
        let region = self.region.clone();
        let table = region.table();
        let mut lag = protocol::laggards(&table, latest.seq);
        if lag.mask != 0 && self.delivery.stalled_on != latest.seq {
            self.delivery.stalled_on = latest.seq;
            self.delivery.stalls += 1;
        }
        while lag.mask != 0 {
            let now = monotonic_ns();
            let stall_end = self.stall_ends(&lag, now);
            if stall_end.is_some_and(|end| now >= end) {
                self.demote_stalled(&table, &lag, now, latest.seq);
                lag = protocol::laggards(&table, latest.seq);
                continue;
            }
            if now >= until_ns {
                return false;
            }
            let slice = now.saturating_add(DELIVERY_SLICE.as_nanos() as u64);
            let wake_at = until_ns.min(slice).min(stall_end.unwrap_or(u64::MAX));
            match region
                .producer_wake()
                .wait_until(Deadline::from_ns(wake_at))
            {
                Woken::Posted | Woken::TimedOut | Woken::Interrupted => {}
                // A garbage semaphore: poll the seats every millisecond instead.
                Woken::Failed(_) => std::thread::sleep(
                    Deadline::from_ns(wake_at)
                        .remaining()
                        .min(Duration::from_millis(1)),
                ),
            }
            lag = protocol::laggards_after_wake(&table, latest.seq);
        }
        true
    }

    /// When the earliest of the lagging seats' stall timeouts runs out (`None`: no stall
    /// timeout). Records when a seat that was not live at the latest publish was first
    /// seen lagging.
    fn stall_ends(&mut self, lag: &protocol::Laggards, now: u64) -> Option<u64> {
        let timeout = u64::try_from(self.delivery.stall_timeout?.as_nanos()).unwrap_or(u64::MAX);
        let d = &mut self.delivery;
        Wake::seats(lag.mask)
            .map(|seat| {
                let seat = seat as usize;
                let since = if d.live_at_publish & (1 << seat) != 0 {
                    d.latest_publish_ns
                } else {
                    if d.first_seen_word[seat] != lag.observed[seat] || d.first_seen_ns[seat] == 0 {
                        d.first_seen_word[seat] = lag.observed[seat];
                        d.first_seen_ns[seat] = now;
                    }
                    d.first_seen_ns[seat]
                };
                since.saturating_add(timeout)
            })
            .min()
    }

    /// Demotes the lagging seats whose stall timeout has run out, each by compare-and-swap
    /// on the delivery word observed.
    fn demote_stalled(
        &mut self,
        table: &crate::layout::Table<'_>,
        lag: &protocol::Laggards,
        now: u64,
        awaited: u64,
    ) {
        let Some(timeout) = self.delivery.stall_timeout else {
            return;
        };
        let timeout = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        for seat in Wake::seats(lag.mask) {
            let index = seat as usize;
            let since = if self.delivery.live_at_publish & (1 << seat) != 0 {
                self.delivery.latest_publish_ns
            } else {
                self.delivery.first_seen_ns[index]
            };
            if now < since.saturating_add(timeout) {
                continue;
            }
            if protocol::demote(table, index, lag.observed[index]) {
                self.delivery.demotions += 1;
                self.delivery.demoted |= 1 << seat;
                tracing::warn!(
                    seat,
                    seq = awaited,
                    "an every-frame seat took nothing for the stall timeout: now newest-frame"
                );
            }
        }
    }

    /// A handle for the service thread: heartbeat, seat reclaim, seat listing. It follows
    /// this region only: fetch a new one after [`Writer::replace`].
    pub fn supervisor(&self) -> Supervisor {
        Supervisor {
            region: self.region.clone(),
        }
    }

    /// Replaces the region with a new one for `format` (a `SetFormat`): the old one is
    /// marked Replaced, its seats woken and its name unlinked, then a new object with the
    /// next epoch is created under the same name; consumers reopen it. If the new format
    /// cannot be created, the old format is recreated (next epoch again) and the error
    /// returned; if even that fails the error says so and the writer only skips frames.
    pub fn replace(&mut self, format: FrameFormat) -> Result<(), ReplaceError> {
        let seats = self.seats();
        let old_format = self.format();
        let epoch = self.epoch();
        self.retire(STATE_REPLACED);
        let name = self.owner.name().clone();
        let describe = self.describe;
        let create = |format| create_region(&name, format, seats, self.mode, epoch, &describe);
        let (region, result) = match create(format) {
            Ok(region) => (region, Ok(())),
            Err(refused) => match create(old_format) {
                Ok(region) => (region, Err(ReplaceError::Refused(refused))),
                Err(lost) => return Err(ReplaceError::Lost { refused, lost }),
            },
        };
        self.region = Arc::new(region);
        if let Some(old) = self.lending.take() {
            // Its lent slots keep the old mapping alive; nothing more is lent from it.
            protocol::reclaim_offer(&old.lends);
            self.lending = Some(LendShare::new(&self.region));
        }
        self.latest = None;
        self.last_written = [0; MAX_SLOTS];
        self.next_seq = 1;
        self.retired = false;
        *self.delivery = DeliveryWait {
            stall_timeout: self.delivery.stall_timeout,
            stalls: self.delivery.stalls,
            demotions: self.delivery.demotions,
            demoted: self.delivery.demoted,
            ..DeliveryWait::default()
        };
        self.offer_lend();
        result
    }

    fn retire(&mut self, state: u32) {
        if !self.retired {
            self.retired = true;
            self.region.set_state_and_wake(state);
            self.region.unlink();
        }
    }
}

impl Publisher for Writer {
    fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn await_delivery(&mut self, until_ns: u64) -> bool {
        self.await_every_frame(until_ns)
    }

    /// Publishes the frame written into `slot` (the protocol's one publish sequence), posts
    /// every occupied seat's semaphore, and only after all the posts calls
    /// `notify(seat, &published)` for each live seat (to send it the frame's metadata), so
    /// no wake waits for a message send.
    fn publish_slot(
        &mut self,
        slot: u32,
        capture_ns: Option<u64>,
        notify: &mut dyn FnMut(u32, &Published),
    ) -> Published {
        // Every-frame seats: `latest` moves past the frame they have not taken only once
        // they take it (or stall past the timeout). The frame is already written.
        self.await_every_frame(u64::MAX);
        let header = self.region.header();
        let publish_ns = monotonic_ns();
        let published = Published {
            seq: self.next_seq,
            slot,
            capture_ns: capture_ns.unwrap_or(publish_ns),
            publish_ns,
        };
        let stamp = Stamp {
            seq: published.seq,
            capture_ns: published.capture_ns,
            publish_ns,
        };
        let wake = protocol::publish_frame(&self.region.table(), slot, stamp);
        for seat in Wake::seats(wake.occupied) {
            self.region.sem(seat).post_if_zero();
        }
        self.latest = Some(Latest {
            seq: published.seq,
            slot,
        });
        self.last_written[slot as usize] = published.seq;
        self.next_seq += 1;
        self.delivery.latest_publish_ns = publish_ns;
        self.delivery.live_at_publish = wake.live;
        // Relaxed: statistics and liveness for peers, no data hangs on them.
        header.published.store(published.seq, Ordering::Relaxed);
        header.heartbeat_ns.store(publish_ns, Ordering::Relaxed);
        for seat in Wake::seats(wake.live) {
            notify(seat, &published);
        }
        self.offer_lend();
        published
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.retire(STATE_STOPPING);
    }
}

/// Why a format change did not take.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    /// The new format could not be created; the stream goes on in its old format (as a
    /// new epoch).
    #[error("cannot switch format; kept the old one")]
    Refused(#[source] CreateError),
    /// Neither the new nor the old format could be created: the stream is down.
    #[error("cannot switch format ({refused}) nor restore the old one")]
    Lost {
        refused: CreateError,
        #[source]
        lost: CreateError,
    },
}
