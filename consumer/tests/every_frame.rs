//! Every-frame delivery end to end, with the real producer (the consumer binary's hidden
//! `__producer` subcommand runs the producer's own command line and library) and the real
//! consumer: clips through `pipe` and `record` bit-exact, a stalled consumer demoted while
//! the other consumer and the producer go on, a killed one reclaimed, a stalled producer
//! stopped by SIGTERM, and `--no-backpressure` refusing before a seat is taken.

mod common;

use std::process::Command;

use common::{
    CONSUMER, ChildProc, TestStream, expect, ffmpeg_clip, have, read_y4m, spawn_consumer,
    whole_frames,
};
use frame_vocab::testing::Lcg;
use frame_vocab::{FrameFormat, PixelFormat};
use nix::sys::signal::Signal;
use shm_frames::testing::{Output, TempDir};

/// `consumer __producer --stream NAME args...` (stdin a pipe held open until fed); killed on
/// drop.
fn producer(stream: &TestStream, args: &[&str]) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["__producer", "--stream", stream.as_str()])
        .args(args)
        .env(consumer::demo::PARENT_ENV, std::process::id().to_string());
    ChildProc::spawn_with(cmd, Output::Bytes)
}

/// `count` frames of `format`, each different (pseudo-random bytes, the index up front).
fn clip(format: FrameFormat, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Lcg(0x5eed);
    (0..count)
        .map(|index| {
            let mut frame: Vec<u8> = (0..format.frame_bytes())
                .map(|_| rng.next() as u8)
                .collect();
            frame[..8].copy_from_slice(&(index as u64).to_le_bytes());
            frame
        })
        .collect()
}

fn json(out: &common::Finished) -> serde_json::Value {
    serde_json::from_str(out.stdout_text().trim())
        .unwrap_or_else(|e| panic!("{e}: {:?}", out.stdout_text()))
}

/// The frame count of a progress line of `consumer stats` ("  1.5 s   123 frames ...").
fn progress_frames(line: &str) -> u64 {
    line.split_whitespace()
        .zip(line.split_whitespace().skip(1))
        .find_map(|(n, word)| (word == "frames").then(|| n.parse().ok()).flatten())
        .unwrap_or_else(|| panic!("no frame count in {line:?}"))
}

#[test]
fn a_900_frame_raw_clip_through_pipe_every_frame_comes_out_whole() {
    let format = FrameFormat::new(96, 64, PixelFormat::Bgra).unwrap();
    let frames = clip(format, 900);
    let stream = TestStream::new("ef");
    let mut producer = producer(
        &stream,
        &[
            "--size", "96x64", "--format", "bgra", "--source", "raw:-", "--fps", "0",
        ],
    );
    let pipe = spawn_consumer(&[
        "pipe",
        "--every-frame",
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
    ]);
    // Frame 1 only once the pipe sits on its seat: the guarantee starts at its first take.
    expect(&pipe, "attached");
    producer.feed(frames.concat());
    let out = pipe.finish();
    out.assert_code(0);
    producer.finish().assert_code(0);
    let got = whole_frames(&out.stdout, format);
    assert_eq!(got.len(), 900, "frames piped");
    assert!(
        got == frames,
        "the piped frames are the clip, in order, bit-exact"
    );
}

#[test]
fn record_every_frame_of_an_i420_clip_is_bit_exact() {
    if !have("ffmpeg") {
        println!("SKIPPED: ffmpeg not found");
        return;
    }
    let clip = ffmpeg_clip(160, 120, 120);
    let stream = TestStream::new("er");
    let dir = TempDir::new("ef-rec");
    let file = dir.join("out.y4m");
    // A Y4M source makes its region once it has read the header; `--wait-seats 1` then
    // holds frame 1 back until the recorder sits on its seat.
    let mut producer = producer(
        &stream,
        &[
            "--source",
            "y4m:-",
            "--fps",
            "0",
            "--wait-seats",
            "1",
            "--wait",
            "60s",
        ],
    );
    producer.feed(clip.y4m.clone());
    let record = spawn_consumer(&[
        "record",
        file.to_str().unwrap(),
        "--every-frame",
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
    ]);
    record.finish().assert_code(0);
    producer.finish().assert_code(0);
    let bytes = std::fs::read(&file).unwrap();
    let (_, frames) = read_y4m(&bytes);
    assert_eq!(frames.len(), clip.frames.len());
    assert!(frames == clip.frames, "every frame, bit-exact, in order");
}

#[test]
fn a_stopped_consumer_is_demoted_while_the_other_and_the_producer_go_on() {
    let stream = TestStream::new("ed");
    let producer = producer(
        &stream,
        &[
            "--size",
            "160x120",
            "--fps",
            "200",
            "--seats",
            "2",
            "--stall-timeout",
            "300ms",
        ],
    );
    expect(&producer, "ready:");
    let stats = |every: bool| {
        let mut args = vec![
            "stats",
            "--json",
            "--stream",
            stream.as_str(),
            "--wait",
            "60s",
        ];
        if every {
            args.push("--every-frame");
        }
        spawn_consumer(&args)
    };
    let every = stats(true);
    let newest = stats(false);
    expect(&every, " fps ");
    expect(&newest, " fps ");

    // The newest-frame consumer stops: nobody waits for it; the every-frame one goes on.
    newest.signal(Signal::SIGSTOP);
    let before = progress_frames(&expect(&every, " fps "));
    let after = progress_frames(&expect(&every, " fps "));
    assert!(
        after > before,
        "the every-frame consumer goes on: {before} then {after}"
    );
    newest.signal(Signal::SIGCONT);

    // The every-frame consumer stops: the producer waits out the stall timeout, demotes
    // it, and goes on for the newest-frame one.
    every.signal(Signal::SIGSTOP);
    expect(&producer, "took nothing for the stall timeout");
    let before = progress_frames(&expect(&newest, " fps "));
    let after = progress_frames(&expect(&newest, " fps "));
    assert!(
        after > before,
        "the newest-frame consumer goes on: {before} then {after}"
    );
    // Continued, it learns of the demotion from its own delivery word.
    every.signal(Signal::SIGCONT);
    expect(&every, "every-frame delivery lost");

    producer.signal(Signal::SIGTERM);
    let every = every.finish();
    every.assert_code(0);
    let value = json(&every);
    assert_eq!(value["delivery"], "every-frame", "{value}");
    assert!(value["delivery_lost_at"].is_u64(), "{value}");
    let newest = newest.finish();
    newest.assert_code(0);
    let value = json(&newest);
    assert_eq!(value["delivery"], "newest", "{value}");
    assert!(value["delivery_lost_at"].is_null(), "{value}");
    producer.finish().assert_code(0);
}

#[test]
fn a_killed_every_frame_consumer_is_reclaimed_and_the_clip_finishes() {
    let format = FrameFormat::new(96, 64, PixelFormat::Bgra).unwrap();
    let frames = clip(format, 400);
    let stream = TestStream::new("ek");
    // No stall timeout: only the reclaim of the dead seat can let the producer go on.
    let mut producer = producer(
        &stream,
        &[
            "--size",
            "96x64",
            "--format",
            "bgra",
            "--source",
            "raw:-",
            "--fps",
            "200",
            "--stall-timeout",
            "none",
        ],
    );
    let mut stats = spawn_consumer(&[
        "stats",
        "--every-frame",
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
    ]);
    expect(&stats, "attached");
    producer.feed(frames.concat());
    // Mid-clip (2 s of frames at 200 fps; the first progress line comes after 0.5 s), the
    // consumer is stopped, so the producer waits for it, then killed.
    expect(&stats, " fps ");
    stats.signal(Signal::SIGSTOP);
    stats.kill9();
    expect(&producer, "reclaimed the seat of a dead consumer");
    let out = producer.finish();
    out.assert_code(0);
    assert!(
        out.stderr.contains("stopped (EndOfInput): 400 frames"),
        "the whole clip went out: {}",
        out.stderr
    );
}

#[test]
fn sigterm_stops_a_producer_stalled_on_an_every_frame_consumer() {
    let stream = TestStream::new("et");
    let producer = producer(
        &stream,
        &["--size", "160x120", "--fps", "0", "--stall-timeout", "none"],
    );
    expect(&producer, "ready:");
    let every = spawn_consumer(&[
        "stats",
        "--json",
        "--every-frame",
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
    ]);
    expect(&every, " fps ");
    // Stopped, it takes nothing: the producer waits for it for as long as it lives.
    every.signal(Signal::SIGSTOP);
    producer.signal(Signal::SIGTERM);
    let out = producer.finish();
    out.assert_code(0);
    assert!(out.stderr.contains("stopped (Signal)"), "{}", out.stderr);
    // The frame it waited with was never published: the consumer, continued, takes the
    // last frame that was and ends with nothing missing.
    every.signal(Signal::SIGCONT);
    let every = every.finish();
    every.assert_code(0);
    let value = json(&every);
    assert_eq!(value["end"], "producer-stopped", "{value}");
    assert!(value["delivery_lost_at"].is_null(), "{value}");
    assert_eq!(value["skipped"], 0, "{value}");
}

#[test]
fn no_backpressure_refuses_every_frame_consumers_without_taking_a_seat() {
    let stream = TestStream::new("en");
    let producer = producer(&stream, &["--size", "160x120", "--no-backpressure"]);
    expect(&producer, "ready:");
    let out = common::consumer(&[
        "pipe",
        "--every-frame",
        "--stream",
        stream.as_str(),
        "--wait",
        "10s",
    ]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("does not offer every-frame delivery"),
        "{}",
        out.stderr
    );
    // The stream's only seat is still free.
    let stats = common::consumer(&["stats", "--frames", "3", "--stream", stream.as_str()]);
    stats.assert_code(0);
}
