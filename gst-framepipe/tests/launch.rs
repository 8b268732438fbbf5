//! End to end through `gst-launch-1.0` (the plugin found via `GST_PLUGIN_PATH`) and the
//! framepipe binaries: bit-exact frames both ways, caps changes both ways, a producer or
//! a pipeline killed with SIGKILL, and `gst-inspect-1.0`.
//!
//! The consumers that must see every frame ask for it (`--every-frame`); the others get the
//! newest frame and may skip: then the checks are that what arrives is bit-exact, in
//! order, and ends with the last frame.

mod common;

use std::process::Command;

use common::*;
use gst::prelude::*;

const W: usize = 640;
const H: usize = 480;

/// The reference: `videotestsrc … ! filesink` of the same caps, written to `path`.
fn reference(caps: &str, frames: u32, path: &std::path::Path) {
    let location = format!("location={}", path.display());
    let buffers = format!("num-buffers={frames}");
    let status = gst_launch(&[
        "-q",
        "videotestsrc",
        &buffers,
        "pattern=ball",
        "!",
        caps,
        "!",
        "filesink",
        &location,
    ])
    .status()
    .unwrap();
    assert!(status.success(), "reference pipeline failed");
}

#[test]
fn inspect_lists_both_elements_with_documented_properties() {
    let output = gst_env(&mut Command::new("gst-inspect-1.0"))
        .arg("framepipe")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("framepipesink"), "{text}");
    assert!(text.contains("framepipesrc"), "{text}");
    for (element, properties) in [
        (
            "framepipesink",
            &[
                "stream",
                "seats",
                "mode",
                "wait-for-consumers",
                "no-backpressure",
                "stall-timeout",
            ][..],
        ),
        (
            "framepipesrc",
            &[
                "stream",
                "wait",
                "strategy",
                "wait-next-producer",
                "every-frame",
                "stats",
                "do-timestamp",
            ][..],
        ),
    ] {
        let output = gst_env(&mut Command::new("gst-inspect-1.0"))
            .arg(element)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        for property in properties {
            // A property line is "  name : blurb"; the blurb must say something.
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{property} ")))
                .unwrap_or_else(|| panic!("{element}: no property {property}"));
            let blurb = line.split_once(':').map(|(_, b)| b.trim()).unwrap_or("");
            assert!(
                blurb.len() > 10,
                "{element}.{property} undocumented: {line}"
            );
        }
    }
}

#[test]
fn videotestsrc_to_framepipesink_to_consumer_pipe_every_frame_is_bit_exact_in_bgrx() {
    let stream = TestStream::new("gpb");
    let dir = TempDir::new("gpb");
    let caps = "video/x-raw,format=BGRx,width=640,height=480,framerate=100/1";
    reference(caps, 300, &dir.join("ref.raw"));

    let received = dir.join("pipe.raw");
    let mut consumer = Child::spawn(
        framepipe(
            "consumer",
            &[
                "--stream",
                stream.as_str(),
                "--wait",
                "30s",
                "pipe",
                "--every-frame",
            ],
        ),
        Some(&received),
    );
    let sink = format!("stream={}", stream.as_str());
    let mut pipeline = Child::spawn(
        gst_launch(&[
            "videotestsrc",
            "num-buffers=300",
            "pattern=ball",
            "!",
            caps,
            "!",
            "framepipesink",
            &sink,
            "wait-for-consumers=1",
        ]),
        None,
    );
    assert!(pipeline.wait_exit(HANG).0.success());
    assert!(consumer.wait_exit(HANG).0.success());

    let reference = raw_frame_hashes(&dir.join("ref.raw"), W * H * 4);
    assert_eq!(reference.len(), 300);
    let got = raw_frame_hashes(&received, W * H * 4);
    // wait-for-consumers=1 holds frame 1 back until the pipe sits; from there every
    // frame is waited for.
    assert!(
        got == reference,
        "every frame, bit-exact, in order: {} of 300",
        got.len()
    );
}

#[test]
fn videotestsrc_to_framepipesink_to_consumer_record_every_frame_is_bit_exact_in_i420() {
    let stream = TestStream::new("gpi");
    let dir = TempDir::new("gpi");
    let caps = "video/x-raw,format=I420,width=640,height=480,framerate=100/1";
    reference(caps, 300, &dir.join("ref.raw"));

    let recorded = dir.join("rec.y4m");
    let out = recorded.display().to_string();
    let mut consumer = Child::spawn(
        framepipe(
            "consumer",
            &[
                "--stream",
                stream.as_str(),
                "--wait",
                "30s",
                "record",
                &out,
                "--fps",
                "100",
                "--every-frame",
            ],
        ),
        None,
    );
    let sink = format!("stream={}", stream.as_str());
    let mut pipeline = Child::spawn(
        gst_launch(&[
            "videotestsrc",
            "num-buffers=300",
            "pattern=ball",
            "!",
            caps,
            "!",
            "framepipesink",
            &sink,
            "wait-for-consumers=1",
        ]),
        None,
    );
    assert!(pipeline.wait_exit(HANG).0.success());
    assert!(consumer.wait_exit(HANG).0.success());

    let frame_bytes = W * H * 3 / 2;
    let reference = raw_frame_hashes(&dir.join("ref.raw"), frame_bytes);
    let got = y4m_frame_hashes(&recorded, frame_bytes);
    assert!(
        got == reference,
        "every frame, bit-exact, in order: {} of 300",
        got.len()
    );
}

#[test]
fn producer_y4m_to_framepipesrc_to_filesink_is_bit_exact() {
    let stream = TestStream::new("gpy");
    let dir = TempDir::new("gpy");
    let caps = "video/x-raw,format=I420,width=320,height=240,framerate=30/1";
    reference(caps, 60, &dir.join("ref.raw"));
    let clip = dir.join("clip.y4m");
    let location = format!("location={}", clip.display());
    let status = gst_launch(&[
        "-q",
        "videotestsrc",
        "num-buffers=60",
        "pattern=ball",
        "!",
        caps,
        "!",
        "y4menc",
        "!",
        "filesink",
        &location,
    ])
    .status()
    .unwrap();
    assert!(status.success());

    let received = dir.join("out.raw");
    let src = format!("stream={}", stream.as_str());
    let out = format!("location={}", received.display());
    let mut pipeline = Child::spawn(
        gst_launch(&[
            "framepipesrc",
            &src,
            "wait=30000",
            "every-frame=true",
            "!",
            "filesink",
            &out,
        ]),
        None,
    );
    let source = format!("y4m:{}", clip.display());
    let mut producer = Child::spawn(
        framepipe(
            "producer",
            &[
                "--stream",
                stream.as_str(),
                "--source",
                &source,
                "--wait-seats",
                "1",
                "--wait",
                "30s",
            ],
        ),
        None,
    );
    assert!(producer.wait_exit(HANG).0.success());
    let (status, lines) = pipeline.wait_exit(HANG);
    assert!(status.success(), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("EOS")), "{lines:#?}");

    let frame_bytes = 320 * 240 * 3 / 2;
    let reference = raw_frame_hashes(&dir.join("ref.raw"), frame_bytes);
    let got = raw_frame_hashes(&received, frame_bytes);
    // The producer waits for the source's seat, which asked for every frame.
    assert!(
        got == reference,
        "every frame, bit-exact, in order: {} of 60",
        got.len()
    );
}

#[test]
fn a_caps_change_upstream_of_the_sink_is_followed_by_framepipesrc() {
    init_in_process();
    let stream = TestStream::new("gcu");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true pattern=ball ! capsfilter name=cf \
         caps=video/x-raw,format=BGRx,width=640,height=480,framerate=30/1 ! \
         framepipesink stream={}",
        stream.as_str()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let src = format!("stream={}", stream.as_str());
    // A live 30 fps stream: the rhythm `predict` learns, lost at the new epoch.
    let reader = Child::spawn(
        gst_launch(&[
            "-v",
            "framepipesrc",
            &src,
            "wait=30000",
            "strategy=predict",
            "!",
            "fakesink",
        ]),
        None,
    );
    reader.expect("width=(int)640, height=(int)480", HANG);

    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "BGRx")
        .field("width", 320)
        .field("height", 240)
        .field("framerate", gst::Fraction::new(30, 1))
        .build();
    pipeline.by_name("cf").unwrap().set_property("caps", &caps);
    reader.expect("width=(int)320, height=(int)240", HANG);
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_ctl_format_to_the_producer_is_followed_by_framepipesrc() {
    let stream = TestStream::new("gcp");
    let _producer = Child::spawn(
        framepipe(
            "producer",
            &[
                "--stream",
                stream.as_str(),
                "--size",
                "320x240",
                "--fps",
                "30",
            ],
        ),
        None,
    );
    let src = format!("stream={}", stream.as_str());
    let reader = Child::spawn(
        gst_launch(&["-v", "framepipesrc", &src, "wait=30000", "!", "fakesink"]),
        None,
    );
    reader.expect("width=(int)320, height=(int)240", HANG);
    // The reverse direction: a person changes the stream with `consumer ctl format`; the
    // producer answers with the new epoch and the source renegotiates.
    let mut ctl = Child::spawn(
        framepipe(
            "consumer",
            &[
                "--stream",
                stream.as_str(),
                "ctl",
                "format",
                "160x120:gray8",
            ],
        ),
        None,
    );
    let (status, lines) = ctl.wait_exit(HANG);
    assert!(status.success(), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("160x120 gray8") && l.contains("epoch 2")),
        "{lines:#?}"
    );
    reader.expect(
        "format=(string)GRAY8, width=(int)160, height=(int)120",
        HANG,
    );
}

/// `gst-launch -v … ! fakesink silent=false` prints one "chain" line per buffer.
fn watched_source(stream: &TestStream, extra: &[&str]) -> Child {
    let src = format!("stream={}", stream.as_str());
    let mut args = vec!["-v", "framepipesrc", &src];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["!", "fakesink", "silent=false"]);
    Child::spawn(gst_launch(&args), None)
}

fn pattern_producer(stream: &TestStream) -> Child {
    let child = Child::spawn(
        framepipe(
            "producer",
            &[
                "--stream",
                stream.as_str(),
                "--size",
                "320x240",
                "--fps",
                "30",
            ],
        ),
        None,
    );
    child.expect("ready:", HANG);
    child
}

#[test]
fn a_producer_killed_under_framepipesrc_ends_in_eos() {
    let stream = TestStream::new("gke");
    let mut producer = pattern_producer(&stream);
    let mut source = watched_source(&stream, &["wait=500"]);
    source.expect("chain", HANG);
    producer.kill9();
    let (status, lines) = source.wait_exit(HANG);
    assert!(status.success(), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("Got EOS")), "{lines:#?}");
}

#[test]
fn a_producer_killed_under_framepipesrc_is_waited_for_with_wait_next_producer() {
    let stream = TestStream::new("gkw");
    let mut producer = pattern_producer(&stream);
    let source = watched_source(&stream, &["wait=500", "wait-next-producer=true"]);
    source.expect("discont", HANG);
    producer.kill9();
    let _ = producer.wait_exit(HANG);
    // The source waits on (well past `wait`) and follows the next producer: its first
    // buffer is a discontinuity.
    let _next = pattern_producer(&stream);
    source.expect("discont", HANG);
    source.expect("chain", HANG);
}

#[test]
fn a_pipeline_killed_under_framepipesink_is_seen_gone_by_its_consumer() {
    let stream = TestStream::new("gkp");
    let sink = format!("stream={}", stream.as_str());
    let mut pipeline = Child::spawn(
        gst_launch(&[
            "videotestsrc",
            "is-live=true",
            "!",
            "video/x-raw,width=320,height=240",
            "!",
            "framepipesink",
            &sink,
        ]),
        None,
    );
    // The consumer's `--wait` is also how long it waits for a next producer after the
    // kill, so it stays short; it starts once the sink has published (a fresh machine's
    // first gst-launch spends seconds building its plugin registry).
    wait_for_file(stream.shm_path(), HANG);
    let mut consumer = Child::spawn(
        framepipe(
            "consumer",
            &["--stream", stream.as_str(), "--wait", "2s", "stats"],
        ),
        None,
    );
    consumer.expect("attached", HANG);
    consumer.expect(" frames ", HANG);
    pipeline.kill9();
    let (status, lines) = consumer.wait_exit(HANG);
    assert_eq!(
        status.code(),
        Some(3),
        "exit code 3: no producer; {lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("gone")), "{lines:#?}");
}
