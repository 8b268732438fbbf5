//! The soak (scenario 17): 1920x1080 at `--fps 0`, consumers joining and leaving, the
//! producer killed and restarted on a schedule. RSS and fd counts (from /proc) stay flat within 5%,
//! seqs go forward within each epoch, and no frame is torn (`--verify`).
//!
//! The normal suite runs a short form with quicker periods; the `#[ignore]`d long form
//! (run by `.ci/run` in release) runs 60 s with a join or leave every 5 s and a restart
//! every 20 s, or `FRAMEPIPE_SOAK_SECS` seconds.

use std::collections::VecDeque;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use shm_frames::testing::{ChildProc, HANG, TestStream, leftovers};
use shm_frames::{Reader, ReaderOptions, WaitError, WaitStrategy};

const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

/// The kinds of consumer that take turns joining and leaving, one line each (`consumer`
/// arguments after the stream). Every kind must print the `stats --json` summary.
const KINDS: &[&[&str]] = &[
    &["stats", "--verify", "--json"],
    &[
        "stats",
        "--verify",
        "--json",
        "--strategy",
        "spin-then-block",
        "--spin-for",
        "1ms",
    ],
    // Every frame: the producer waits for it (the others never are), within its 2 s stall
    // timeout; joins and leaves of it must leave the producer running.
    &["stats", "--verify", "--json", "--every-frame"],
];

/// At most this many joiners at once; with the long-lived consumer and the seq checker the
/// stream needs `JOINERS + 2` seats.
const JOINERS: usize = 2;

fn producer(stream: &TestStream) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args([
        "__producer",
        "--stream",
        stream.as_str(),
        "--size",
        "1920x1080",
    ])
    .args(["--fps", "0", "--seats", &(JOINERS + 2).to_string()]);
    let child = ChildProc::spawn(cmd);
    child.expect_contains("ready: stream", HANG);
    child
}

fn consumer(stream: &TestStream, kind: &[&str]) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(kind).args([
        "--stream",
        stream.as_str(),
        "--duration",
        "3600s",
        "--wait",
        "30s",
    ]);
    let child = ChildProc::spawn(cmd);
    child.expect_contains(" attached", HANG);
    child
}

/// RSS (kB) and open fds of `pid`, from /proc.
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

fn within_5_percent(what: &str, start: u64, end: u64) {
    let (lo, hi) = (start.min(end) as f64, start.max(end) as f64);
    assert!(
        hi <= lo * 1.05,
        "{what} grew or shrank past 5%: {start} -> {end}"
    );
}

/// Stops a consumer (SIGINT) and checks its summary: no panic, no torn frame.
fn leave(mut child: ChildProc) -> serde_json::Value {
    child.signal(Signal::SIGINT);
    let line = child.expect_contains("\"frames\"", HANG);
    let code = child.reap().code();
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(code, Some(130), "{json}");
    assert_eq!(json["torn"], 0, "{json}");
    json
}

/// What the seq checker saw.
#[derive(Debug, Default)]
struct Checked {
    frames: u64,
    epochs: u64,
}

/// A seat in this process that follows every restart and checks that seqs go forward
/// within each epoch.
fn check_seqs(stream: &TestStream, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Checked> {
    let options = ReaderOptions {
        wait: HANG,
        strategy: WaitStrategy::Block,
        ..ReaderOptions::default()
    };
    let mut reader = Reader::open(&stream.name, options).expect("the checker's seat");
    std::thread::spawn(move || {
        let mut checked = Checked {
            epochs: 1,
            ..Checked::default()
        };
        let mut last = (reader.epoch(), 0u64);
        while !stop.load(Ordering::Relaxed) {
            match reader.wait_frame_owned(Duration::from_millis(100)) {
                Ok(frame) => {
                    let (seq, epoch) = (frame.seq(), frame.epoch());
                    if epoch == last.0 {
                        assert!(seq > last.1, "epoch {epoch}: seq {seq} after {}", last.1);
                    } else {
                        assert!(epoch > last.0, "epoch went back: {epoch} after {}", last.0);
                        checked.epochs += 1;
                    }
                    last = (epoch, seq);
                    checked.frames += 1;
                }
                Err(WaitError::Timeout) => {}
                Err(WaitError::Replaced | WaitError::Stopped | WaitError::ProducerGone) => {
                    // The restart's new region comes within the deadline.
                    reader
                        .reopen(HANG)
                        .expect("the restarted producer's region");
                }
                Err(error) => panic!("the checker: {error}"),
            }
        }
        checked
    })
}

fn soak(total: Duration, join_every: Duration, restart_every: Duration) {
    let stream = TestStream::new("soak");
    let mut source = producer(&stream);
    let stop = Arc::new(AtomicBool::new(false));
    let checker = check_seqs(&stream, Arc::clone(&stop));
    let resident = consumer(&stream, KINDS[0]);
    // Its start: attached, mapped and taking frames.
    resident.expect_contains(" frames ", HANG);
    let start_usage = usage(resident.pid());
    let producer_start = usage(source.pid());
    let mut joiners = VecDeque::new();
    let (mut joins, mut leaves, mut restarts) = (0usize, 0usize, 0u64);
    let begun = Instant::now();
    let (mut next_join, mut next_restart) = (begun + join_every, begun + restart_every);
    let mut producer_end = producer_start;
    while begun.elapsed() < total {
        // The schedule (a join or leave every `join_every`, a restart every
        // `restart_every`) is the scenario's pacing, not a synchronisation.
        let next = next_join.min(next_restart);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        if Instant::now() >= next_restart {
            // A crash restart: consumers end their run at a clean stop (only the viewer
            // waits for the next producer), and follow a producer that died.
            producer_end = usage(source.pid());
            source.kill9();
            assert_ne!(source.reap().code(), Some(101), "the producer panicked");
            source = producer(&stream);
            restarts += 1;
            next_restart += restart_every;
        }
        if Instant::now() >= next_join {
            if joiners.len() < JOINERS {
                joiners.push_back(consumer(&stream, KINDS[joins % KINDS.len()]));
                joins += 1;
            } else if let Some(oldest) = joiners.pop_front() {
                leave(oldest);
                leaves += 1;
            }
            next_join += join_every;
        }
    }
    // Its end: once it has followed the last restart (while it moves, the old region and
    // the new one are both mapped for an instant).
    let followed = format!("restarts {restarts} ");
    resident.expect_contains(&followed, HANG);
    let end_usage = usage(resident.pid());
    if restarts == 0 {
        producer_end = usage(source.pid());
    }
    for joiner in joiners {
        leave(joiner);
    }
    let json = leave(resident);
    stop.store(true, Ordering::Relaxed);
    let checked = checker.join().expect("the seq checker");
    source.terminate();
    assert_eq!(source.reap().code(), Some(0));
    println!(
        "SOAK {:.0?}: {joins} joins, {leaves} leaves, {restarts} restarts; resident consumer \
         RSS {} -> {} kB, fds {} -> {}; producer RSS {} -> {} kB, fds {} -> {}; resident \
         {} frames ({} restarts); checker {} frames over {} epochs",
        begun.elapsed(),
        start_usage.0,
        end_usage.0,
        start_usage.1,
        end_usage.1,
        producer_start.0,
        producer_end.0,
        producer_start.1,
        producer_end.1,
        json["frames"],
        json["restarts"],
        checked.frames,
        checked.epochs
    );
    assert_eq!(
        json["restarts"], restarts,
        "the resident followed every restart"
    );
    assert_eq!(checked.epochs, restarts + 1, "the checker saw every epoch");
    within_5_percent("the resident consumer's RSS", start_usage.0, end_usage.0);
    within_5_percent(
        "the resident consumer's fds",
        start_usage.1 as u64,
        end_usage.1 as u64,
    );
    within_5_percent("the producer's RSS", producer_start.0, producer_end.0);
    within_5_percent(
        "the producer's fds",
        producer_start.1 as u64,
        producer_end.1 as u64,
    );
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}

#[test]
fn soak_short() {
    soak(
        Duration::from_secs(8),
        Duration::from_secs(1),
        Duration::from_secs(3),
    );
}

#[test]
#[ignore = "long: 60 s, or FRAMEPIPE_SOAK_SECS (run by .ci/run in release)"]
fn soak_long() {
    let secs = std::env::var("FRAMEPIPE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    soak(
        Duration::from_secs(secs),
        Duration::from_secs(5),
        Duration::from_secs(20),
    );
}
