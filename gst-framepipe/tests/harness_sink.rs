//! `framepipesink` alone on gstreamer-check's Harness (plugin registered statically): caps
//! to regions, strided copies at 642x480, PTS to capture time, caps changes, refused odd
//! sizes, commands, and `wait-for-consumers` with `unlock`.

mod common;

use common::{init_in_process, reader};

use std::sync::mpsc::channel;
use std::time::Duration;

use control_msg::{Command, CommandSender, Event, EventReceiver, Sent};
use frame_vocab::{FrameFormat, PixelFormat, monotonic_ns};
use gst::prelude::*;
use gst_video::VideoFormat;
use shm_frames::testing::{HANG, TestStream};
use shm_frames::{Delivery, OpenError, Reader, ReaderOptions, WaitError};

fn sink(stream: &TestStream) -> gst::Element {
    gst::ElementFactory::make("framepipesink")
        .property("stream", stream.as_str())
        .property("sync", false)
        .build()
        .unwrap()
}

fn harness(element: &gst::Element) -> gst_check::Harness {
    let mut h = gst_check::Harness::with_element(element, Some("sink"), None);
    h.play();
    h
}

fn info(format: VideoFormat, width: u32, height: u32) -> gst_video::VideoInfo {
    gst_video::VideoInfo::builder(format, width, height)
        .build()
        .unwrap()
}

/// A buffer of `info`'s size whose bytes (padding included) vary with `tag` and position.
fn buffer(info: &gst_video::VideoInfo, tag: u8) -> gst::Buffer {
    let bytes: Vec<u8> = (0..info.size())
        .map(|i| ((i % 251) as u8).wrapping_add(tag))
        .collect();
    gst::Buffer::from_mut_slice(bytes)
}

/// What framepipe must carry for `buffer`: each plane's rows without GStreamer's padding,
/// planes back to back (computed from GStreamer's offsets and strides, apart from the
/// element's code).
fn packed(info: &gst_video::VideoInfo, buffer: &gst::Buffer) -> Vec<u8> {
    let data = buffer.map_readable().unwrap();
    let (w, h) = (info.width() as usize, info.height() as usize);
    let planes: Vec<(usize, usize)> = match info.format() {
        VideoFormat::I420 => vec![(w, h), (w / 2, h / 2), (w / 2, h / 2)],
        VideoFormat::Rgb => vec![(3 * w, h)],
        VideoFormat::Gray8 => vec![(w, h)],
        VideoFormat::Yuy2 => vec![(2 * w, h)],
        _ => vec![(4 * w, h)],
    };
    let mut out = Vec::new();
    for (index, (row_bytes, rows)) in planes.into_iter().enumerate() {
        let offset = info.offset()[index];
        let stride = info.stride()[index] as usize;
        for row in 0..rows {
            out.extend_from_slice(&data[offset + row * stride..][..row_bytes]);
        }
    }
    out
}

fn error_text(bus: &gst::Bus, kind: gst::MessageType) -> String {
    let message = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(HANG.as_secs()), &[kind])
        .unwrap_or_else(|| panic!("no {kind:?} message"));
    match message.view() {
        gst::MessageView::Error(e) => e.error().to_string(),
        gst::MessageView::Warning(w) => w.error().to_string(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn strided_formats_arrive_bit_exact_at_642x480() {
    init_in_process();
    for (vf, pixel) in [
        (VideoFormat::I420, PixelFormat::I420),
        (VideoFormat::Rgb, PixelFormat::Rgb24),
        (VideoFormat::Gray8, PixelFormat::Gray8),
        (VideoFormat::Yuy2, PixelFormat::Yuyv),
        (VideoFormat::Bgrx, PixelFormat::Bgra),
    ] {
        let stream = TestStream::new("gsk");
        let mut h = harness(&sink(&stream));
        let info = info(vf, 642, 480);
        h.set_src_caps(info.to_caps().unwrap());
        let mut reader = reader(&stream);
        assert_eq!(
            reader.format(),
            FrameFormat::new(642, 480, pixel).unwrap(),
            "{vf}"
        );
        for tag in 0..3u8 {
            let input = buffer(&info, tag);
            let expected = packed(&info, &input);
            h.push(input).unwrap();
            let frame = reader.wait_frame(HANG).unwrap();
            assert_eq!(frame.seq(), u64::from(tag) + 1, "{vf}");
            assert!(
                &frame[..] == expected.as_slice(),
                "{vf} frame {tag} differs"
            );
        }
    }
}

#[test]
fn pts_maps_to_capture_time_on_the_monotonic_clock() {
    init_in_process();
    let stream = TestStream::new("gpt");
    let element = sink(&stream);
    let mut h = harness(&element);
    let info = info(VideoFormat::Bgrx, 64, 48);
    h.set_src_caps(info.to_caps().unwrap());
    let mut reader = reader(&stream);
    h.set_time(gst::ClockTime::from_seconds(10)).unwrap();
    let mut input = buffer(&info, 1);
    let pts = gst::ClockTime::from_mseconds(9_400);
    input.make_mut().set_pts(pts);
    let before = monotonic_ns();
    h.push(input).unwrap();
    let after = monotonic_ns();
    let frame = reader.wait_frame(HANG).unwrap();
    // The harness's test clock stands still at 10 s; the segment starts at 0, so the
    // frame is `10 s − base_time − 9.4 s` old on the element's clock.
    let base = element.base_time().unwrap().nseconds();
    let age = 10_000_000_000 - base - pts.nseconds();
    let capture = frame.info().capture_ns;
    assert!(
        (before - age..=after - age).contains(&capture),
        "capture {capture} not within [{}, {}]",
        before - age,
        after - age
    );
}

#[test]
fn a_caps_change_makes_a_new_epoch_only_for_a_new_size_or_format() {
    init_in_process();
    let stream = TestStream::new("gcc");
    let mut h = harness(&sink(&stream));
    let bgrx = info(VideoFormat::Bgrx, 640, 480);
    h.set_src_caps(bgrx.to_caps().unwrap());
    let mut reader = reader(&stream);
    let epoch = reader.epoch();
    h.push(buffer(&bgrx, 1)).unwrap();
    assert_eq!(reader.wait_frame(HANG).unwrap().seq(), 1);

    // BGRA carries the same bytes: same region, the next seq.
    let bgra = info(VideoFormat::Bgra, 640, 480);
    h.set_src_caps(bgra.to_caps().unwrap());
    let input = buffer(&bgra, 2);
    let expected = packed(&bgra, &input);
    h.push(input).unwrap();
    {
        let frame = reader.wait_frame(HANG).unwrap();
        assert_eq!(frame.seq(), 2);
        assert!(&frame[..] == expected.as_slice());
    }
    assert_eq!(reader.epoch(), epoch);

    // A new size: the region is replaced, epoch + 1.
    let small = info(VideoFormat::I420, 320, 240);
    h.set_src_caps(small.to_caps().unwrap());
    assert!(matches!(reader.wait_frame(HANG), Err(WaitError::Replaced)));
    reader.reopen(HANG).unwrap();
    assert_eq!(reader.epoch(), epoch + 1);
    assert_eq!(
        reader.format(),
        FrameFormat::new(320, 240, PixelFormat::I420).unwrap()
    );
    let input = buffer(&small, 3);
    let expected = packed(&small, &input);
    h.push(input).unwrap();
    let frame = reader.wait_frame(HANG).unwrap();
    assert_eq!(frame.seq(), 1);
    assert!(&frame[..] == expected.as_slice());
}

#[test]
fn odd_sizes_i420_and_yuy2_cannot_carry_are_refused() {
    init_in_process();
    for (vf, w, h) in [
        (VideoFormat::I420, 641, 480),
        (VideoFormat::I420, 640, 479),
        (VideoFormat::Yuy2, 641, 480),
    ] {
        let stream = TestStream::new("god");
        let element = sink(&stream);
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let mut harness = harness(&element);
        let info = info(vf, w, h);
        harness.set_src_caps(info.to_caps().unwrap());
        assert_eq!(
            harness.push(buffer(&info, 0)),
            Err(gst::FlowError::NotNegotiated),
            "{vf} {w}x{h}"
        );
        let text = error_text(&bus, gst::MessageType::Error);
        assert!(text.contains("odd") || text.contains("even"), "{text}");
    }
}

#[test]
fn ping_is_answered_and_commands_the_pipeline_decides_are_refused() {
    init_in_process();
    let stream = TestStream::new("gcm");
    let element = sink(&stream);
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = harness(&element);
    h.set_src_caps(info(VideoFormat::Bgrx, 64, 48).to_caps().unwrap());
    let mut reader = reader(&stream);
    let mut events = EventReceiver::open(&stream.name, reader.seat()).unwrap();
    let mut commands = CommandSender::open(&stream.name).unwrap();

    let sent = commands.send(&Command::Ping { nonce: 0xfeed }).unwrap();
    assert_eq!(sent, Sent::Queued);
    let deadline = frame_vocab::Deadline::after(HANG);
    loop {
        match events.recv_deadline(deadline).unwrap() {
            Some(Event::Pong { nonce }) => {
                assert_eq!(nonce, 0xfeed);
                break;
            }
            Some(_) => continue,
            None => panic!("no Pong within {HANG:?}"),
        }
    }

    let sent = commands.send(&Command::SetFps { fps: 5.0 }).unwrap();
    assert_eq!(sent, Sent::Queued);
    let text = error_text(&bus, gst::MessageType::Warning);
    assert!(
        text.contains("SetFps") && text.contains("frame rate"),
        "{text}"
    );
    let sent = commands
        .send(&Command::SetFormat(
            FrameFormat::new(32, 32, PixelFormat::Gray8).unwrap(),
        ))
        .unwrap();
    assert_eq!(sent, Sent::Queued);
    let text = error_text(&bus, gst::MessageType::Warning);
    assert!(text.contains("SetFormat"), "{text}");
    // Refused: the region kept its format and was not replaced.
    let look = reader.wait_frame(Duration::ZERO).map(drop);
    assert!(
        !matches!(look, Err(WaitError::Replaced | WaitError::Stopped)),
        "{look:?}"
    );
    assert_eq!(
        reader.format(),
        FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap()
    );
}

#[test]
fn wait_for_consumers_holds_frames_back_until_unlock() {
    init_in_process();
    let stream = TestStream::new("gwc");
    let element = sink(&stream);
    element.set_property("wait-for-consumers", 1u32);
    let mut h = harness(&element);
    let info = info(VideoFormat::Bgrx, 64, 48);
    h.set_src_caps(info.to_caps().unwrap());

    // Push from another thread; a probe tells when the buffer reached the sink.
    let sinkpad = element.static_pad("sink").unwrap();
    let (arrived_tx, arrived) = channel();
    sinkpad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let _ = arrived_tx.send(());
        gst::PadProbeReturn::Ok
    });
    let srcpad = h.srcpad().unwrap().clone();
    let (pushed_tx, pushed) = channel();
    let input = buffer(&info, 1);
    let pusher = srcpad.clone();
    std::thread::spawn(move || {
        let _ = pushed_tx.send(pusher.push(input));
    });
    arrived.recv_timeout(HANG).unwrap();
    // No consumer: the render waits, and a flush (unlock) ends the wait.
    assert!(srcpad.push_event(gst::event::FlushStart::new()));
    let result = pushed.recv_timeout(HANG).expect("unlock ends the wait");
    assert_eq!(result, Err(gst::FlowError::Flushing));
    assert!(srcpad.push_event(gst::event::FlushStop::new(true)));

    // Nothing was published while nobody was there.
    let mut reader = reader(&stream);
    assert!(matches!(
        reader.wait_frame(Duration::ZERO),
        Err(WaitError::Timeout)
    ));

    // With a consumer on its seat the next buffer goes through.
    h.set_src_caps(info.to_caps().unwrap());
    h.push(buffer(&info, 2)).unwrap();
    let frame = reader.wait_frame(Duration::from_secs(5)).unwrap();
    assert_eq!(frame.seq(), 1);
}

#[test]
fn unlock_interrupts_a_wait_for_an_every_frame_consumer() {
    init_in_process();
    let stream = TestStream::new("gef");
    let element = sink(&stream);
    // No stall timeout: only the take or the flush can end the wait.
    element.set_property("stall-timeout", 0u32);
    let mut h = harness(&element);
    let info = info(VideoFormat::Bgrx, 64, 48);
    h.set_src_caps(info.to_caps().unwrap());
    h.push(buffer(&info, 1)).unwrap();
    let mut every = Reader::open(
        &stream.name,
        ReaderOptions {
            wait: HANG,
            delivery: Delivery::EveryFrame,
            ..ReaderOptions::default()
        },
    )
    .unwrap();
    assert_eq!(every.wait_frame(HANG).unwrap().seq(), 1);
    // Frame 1 is taken: frame 2 goes out; frame 3 waits for a take of frame 2.
    h.push(buffer(&info, 2)).unwrap();
    let sinkpad = element.static_pad("sink").unwrap();
    let (arrived_tx, arrived) = channel();
    sinkpad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let _ = arrived_tx.send(());
        gst::PadProbeReturn::Ok
    });
    let srcpad = h.srcpad().unwrap().clone();
    let (pushed_tx, pushed) = channel();
    let input = buffer(&info, 3);
    let pusher = srcpad.clone();
    std::thread::spawn(move || {
        let _ = pushed_tx.send(pusher.push(input));
    });
    arrived.recv_timeout(HANG).unwrap();
    assert!(srcpad.push_event(gst::event::FlushStart::new()));
    let result = pushed.recv_timeout(HANG).expect("unlock ends the wait");
    assert_eq!(result, Err(gst::FlowError::Flushing));
    // Frame 3 was abandoned, not published: the reader finds frame 2 and nothing after.
    assert_eq!(every.wait_frame(HANG).unwrap().seq(), 2);
    assert!(matches!(
        every.wait_frame(Duration::ZERO),
        Err(WaitError::Timeout)
    ));
}

#[test]
fn no_backpressure_refuses_every_frame_readers() {
    init_in_process();
    let stream = TestStream::new("gnb");
    let element = sink(&stream);
    element.set_property("no-backpressure", true);
    let mut h = harness(&element);
    let info = info(VideoFormat::Bgrx, 64, 48);
    h.set_src_caps(info.to_caps().unwrap());
    h.push(buffer(&info, 1)).unwrap();
    let refused = Reader::open(
        &stream.name,
        ReaderOptions {
            wait: Duration::ZERO,
            delivery: Delivery::EveryFrame,
            ..ReaderOptions::default()
        },
    );
    assert!(
        matches!(refused, Err(OpenError::NoBackpressure { .. })),
        "{refused:?}"
    );
}
