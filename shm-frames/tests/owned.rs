//! The owned frame hold: an `OwnedFrame` keeps its mapping, seat, lock and slot hold alive
//! beyond any borrow of its reader, survives a reopen and the reader's drop, and makes its
//! reader refuse new frames ("frame in use") rather than wait.

use std::time::Duration;

use frame_vocab::{FrameFormat, PixelFormat, StreamOwner};
use shm_frames::testing::{HANG, TestStream, check_frame, fill_frame};
use shm_frames::{
    OpenError, OwnedFrame, Reader, ReaderOptions, RegionBuilder, WaitError, WaitStrategy, Writer,
};

fn format(width: u32) -> FrameFormat {
    FrameFormat::new(width, 16, PixelFormat::Bgra).unwrap()
}

fn options() -> ReaderOptions {
    ReaderOptions {
        wait: HANG,
        strategy: WaitStrategy::Block,
        ..ReaderOptions::default()
    }
}

/// A producer in this process.
struct Live {
    stream: TestStream,
    _owner: StreamOwner,
    writer: Writer,
}

impl Live {
    fn new(seats: u32) -> Live {
        let stream = TestStream::new("own");
        let owner = StreamOwner::claim(&stream.name).unwrap();
        let writer = RegionBuilder::new(&owner, format(32))
            .seats(seats)
            .create()
            .unwrap();
        Live {
            stream,
            _owner: owner,
            writer,
        }
    }

    fn publish(&mut self) -> u64 {
        let mut slot = self.writer.slot().expect("a free slot");
        let seq = slot.seq();
        fill_frame(&mut slot, seq);
        slot.publish(None).seq
    }

    fn reader(&self) -> Reader {
        Reader::open(&self.stream.name, options()).unwrap()
    }
}

fn owned(reader: &mut Reader) -> OwnedFrame {
    reader.wait_frame_owned(HANG).unwrap()
}

#[test]
fn a_reader_sees_what_the_producer_says_about_its_stream() {
    let stream = TestStream::new("desc");
    let owner = StreamOwner::claim(&stream.name).unwrap();
    let long = "y4m:/clips/".to_owned() + &"é".repeat(40);
    let _writer = RegionBuilder::new(&owner, format(32))
        .source_description(&long)
        .nominal_fps(29.97)
        .no_backpressure(true)
        .create()
        .unwrap();
    let reader = Reader::open(&stream.name, options()).unwrap();
    let seen = reader.source_description();
    assert!(
        long.starts_with(&seen),
        "{seen:?} is a prefix of the description"
    );
    assert!(
        seen.len() <= 64 && seen.len() > 60,
        "cut at a char boundary: {seen:?}"
    );
    assert_eq!(reader.nominal_fps(), 29.97);
    assert!(reader.no_backpressure());

    let plain = TestStream::new("desc");
    let owner = StreamOwner::claim(&plain.name).unwrap();
    let _writer = RegionBuilder::new(&owner, format(32)).create().unwrap();
    let reader = Reader::open(&plain.name, options()).unwrap();
    assert_eq!(reader.source_description(), "");
    assert_eq!(reader.nominal_fps(), 0.0);
    assert!(!reader.no_backpressure());
}

#[test]
fn a_kept_frame_is_never_written_while_the_producer_goes_on() {
    let mut live = Live::new(1);
    let mut reader = live.reader();
    let seq = live.publish();
    let frame = owned(&mut reader);
    assert_eq!(frame.seq(), seq);
    // Far more publishes than there are slots: the held one is never chosen.
    for _ in 0..50 {
        live.publish();
    }
    assert_eq!(check_frame(&frame), Ok(seq));
    assert_eq!(live.writer.skipped(), 0, "a free slot was always there");
}

#[test]
fn a_new_frame_while_one_is_kept_is_frame_in_use_not_a_wait() {
    let mut live = Live::new(1);
    let mut reader = live.reader();
    live.publish();
    let frame = owned(&mut reader);
    live.publish();
    assert!(reader.frame_in_use());
    // A timeout that would hang the test if either call waited.
    assert!(matches!(
        reader.wait_frame_owned(HANG),
        Err(WaitError::FrameInUse)
    ));
    assert!(matches!(
        reader.wait_frame(HANG),
        Err(WaitError::FrameInUse)
    ));
    drop(frame);
    assert!(!reader.frame_in_use());
    let next = reader.wait_frame(HANG).unwrap();
    assert_eq!(next.seq(), 2, "the frame published meanwhile is taken");
}

#[test]
fn a_frame_dropped_on_another_thread_releases_its_slot() {
    let mut live = Live::new(1);
    let mut reader = live.reader();
    live.publish();
    let frame = owned(&mut reader);
    let seq = std::thread::spawn(move || check_frame(&frame))
        .join()
        .unwrap();
    assert_eq!(seq, Ok(1));
    live.publish();
    assert_eq!(owned(&mut reader).seq(), 2);
}

#[test]
fn a_frame_outlives_its_reader_and_keeps_the_seat_until_dropped() {
    let mut live = Live::new(1);
    let mut reader = live.reader();
    live.publish();
    let frame = owned(&mut reader);
    drop(reader);
    for _ in 0..10 {
        live.publish();
    }
    assert_eq!(check_frame(&frame), Ok(1));
    // The one seat is still the frame's: another reader is refused at once.
    let refused = Reader::open(
        &live.stream.name,
        ReaderOptions {
            wait: Duration::ZERO,
            ..options()
        },
    );
    assert!(
        matches!(refused, Err(OpenError::AllSeatsTaken { .. })),
        "{refused:?}"
    );
    drop(frame);
    let mut again = live.reader();
    live.publish();
    assert!(again.wait_frame(HANG).is_ok());
}

#[test]
fn a_frame_kept_across_a_replacement_stays_readable_and_the_reader_moves_on() {
    let mut live = Live::new(1);
    let mut reader = live.reader();
    live.publish();
    let frame = owned(&mut reader);
    let old_epoch = frame.epoch();
    live.writer.replace(format(64)).unwrap();
    live.publish();
    assert!(matches!(
        reader.wait_frame(HANG),
        Err(WaitError::FrameInUse)
    ));
    // The reader may move to the new region while the old frame lives; the frame keeps the
    // old mapping and seat.
    reader.reopen(HANG).unwrap();
    assert_eq!(reader.format(), format(64));
    assert_eq!(check_frame(&frame), Ok(1));
    assert_eq!(frame.format(), format(32));
    assert_eq!(frame.epoch(), old_epoch);
    drop(frame);
    let next = reader.wait_frame(HANG).unwrap();
    assert_eq!(next.format(), format(64));
    assert_eq!(check_frame(&next), Ok(next.seq()));
}
