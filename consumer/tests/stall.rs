//! A stalled producer, floods and garbage, with the real binaries: a SIGSTOPped producer
//! keeps its consumers' seats (scenario 6); and defect 4: a flood of commands never starves
//! the producer's heartbeat, a consumer whose seat word garbage turned `Free` claims a seat
//! anew, and a consumer waiting for a dead producer does not map its slots on each attempt.
//! Each checks: no panic (exit 101), no hang past its deadline, no torn frame, and no
//! object of the stream left behind.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_msg::{Command as Ctl, CommandSender};
use frame_vocab::monotonic_ns;
use nix::sys::signal::Signal;
use shm_frames::offsets;
use shm_frames::testing::{ChildProc, HANG, RawRegion, TestStream, leftovers};

const CONSUMER: &str = env!("CARGO_BIN_EXE_consumer");

/// A producer of `stream` (the consumer binary's hidden producer subcommand), once ready.
fn producer(stream: &TestStream, args: &[&str]) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["__producer", "--stream", stream.as_str(), "--size", "64x48"])
        .args(args);
    let child = ChildProc::spawn(cmd);
    child.expect_contains("ready: stream", HANG);
    child
}

/// `consumer stats --json --verify ARGS` on `stream`, running, once it has attached.
fn stats(stream: &TestStream, args: &[&str]) -> (ChildProc, String) {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["stats", "--stream", stream.as_str(), "--json", "--verify"])
        .args(args);
    let child = ChildProc::spawn(cmd);
    let attached = child.expect_contains(" attached", HANG);
    (child, attached)
}

/// The JSON summary among a consumer's lines.
fn summary(lines: &[String]) -> serde_json::Value {
    let line = lines
        .iter()
        .find(|l| l.contains("\"frames\""))
        .expect("a JSON summary");
    serde_json::from_str(line).unwrap()
}

/// The value of `key=` in a tracing line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

/// Waits for `child` to print a line with `needle` that comes after a line showing more
/// frames than `after` (the stats progress lines count frames).
fn frames_beyond(child: &ChildProc, after: u64) -> u64 {
    loop {
        let line = child.next_line(HANG).expect("the consumer runs");
        let frames = line
            .split("frames")
            .next()
            .and_then(|head| head.split_whitespace().last())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(frames) = frames.filter(|&n| n > after) {
            return frames;
        }
    }
}

#[test]
fn a_stopped_producer_is_reported_stalled_and_its_consumers_keep_their_seats() {
    let stream = TestStream::new("pstop");
    let mut source = producer(&stream, &["--fps", "100", "--seats", "2"]);
    let (mut consumer, attached) = stats(&stream, &["--duration", "120s", "--wait", "5s"]);
    let (seat, epoch) = (field(&attached, "seat"), field(&attached, "epoch"));
    let before = frames_beyond(&consumer, 0);

    source.signal(Signal::SIGSTOP);
    let stalled = consumer.expect_contains("stalled", HANG);
    // A consumer that comes while it is stalled attaches (the producer lives: its lock is
    // held) and waits like the others.
    let (mut late, _) = stats(&stream, &["--frames", "5", "--wait", "5s"]);
    late.expect_contains("stalled", HANG);
    // The stop's length is the scenario (the stall shows after the 1 s heartbeat timeout,
    // then 2 s more: 3 s in all), not a synchronisation: the report was awaited above.
    std::thread::sleep(Duration::from_secs(2));
    source.signal(Signal::SIGCONT);
    consumer.expect_contains("the producer resumed", HANG);
    let (late_lines, code) = late.lines_to_exit();
    let late_json = summary(&late_lines);
    assert_eq!(code, Some(0), "{late_json}");
    assert_eq!(late_json["frames"], 5, "{late_json}");
    assert_eq!(late_json["restarts"], 0, "{late_json}");
    // Frames flow again on the same seat.
    let resumed = frames_beyond(&consumer, before + 10);
    assert!(resumed > before);

    consumer.signal(Signal::SIGINT);
    let (lines, code) = consumer.lines_to_exit();
    let json = summary(&lines);
    assert_eq!(code, Some(130), "{json}");
    assert_eq!(json["torn"], 0, "{json}");
    assert_eq!(json["restarts"], 0, "no new attach: {json}");
    assert!(json["stalls"].as_u64().unwrap() >= 1, "{json}");
    assert_eq!(field(&stalled, "seat"), seat, "{stalled}");
    assert_eq!(field(&stalled, "epoch"), epoch, "{stalled}");
    for line in &lines {
        assert!(!line.contains("reattached"), "a new attach: {line}");
        assert!(!line.contains("waiting for the producer"), "lost: {line}");
    }

    source.terminate();
    let (producer_lines, code) = source.lines_to_exit();
    assert_eq!(code, Some(0), "{producer_lines:#?}");
    let hellos = producer_lines
        .iter()
        .filter(|l| l.contains(&format!("consumer pid {} on seat", consumer.pid())))
        .count();
    assert_eq!(hellos, 1, "one attach, one Hello: {producer_lines:#?}");
    let late_hellos = producer_lines
        .iter()
        .filter(|l| l.contains(&format!("consumer pid {} on seat", late.pid())))
        .count();
    assert_eq!(late_hellos, 1, "{producer_lines:#?}");
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}

#[test]
fn a_flood_of_commands_never_starves_the_heartbeat() {
    let stream = TestStream::new("flood");
    let mut source = producer(&stream, &["--fps", "100", "--seats", "2"]);
    let (mut consumer, _) = stats(&stream, &["--duration", "120s", "--wait", "5s"]);
    let raw = RawRegion::open(&stream);
    let flooding = Arc::new(AtomicBool::new(true));
    let flooders: Vec<_> = (0..3)
        .map(|i| {
            let (name, flooding) = (stream.name.clone(), Arc::clone(&flooding));
            std::thread::spawn(move || {
                let mut sender = CommandSender::open(&name).expect("the command queue");
                let mut sent = 0u64;
                let mut nonce = i << 32;
                while flooding.load(Ordering::Relaxed) {
                    nonce += 1;
                    // Ping: each one makes the service thread send on every seat's queue.
                    if sender.send(&Ctl::Ping { nonce }).is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    // The flood's length (3 s) and the sampling period (10 ms) are the scenario's pacing.
    let (mut samples, mut stale, mut oldest) = (0u32, 0u32, 0u64);
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        let beat = raw.read(offsets::HEARTBEAT, 8);
        let age = monotonic_ns().saturating_sub(beat);
        oldest = oldest.max(age);
        samples += 1;
        if age > shm_frames::HEARTBEAT_TIMEOUT.as_nanos() as u64 {
            stale += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    flooding.store(false, Ordering::Relaxed);
    let sent: u64 = flooders.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{sent} pings sent, {samples} heartbeat samples, oldest {oldest} ns");
    assert!(sent > 0);
    assert_eq!(
        stale, 0,
        "samples that saw the heartbeat older than the stall timeout (oldest {oldest} ns)"
    );

    consumer.signal(Signal::SIGINT);
    let (lines, code) = consumer.lines_to_exit();
    let json = summary(&lines);
    assert_eq!(code, Some(130), "{json}");
    assert_eq!(json["torn"], 0, "{json}");
    assert_eq!(json["restarts"], 0, "{json}");
    assert_eq!(
        json["stalls"], 0,
        "the producer never looked stalled: {json}"
    );
    source.terminate();
    let (producer_lines, code) = source.lines_to_exit();
    assert_eq!(code, Some(0), "{producer_lines:#?}");
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}

#[test]
fn a_seat_word_turned_free_by_garbage_is_noticed_and_the_seat_claimed_anew() {
    let stream = TestStream::new("seatfree");
    // One seat: the consumer must get that very seat back.
    let mut source = producer(&stream, &["--fps", "100", "--seats", "1"]);
    let (mut consumer, _) = stats(&stream, &["--duration", "120s", "--wait", "5s"]);
    let before = frames_beyond(&consumer, 0);
    let mut raw = RawRegion::open(&stream);
    let mine = raw.read(offsets::seat_word(0), 8);
    assert_eq!(mine & 0xffff_ffff, u64::from(consumer.pid()), "{mine:#x}");
    // Free, generation 7: the producer stops waking the seat and respecting its hold.
    raw.write(offsets::seat_word(0), 8, 7 << 32);
    consumer.expect_contains("not ours", HANG);
    consumer.expect_contains("reattached", HANG);
    let word = raw.read(offsets::seat_word(0), 8);
    assert_eq!(word & 0xffff_ffff, u64::from(consumer.pid()), "{word:#x}");
    assert_eq!(
        word >> 32 & 0xff_ffff,
        8,
        "claimed anew from the Free word: {word:#x}"
    );
    frames_beyond(&consumer, before + 10);

    consumer.signal(Signal::SIGINT);
    let (lines, code) = consumer.lines_to_exit();
    let json = summary(&lines);
    assert_eq!(code, Some(130), "{json}");
    assert_eq!(json["torn"], 0, "{json}");
    assert!(json["corrupt"].as_u64().unwrap() >= 1, "{json}");
    source.terminate();
    let (producer_lines, code) = source.lines_to_exit();
    assert_eq!(code, Some(0), "{producer_lines:#?}");
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}

/// Minor page faults of `pid` so far, from /proc/PID/stat (field 10).
fn minor_faults(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(7).unwrap().parse().unwrap()
}

#[test]
fn a_consumer_waiting_for_a_dead_producer_does_not_map_its_slots_again_and_again() {
    let stream = TestStream::new("nomap");
    // 1080p, three slots: about 6,000 pages of slots, which a full map would prefault.
    let mut cmd = Command::new(CONSUMER);
    cmd.args([
        "__producer",
        "--stream",
        stream.as_str(),
        "--size",
        "1920x1080",
    ])
    .args(["--fps", "30", "--seats", "1"]);
    let mut dead = ChildProc::spawn(cmd);
    dead.expect_contains("ready: stream", HANG);
    dead.kill9();
    assert_ne!(dead.reap().code(), Some(101));
    let slot_pages = 3 * 1920 * 1080 * 4 / 4096;

    let mut cmd = Command::new(CONSUMER);
    cmd.args([
        "stats",
        "--stream",
        stream.as_str(),
        "--json",
        "--wait",
        "60s",
    ]);
    // At debug level it logs every attempt to attach, the event the window is counted in.
    cmd.env("RUST_LOG", "consumer=debug");
    let mut waiting = ChildProc::spawn(cmd);
    waiting.expect_contains("is gone", HANG);
    let before = minor_faults(waiting.pid());
    // The window over which faults are counted: 10 more attempts to attach (about a
    // second: after a loss it looks again every slice).
    for _ in 0..10 {
        waiting.expect_contains("trying again", HANG);
    }
    let after = minor_faults(waiting.pid());
    assert!(
        after - before < slot_pages,
        "{} faults over 10 attempts to attach: the slots were mapped again",
        after - before
    );

    // A new producer replaces the leftover, and the consumer attaches.
    let mut next = producer(&stream, &["--fps", "100"]);
    waiting.expect_contains(" attached", HANG);
    waiting.signal(Signal::SIGINT);
    let (_, code) = waiting.lines_to_exit();
    assert_eq!(code, Some(130));
    next.terminate();
    assert_eq!(next.reap().code(), Some(0));
    assert_eq!(leftovers(&stream.name), Vec::<String>::new());
}
