//! Waiting to attach, against the real producer: within `--wait` every failure to attach is
//! retried, garbage where a region should be included, and only the deadline ends the wait,
//! with one error line naming the last reason and DESIGN.md's exit code (3: no producer).

mod common;

use std::process::Command;

use common::{CONSUMER, ChildProc, Finished, TestStream, consumer, expect, spawn_consumer};
use nix::sys::signal::Signal;
use shm_frames::testing::Output;

/// `consumer __producer --stream NAME --size 64x48 --fps 200`; killed on drop.
fn producer(stream: &TestStream) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["__producer", "--stream", stream.as_str()])
        .args(["--size", "64x48", "--fps", "200"])
        // It dies with the test process even if that is killed before the guard runs.
        .env(consumer::demo::PARENT_ENV, std::process::id().to_string());
    ChildProc::spawn_with(cmd, Output::Bytes)
}

/// Puts 64 KiB of garbage (no magic, not zero) where the stream's region would be, as a new
/// object: an object someone may still map is never truncated.
fn write_garbage(stream: &TestStream) {
    let path = stream.shm_path();
    let _ = std::fs::remove_file(&path);
    let mut x = u64::from(std::process::id()) | 1;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            // xorshift64: any bytes will do, as long as the first are not framepipe's magic.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 1
        })
        .collect();
    std::fs::write(&path, bytes).expect("write garbage into /dev/shm");
}

fn json(out: &Finished) -> serde_json::Value {
    serde_json::from_str(out.stdout_text().trim())
        .unwrap_or_else(|e| panic!("{e}: {:?}", out.stdout_text()))
}

/// The one error line: starts with "consumer: error:"; there is exactly one.
fn error_line(stderr: &str) -> String {
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("consumer: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_owned()
}

#[test]
fn a_waiting_consumer_attaches_once_a_producer_replaces_garbage() {
    let stream = TestStream::new("g");
    write_garbage(&stream);
    let stats = spawn_consumer(&[
        "stats",
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
        "--frames",
        "20",
        "--verify",
        "--json",
    ]);
    // It saw the garbage and goes on waiting (it used to end at once).
    expect(&stats, "not a framepipe region");
    let _producer = producer(&stream);
    let out = stats.finish();
    out.assert_code(0);
    let value = json(&out);
    assert_eq!(value["frames"], 20, "{value}");
    assert_eq!(value["torn"], 0, "{value}");
}

#[test]
fn a_consumer_that_lost_its_producer_reattaches_past_garbage() {
    let stream = TestStream::new("g");
    let first = producer(&stream);
    let stats = spawn_consumer(&[
        "stats",
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
        "--verify",
        "--json",
    ]);
    expect(&stats, " fps ");
    first.signal(Signal::SIGKILL);
    let _ = first.finish();
    write_garbage(&stream);
    expect(&stats, "not a framepipe region");
    let second = producer(&stream);
    expect(&stats, "reattached");
    second.signal(Signal::SIGTERM);
    let out = stats.finish();
    out.assert_code(0);
    second.finish().assert_code(0);
    let value = json(&out);
    assert_eq!(value["restarts"], 1, "{value}");
    assert_eq!(value["torn"], 0, "{value}");
    assert_eq!(value["end"], "producer-stopped");
}

#[test]
fn garbage_until_the_deadline_is_one_error_naming_it() {
    let stream = TestStream::new("g");
    write_garbage(&stream);
    let out = consumer(&["stats", "--stream", stream.as_str(), "--wait", "300ms"]);
    out.assert_code(3);
    let line = error_line(&out.stderr);
    let lead = format!("no producer for stream {} within 300ms", stream.as_str());
    assert!(line.contains(&lead), "{line}");
    assert!(
        line.contains("last reason: not a framepipe region"),
        "{line}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_lost_producer_replaced_by_garbage_ends_with_the_summary_and_the_reason() {
    let stream = TestStream::new("g");
    let first = producer(&stream);
    let stats = spawn_consumer(&[
        "stats",
        "--stream",
        stream.as_str(),
        "--wait",
        "1s",
        "--json",
    ]);
    expect(&stats, " fps ");
    first.signal(Signal::SIGKILL);
    let _ = first.finish();
    write_garbage(&stream);
    let out = stats.finish();
    out.assert_code(3);
    assert_eq!(json(&out)["end"], "producer-lost");
    let line = error_line(&out.stderr);
    assert!(
        line.contains("is gone and none came back within 1s"),
        "{line}"
    );
    assert!(
        line.contains("last reason: not a framepipe region"),
        "{line}"
    );
}
