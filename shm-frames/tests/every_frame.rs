//! Every-frame delivery in one process: a writer and readers on threads of their own.
//! The cross-process forms (the real binaries, clips, signals) are in the consumer's
//! `every_frame` tests; these pin the library's contract: every frame from the first
//! take, newest readers never waited for, a stall demoted by the delivery word, and a
//! refusal before any seat is claimed.

use std::time::Duration;

use frame_vocab::{FrameFormat, PixelFormat, StreamOwner};
use shm_frames::testing::{HANG, TestStream, check_frame, fill_frame};
use shm_frames::{Delivery, OpenError, Reader, ReaderOptions, RegionBuilder, Writer};

fn format() -> FrameFormat {
    FrameFormat::new(32, 16, PixelFormat::Bgra).unwrap()
}

fn options(delivery: Delivery) -> ReaderOptions {
    ReaderOptions {
        wait: HANG,
        delivery,
        ..ReaderOptions::default()
    }
}

/// A writer on a fresh stream with `seats` seats and `stall` as its stall timeout.
fn writer(stream: &TestStream, seats: u32, stall: Option<Duration>) -> (StreamOwner, Writer) {
    let owner = StreamOwner::claim(&stream.name).unwrap();
    let writer = RegionBuilder::new(&owner, format())
        .seats(seats)
        .stall_timeout(stall)
        .create()
        .unwrap();
    (owner, writer)
}

fn publish(writer: &mut Writer) -> u64 {
    let mut slot = writer.slot().expect("a free slot");
    let seq = slot.seq();
    fill_frame(&mut slot, seq);
    slot.publish(None).seq
}

#[test]
fn an_every_frame_reader_takes_every_frame_beside_a_newest_one() {
    const FRAMES: u64 = 500;
    let stream = TestStream::new("ef");
    let (_owner, mut writer) = writer(&stream, 2, None);
    let mut every = Reader::open(&stream.name, options(Delivery::EveryFrame)).unwrap();
    let mut newest = Reader::open(&stream.name, options(Delivery::Newest)).unwrap();
    let every_thread = std::thread::spawn(move || {
        let mut seqs = Vec::new();
        while seqs.len() < FRAMES as usize {
            let frame = every.wait_frame(HANG).expect("a frame");
            assert_eq!(check_frame(&frame), Ok(frame.seq()), "an intact frame");
            assert!(!frame.info().demoted);
            seqs.push(frame.seq());
        }
        seqs
    });
    let newest_thread = std::thread::spawn(move || {
        let (mut first, mut last) = (0, 0);
        while last < FRAMES {
            let frame = newest.wait_frame(HANG).expect("a frame");
            assert_eq!(check_frame(&frame), Ok(frame.seq()), "an intact frame");
            last = frame.seq();
            if first == 0 {
                first = last;
            }
        }
        (first, newest.stats())
    });
    for _ in 0..FRAMES {
        publish(&mut writer);
    }
    let seqs = every_thread.join().unwrap();
    assert_eq!(seqs, (1..=FRAMES).collect::<Vec<_>>());
    // The newest reader took the last frame and skipped what it was too slow for (counted
    // from its first take, which may come after frame 1: its thread starts late).
    let (first, newest) = newest_thread.join().unwrap();
    assert_eq!(first - 1 + newest.frames + newest.skipped, FRAMES);
    assert_eq!(writer.demotions(), 0);
}

#[test]
fn a_reader_that_stops_taking_is_demoted_after_the_stall_timeout() {
    let stream = TestStream::new("es");
    // The stall timeout is the scenario: the reader below never takes frame 2 in time.
    let (_owner, mut writer) = writer(&stream, 1, Some(Duration::from_millis(50)));
    let mut reader = Reader::open(&stream.name, options(Delivery::EveryFrame)).unwrap();
    publish(&mut writer);
    assert_eq!(reader.wait_frame(HANG).unwrap().seq(), 1);
    // Frame 1 was taken: frame 2 goes out at once; frame 3 waits for a take of 2 that
    // does not come, until the stall timeout demotes the seat.
    publish(&mut writer);
    assert_eq!(writer.stalls(), 0);
    publish(&mut writer);
    assert_eq!(writer.stalls(), 1);
    assert_eq!(writer.demotions(), 1);
    assert_eq!(writer.take_demoted(), 1 << reader.seat());
    assert_eq!(writer.take_demoted(), 0, "each demotion is handed out once");
    let frame = reader.wait_frame(HANG).unwrap();
    let info = frame.info();
    assert_eq!((info.seq, info.skipped), (3, 1));
    assert!(info.demoted, "the delivery word says so");
    drop(frame);
    // From now on it is a newest-frame reader: nobody waits for it.
    for _ in 0..5 {
        publish(&mut writer);
    }
    assert_eq!(writer.stalls(), 1);
}

#[test]
fn await_delivery_waits_for_a_lagging_reader_and_returns_once_it_takes() {
    let stream = TestStream::new("ea");
    let (_owner, mut writer) = writer(&stream, 1, None);
    let mut reader = Reader::open(&stream.name, options(Delivery::EveryFrame)).unwrap();
    publish(&mut writer);
    let mut slot = writer
        .slot()
        .expect("a free slot while frame 1 is not taken");
    let seq = slot.seq();
    fill_frame(&mut slot, seq);
    assert!(
        !slot.await_delivery(Duration::from_millis(20)),
        "frame 1 is not taken yet"
    );
    let taker = std::thread::spawn(move || {
        let seq = reader.wait_frame(HANG).unwrap().seq();
        (reader, seq)
    });
    // Without a stall timeout only the take ends this wait (or the test's HANG).
    assert!(slot.await_delivery(HANG), "the take released the writer");
    assert_eq!(slot.publish(None).seq, 2);
    let (mut reader, first) = taker.join().unwrap();
    assert_eq!(first, 1);
    assert_eq!(reader.wait_frame(HANG).unwrap().seq(), 2);
}

#[test]
fn a_reader_leaving_releases_a_waiting_writer() {
    let stream = TestStream::new("el");
    let (_owner, mut writer) = writer(&stream, 1, None);
    let reader = Reader::open(&stream.name, options(Delivery::EveryFrame)).unwrap();
    publish(&mut writer);
    let mut slot = writer.slot().expect("a free slot");
    fill_frame(&mut slot, 2);
    assert!(!slot.await_delivery(Duration::from_millis(10)));
    // Leaving posts the writer's wake: the wait ends without any timeout running out.
    drop(reader);
    assert!(slot.await_delivery(HANG));
}

#[test]
fn no_backpressure_refuses_every_frame_before_claiming_a_seat() {
    let stream = TestStream::new("en");
    let owner = StreamOwner::claim(&stream.name).unwrap();
    let mut writer = RegionBuilder::new(&owner, format())
        .no_backpressure(true)
        .create()
        .unwrap();
    let quick = ReaderOptions {
        wait: Duration::ZERO,
        ..options(Delivery::EveryFrame)
    };
    match Reader::open(&stream.name, quick) {
        Err(OpenError::NoBackpressure { name }) => assert_eq!(name, stream.as_str()),
        other => panic!("expected NoBackpressure, got {other:?}"),
    }
    // The only seat is still free for a newest-frame reader.
    let mut reader = Reader::open(&stream.name, options(Delivery::Newest)).unwrap();
    assert!(reader.no_backpressure());
    publish(&mut writer);
    assert_eq!(reader.wait_frame(HANG).unwrap().seq(), 1);
}
