//! `consumer view` under an Xvfb display of the test's own: the window shows the static
//! bars at the right places, follows the producer across a restart into a new format,
//! answers its keys, and closes on Esc. Without Xvfb, xwd or xdotool the tests say
//! SKIPPED (CI installs the packages xvfb, x11-apps and xdotool, so it never skips).

mod common;

use common::{ChildProc, Producer, Script, TempDir, TestStream, Xvfb, Xwd, expect};
use frame_vocab::{FrameFormat, PixelFormat};
use shm_frames::testing::Output;

/// Not a test: where the scripted producer's child process starts (see `common`).
#[test]
fn __role_entry() {
    common::role_entry();
}

/// Tools the tests need besides Xvfb.
const TOOLS: [&str; 3] = ["xwd", "xdotool", "xprop"];

fn view(xvfb: &Xvfb, stream: &TestStream, extra: &[&str]) -> ChildProc {
    let mut cmd = std::process::Command::new(common::CONSUMER);
    cmd.args(["view", "--stream", stream.as_str()])
        .args(extra)
        .env("DISPLAY", &xvfb.display);
    ChildProc::spawn_with(cmd, Output::Bytes)
}

/// Whether the screenshot shows the eight bars, scaled to its width, at mid-height.
fn shows_bars(shot: &Xwd) -> bool {
    let y = shot.height / 2;
    producer::BARS.iter().enumerate().all(|(i, want)| {
        let x = (2 * i + 1) * shot.width / 16;
        let got = shot.rgb(x, y);
        // Exact for bgra; YUV formats round by a few levels.
        (0..3).all(|c| got[c].abs_diff(want[c]) <= 6)
    })
}

/// Types `key` into the window through XTEST (minifb ignores synthetic XSendEvent keys),
/// after giving it the input focus (there is no window manager to do that).
/// The frame rate a title shows ("... | 29.9 fps | ...").
fn title_fps(title: &str) -> Option<f64> {
    title
        .split(" | ")
        .find_map(|part| part.strip_suffix(" fps"))
        .and_then(|fps| fps.parse().ok())
}

fn press(xvfb: &Xvfb, window: &str, key: &str) {
    let out = xvfb.run("xdotool", &["windowfocus", "--sync", window, "key", key]);
    assert!(out.status.success(), "xdotool key {key}: {}", out.stderr);
}

#[test]
fn shows_the_bars_and_closes_on_escape() {
    let Some(xvfb) = Xvfb::start("shows_the_bars_and_closes_on_escape", &TOOLS) else {
        return;
    };
    let stream = TestStream::new("c");
    let format = FrameFormat::new(640, 360, PixelFormat::Bgra).unwrap();
    let _producer = Producer::start(&stream, &Script::pattern(format, "bars", 30.0));
    let viewer = view(&xvfb, &stream, &[]);
    let window = xvfb.window(&format!("framepipe {}", stream.as_str()));
    let shot = xvfb.on_title_change(&window, "the bars on screen", || {
        Some(xvfb.screenshot(&window)).filter(shows_bars)
    });
    assert_eq!((shot.width, shot.height), (640, 360));
    // A bar's colour is exact (bgra): 75% yellow in the second bar.
    assert_eq!(shot.rgb(120, 10), [191, 191, 0]);
    assert_eq!(shot.rgb(600, 350), [0, 0, 0]);
    let title = xvfb.on_title_change(&window, "a title with the frame rate", || {
        Some(xvfb.window_name(&window)).filter(|t| t.contains(" fps"))
    });
    assert!(
        title.contains("640x360 bgra") && title.contains("latency p50"),
        "{title}"
    );
    press(&xvfb, &window, "Escape");
    let out = viewer.finish();
    out.assert_code(0);
    assert!(out.stderr.contains("viewed"), "{}", out.stderr);
}

#[test]
fn follows_the_producer_into_a_new_format_and_answers_keys() {
    let Some(xvfb) = Xvfb::start("follows_the_producer_into_a_new_format", &TOOLS) else {
        return;
    };
    let stream = TestStream::new("c");
    let snapshots = TempDir::new("view");
    let first = FrameFormat::new(320, 180, PixelFormat::Bgra).unwrap();
    let producer = Producer::start(&stream, &Script::pattern(first, "bars", 30.0));
    let viewer = view(
        &xvfb,
        &stream,
        &[
            "--wait",
            "60s",
            "--snapshot-dir",
            snapshots.path.to_str().unwrap(),
        ],
    );
    let window = xvfb.window(&format!("framepipe {}", stream.as_str()));
    xvfb.on_title_change(&window, "the bars", || {
        Some(xvfb.screenshot(&window)).filter(shows_bars)
    });

    // s: a PNG of the shown frame.
    press(&xvfb, &window, "s");
    expect(&viewer, "snapshot saved");
    let png = snapshots
        .files()
        .into_iter()
        .find(|f| f.ends_with(".png"))
        .expect("the saved snapshot");
    let image = image::open(snapshots.join(&png)).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), (320, 180));
    assert_eq!(image.get_pixel(60, 90).0, [191, 191, 0]);

    // +: a SetFps command above the measured rate reaches the producer.
    xvfb.on_title_change(&window, "the measured rate in the title", || {
        Some(xvfb.window_name(&window)).filter(|t| title_fps(t).is_some_and(|fps| fps >= 20.0))
    });
    press(&xvfb, &window, "plus");
    // The real producer logs the command it applies.
    let line = producer.expect("SetFps ");
    let fps: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(fps > 30.0, "{line}");

    // The producer goes; the viewer waits for it.
    producer.shutdown(&stream);
    xvfb.on_title_change(&window, "waiting for producer in the title", || {
        Some(xvfb.window_name(&window)).filter(|t| t.contains("waiting for producer"))
    });

    // A new producer in another size and pixel format: the viewer follows it.
    let second = FrameFormat::new(480, 270, PixelFormat::Rgb24).unwrap();
    let _again = Producer::start(&stream, &Script::pattern(second, "bars", 30.0));
    xvfb.on_title_change(&window, "the new format in the title", || {
        Some(xvfb.window_name(&window))
            .filter(|t| t.contains("480x270 rgb24") && t.contains(" fps"))
    });
    xvfb.on_title_change(&window, "the bars again", || {
        Some(xvfb.screenshot(&window)).filter(shows_bars)
    });

    press(&xvfb, &window, "q");
    let out = viewer.finish();
    out.assert_code(0);
    assert!(out.stderr.contains("reattached 1 times"), "{}", out.stderr);
}

#[test]
fn demo_shows_its_producer_and_stops_it_on_escape() {
    let Some(xvfb) = Xvfb::start("demo_shows_its_producer", &TOOLS) else {
        return;
    };
    let mut cmd = std::process::Command::new(common::CONSUMER);
    cmd.args(["demo", "--size", "320x180"])
        .env("DISPLAY", &xvfb.display)
        .env_remove(frame_vocab::STREAM_ENV);
    let demo = ChildProc::spawn_with(cmd, Output::Bytes);
    let name = format!("framepipe demo-{}", demo.pid());
    let window = xvfb.window(&name);
    let title = xvfb.on_title_change(&window, "a title with the frame rate", || {
        Some(xvfb.window_name(&window)).filter(|t| t.contains(" fps"))
    });
    assert!(title.contains("320x180 bgra"), "{title}");
    // The moving pattern's bars cover the top of the frame.
    xvfb.on_title_change(&window, "the bars", || {
        let shot = xvfb.screenshot(&window);
        let got = shot.rgb(shot.width * 3 / 16, 5);
        (got == producer::BARS[1]).then_some(())
    });
    press(&xvfb, &window, "Escape");
    let shm = format!("/dev/shm/framepipe.demo-{}", demo.pid());
    demo.finish().assert_code(0);
    assert!(!std::path::Path::new(&shm).exists(), "{shm} left behind");
}

#[test]
fn follows_a_live_ctl_format_change() {
    let Some(xvfb) = Xvfb::start("follows_a_live_ctl_format_change", &TOOLS) else {
        return;
    };
    let stream = TestStream::new("c");
    let first = FrameFormat::new(320, 180, PixelFormat::Bgra).unwrap();
    let _producer = Producer::start(&stream, &Script::pattern(first, "bars", 30.0));
    let viewer = view(&xvfb, &stream, &[]);
    let window = xvfb.window(&format!("framepipe {}", stream.as_str()));
    xvfb.on_title_change(&window, "the bars", || {
        Some(xvfb.screenshot(&window)).filter(shows_bars)
    });
    let out = common::consumer(&[
        "ctl",
        "--stream",
        stream.as_str(),
        "format",
        "480x270:rgb24",
    ]);
    out.assert_code(0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("format now 480x270 rgb24, epoch 2"),
        "{}",
        out.stderr
    );
    xvfb.on_title_change(&window, "the new format in the title", || {
        Some(xvfb.window_name(&window))
            .filter(|t| t.contains("480x270 rgb24") && t.contains(" fps"))
    });
    // The window keeps its size; the new frames fill it.
    xvfb.on_title_change(&window, "the bars in the new format", || {
        Some(xvfb.screenshot(&window)).filter(shows_bars)
    });
    press(&xvfb, &window, "q");
    let out = viewer.finish();
    out.assert_code(0);
}
