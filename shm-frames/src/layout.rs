//! The region's header: a fixed `repr(C)` layout, and its validation.
//!
//! The object is `[header pages][slot 0][slot 1]...`, each slot starting page-aligned.
//! Every header field is an atomic, because another process may write any of them at any
//! time (bugs included); [`Layout::read`] copies the write-once fields out once and checks
//! the copy, and only the copy is used afterwards.
//!
//! Besides its fields, the object's first bytes carry OFD locks (`liveness.rs`), which are
//! byte ranges of the file, not data: byte 0 the producer's, byte `1 + seat` each seat's,
//! byte `1 + MAX_SEATS + k` (17 to 20) reply queue `.c<k>`'s `consumer ctl`. No layout
//! field changes for them.

use std::cell::UnsafeCell;
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::error::OpenError;
use crate::protocol::SlotTable;
use frame_vocab::{FrameFormat, PixelFormat};

/// `"FRAMEPIP"`: the first 8 bytes of every region, stored last at creation.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"FRAMEPIP");

/// Bumped on any change to [`Header`]'s layout or the protocol. Version 2 reserves what
/// every-frame delivery and the control commands need (per seat `taken` and `delivery`,
/// the producer's wake semaphore, the flags, the source description, the nominal rate).
pub const LAYOUT_VERSION: u32 = 2;

/// Bytes of the header's source description (UTF-8, NUL-padded, cut at a char boundary).
pub const SOURCE_BYTES: usize = 64;

/// Header flag: the producer refuses every-frame seats (`producer --no-backpressure`).
pub(crate) const FLAG_NO_BACKPRESSURE: u32 = 1;

/// Written in native byte order; reads back differently on a foreign-endian peer.
const ENDIAN_TAG: u32 = 0x0102_0304;

/// At most this many consumer seats per stream.
pub const MAX_SEATS: usize = 16;

/// At most this many frame slots (`seats + 2`).
pub(crate) const MAX_SLOTS: usize = MAX_SEATS + 2;

/// The page size the layout is aligned to (slots start on this boundary).
pub(crate) const PAGE: usize = 4096;

pub(crate) use crate::protocol::{STATE_LIVE, STATE_REPLACED, STATE_STOPPING};

/// A value aligned to its own cache line, so the producer and each consumer do not
/// false-share.
#[repr(C, align(64))]
pub(crate) struct CacheLine<T>(pub T);

/// Timestamps and sequence number of the frame in one slot.
#[repr(C)]
pub(crate) struct SlotMeta {
    pub seq: AtomicU64,
    pub capture_ns: AtomicU64,
    pub publish_ns: AtomicU64,
    _reserved: AtomicU64,
}

/// One consumer seat: its word, its hold, its delivery words and its wake-up semaphore.
#[repr(C, align(64))]
pub(crate) struct Seat {
    /// {state, generation, pid}: see `protocol::SeatWord`.
    pub word: AtomicU64,
    /// The seq of the last frame this seat took (every-frame delivery; 0 until then).
    pub taken: AtomicU64,
    /// The slot the seat reads, or `protocol::NO_SLOT`.
    pub hold: AtomicU32,
    _pad0: AtomicU32,
    /// {generation, mode}: how this seat asked to be served (`protocol::DeliveryWord`: 0 =
    /// newest, 1 = every frame, 2 = demoted to newest by the producer).
    pub delivery: AtomicU64,
    _pad1: [u8; 32],
    /// The process-shared semaphore that wakes this seat (`sem_init(pshared = 1)`).
    pub sem: CacheLine<UnsafeCell<libc::sem_t>>,
}

/// The header at offset 0 of every region.
#[repr(C)]
pub(crate) struct Header {
    // Layout fields: written once by the creator, before `magic`.
    pub magic: AtomicU64,
    pub layout_version: AtomicU32,
    pub header_size: AtomicU32,
    pub endian: AtomicU32,
    pub pointer_width: AtomicU32,
    pub total_size: AtomicU64,
    pub slot_count: AtomicU32,
    pub seat_count: AtomicU32,
    pub width: AtomicU32,
    pub height: AtomicU32,
    pub stride: AtomicU32,
    pub pixel_format: AtomicU32,
    pub frame_bytes: AtomicU64,
    pub slot_offset: AtomicU64,
    pub slot_stride: AtomicU64,
    // Producer identity, written once before `magic` (not validated: informative only).
    pub epoch: AtomicU64,
    pub producer_pid: AtomicU32,
    /// `FLAG_*` bits.
    pub flags: AtomicU32,
    /// The nominal frame rate in millihertz (0: as fast as the source gives frames).
    pub nominal_fps_milli: AtomicU64,
    // Runtime fields.
    pub state: AtomicU32,
    _pad1: AtomicU32,
    pub heartbeat_ns: AtomicU64,
    /// Frames published so far (statistics for peers).
    pub published: AtomicU64,
    /// Frames the producer skipped because no slot was free (garbage holds only).
    pub skipped_no_slot: AtomicU64,
    /// What the frames come from (`Writer`'s source description), written once.
    pub source: [AtomicU8; SOURCE_BYTES],
    pub latest: CacheLine<AtomicU64>,
    /// A timestamp word for benchmarks that measure the bare primitives beside the slot
    /// protocol (see `Supervisor::probe`); on its own cache line like `latest`.
    pub probe: CacheLine<AtomicU64>,
    /// The producer's own wake-up semaphore (every-frame delivery: a seat that took a frame
    /// posts it). Initialised with the others.
    pub producer_wake: CacheLine<UnsafeCell<libc::sem_t>>,
    pub slots: [SlotMeta; MAX_SLOTS],
    pub seats: [Seat; MAX_SEATS],
}

// The layout is part of the contract between processes: pin it at compile time. These
// hold on every 64-bit glibc target (sem_t is 32 bytes there).
const _: () = {
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, layout_version) == 8);
    assert!(offset_of!(Header, total_size) == 24);
    assert!(offset_of!(Header, slot_count) == 32);
    assert!(offset_of!(Header, width) == 40);
    assert!(offset_of!(Header, frame_bytes) == 56);
    assert!(offset_of!(Header, slot_offset) == 64);
    assert!(offset_of!(Header, epoch) == 80);
    assert!(offset_of!(Header, producer_pid) == 88);
    assert!(offset_of!(Header, flags) == 92);
    assert!(offset_of!(Header, nominal_fps_milli) == 96);
    assert!(offset_of!(Header, state) == 104);
    assert!(offset_of!(Header, heartbeat_ns) == 112);
    assert!(offset_of!(Header, published) == 120);
    assert!(offset_of!(Header, skipped_no_slot) == 128);
    assert!(offset_of!(Header, source) == 136);
    assert!(offset_of!(Header, latest) == 256);
    assert!(offset_of!(Header, probe) == 320);
    assert!(offset_of!(Header, producer_wake) == 384);
    assert!(offset_of!(Header, slots) == 448);
    assert!(size_of::<SlotMeta>() == 32);
    assert!(offset_of!(Header, seats) == 448 + 32 * MAX_SLOTS);
    assert!(size_of::<libc::sem_t>() <= 64);
    assert!(offset_of!(Seat, taken) == 8);
    assert!(offset_of!(Seat, hold) == 16);
    assert!(offset_of!(Seat, delivery) == 24);
    assert!(offset_of!(Seat, sem) == 64);
    assert!(size_of::<Seat>() == 128);
    assert!(size_of::<Header>() == 448 + 32 * MAX_SLOTS + 128 * MAX_SEATS);
    assert!(size_of::<Header>() <= PAGE);
    assert!(
        MAX_SLOTS <= 64,
        "protocol::choose_slot keeps a u64 mask of slots"
    );
};

/// Bytes the header occupies in the object: the header rounded up to whole pages.
pub(crate) const HEADER_PAGES_BYTES: usize = round_up(size_of::<Header>(), PAGE);

pub(crate) const fn round_up(value: usize, to: usize) -> usize {
    value.div_ceil(to) * to
}

/// What the producer says about its stream, written once into the header beside the
/// layout (informative: readers never trust it for sizes or indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Describe {
    /// The source description, UTF-8, NUL-padded.
    pub source: [u8; SOURCE_BYTES],
    /// The nominal frame rate in millihertz (0: as fast as the source gives frames).
    pub nominal_fps_milli: u64,
    /// `FLAG_*` bits.
    pub flags: u32,
}

impl Default for Describe {
    fn default() -> Describe {
        Describe {
            source: [0; SOURCE_BYTES],
            nominal_fps_milli: 0,
            flags: 0,
        }
    }
}

impl Describe {
    /// Sets the source description, cut at a char boundary to fit.
    pub(crate) fn set_source(&mut self, text: &str) {
        let mut end = text.len().min(SOURCE_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.source = [0; SOURCE_BYTES];
        self.source[..end].copy_from_slice(&text.as_bytes()[..end]);
    }

    /// Writes it into a fresh header (before `magic`, which publishes it).
    pub(crate) fn write(&self, header: &Header) {
        let r = Ordering::Relaxed; // Published by the Release store of `magic`.
        for (cell, byte) in header.source.iter().zip(self.source) {
            cell.store(byte, r);
        }
        header.nominal_fps_milli.store(self.nominal_fps_milli, r);
        header.flags.store(self.flags, r);
    }

    /// Reads a copy out of a header whose magic was seen (with Acquire).
    pub(crate) fn read(header: &Header) -> Describe {
        let r = Ordering::Relaxed; // Ordered by the caller's Acquire load of `magic`.
        Describe {
            source: std::array::from_fn(|i| header.source[i].load(r)),
            nominal_fps_milli: header.nominal_fps_milli.load(r),
            flags: header.flags.load(r),
        }
    }

    /// The source description as text (garbage bytes become U+FFFD, never an error).
    pub(crate) fn source_text(&self) -> String {
        let end = self
            .source
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(SOURCE_BYTES);
        String::from_utf8_lossy(&self.source[..end]).into_owned()
    }
}

/// The validated copy of a region's write-once fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub format: FrameFormat,
    pub seats: u32,
    pub slots: u32,
    pub slot_offset: usize,
    pub slot_stride: usize,
    pub total_size: usize,
    pub epoch: u64,
}

impl Layout {
    /// The layout of a new region for `format` with `seats` consumer seats.
    pub(crate) fn new(format: FrameFormat, seats: u32, epoch: u64) -> Option<Layout> {
        if seats == 0 || seats as usize > MAX_SEATS {
            return None;
        }
        let slots = seats + 2;
        let slot_stride = format.frame_bytes().checked_next_multiple_of(PAGE)?;
        let total_size = slot_stride
            .checked_mul(slots as usize)?
            .checked_add(HEADER_PAGES_BYTES)?;
        // An mmap length and an off_t must both hold it.
        i64::try_from(total_size).ok()?;
        Some(Layout {
            format,
            seats,
            slots,
            slot_offset: HEADER_PAGES_BYTES,
            slot_stride,
            total_size,
            epoch,
        })
    }

    /// Byte offset of slot `slot` in the object (`slot < slots`).
    pub(crate) fn slot_range(&self, slot: u32) -> std::ops::Range<usize> {
        let start = self.slot_offset + slot as usize * self.slot_stride;
        start..start + self.format.frame_bytes()
    }

    /// Writes the write-once fields (all but `magic` and `layout_version`, which the creator
    /// stores last) into a fresh header.
    pub(crate) fn write(&self, header: &Header) {
        let f = &self.format;
        let r = Ordering::Relaxed; // Published by the Release store of `magic`.
        header.header_size.store(size_of::<Header>() as u32, r);
        header.endian.store(ENDIAN_TAG, r);
        header.pointer_width.store(usize::BITS, r);
        header.total_size.store(self.total_size as u64, r);
        header.slot_count.store(self.slots, r);
        header.seat_count.store(self.seats, r);
        header.width.store(f.width(), r);
        header.height.store(f.height(), r);
        header.stride.store(f.stride(), r);
        header.pixel_format.store(f.pixel().code(), r);
        header.frame_bytes.store(f.frame_bytes() as u64, r);
        header.slot_offset.store(self.slot_offset as u64, r);
        header.slot_stride.store(self.slot_stride as u64, r);
        header.epoch.store(self.epoch, r);
    }

    /// Reads and validates the write-once fields of a header whose magic was seen (with
    /// Acquire), against the object's real size `file_size`.
    pub(crate) fn read(header: &Header, file_size: u64) -> Result<Layout, OpenError> {
        let r = Ordering::Relaxed; // Ordered by the caller's Acquire load of `magic`.
        let version = header.layout_version.load(r);
        if version != LAYOUT_VERSION {
            return Err(OpenError::VersionMismatch {
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        let endian = header.endian.load(r);
        let pointer_width = header.pointer_width.load(r);
        if endian != ENDIAN_TAG || pointer_width != usize::BITS {
            return Err(OpenError::ForeignLayout {
                endian,
                pointer_width,
            });
        }
        let header_size = header.header_size.load(r);
        if header_size as usize != size_of::<Header>() {
            return Err(OpenError::HeaderSize {
                found: header_size,
                expected: size_of::<Header>() as u32,
            });
        }
        let bad = |what: &'static str, value: u64| OpenError::BadLayout { field: what, value };
        let total_size = header.total_size.load(r);
        if total_size != file_size {
            return Err(OpenError::SizeMismatch {
                header: total_size,
                actual: file_size,
            });
        }
        let seats = header.seat_count.load(r);
        if seats == 0 || seats as usize > MAX_SEATS {
            return Err(bad("seat_count", seats.into()));
        }
        let slots = header.slot_count.load(r);
        if Some(slots) != seats.checked_add(2) {
            return Err(bad("slot_count", slots.into()));
        }
        let pixel_code = header.pixel_format.load(r);
        let pixel =
            PixelFormat::from_code(pixel_code).ok_or(bad("pixel_format", pixel_code.into()))?;
        let format = FrameFormat::new(header.width.load(r), header.height.load(r), pixel)
            .map_err(OpenError::Format)?;
        let stride = header.stride.load(r);
        if stride != format.stride() {
            return Err(bad("stride", stride.into()));
        }
        let frame_bytes = header.frame_bytes.load(r);
        if frame_bytes != format.frame_bytes() as u64 {
            return Err(bad("frame_bytes", frame_bytes));
        }
        let expected = Layout::new(format, seats, header.epoch.load(r))
            .ok_or(bad("total_size", total_size))?;
        let slot_offset = header.slot_offset.load(r);
        if slot_offset != expected.slot_offset as u64 {
            return Err(bad("slot_offset", slot_offset));
        }
        let slot_stride = header.slot_stride.load(r);
        if slot_stride != expected.slot_stride as u64 {
            return Err(bad("slot_stride", slot_stride));
        }
        if total_size != expected.total_size as u64 {
            return Err(bad("total_size", total_size));
        }
        Ok(expected)
    }
}

/// The header seen through the slot protocol's eyes, bounded by the validated layout (not
/// by the header's own, possibly garbage, counts).
pub(crate) struct Table<'a> {
    pub header: &'a Header,
    pub layout: &'a Layout,
}

impl SlotTable for Table<'_> {
    fn slot_count(&self) -> usize {
        self.layout.slots as usize
    }

    fn seat_count(&self) -> usize {
        self.layout.seats as usize
    }

    fn latest(&self) -> &AtomicU64 {
        &self.header.latest.0
    }

    fn seat_word(&self, seat: usize) -> &AtomicU64 {
        &self.header.seats[seat].word
    }

    fn hold(&self, seat: usize) -> &AtomicU32 {
        &self.header.seats[seat].hold
    }

    fn state(&self) -> &AtomicU32 {
        &self.header.state
    }

    fn slot_meta(&self, slot: usize) -> [&AtomicU64; 3] {
        let meta = &self.header.slots[slot];
        [&meta.seq, &meta.capture_ns, &meta.publish_ns]
    }

    fn taken(&self, seat: usize) -> &AtomicU64 {
        &self.header.seats[seat].taken
    }

    fn delivery(&self, seat: usize) -> &AtomicU64 {
        &self.header.seats[seat].delivery
    }
}

/// Where the header's fields are, for tests that corrupt a region on purpose (the layout
/// is a cross-process contract, so these are stable for a given [`LAYOUT_VERSION`]).
#[doc(hidden)]
pub mod offsets {
    use super::{Header, Seat, SlotMeta};
    use std::mem::{offset_of, size_of};

    /// (name, byte offset, width in bytes) of every write-once layout field.
    pub const LAYOUT_FIELDS: &[(&str, usize, usize)] = &[
        ("magic", offset_of!(Header, magic), 8),
        ("layout_version", offset_of!(Header, layout_version), 4),
        ("header_size", offset_of!(Header, header_size), 4),
        ("endian", offset_of!(Header, endian), 4),
        ("pointer_width", offset_of!(Header, pointer_width), 4),
        ("total_size", offset_of!(Header, total_size), 8),
        ("slot_count", offset_of!(Header, slot_count), 4),
        ("seat_count", offset_of!(Header, seat_count), 4),
        ("width", offset_of!(Header, width), 4),
        ("height", offset_of!(Header, height), 4),
        ("stride", offset_of!(Header, stride), 4),
        ("pixel_format", offset_of!(Header, pixel_format), 4),
        ("frame_bytes", offset_of!(Header, frame_bytes), 8),
        ("slot_offset", offset_of!(Header, slot_offset), 8),
        ("slot_stride", offset_of!(Header, slot_stride), 8),
    ];
    /// The producer state word (u32).
    pub const STATE: usize = offset_of!(Header, state);
    /// The heartbeat (u64 ns).
    pub const HEARTBEAT: usize = offset_of!(Header, heartbeat_ns);
    /// The `latest` word (u64: seq << 8 | slot).
    pub const LATEST: usize = offset_of!(Header, latest);
    /// Slot `slot`'s seq (u64).
    pub const fn slot_seq(slot: usize) -> usize {
        offset_of!(Header, slots) + slot * size_of::<SlotMeta>() + offset_of!(SlotMeta, seq)
    }
    /// Seat `seat`'s word (u64: state << 56 | generation << 32 | pid).
    pub const fn seat_word(seat: usize) -> usize {
        offset_of!(Header, seats) + seat * size_of::<Seat>() + offset_of!(Seat, word)
    }
    /// Seat `seat`'s hold (u32).
    pub const fn seat_hold(seat: usize) -> usize {
        offset_of!(Header, seats) + seat * size_of::<Seat>() + offset_of!(Seat, hold)
    }
    /// Seat `seat`'s semaphore (sem_t).
    pub const fn seat_sem(seat: usize) -> usize {
        offset_of!(Header, seats) + seat * size_of::<Seat>() + offset_of!(Seat, sem)
    }
    /// Seat `seat`'s `taken` seq (u64; every-frame delivery).
    pub const fn seat_taken(seat: usize) -> usize {
        offset_of!(Header, seats) + seat * size_of::<Seat>() + offset_of!(Seat, taken)
    }
    /// Seat `seat`'s delivery word (u64; every-frame delivery).
    pub const fn seat_delivery(seat: usize) -> usize {
        offset_of!(Header, seats) + seat * size_of::<Seat>() + offset_of!(Seat, delivery)
    }
    /// The producer's wake semaphore (sem_t).
    pub const PRODUCER_WAKE: usize = offset_of!(Header, producer_wake);
    /// Frames published (u64) and frames skipped for want of a slot (u64).
    pub const PUBLISHED: usize = offset_of!(Header, published);
    pub const SKIPPED_NO_SLOT: usize = offset_of!(Header, skipped_no_slot);
}
