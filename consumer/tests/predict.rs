//! `--strategy predict` against real producers, beside `block` consumers of the same
//! stream: the same frames (compared by seq, never by time) at a steady rate, across a rate
//! change and a pause, unpaced (`--fps 0`), and no spinning while no frame comes (asserted
//! from the consumer's CPU time, which the kernel counts exactly). Bad budgets are usage
//! errors.

mod common;

use std::time::{Duration, Instant};

use common::{HANG, Producer, Script, TestStream, consumer, spawn_consumer};
use control_msg::Command as Ctl;
use frame_vocab::{FrameFormat, PixelFormat};
use shm_frames::testing::ChildProc;

/// Not a test: where the scripted producer's child process starts (see `common`).
#[test]
fn __role_entry() {
    common::role_entry();
}

fn format() -> FrameFormat {
    FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap()
}

/// The seqs of the moving-pattern frames a `consumer pipe` wrote.
fn seqs(stdout: &[u8]) -> Vec<u64> {
    let format = format();
    assert_eq!(stdout.len() % format.frame_bytes(), 0, "whole frames only");
    stdout
        .chunks(format.frame_bytes())
        .map(|frame| frame_vocab::decode_seq(format, frame).expect("a stamped frame"))
        .collect()
}

/// Asserts that `predict` took every frame `block` took (up to the last one `predict`
/// took, when one of them stopped after a number of frames), and returns how many.
fn assert_takes_what_block_takes(predict: &[u64], block: &[u64], what: &str) -> usize {
    assert!(
        !block.is_empty() && !predict.is_empty(),
        "{what}: no frames"
    );
    assert!(
        predict.windows(2).all(|w| w[0] < w[1]),
        "{what}: predict took a frame twice or out of order"
    );
    let last = *predict.last().unwrap();
    let missed: Vec<u64> = block
        .iter()
        .copied()
        .filter(|seq| *seq <= last && predict.binary_search(seq).is_err())
        .collect();
    assert!(
        missed.is_empty(),
        "{what}: predict missed {missed:?} that block took"
    );
    block.iter().filter(|seq| **seq <= last).count()
}

/// CPU time (ns) the kernel has charged to every thread of process `pid` so far (the first
/// field of each thread's schedstat: exact, not sampled in ticks).
fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the consumer's threads");
    tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// `consumer pipe --every-frame` with `strategy`: every frame from its first take, so what
/// the two strategies take can be compared however loaded the machine is (newest-frame
/// consumers may each skip different frames). A wait strategy that lost a wake would
/// stall the producer past its stall timeout and end the pipe with exit code 1.
fn pipe(stream: &TestStream, strategy: &[&str], frames: u64) -> ChildProc {
    let frames = frames.to_string();
    let mut args = vec![
        "pipe",
        "--every-frame",
        "--stream",
        stream.as_str(),
        "--frames",
        &frames,
    ];
    args.extend(strategy);
    spawn_consumer(&args)
}

/// A steady 30 fps: `predict`, and `predict` with a zero budget (which is `block`), take
/// every frame a `block` consumer takes.
#[test]
fn at_a_steady_rate_predict_takes_every_frame_block_takes() {
    let stream = TestStream::new("pr-steady");
    let frames = 90u64;
    let script = Script::pattern(format(), "moving", 30.0)
        .with(&["--seats", "3", "--wait-seats", "3"])
        .with(&["--frames", &frames.to_string()]);
    let producer = Producer::start(&stream, &script);
    let block = pipe(&stream, &["--strategy", "block"], frames);
    let predict = pipe(&stream, &["--strategy", "predict"], frames);
    let zero = pipe(
        &stream,
        &["--strategy", "predict", "--spin-budget", "0%"],
        frames,
    );
    producer.expect("consumer(s) live: publishing");
    let (block, predict, zero) = (block.finish(), predict.finish(), zero.finish());
    for run in [&block, &predict, &zero] {
        run.assert_code(0);
    }
    let block = seqs(&block.stdout);
    let n = assert_takes_what_block_takes(&seqs(&predict.stdout), &block, "predict");
    assert!(n > 0);
    assert_takes_what_block_takes(&seqs(&zero.stdout), &block, "predict --spin-budget 0%");
}

/// The rate changes (`SetFps`), then the producer pauses and resumes: no frame that a
/// `block` consumer takes is missed, nothing hangs, and while the paused stream sends
/// nothing the `predict` consumer does not spin.
#[test]
fn across_a_rate_change_and_a_pause_nothing_is_missed_and_nothing_spins() {
    let stream = TestStream::new("pr-change");
    let script = Script::pattern(format(), "moving", 50.0)
        .with(&["--seats", "2", "--wait-seats", "2"])
        .reporting(10);
    let producer = Producer::start(&stream, &script);
    let frames = 80u64;
    let block = pipe(&stream, &["--strategy", "block"], frames);
    let predict = pipe(&stream, &["--strategy", "predict"], frames);
    producer.expect("consumer(s) live: publishing");
    // It learns 50 fps over 20 frames before the change, and 20 fps over at least 10 after
    // it (the second report after the change's line).
    producer.expect("filled frame 20");
    producer.command(&stream, &Ctl::SetFps { fps: 20.0 });
    producer.expect("SetFps 20");
    producer.expect("filled frame");
    producer.expect("filled frame");
    producer.command(&stream, &Ctl::Pause);
    producer.expect("paused");
    // The frame due next is long past its window by now (pacing, not synchronisation).
    std::thread::sleep(Duration::from_millis(200));
    let (cpu0, wall0) = (cpu_ns(predict.pid()), Instant::now());
    // How long the pause lasts is the scenario's own pacing.
    std::thread::sleep(Duration::from_millis(800));
    let (cpu, wall) = (cpu_ns(predict.pid()) - cpu0, wall0.elapsed());
    producer.command(&stream, &Ctl::Resume);
    producer.expect("resumed");
    let (block, predict) = (block.finish(), predict.finish());
    block.assert_code(0);
    predict.assert_code(0);
    assert_takes_what_block_takes(&seqs(&predict.stdout), &seqs(&block.stdout), "predict");
    assert!(
        Duration::from_nanos(cpu) < wall / 20,
        "a paused stream cost the predict consumer {cpu} ns of CPU over {wall:?}"
    );
    drop(producer);
}

/// An unpaced producer (`--fps 0`) has no rhythm: `predict` waits as `block` does and
/// still ends after its frames.
#[test]
fn an_unpaced_stream_is_followed_to_the_end() {
    let stream = TestStream::new("pr-fps0");
    let script = Script::pattern(format(), "moving", 0.0);
    let _producer = Producer::start(&stream, &script);
    let run = consumer(&[
        "stats",
        "--stream",
        stream.as_str(),
        "--frames",
        "300",
        "--strategy",
        "predict",
        "--json",
    ]);
    run.assert_code(0);
    let value: serde_json::Value = serde_json::from_str(run.stdout_text().trim()).unwrap();
    assert_eq!(value["frames"], 300);
    assert_eq!(value["strategy"], "predict");
    assert!(value["cpu_percent"].is_number(), "{value}");
    assert!(HANG > Duration::ZERO);
}

/// A budget above a whole core, or not a number, is a usage error (exit 2), before any
/// attach.
#[test]
fn a_spin_budget_above_100_percent_is_a_usage_error() {
    for bad in ["101%", "150", "-5%", "fast"] {
        let budget = format!("--spin-budget={bad}");
        let run = consumer(&[
            "stats",
            "--stream",
            "pr-none",
            "--strategy",
            "predict",
            &budget,
        ]);
        run.assert_code(2);
        assert!(
            run.stderr.contains("--spin-budget"),
            "{bad}: {}",
            run.stderr
        );
    }
}
