//! A producer that crashes at chosen points, by fault injection (shm-frames' feature
//! `fault-injection`, which this crate's tests enable; `FRAMEPIPE_FAULT` names the point):
//! half-way through writing a slot (scenario 2) and during set-up before its magic is
//! written (scenario 3). Each checks: no panic (exit 101), no hang past its deadline, no
//! torn frame, and no object of the stream left behind.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use nix::sys::signal::Signal;
use shm_frames::testing::{ChildProc, HANG, TestStream, leftovers};
use shm_frames::{Reader, ReaderOptions, WaitError, WaitStrategy};

const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

/// A producer of `stream` with `FRAMEPIPE_FAULT=fault` (empty: none), not yet waited for.
/// Started through `sh` only to turn core dumps off for the abort it is about to do.
fn producer(stream: &TestStream, fault: &str, args: &[&str]) -> ChildProc {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -c 0; exec \"$@\"",
        "sh",
        CONSUMER,
        "__producer",
    ])
    .args(["--stream", stream.as_str(), "--size", "64x48"])
    .args(args)
    .env("FRAMEPIPE_FAULT", fault);
    ChildProc::spawn(cmd)
}

/// `consumer stats --json --verify ARGS` on `stream`, running.
fn stats(stream: &TestStream, args: &[&str]) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["stats", "--stream", stream.as_str(), "--json", "--verify"])
        .args(args);
    ChildProc::spawn(cmd)
}

fn summary(lines: &[String]) -> serde_json::Value {
    let line = lines
        .iter()
        .find(|l| l.contains("\"frames\""))
        .unwrap_or_else(|| panic!("no JSON summary in {lines:#?}"));
    serde_json::from_str(line).unwrap()
}

/// Asserts `child` died of SIGABRT (the injected fault), not of a panic.
fn aborted(child: &mut ChildProc) {
    let status = child.reap();
    assert_ne!(status.code(), Some(101), "the producer panicked");
    assert_eq!(status.signal(), Some(Signal::SIGABRT as i32), "{status}");
}

#[test]
fn a_producer_aborting_half_way_through_a_slot_never_delivers_that_frame() {
    const FAULT_SEQ: u64 = 40;
    let stream = TestStream::new("midslot");
    // It publishes only once both consumers below sit in their seats.
    let args = ["--fps", "100", "--seats", "3", "--wait-seats", "2"];
    let mut victim = producer(&stream, &format!("abort-mid-slot:{FAULT_SEQ}"), &args);
    victim.expect_contains("ready: stream", HANG);
    let mut consumer = stats(&stream, &["--duration", "120s", "--wait", "20s"]);
    consumer.expect_contains(" attached", HANG);
    let options = ReaderOptions {
        wait: HANG,
        strategy: WaitStrategy::Block,
        ..ReaderOptions::default()
    };
    let mut reader = Reader::open(&stream.name, options).expect("a seat");
    let mut newest = 0;
    let end = loop {
        match reader.wait_frame(HANG) {
            Ok(frame) => {
                assert!(frame.seq() > newest, "seqs go forward");
                newest = frame.seq();
            }
            Err(error) => break error,
        }
    };
    assert!(matches!(end, WaitError::ProducerGone), "{end}");
    assert_eq!(
        newest,
        FAULT_SEQ - 1,
        "the half-written frame is never delivered"
    );
    victim.expect_contains("half-way through a slot", HANG);
    aborted(&mut victim);

    // The next producer takes over the name; both consumers follow it.
    let mut next = producer(&stream, "", &["--fps", "100", "--seats", "3"]);
    next.expect_contains("ready: stream", HANG);
    reader.reopen(HANG).expect("the new region");
    assert_eq!(reader.epoch(), 2);
    let frame = reader
        .wait_frame(HANG)
        .expect("a frame of the new producer");
    assert!(frame.seq() >= 1);
    drop(frame);
    drop(reader);
    consumer.expect_contains("reattached", HANG);
    consumer.signal(Signal::SIGINT);
    let (lines, code) = consumer.lines_to_exit();
    let json = summary(&lines);
    assert_eq!(code, Some(130), "{json}");
    assert_eq!(json["torn"], 0, "{json}");
    assert_eq!(json["restarts"], 1, "{json}");
    next.terminate();
    assert_eq!(next.reap().code(), Some(0));
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}

#[test]
fn a_producer_dead_before_its_magic_gives_not_ready_then_a_bounded_error_and_is_replaced() {
    let stream = TestStream::new("nomagic");
    let mut victim = producer(&stream, "abort-before-magic", &["--fps", "100"]);
    victim.expect_contains("before the magic", HANG);
    aborted(&mut victim);
    assert!(
        std::path::Path::new(&stream.shm_path()).exists(),
        "the half-made region is left under the name"
    );

    // A consumer sees "not ready", and at its --wait deadline gives one bounded error.
    let mut cmd = Command::new(CONSUMER);
    cmd.args([
        "stats",
        "--stream",
        stream.as_str(),
        "--json",
        "--wait",
        "1s",
    ]);
    let gave_up = ChildProc::spawn(cmd).finish();
    gave_up.assert_code(3);
    assert!(
        gave_up.stderr.contains("did not become ready"),
        "{}",
        gave_up.stderr
    );
    let errors = gave_up
        .stderr
        .lines()
        .filter(|l| l.contains("rror"))
        .count();
    assert_eq!(errors, 1, "one clear error: {}", gave_up.stderr);

    // A consumer waiting meanwhile attaches once a new producer replaced the leftover.
    let mut waiting = stats(&stream, &["--frames", "20", "--wait", "30s"]);
    waiting.expect_contains("did not become ready", HANG);
    let mut next = producer(&stream, "", &["--fps", "100"]);
    next.expect_contains("ready: stream", HANG);
    let (lines, code) = waiting.lines_to_exit();
    let json = summary(&lines);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["frames"], 20, "{json}");
    assert_eq!(json["torn"], 0, "{json}");
    next.terminate();
    assert_eq!(next.reap().code(), Some(0));
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}
