//! A look at a stream's region from outside: read-only, header pages only, no lock, no seat.
//!
//! [`peek`] is what `consumer list` and `consumer info` (and the bindings' `list()`) use. It
//! opens the object `O_RDONLY`, checks its owner like every opener, maps only the header
//! pages `PROT_READ`, reads every field it reports once into a local copy and validates
//! the copy; it takes no lock (liveness is asked with `F_OFD_GETLK`, which changes
//! nothing) and no seat, so the stream it looks at cannot tell it was looked at. A
//! leftover (its producer's lock is free) or a garbage object (its layout does not
//! validate) is reported as such: [`Peeked::Unusable`] or [`Health::Leftover`], never a
//! panic or an out-of-bounds read.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::time::Duration;

use memmap2::MmapOptions;
use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::error::OpenError;
use crate::layout::{
    Describe, FLAG_NO_BACKPRESSURE, HEADER_PAGES_BYTES, Header, LAYOUT_VERSION, Layout, MAGIC,
    STATE_LIVE, STATE_REPLACED, STATE_STOPPING,
};
use crate::liveness;
use crate::protocol::{self, Latest, NO_SLOT, SeatState, SeatWord};
use crate::reader::HEARTBEAT_TIMEOUT;
use crate::region::{ObjectError, header_of, open_object};
use frame_vocab::clock::monotonic_ns;
use frame_vocab::{FrameFormat, StreamName};

/// Why a stream could not be looked at at all (an object that can be opened but holds
/// garbage is not an error: it is [`Peeked::Unusable`]).
#[derive(Debug, thiserror::Error)]
pub enum PeekError {
    /// No object under the name.
    #[error("no stream {name} (no producer has created it)")]
    NoStream {
        /// The stream.
        name: String,
    },
    /// The object exists but may not be read by this user.
    #[error("permission denied reading {object} (it belongs to another user)")]
    PermissionDenied {
        /// The object.
        object: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The object belongs to someone it may not (a squatter), or is not shared with us.
    #[error(transparent)]
    Refused(#[from] frame_vocab::access::Refused),
    /// A system call failed.
    #[error("{op} {object} failed")]
    Sys {
        /// The call.
        op: &'static str,
        /// The object.
        object: String,
        /// Its errno.
        #[source]
        source: Errno,
    },
}

/// What the producer's state word says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProducerState {
    /// Publishing (or paused: the heartbeat says which is alive).
    Live,
    /// Exiting cleanly.
    Stopping,
    /// A newer region (epoch + 1) replaces this one.
    Replaced,
    /// A value no producer writes.
    Unknown(u32),
}

impl ProducerState {
    fn from_word(word: u32) -> ProducerState {
        match word {
            STATE_LIVE => ProducerState::Live,
            STATE_STOPPING => ProducerState::Stopping,
            STATE_REPLACED => ProducerState::Replaced,
            other => ProducerState::Unknown(other),
        }
    }
}

/// The stream's condition as a person would name it, from the lock, the state and the
/// heartbeat (in that order of authority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// The producer lock is held, the state is Live and the heartbeat is fresh.
    Live,
    /// The producer lock is held but the heartbeat is older than [`HEARTBEAT_TIMEOUT`]
    /// (a stopped or hung producer).
    Stalled,
    /// The producer is exiting or replacing the region.
    Stopping,
    /// The region was replaced by a newer one (a format change in progress).
    Replaced,
    /// Nobody holds the producer lock: a killed producer's leftover. The next producer
    /// of the name replaces it.
    Leftover,
    /// The state word holds garbage.
    Garbage,
}

impl Health {
    /// One lower-case word, for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Live => "live",
            Health::Stalled => "stalled",
            Health::Stopping => "stopping",
            Health::Replaced => "replaced",
            Health::Leftover => "leftover",
            Health::Garbage => "garbage",
        }
    }
}

/// What a seat is doing, as its word says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatStatus {
    /// Nobody sits here.
    Free,
    /// A consumer is setting up.
    Claiming,
    /// A consumer reads frames.
    Live,
    /// The producer is clearing the seat of a dead consumer.
    Reclaiming,
    /// A state no version writes.
    Unknown(u8),
}

impl SeatStatus {
    /// One lower-case word, for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Free => "free",
            SeatStatus::Claiming => "claiming",
            SeatStatus::Live => "live",
            SeatStatus::Reclaiming => "reclaiming",
            SeatStatus::Unknown(_) => "garbage",
        }
    }
}

/// How a seat asked to be served: its delivery word read for the seat's own generation
/// (`protocol::DeliveryWord`; a word of another generation, or garbage, reads as newest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// The newest complete frame (the default).
    Newest,
    /// Every frame (the producer waits for this seat, within its stall timeout).
    EveryFrame,
    /// Asked for every frame; the producer dropped it back to newest after a stall.
    Demoted,
}

impl DeliveryMode {
    fn from_word(word: u64, generation: u32) -> DeliveryMode {
        match protocol::DeliveryWord(word).mode_for(generation) {
            protocol::Mode::Newest => DeliveryMode::Newest,
            protocol::Mode::EveryFrame => DeliveryMode::EveryFrame,
            protocol::Mode::Demoted => DeliveryMode::Demoted,
        }
    }

    /// One word, for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Newest => "newest",
            DeliveryMode::EveryFrame => "every-frame",
            DeliveryMode::Demoted => "demoted",
        }
    }
}

/// What a seat holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// No slot.
    Nothing,
    /// Slot `n` (a valid index).
    Slot(u32),
    /// A value out of range (garbage).
    Garbage(u32),
}

/// One seat, as read once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatView {
    /// The seat's index.
    pub seat: u32,
    /// Its state.
    pub status: SeatStatus,
    /// The pid its word names (for messages only; 0 when free).
    pub pid: u32,
    /// The claim generation.
    pub generation: u32,
    /// Whether a process holds the seat's lock (its consumer is alive).
    pub locked: bool,
    /// What it holds.
    pub hold: Hold,
    /// How it is served.
    pub delivery: DeliveryMode,
    /// The seq of the last frame it took, where its delivery mode records it (0: unknown).
    pub taken: u64,
}

/// A frame slot's metadata, as read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// The seq of the frame in it (0: never written).
    pub seq: u64,
    /// When that frame was captured (CLOCK_MONOTONIC ns).
    pub capture_ns: u64,
    /// When it was published (CLOCK_MONOTONIC ns).
    pub publish_ns: u64,
}

/// A region whose layout validated, read once. Runtime values are reported as read;
/// where they are garbage they say so (a garbage `latest` is `None`, a garbage hold is
/// [`Hold::Garbage`]), and nothing here was used to index memory without a check.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionView {
    /// The frame format.
    pub format: FrameFormat,
    /// Consumer seats.
    pub seats: u32,
    /// Frame slots (`seats + 2`).
    pub slots: u32,
    /// The region's epoch (each restart or format change adds one).
    pub epoch: u64,
    /// The producer's pid as the header states it (informative only).
    pub producer_pid: u32,
    /// Whether the producer lock is held (its holder is alive).
    pub producer_alive: bool,
    /// The state word.
    pub state: ProducerState,
    /// How long ago the producer stamped its heartbeat (`None`: a stamp in the future).
    pub heartbeat_age: Option<Duration>,
    /// Frames published so far.
    pub published: u64,
    /// Frames skipped because no slot was free (garbage holds only).
    pub skipped_no_slot: u64,
    /// The seq `latest` names (`None`: nothing published yet, or garbage).
    pub latest_seq: Option<u64>,
    /// The frame rate measured from the slots' own publish timestamps (`None`: too few
    /// frames yet, or none lately).
    pub measured_fps: Option<f64>,
    /// What the producer says its frames come from.
    pub source: String,
    /// Its nominal frame rate (0: as fast as the source gives frames).
    pub nominal_fps: f64,
    /// `producer --no-backpressure`.
    pub no_backpressure: bool,
    /// Layout version, header size, total object size, first slot's offset, slot stride
    /// and one frame's bytes: the layout fields.
    pub layout_version: u32,
    /// Bytes of the `repr(C)` header.
    pub header_size: u32,
    /// Bytes of the whole object.
    pub total_size: u64,
    /// Offset of slot 0.
    pub slot_offset: u64,
    /// Distance between slots.
    pub slot_stride: u64,
    /// Each seat.
    pub seat_views: Vec<SeatView>,
    /// Each slot.
    pub slot_views: Vec<SlotView>,
}

impl RegionView {
    /// The stream's condition.
    pub fn health(&self) -> Health {
        if !self.producer_alive {
            return Health::Leftover;
        }
        match self.state {
            ProducerState::Stopping => Health::Stopping,
            ProducerState::Replaced => Health::Replaced,
            ProducerState::Unknown(_) => Health::Garbage,
            ProducerState::Live => match self.heartbeat_age {
                Some(age) if age <= HEARTBEAT_TIMEOUT => Health::Live,
                _ => Health::Stalled,
            },
        }
    }

    /// Seats that are not free.
    pub fn seats_used(&self) -> u32 {
        self.seat_views
            .iter()
            .filter(|seat| seat.status != SeatStatus::Free)
            .count() as u32
    }
}

/// What [`peek`] found under a name.
#[derive(Clone, Debug, PartialEq)]
pub enum Peeked {
    /// A region whose layout validated.
    Region(Box<RegionView>),
    /// An object that is not a usable region of this build: garbage, truncated, not yet
    /// initialised, another layout version. `reason` says which (as `Reader::open` would).
    Unusable {
        /// Why.
        reason: String,
        /// The object's size in bytes.
        size: u64,
        /// Whether someone holds byte 0's lock (a producer still setting up, or one of
        /// another build): `false` means a leftover nobody will clean but the next
        /// producer.
        producer_alive: bool,
    },
}

/// Looks at stream `name`'s region without touching it (see the module doc).
pub fn peek(name: &StreamName) -> Result<Peeked, PeekError> {
    let object = name.shm_name();
    let sys = |op: &'static str| {
        let object = object.clone();
        move |source| match source {
            Errno::EACCES | Errno::EPERM => PeekError::PermissionDenied { object, source },
            _ => PeekError::Sys { op, object, source },
        }
    };
    let (fd, stat) = open_object(name, &object, OFlag::O_RDONLY).map_err(|e| match e {
        ObjectError::Missing => PeekError::NoStream {
            name: name.to_string(),
        },
        ObjectError::Sys { op, source } => sys(op)(source),
        ObjectError::Refused(refused) => refused.into(),
    })?;
    let size = stat.st_size.max(0) as u64;
    // F_OFD_GETLK needs no write access and changes nothing.
    let producer_alive = liveness::is_held(&fd, liveness::PRODUCER_BYTE).map_err(sys("fcntl"))?;
    let unusable = |reason: String| Peeked::Unusable {
        reason,
        size,
        producer_alive,
    };
    if size < HEADER_PAGES_BYTES as u64 {
        // Mapping past the object's end would fault on access: never map it.
        return Ok(unusable(
            OpenError::Truncated {
                object,
                size,
                need: HEADER_PAGES_BYTES as u64,
            }
            .to_string(),
        ));
    }
    let file = File::from(fd);
    let map = MmapOptions::new()
        .len(HEADER_PAGES_BYTES)
        .map_raw_read_only(&file)
        .map_err(|e| sys("mmap")(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    let header = header_of(&map);
    // SYNC POINT: magic (Acquire side, as in `Region::open`).
    match header.magic.load(Ordering::Acquire) {
        MAGIC => {}
        0 => return Ok(unusable("not initialised yet (no magic)".to_owned())),
        found => return Ok(unusable(OpenError::BadMagic { found }.to_string())),
    }
    let layout = match Layout::read(header, size) {
        Ok(layout) => layout,
        Err(e) => return Ok(unusable(e.to_string())),
    };
    Ok(Peeked::Region(Box::new(read_view(
        header,
        &layout,
        &file,
        producer_alive,
    ))))
}

/// Copies the runtime fields out once and validates each copy.
fn read_view(header: &Header, layout: &Layout, file: &File, producer_alive: bool) -> RegionView {
    let r = Ordering::Relaxed; // Informative reads: nothing here is used to index memory.
    let now = monotonic_ns();
    let heartbeat = header.heartbeat_ns.load(r);
    let describe = Describe::read(header);
    let slot_views: Vec<SlotView> = header
        .slots
        .iter()
        .take(layout.slots as usize)
        .map(|slot| SlotView {
            seq: slot.seq.load(r),
            capture_ns: slot.capture_ns.load(r),
            publish_ns: slot.publish_ns.load(r),
        })
        .collect();
    let latest_seq = Latest::unpack(header.latest.0.load(Ordering::Acquire))
        .filter(|latest| latest.slot < layout.slots)
        .map(|latest| latest.seq);
    let seat_views = header
        .seats
        .iter()
        .take(layout.seats as usize)
        .enumerate()
        .map(|(seat, cell)| {
            let word = SeatWord(cell.word.load(r));
            let hold = match cell.hold.load(r) {
                NO_SLOT => Hold::Nothing,
                slot if slot < layout.slots => Hold::Slot(slot),
                garbage => Hold::Garbage(garbage),
            };
            SeatView {
                seat: seat as u32,
                status: match word.state() {
                    SeatState::Free => SeatStatus::Free,
                    SeatState::Claiming => SeatStatus::Claiming,
                    SeatState::Live => SeatStatus::Live,
                    SeatState::Reclaiming => SeatStatus::Reclaiming,
                    SeatState::Unknown(code) => SeatStatus::Unknown(code),
                },
                pid: word.pid(),
                generation: word.generation(),
                // An error (never expected) reads as "alive", as the reclaimer does.
                locked: liveness::is_held(file, liveness::seat_byte(seat as u32)).unwrap_or(true),
                hold,
                delivery: DeliveryMode::from_word(cell.delivery.load(r), word.generation()),
                taken: cell.taken.load(r),
            }
        })
        .collect();
    RegionView {
        format: layout.format,
        seats: layout.seats,
        slots: layout.slots,
        epoch: layout.epoch,
        producer_pid: header.producer_pid.load(r),
        producer_alive,
        state: ProducerState::from_word(header.state.load(Ordering::Acquire)),
        heartbeat_age: now.checked_sub(heartbeat).map(Duration::from_nanos),
        published: header.published.load(r),
        skipped_no_slot: header.skipped_no_slot.load(r),
        latest_seq,
        measured_fps: measured_fps(&slot_views, now),
        source: describe.source_text(),
        nominal_fps: describe.nominal_fps_milli as f64 / 1000.0,
        no_backpressure: describe.flags & FLAG_NO_BACKPRESSURE != 0,
        layout_version: LAYOUT_VERSION,
        header_size: std::mem::size_of::<Header>() as u32,
        total_size: layout.total_size as u64,
        slot_offset: layout.slot_offset as u64,
        slot_stride: layout.slot_stride as u64,
        seat_views,
        slot_views,
    }
}

/// The frame rate between the two newest frames the slots hold, from their own publish
/// timestamps: `(seq difference) / (time difference)`. `None` with fewer than two frames,
/// with timestamps that do not increase with the seq (garbage), or when the newest frame is
/// older than the heartbeat timeout and ten frame periods (a paused or stalled stream has
/// no current rate).
pub fn measured_fps(slots: &[SlotView], now_ns: u64) -> Option<f64> {
    let mut frames: Vec<&SlotView> = slots
        .iter()
        .filter(|s| s.seq != 0 && s.publish_ns != 0)
        .collect();
    frames.sort_by_key(|s| std::cmp::Reverse(s.seq));
    let [newest, older, ..] = frames.as_slice() else {
        return None;
    };
    let frames_apart = newest.seq.checked_sub(older.seq).filter(|&d| d > 0)?;
    let ns_apart = newest
        .publish_ns
        .checked_sub(older.publish_ns)
        .filter(|&d| d > 0)?;
    let period_ns = ns_apart / frames_apart;
    let age = now_ns.checked_sub(newest.publish_ns)?;
    let stale_after = (HEARTBEAT_TIMEOUT.as_nanos() as u64).max(period_ns.saturating_mul(10));
    if age > stale_after {
        return None;
    }
    Some(frames_apart as f64 * 1e9 / ns_apart as f64)
}

/// The caller's own streams that have an object in /dev/shm (`framepipe.UID.NAME` with the
/// caller's uid), sorted by name. Names that are not valid stream names are skipped.
pub fn own_streams() -> std::io::Result<Vec<StreamName>> {
    let uid = nix::unistd::geteuid().as_raw();
    let mut names: Vec<StreamName> = std::fs::read_dir("/dev/shm")?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| StreamName::from_shm_file(entry.file_name().to_str()?))
        .filter(|name| name.owner() == uid)
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(seq: u64, publish_ns: u64) -> SlotView {
        SlotView {
            seq,
            capture_ns: publish_ns,
            publish_ns,
        }
    }

    #[test]
    fn fps_from_the_two_newest_frames() {
        let ms = 1_000_000;
        let slots = [slot(10, 100 * ms), slot(12, 140 * ms), slot(3, 5 * ms)];
        let fps = measured_fps(&slots, 150 * ms).unwrap();
        assert!((fps - 50.0).abs() < 1e-9, "{fps}");
    }

    #[test]
    fn fps_is_none_for_too_few_stale_or_garbage_frames() {
        let ms = 1_000_000;
        assert_eq!(measured_fps(&[slot(1, ms), slot(0, 0)], 2 * ms), None);
        // Paused for 5 s.
        assert_eq!(
            measured_fps(&[slot(1, ms), slot(2, 2 * ms)], 5_000 * ms),
            None
        );
        // Timestamps going back with the seq.
        assert_eq!(
            measured_fps(&[slot(1, 9 * ms), slot(2, 2 * ms)], 10 * ms),
            None
        );
        // A clock in the future.
        assert_eq!(measured_fps(&[slot(1, ms), slot(2, 9 * ms)], 5 * ms), None);
    }
}
