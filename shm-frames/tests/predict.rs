//! The `Predict` wait strategy against a publisher in the same process: frames due on a
//! rhythm, then frames that come early (while it sleeps), on time (while it spins), late
//! (after it gave up spinning for the semaphore), and not at all. Every frame is taken once,
//! in order, and a stream that stopped costs no spinning.

use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use frame_vocab::{FrameFormat, PixelFormat, StreamOwner, monotonic_ns};
use shm_frames::testing::{HANG, Heartbeat, TestStream};
use shm_frames::{Reader, ReaderOptions, RegionBuilder, SpinBudget, WaitError, WaitStrategy};

const PERIOD: Duration = Duration::from_millis(5);

/// CPU time this thread has used so far (exact, unlike wall time under load).
fn thread_cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    Duration::from(t)
}

/// Publishes one frame per entry of `offsets_us`: frame `n` is due at `n * PERIOD` plus its
/// offset, and never before the reader has taken frame `n - 1` (so no frame can be skipped
/// for being too slow: a frame not taken is a lost wake). Then publishes nothing more while
/// keeping its heartbeat until `done` says so.
fn publisher(
    stream: &TestStream,
    offsets_us: Vec<i64>,
    taken: Receiver<u64>,
    done: Receiver<()>,
) -> std::thread::JoinHandle<()> {
    let owner = StreamOwner::claim(&stream.name).unwrap();
    let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
    let mut writer = RegionBuilder::new(&owner, format)
        .nominal_fps(1.0 / PERIOD.as_secs_f64())
        .create()
        .unwrap();
    std::thread::spawn(move || {
        let _owner = owner;
        let _heartbeat = Heartbeat::start(writer.supervisor());
        let start = Instant::now() + Duration::from_millis(100);
        for (n, offset) in offsets_us.iter().enumerate() {
            if n > 0 {
                assert_eq!(taken.recv_timeout(HANG), Ok(n as u64), "frame {n} taken");
            }
            let due = start + PERIOD * n as u32;
            let due = if *offset >= 0 {
                due + Duration::from_micros(offset.unsigned_abs())
            } else {
                due - Duration::from_micros(offset.unsigned_abs())
            };
            // The scenario's own pacing (when each frame is due), not a synchronisation.
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let mut slot = writer.slot().expect("a free slot");
            slot[..8].copy_from_slice(&(n as u64 + 1).to_le_bytes());
            slot.publish(None);
        }
        let _ = done.recv_timeout(HANG);
    })
}

fn reader(stream: &TestStream, strategy: WaitStrategy) -> Reader {
    let options = ReaderOptions {
        wait: HANG,
        strategy,
        ..ReaderOptions::default()
    };
    Reader::open(&stream.name, options).unwrap()
}

/// Takes `frames` frames, checking each is the next seq, and acks each to the publisher.
fn take_all(reader: &mut Reader, frames: usize, ack: &std::sync::mpsc::Sender<u64>) {
    for n in 1..=frames as u64 {
        let frame = reader.wait_frame(HANG).expect("a frame");
        assert_eq!(frame.seq(), n, "frames are taken in order, none missed");
        assert_eq!(
            u64::from_le_bytes(frame[..8].try_into().unwrap()),
            n,
            "its pixels"
        );
        assert_eq!(frame.info().skipped, 0);
        drop(frame);
        let _ = ack.send(n);
    }
}

/// A rhythm, then frames early, on time and late by every offset from -2.5 ms to +2.5 ms
/// around their due time (in 100 µs steps, with rhythmic frames between so it predicts
/// again): whatever phase of its wait a frame lands in — the timed sleep, the spin, the
/// switch to the semaphore or the semaphore — it is taken, once.
#[test]
fn frames_landing_in_every_phase_of_a_predicted_wait_are_all_taken() {
    let stream = TestStream::new("predict");
    let mut offsets = vec![0i64; 20];
    for offset in (-2500..=2500).step_by(100) {
        offsets.push(offset);
        offsets.extend([0; 3]);
    }
    let frames = offsets.len();
    let (ack, taken) = channel();
    let (done, done_rx) = channel();
    let publisher = publisher(&stream, offsets, taken, done_rx);
    let mut reader = reader(&stream, WaitStrategy::PREDICT);
    take_all(&mut reader, frames, &ack);
    assert_eq!(reader.stats().frames, frames as u64);
    assert_eq!(reader.stats().skipped, 0);

    // The stream stops (the producer lives on, publishing nothing): the wait blocks, so it
    // costs next to no CPU (a spinning wait would use about all of it).
    let timeout = Duration::from_millis(600);
    let before = thread_cpu();
    let wall = monotonic_ns();
    match reader.wait_frame(timeout) {
        Err(WaitError::Timeout) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let cpu = thread_cpu() - before;
    let waited = Duration::from_nanos(monotonic_ns() - wall);
    assert!(
        cpu < waited / 10,
        "a stopped stream cost {cpu:?} of CPU over a {waited:?} wait"
    );
    done.send(()).unwrap();
    publisher.join().unwrap();
}

/// A zero spin budget is `Block`: the same frames, and no spinning while it waits.
#[test]
fn a_zero_budget_takes_every_frame_without_spinning() {
    let stream = TestStream::new("predict0");
    let frames = 30;
    let (ack, taken) = channel();
    let (done, done_rx) = channel();
    let publisher = publisher(&stream, vec![0; frames], taken, done_rx);
    let strategy = WaitStrategy::Predict {
        spin_budget: SpinBudget::ZERO,
    };
    let mut reader = reader(&stream, strategy);
    take_all(&mut reader, frames, &ack);
    let before = thread_cpu();
    let wall = monotonic_ns();
    assert!(matches!(
        reader.wait_frame(Duration::from_millis(300)),
        Err(WaitError::Timeout)
    ));
    let cpu = thread_cpu() - before;
    let waited = Duration::from_nanos(monotonic_ns() - wall);
    assert!(cpu < waited / 10, "{cpu:?} of CPU over {waited:?}");
    done.send(()).unwrap();
    publisher.join().unwrap();
}
