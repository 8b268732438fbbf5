//! `consumer stats` against producers: verification, JSON shape, several consumers at once,
//! how a run ends (producer stops, SIGINT).

mod common;

use common::{Event, Proc, Script, TestProducer, TestStream, consumer};
use frame_vocab::PatternKind;
use frame_vocab::{FrameFormat, PixelFormat};
use nix::sys::signal::Signal;

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
    let _producer = TestProducer::start(
        &stream,
        Script::pattern(bgra(640, 480), PatternKind::Moving, 0.0),
    );
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
    let _producer = TestProducer::start(
        &stream,
        Script::pattern(bgra(320, 240), PatternKind::Bars, 200.0),
    );
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
    let mut script = Script::pattern(bgra(640, 360), PatternKind::Moving, 0.0);
    script.seats = 3;
    script.wait_for_hellos = 3;
    let producer = TestProducer::start(&stream, script);
    let args = [
        "stats",
        "--stream",
        stream.as_str(),
        "--frames",
        "200",
        "--verify",
        "--json",
    ];
    let consumers: Vec<_> = (0..3).map(|_| Proc::consumer(&args)).collect();
    for _ in 0..3 {
        producer.expect(|e| matches!(e, Event::Hello(_)));
    }
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
    let mut script = Script::pattern(bgra(160, 120), PatternKind::Moving, 500.0);
    script.wait_for_hellos = 1;
    script.phases[0].count = Some(50);
    let producer = TestProducer::start(&stream, script);
    let c = Proc::consumer(&["stats", "--stream", stream.as_str(), "--verify", "--json"]);
    producer.expect(|e| *e == Event::Done);
    let published = producer.stop();
    assert_eq!(published, 50);
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
    let _producer = TestProducer::start(
        &stream,
        Script::pattern(bgra(160, 120), PatternKind::Moving, 200.0),
    );
    let c = Proc::consumer(&["stats", "--stream", stream.as_str()]);
    // A progress line means it is measuring.
    c.expect_stderr(" fps ");
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
    let mut script = Script::pattern(bgra(160, 120), PatternKind::Moving, 300.0);
    script.wait_for_hellos = 1;
    script.phases[0].count = Some(30);
    let mut second = script.phases[0].clone();
    second.format = FrameFormat::new(320, 240, PixelFormat::I420).unwrap();
    second.count = Some(30);
    script.phases.push(second);
    let producer = TestProducer::start(&stream, script);
    let c = Proc::consumer(&["stats", "--stream", stream.as_str(), "--verify", "--json"]);
    producer.expect(|e| *e == Event::Done);
    producer.stop();
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
    let _producer = TestProducer::start(
        &stream,
        Script::pattern(bgra(320, 240), PatternKind::Moving, 500.0),
    );
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
