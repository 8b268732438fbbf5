//! `consumer stats` against producers: verification, JSON shape, several consumers at once,
//! how a run ends (producer stops, SIGINT).

mod common;

use common::{Producer, Script, TestStream, consumer, expect, spawn_consumer};
use frame_vocab::{FrameFormat, PixelFormat};
use nix::sys::signal::Signal;

/// Not a test: where the scripted producer's child process starts (see `common`).
#[test]
fn __role_entry() {
    common::role_entry();
}

const KEYS: [&str; 9] = [
    "frames",
    "seconds",
    "fps",
    "skipped",
    "torn",
    "corrupt",
    "restarts",
    "handoff_us",
    "capture_us",
];

fn json(stdout: &str) -> serde_json::Value {
    let line = stdout.trim();
    assert_eq!(
        line.lines().count(),
        1,
        "one JSON object on stdout: {stdout:?}"
    );
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

fn assert_contract_keys(stdout: &str) {
    let mut at = 0;
    for key in KEYS {
        let needle = format!("\"{key}\":");
        let found = stdout[at..].find(&needle);
        assert!(found.is_some(), "{key} missing or out of order: {stdout}");
        at += found.unwrap();
    }
    let value = json(stdout);
    for histogram in ["handoff_us", "capture_us"] {
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(value[histogram][p].is_number(), "{histogram}.{p}: {stdout}");
        }
    }
}

fn bgra(w: u32, h: u32) -> FrameFormat {
    FrameFormat::new(w, h, PixelFormat::Bgra).unwrap()
}

#[test]
fn verify_json_against_an_unpaced_producer() {
    let stream = TestStream::new("c");
    let _producer = Producer::start(&stream, &Script::pattern(bgra(640, 480), "moving", 0.0));
    let out = consumer(&[
        "stats",
        "--stream",
        stream.as_str(),
        "--frames",
        "300",
        "--verify",
        "--json",
    ]);
    out.assert_code(0);
    let stdout = out.stdout_text();
    assert_contract_keys(&stdout);
    let value = json(&stdout);
    assert_eq!(value["frames"], 300);
    assert_eq!(value["torn"], 0, "{stdout}");
    assert_eq!(value["corrupt"], 0, "{stdout}");
    assert_eq!(value["restarts"], 0);
    assert_eq!(value["verified"], true);
    assert_eq!(value["end"], "done");
    assert!(value["fps"].as_f64().unwrap() > 0.0);
}

#[test]
fn verify_catches_frames_that_are_not_the_pattern() {
    // Static bars carry no seq stamp: every frame fails verification, so --verify can fail.
    let stream = TestStream::new("c");
    let _producer = Producer::start(&stream, &Script::pattern(bgra(320, 240), "bars", 200.0));
    let out = consumer(&[
        "stats",
        "--stream",
        stream.as_str(),
        "--frames",
        "20",
        "--verify",
        "--json",
    ]);
    out.assert_code(0);
    let value = json(&out.stdout_text());
    assert_eq!(value["torn"], 20, "{value}");
}

#[test]
fn three_consumers_at_once_all_verify() {
    let stream = TestStream::new("c");
    let script = Script::pattern(bgra(640, 360), "moving", 0.0)
        .with(&["--seats", "3"])
        .gated();
    let mut producer = Producer::start(&stream, &script);
    let args = [
        "stats",
        "--stream",
        stream.as_str(),
        "--frames",
        "200",
        "--verify",
        "--json",
    ];
    let consumers: Vec<_> = (0..3).map(|_| spawn_consumer(&args)).collect();
    for _ in 0..3 {
        producer.expect("consumer pid");
    }
    producer.go();
    for c in consumers {
        let out = c.finish();
        out.assert_code(0);
        let value = json(&out.stdout_text());
        assert_eq!(value["frames"], 200);
        assert_eq!(value["torn"], 0, "{value}");
        assert_eq!(value["corrupt"], 0, "{value}");
    }
}

#[test]
fn summary_when_the_producer_stops() {
    let stream = TestStream::new("c");
    let script = Script::pattern(bgra(160, 120), "moving", 500.0)
        .with(&["--frames", "50"])
        .gated();
    let mut producer = Producer::start(&stream, &script);
    let c = spawn_consumer(&["stats", "--stream", stream.as_str(), "--verify", "--json"]);
    producer.expect("consumer pid");
    producer.go();
    // The frame limit ends the stream: the producer stops on its own.
    producer.expect("stopped (FrameLimit): 50 frames");
    let out = c.finish();
    out.assert_code(0);
    let value = json(&out.stdout_text());
    assert_eq!(value["end"], "producer-stopped");
    let frames = value["frames"].as_u64().unwrap();
    let skipped = value["skipped"].as_u64().unwrap();
    assert!(frames >= 1 && frames + skipped <= 50, "{value}");
    assert_eq!(value["torn"], 0);
}

#[test]
fn sigint_prints_the_summary_and_exits_130() {
    let stream = TestStream::new("c");
    let _producer = Producer::start(&stream, &Script::pattern(bgra(160, 120), "moving", 200.0));
    let c = spawn_consumer(&["stats", "--stream", stream.as_str()]);
    // A progress line means it is measuring.
    expect(&c, " fps ");
    c.signal(Signal::SIGINT);
    let out = c.finish();
    out.assert_code(130);
    let stdout = out.stdout_text();
    assert!(stdout.contains("frames in"), "human summary: {stdout}");
    assert!(stdout.contains("handoff latency"), "{stdout}");
}

#[test]
fn follows_a_format_change() {
    let stream = TestStream::new("c");
    let producer = Producer::start(&stream, &Script::pattern(bgra(160, 120), "moving", 300.0));
    let c = spawn_consumer(&["stats", "--stream", stream.as_str(), "--verify", "--json"]);
    expect(&c, " fps ");
    // SetFormat through the real producer: its source switches, the region is replaced.
    let i420 = FrameFormat::new(320, 240, PixelFormat::I420).unwrap();
    producer.command(&stream, &control_msg::Command::SetFormat(i420));
    producer.expect("source format 320x240 i420");
    expect(&c, "reattached");
    expect(&c, " fps ");
    producer.shutdown(&stream);
    let out = c.finish();
    out.assert_code(0);
    let value = json(&out.stdout_text());
    assert_eq!(value["restarts"], 1, "{value}");
    assert_eq!(value["format"], "320x240 i420");
    assert_eq!(value["torn"], 0, "{value}");
}

#[test]
fn every_wait_strategy_verifies() {
    let stream = TestStream::new("c");
    let _producer = Producer::start(&stream, &Script::pattern(bgra(320, 240), "moving", 500.0));
    for strategy in ["block", "spin", "spin-then-block"] {
        let out = consumer(&[
            "stats",
            "--stream",
            stream.as_str(),
            "--frames",
            "50",
            "--verify",
            "--json",
            "--strategy",
            strategy,
        ]);
        out.assert_code(0);
        let value = json(&out.stdout_text());
        assert_eq!(value["frames"], 50, "{strategy}");
        assert_eq!(value["torn"], 0, "{strategy}: {value}");
    }
}
