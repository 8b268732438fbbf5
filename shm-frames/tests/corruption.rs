//! Garbage in the region: every layout field, runtime word and semaphore a buggy peer may
//! overwrite must give a typed error (or be survived), never a panic, a hang or an
//! out-of-bounds read.

use std::time::Duration;

use frame_vocab::{FrameFormat, PixelFormat, StreamOwner};
use proptest::prelude::*;
use shm_frames::testing::{HANG, RawRegion, TestStream, fill_frame};
use shm_frames::{
    Corrupt, OpenError, Reader, ReaderOptions, RegionBuilder, WaitError, WaitStrategy, Writer,
    offsets,
};

fn format() -> FrameFormat {
    FrameFormat::new(32, 16, PixelFormat::Bgra).unwrap()
}

fn options(wait: Duration) -> ReaderOptions {
    ReaderOptions {
        wait,
        strategy: WaitStrategy::Block,
        ..ReaderOptions::default()
    }
}

/// A live producer (in this process) with a published frame.
struct Live {
    stream: TestStream,
    _owner: StreamOwner,
    writer: Writer,
}

impl Live {
    fn new(seats: u32) -> Live {
        let stream = TestStream::new("gb");
        let owner = StreamOwner::claim(&stream.name).unwrap();
        let writer = RegionBuilder::new(&owner, format())
            .seats(seats)
            .create()
            .unwrap();
        let mut live = Live {
            stream,
            _owner: owner,
            writer,
        };
        live.publish();
        live
    }

    fn publish(&mut self) -> u64 {
        let mut slot = self.writer.slot().expect("a free slot");
        let seq = slot.seq();
        fill_frame(&mut slot, seq);
        slot.publish(None).seq
    }
}

/// The values each layout field is tried with: 0, all ones, and just past the real value.
fn garbage_for(real: u64, width: usize) -> Vec<u64> {
    let max = if width == 8 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    let mut values = vec![
        0,
        max,
        real.wrapping_add(1) & max,
        real.wrapping_sub(1) & max,
    ];
    values.retain(|&v| v != real);
    values
}

#[test]
fn every_layout_field_set_to_garbage_fails_open_with_a_typed_error() {
    let live = Live::new(1);
    let mut raw = RawRegion::open(&live.stream);
    for &(field, offset, width) in offsets::LAYOUT_FIELDS {
        let real = raw.read(offset, width);
        for value in garbage_for(real, width) {
            raw.write(offset, width, value);
            let result = Reader::open(&live.stream.name, options(Duration::ZERO));
            raw.write(offset, width, real);
            let err = result.expect_err(&format!("{field} = {value:#x} must not open"));
            // Typed, and not mistaken for a missing producer (except a zero magic, which
            // is how a region looks before its creator finishes).
            if !(field == "magic" && value == 0) {
                assert!(!err.is_transient(), "{field} = {value:#x}: {err}");
            }
        }
    }
    // Restored: it opens.
    Reader::open(&live.stream.name, options(Duration::ZERO)).unwrap();
}

#[test]
fn overflowing_size_combinations_fail_open() {
    let live = Live::new(1);
    let mut raw = RawRegion::open(&live.stream);
    let field = |name: &str| {
        *offsets::LAYOUT_FIELDS
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap()
    };
    let (_, w_off, _) = field("width");
    let (_, h_off, _) = field("height");
    let (_, fb_off, _) = field("frame_bytes");
    let (_, st_off, _) = field("stride");
    // A consistent-looking but enormous frame: width x height x 4 overflows u32 stride and
    // the object's real size.
    raw.write(w_off, 4, u64::from(u32::MAX));
    raw.write(h_off, 4, u64::from(u32::MAX));
    raw.write(st_off, 4, u64::from(u32::MAX));
    raw.write(fb_off, 8, u64::MAX);
    let err = Reader::open(&live.stream.name, options(Duration::ZERO)).unwrap_err();
    assert!(
        matches!(err, OpenError::Format(_) | OpenError::BadLayout { .. }),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any combination of layout fields changed to any values: open fails with a typed
    /// error and never panics.
    #[test]
    fn arbitrary_layout_garbage_never_panics(
        changes in prop::collection::vec((0..offsets::LAYOUT_FIELDS.len(), any::<u64>()), 1..4)
    ) {
        let live = Live::new(1);
        let mut raw = RawRegion::open(&live.stream);
        let mut changed = false;
        for (i, value) in changes {
            let (_, offset, width) = offsets::LAYOUT_FIELDS[i];
            let value = if width == 4 { value & 0xFFFF_FFFF } else { value };
            changed |= raw.read(offset, width) != value;
            raw.write(offset, width, value);
        }
        let result = Reader::open(&live.stream.name, options(Duration::ZERO));
        prop_assert_eq!(result.is_err(), changed, "{:?}", result.err());
    }
}

#[test]
fn latest_naming_a_slot_out_of_range_is_corrupt() {
    let live = Live::new(1);
    let mut reader = Reader::open(&live.stream.name, options(HANG)).unwrap();
    let mut raw = RawRegion::open(&live.stream);
    raw.write(offsets::LATEST, 8, (99 << 8) | 200);
    let err = reader.wait_frame(HANG).unwrap_err();
    assert!(
        matches!(err, WaitError::Corrupt(Corrupt::LatestSlot { .. })),
        "{err}"
    );
}

#[test]
fn latest_whose_slot_carries_another_seq_is_corrupt() {
    let live = Live::new(1);
    let mut reader = Reader::open(&live.stream.name, options(HANG)).unwrap();
    let mut raw = RawRegion::open(&live.stream);
    let real = raw.read(offsets::LATEST, 8);
    let slot = real & 0xFF;
    raw.write(offsets::slot_seq(slot as usize), 8, 12345);
    let err = reader.wait_frame(HANG).unwrap_err();
    assert!(
        matches!(err, WaitError::Corrupt(Corrupt::SlotSeq { .. })),
        "{err}"
    );
    // After the garbage is gone the reader goes on.
    raw.write(offsets::slot_seq(slot as usize), 8, real >> 8);
    assert_eq!(reader.wait_frame(HANG).unwrap().seq(), real >> 8);
}

#[test]
fn latest_going_back_is_corrupt() {
    let mut live = Live::new(1);
    live.publish();
    let mut reader = Reader::open(&live.stream.name, options(HANG)).unwrap();
    assert_eq!(reader.wait_frame(HANG).unwrap().seq(), 2);
    let mut raw = RawRegion::open(&live.stream);
    let real = raw.read(offsets::LATEST, 8);
    raw.write(offsets::LATEST, 8, (1 << 8) | (real & 0xFF));
    let err = reader.wait_frame(Duration::from_millis(50)).unwrap_err();
    assert!(
        matches!(err, WaitError::Corrupt(Corrupt::SeqWentBack { .. })),
        "{err}"
    );
}

#[test]
fn garbage_state_is_corrupt() {
    let live = Live::new(1);
    let mut reader = Reader::open(&live.stream.name, options(HANG)).unwrap();
    drop(reader.wait_frame(HANG).unwrap());
    let mut raw = RawRegion::open(&live.stream);
    raw.write(offsets::STATE, 4, 77);
    let err = reader.wait_frame(Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(err, WaitError::Corrupt(Corrupt::State(77))),
        "{err}"
    );
}

#[test]
fn garbage_holds_and_seat_words_never_stall_the_producer() {
    let mut live = Live::new(2);
    let mut raw = RawRegion::open(&live.stream);
    for seat in 0..2 {
        raw.write(offsets::seat_word(seat), 8, u64::MAX);
        raw.write(offsets::seat_hold(seat), 4, u64::from(u32::MAX - 1));
    }
    for _ in 0..20 {
        live.publish();
    }
    // Holds that name real slots on garbage seats: the producer writes around them.
    for seat in 0..2 {
        raw.write(offsets::seat_word(seat), 8, (2 << 56) | 1);
        raw.write(offsets::seat_hold(seat), 4, seat as u64);
    }
    for _ in 0..20 {
        let slot = live.writer.slot().expect("two slots stay free");
        assert!(slot.slot() >= 2, "wrote held slot {}", slot.slot());
        drop(slot);
        live.publish();
    }
    // The heartbeat reclaims seats whose lock is free, garbage or not.
    let reclaimed = live.writer.supervisor().beat();
    assert_eq!(reclaimed.len(), 2, "{reclaimed:?}");
    let mut reader = Reader::open(&live.stream.name, options(HANG)).unwrap();
    assert!(reader.wait_frame(HANG).is_ok());
}

#[test]
fn a_garbage_semaphore_costs_a_timeout_never_a_hang() {
    let live = Live::new(1);
    let mut reader = Reader::open(&live.stream.name, options(HANG)).unwrap();
    drop(reader.wait_frame(HANG).unwrap());
    let mut raw = RawRegion::open(&live.stream);
    for word in 0..4 {
        raw.write(offsets::seat_sem(0) + word * 8, 8, u64::MAX);
    }
    live.writer.supervisor().beat();
    let err = reader.wait_frame(Duration::from_millis(250)).unwrap_err();
    assert!(matches!(err, WaitError::Timeout), "{err}");
}

#[test]
fn an_object_truncated_before_open_is_a_typed_error() {
    let stream = TestStream::new("tr");
    let file = std::fs::File::create(stream.shm_path()).unwrap();
    file.set_len(100).unwrap();
    let err = Reader::open(&stream.name, options(Duration::from_millis(30))).unwrap_err();
    assert!(
        matches!(err, OpenError::Truncated { size: 100, .. }),
        "{err}"
    );
}

#[test]
fn a_foreign_object_is_not_a_region() {
    let stream = TestStream::new("fo");
    std::fs::write(stream.shm_path(), vec![0xAB; 8192]).unwrap();
    let err = Reader::open(&stream.name, options(Duration::from_millis(30))).unwrap_err();
    assert!(matches!(err, OpenError::BadMagic { .. }), "{err}");
}

#[test]
fn reopening_the_same_region_after_garbage_gets_the_only_seat_back() {
    let mut live = Live::new(1);
    let mut reader = Reader::open(&live.stream.name, options(HANG)).unwrap();
    let mut raw = RawRegion::open(&live.stream);
    raw.write(offsets::LATEST, 8, (99 << 8) | 200);
    assert!(matches!(
        reader.wait_frame(HANG),
        Err(WaitError::Corrupt(_))
    ));
    // One seat, and it is ours: the reopen must hand it back before claiming again.
    reader.reopen(Duration::from_secs(5)).unwrap();
    assert_eq!((reader.seat(), reader.epoch()), (0, 1));
    let seq = live.publish();
    assert_eq!(reader.wait_frame(HANG).unwrap().seq(), seq);
}
