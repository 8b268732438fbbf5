//! The end of a finite stream, across processes: the real `producer --frames N` stops while
//! consumers of every wait strategy follow it, each with newest-frame and with every-frame
//! delivery. Each of them still takes frame N (the frame published just before
//! `Stopping`); a newest-frame one takes or counts as skipped every frame, an every-frame
//! one takes all N. Also the start gate `--wait-seats`.

use std::process::Command;
use std::time::Duration;

use shm_frames::testing::{ChildProc, HANG, TestStream};
use shm_frames::{Delivery, Reader, ReaderOptions, WaitError, WaitStrategy};

const STRATEGIES: [WaitStrategy; 3] = [
    WaitStrategy::Block,
    WaitStrategy::Spin,
    WaitStrategy::SpinThenBlock(Duration::from_micros(200)),
];

fn producer(stream: &TestStream, args: &[&str]) -> ChildProc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_producer"));
    cmd.arg("--stream")
        .arg(stream.name.as_str())
        .args(["--size", "64x48"])
        .args(args)
        .env_remove("RUST_LOG");
    let child = ChildProc::spawn(cmd);
    child.expect_contains("ready:", HANG);
    child
}

fn open(stream: &TestStream, strategy: WaitStrategy, delivery: Delivery) -> Reader {
    let options = ReaderOptions {
        wait: HANG,
        strategy,
        delivery,
    };
    Reader::open(&stream.name, options).expect("attach")
}

/// What one consumer saw of the stream, to its end.
#[derive(Debug)]
struct Seen {
    strategy: WaitStrategy,
    delivery: Delivery,
    first: u64,
    last: u64,
    taken: u64,
    skipped: u64,
}

/// Takes frames until the producer stops; panics on anything but a clean stop.
fn follow(mut reader: Reader) -> Seen {
    let ReaderOptions {
        strategy, delivery, ..
    } = reader.options();
    let mut first = 0;
    loop {
        match reader.wait_frame(HANG) {
            Ok(frame) => {
                if first == 0 {
                    first = frame.seq();
                }
            }
            Err(WaitError::Stopped) => break,
            Err(e) => panic!("{strategy:?} {delivery:?}: {e}"),
        }
    }
    let stats = reader.stats();
    Seen {
        strategy,
        delivery,
        first,
        last: reader.last_seq(),
        taken: stats.frames,
        skipped: stats.skipped,
    }
}

/// One producer run of `frames` frames with a consumer of each strategy and each delivery,
/// gated so that all six sit before frame 1 is published. The stall timeout is off, so an
/// every-frame consumer slowed by a loaded machine is waited for, never demoted: a frame
/// it misses is a lost frame, not a timeout.
fn one_round(frames: u64, fps: &str) {
    let stream = TestStream::new("eos");
    let n = frames.to_string();
    let mut producer = producer(
        &stream,
        &[
            "--frames",
            &n,
            "--fps",
            fps,
            "--seats",
            "6",
            "--wait-seats",
            "6",
            "--stall-timeout",
            "none",
        ],
    );
    let readers: Vec<Reader> = [Delivery::Newest, Delivery::EveryFrame]
        .into_iter()
        .flat_map(|delivery| STRATEGIES.map(|strategy| (strategy, delivery)))
        .map(|(strategy, delivery)| open(&stream, strategy, delivery))
        .collect();
    let followers: Vec<_> = readers
        .into_iter()
        .map(|reader| std::thread::spawn(move || follow(reader)))
        .collect();
    for follower in followers {
        let seen = follower.join().expect("follower");
        let (strategy, delivery) = (seen.strategy, seen.delivery);
        assert_eq!(
            seen.last, frames,
            "{strategy:?} {delivery:?} lost the last frame: {seen:?}"
        );
        assert!(seen.first >= 1, "{seen:?}");
        match delivery {
            // Frames before the first take were published before this consumer looked.
            Delivery::Newest => assert_eq!(
                seen.taken + seen.skipped,
                frames - (seen.first - 1),
                "every frame taken or counted as skipped: {seen:?}"
            ),
            // Seated before frame 1 (`--wait-seats`): every frame, none skipped.
            Delivery::EveryFrame => assert_eq!(
                (seen.first, seen.taken, seen.skipped),
                (1, frames, 0),
                "every frame of the stream: {seen:?}"
            ),
        }
    }
    assert_eq!(producer.reap().code(), Some(0));
}

#[test]
fn the_last_frame_reaches_every_wait_strategy() {
    for _ in 0..3 {
        one_round(30, "500");
    }
}

/// The same, 200 times (`cargo test --release -- --ignored`, as `.ci/run` does): the
/// race it guards against (Stopping seen before the last frame) showed in 1 run of 5.
#[test]
#[ignore = "stress: run in release with --ignored"]
fn the_last_frame_reaches_every_wait_strategy_200_rounds() {
    for _ in 0..200 {
        one_round(20, "1000");
    }
}

#[test]
fn wait_seats_publishes_nothing_before_the_consumer_sits() {
    // One frame only: without the gate it would be published (and the stream stopped)
    // before this consumer could attach.
    let stream = TestStream::new("gate");
    let mut producer = producer(&stream, &["--frames", "1", "--wait-seats", "1"]);
    let seen = follow(open(&stream, WaitStrategy::Block, Delivery::Newest));
    assert_eq!((seen.first, seen.last, seen.taken), (1, 1, 1), "{seen:?}");
    assert_eq!(producer.reap().code(), Some(0));
}

#[test]
fn wait_seats_gives_up_after_wait_with_exit_code_4() {
    let stream = TestStream::new("gate");
    let mut producer = producer(&stream, &["--wait-seats", "1", "--wait", "300ms"]);
    let line = producer.expect_contains("--wait-seats", HANG);
    assert!(line.contains("0 of the 1 consumers"), "{line}");
    assert_eq!(producer.reap().code(), Some(4));
}
