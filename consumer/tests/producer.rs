//! The consumer against the real producer (the producer library run by the consumer binary's
//! hidden `__producer` subcommand, as `consumer demo` runs it): verification at full speed,
//! several consumers, Y4M and raw clips through real sources bit-exact, restarts.

mod common;

use std::process::Command;

use common::{
    CONSUMER, ChildProc, TempDir, TestStream, assert_in_order_subset, consumer, expect,
    ffmpeg_clip, have, read_y4m, spawn_consumer, whole_frames,
};
use frame_vocab::{FrameFormat, PixelFormat};
use nix::sys::signal::Signal;
use shm_frames::testing::Output;

/// `consumer __producer --stream NAME args...` (stdin a pipe held open until fed); killed on
/// drop.
fn producer(stream: &TestStream, args: &[&str]) -> ChildProc {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["__producer", "--stream", stream.as_str()])
        .args(args)
        // It dies with the test process even if that is killed before the guard runs.
        .env(consumer::demo::PARENT_ENV, std::process::id().to_string());
    ChildProc::spawn_with(cmd, Output::Bytes)
}

fn json(out: &common::Finished) -> serde_json::Value {
    serde_json::from_str(out.stdout_text().trim())
        .unwrap_or_else(|e| panic!("{e}: {:?}", out.stdout_text()))
}

#[test]
fn stats_verify_json_at_full_speed() {
    let stream = TestStream::new("c");
    let _producer = producer(&stream, &["--size", "640x480", "--fps", "0"]);
    let out = consumer(&[
        "stats",
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
        "--frames",
        "300",
        "--verify",
        "--json",
    ]);
    out.assert_code(0);
    let stdout = out.stdout_text();
    assert!(
        stdout.starts_with("{\"frames\":300,\"seconds\":"),
        "{stdout}"
    );
    for key in [
        "fps",
        "skipped",
        "torn",
        "corrupt",
        "restarts",
        "handoff_us",
        "capture_us",
    ] {
        assert!(stdout.contains(&format!("\"{key}\":")), "{key}: {stdout}");
    }
    let value = json(&out);
    assert_eq!(value["torn"], 0, "{value}");
    assert_eq!(value["corrupt"], 0, "{value}");
    assert!(value["handoff_us"]["p99"].is_number());
}

#[test]
fn three_consumers_on_three_seats_all_verify() {
    let stream = TestStream::new("c");
    let _producer = producer(
        &stream,
        &["--size", "640x360", "--fps", "0", "--seats", "3"],
    );
    let args = [
        "stats",
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
        "--frames",
        "200",
        "--verify",
        "--json",
    ];
    let consumers: Vec<_> = (0..3).map(|_| spawn_consumer(&args)).collect();
    for c in consumers {
        let out = c.finish();
        out.assert_code(0);
        let value = json(&out);
        assert_eq!(value["frames"], 200);
        assert_eq!(value["torn"], 0, "{value}");
        assert_eq!(value["corrupt"], 0, "{value}");
    }
}

#[test]
fn a_y4m_clip_records_bit_exact_through_the_real_producer() {
    if !have("ffmpeg") || !have("ffprobe") {
        println!("SKIPPED: ffmpeg/ffprobe not found");
        return;
    }
    let dir = TempDir::new("y4m");
    let clip = ffmpeg_clip(320, 240, 30);
    let input = dir.join("clip.y4m");
    std::fs::write(&input, &clip.y4m).unwrap();
    let output = dir.join("out.y4m");
    let png = dir.join("frame.png");
    let stream = TestStream::new("c");

    // The recorder waits for the stream first, so it sees it from its first frame; it
    // stops after 40 frames, more than one pass of the looping clip.
    let recorder = spawn_consumer(&[
        "record",
        output.to_str().unwrap(),
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
        "--frames",
        "40",
    ]);
    let source = format!("y4m:{}", input.display());
    let producer = producer(&stream, &["--source", &source, "--loop", "--seats", "2"]);
    // A snapshot of the same stream decodes as PNG.
    let snap = consumer(&[
        "snapshot",
        png.to_str().unwrap(),
        "--stream",
        stream.as_str(),
        "--wait",
        "60s",
    ]);
    snap.assert_code(0);
    let image = image::open(&png).unwrap();
    assert_eq!((image.width(), image.height()), (320, 240));
    let out = recorder.finish();
    out.assert_code(0);
    producer.signal(Signal::SIGTERM);
    producer.finish().assert_code(0);

    let bytes = std::fs::read(&output).unwrap();
    let (header, frames) = read_y4m(&bytes);
    assert_eq!((header.get_width(), header.get_height()), (320, 240));
    assert_eq!(frames.len(), 40);
    // The clip loops: compare each recorded frame with the clip by content, in order
    // within each pass.
    let looped: Vec<Vec<u8>> = (0..frames.len() / clip.frames.len() + 2)
        .flat_map(|_| clip.frames.iter().cloned())
        .collect();
    assert_in_order_subset(&frames, &looped);

    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args([
            "stream=width,height,pix_fmt,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&output)
        .output()
        .unwrap();
    assert!(probe.status.success());
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        format!("320,240,yuv420p,{}", frames.len())
    );
}

#[test]
fn raw_bgra_frames_pipe_through_bit_exact() {
    let format = FrameFormat::new(96, 64, PixelFormat::Bgra).unwrap();
    let frames: Vec<Vec<u8>> = (0..40u8)
        .map(|i| {
            (0..format.frame_bytes())
                .map(|b| (b as u8).wrapping_mul(7) ^ i.wrapping_mul(37))
                .collect()
        })
        .collect();
    let stream = TestStream::new("c");
    let mut producer = producer(
        &stream,
        &[
            "--size", "96x64", "--format", "bgra", "--source", "raw:-", "--fps", "0",
        ],
    );
    let pipe = spawn_consumer(&["pipe", "--stream", stream.as_str(), "--wait", "60s"]);
    // Frames only once the pipe sits on its seat: at --fps 0 they are gone in a blink.
    expect(&pipe, "attached");
    producer.feed(frames.concat());
    // End of input: the producer stops, the pipe ends with exit 0.
    let out = pipe.finish();
    out.assert_code(0);
    producer.finish().assert_code(0);
    let got = whole_frames(&out.stdout, format);
    assert!(!got.is_empty(), "no frame piped");
    assert_in_order_subset(&got, &frames);
}

#[test]
fn stats_counts_a_producer_restart() {
    let stream = TestStream::new("c");
    let args = ["--size", "320x240", "--fps", "200"];
    let first = producer(&stream, &args);
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
    // A crash: the consumer sees the producer gone, then follows its replacement.
    first.signal(Signal::SIGKILL);
    let _ = first.finish();
    let second = producer(&stream, &args);
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

/// `consumer demo` with no display measures its own producer for a while, then stops it.
#[test]
fn demo_without_a_display_prints_stats_and_stops_its_producer() {
    let mut cmd = Command::new(CONSUMER);
    cmd.args(["demo", "--size", "320x240", "--headless-for", "1s"])
        .env_remove("DISPLAY")
        .env_remove(frame_vocab::STREAM_ENV);
    let proc = ChildProc::spawn_with(cmd, Output::Bytes);
    let shm = format!("/dev/shm/framepipe.demo-{}", proc.pid());
    let out = proc.finish();
    out.assert_code(0);
    assert!(out.stderr.contains("no display"), "{}", out.stderr);
    let stdout = out.stdout_text();
    assert!(
        stdout.contains("320x240 bgra") && stdout.contains("torn 0"),
        "{stdout}"
    );
    assert!(!std::path::Path::new(&shm).exists(), "{shm} left behind");
}
