//! `framepipesrc` alone on gstreamer-check's Harness (plugin registered statically), fed by
//! a `Writer` in the test: bit-exact copies, BGRx and BGRA for bgra, format changes and
//! restarts followed with DISCONT, EOS or a wait when the producer stops, latency, stats.

mod common;

use common::init_in_process;

use frame_vocab::{FrameFormat, PixelFormat, StreamOwner};
use gst::prelude::*;
use shm_frames::testing::{Heartbeat, TestStream};
use shm_frames::{RegionBuilder, Writer};

/// A producer in the test: the name, the region and a heartbeat thread.
struct Producer {
    writer: Writer,
    _heartbeat: Heartbeat,
    _owner: StreamOwner,
}

impl Producer {
    fn start(stream: &TestStream, format: FrameFormat) -> Producer {
        let owner = StreamOwner::claim(&stream.name).unwrap();
        let writer = RegionBuilder::new(&owner, format).create().unwrap();
        let heartbeat = Heartbeat::start(writer.supervisor());
        Producer {
            writer,
            _heartbeat: heartbeat,
            _owner: owner,
        }
    }

    /// Publishes a frame whose bytes vary with `tag`; returns them.
    fn publish(&mut self, tag: u8) -> Vec<u8> {
        let mut slot = self.writer.slot().unwrap();
        for (i, byte) in slot.iter_mut().enumerate() {
            *byte = ((i % 253) as u8).wrapping_add(tag);
        }
        let bytes = slot.to_vec();
        slot.publish(None);
        bytes
    }

    fn replace(&mut self, format: FrameFormat) {
        self.writer.replace(format).unwrap();
        self._heartbeat = Heartbeat::start(self.writer.supervisor());
    }
}

fn source(stream: &TestStream, wait_next_producer: bool) -> gst::Element {
    gst::ElementFactory::make("framepipesrc")
        .property("stream", stream.as_str())
        .property("wait", 2000u32)
        .property("wait-next-producer", wait_next_producer)
        .build()
        .unwrap()
}

fn harness(element: &gst::Element, sink_caps: Option<&str>) -> gst_check::Harness {
    let mut h = gst_check::Harness::with_element(element, None, Some("src"));
    if let Some(caps) = sink_caps {
        h.set_sink_caps_str(caps);
    }
    h.play();
    h
}

fn caps_of(h: &gst_check::Harness) -> gst_video::VideoInfo {
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    gst_video::VideoInfo::from_caps(&caps).unwrap()
}

fn bytes(buffer: &gst::Buffer) -> Vec<u8> {
    buffer.map_readable().unwrap().to_vec()
}

/// Pulls events until EOS; panics on a buffer (the harness's own pull deadline catches a
/// hang).
fn expect_eos(h: &mut gst_check::Harness) {
    loop {
        let event = h
            .pull_event()
            .expect("an event before the harness deadline");
        if let gst::EventView::Eos(_) = event.view() {
            return;
        }
    }
}

fn stats(element: &gst::Element) -> (u64, u64, u64) {
    let stats = element.property::<gst::Structure>("stats");
    (
        stats.get("frames").unwrap(),
        stats.get("skipped").unwrap(),
        stats.get("reopens").unwrap(),
    )
}

#[test]
fn frames_arrive_bit_exact_with_bgrx_or_bgra_caps() {
    init_in_process();
    for (caps, format) in [
        (None, gst_video::VideoFormat::Bgrx),
        (
            Some("video/x-raw,format=BGRA"),
            gst_video::VideoFormat::Bgra,
        ),
    ] {
        let stream = TestStream::new("gsr");
        let mut producer = Producer::start(
            &stream,
            FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap(),
        );
        let element = source(&stream, false);
        let mut h = harness(&element, caps);
        let sent = producer.publish(1);
        let buffer = h.pull().unwrap();
        assert_eq!(bytes(&buffer), sent);
        let info = caps_of(&h);
        assert_eq!(
            (info.format(), info.width(), info.height()),
            (format, 64, 48)
        );
        assert_eq!(stats(&element).0, 1);
    }
}

#[test]
fn padded_rows_are_laid_out_as_gstreamer_expects_at_642x480() {
    init_in_process();
    let stream = TestStream::new("gsp");
    let format = FrameFormat::new(642, 480, PixelFormat::I420).unwrap();
    let mut producer = Producer::start(&stream, format);
    let mut h = harness(&source(&stream, false), None);
    let sent = producer.publish(7);
    let buffer = h.pull().unwrap();
    let info = caps_of(&h);
    assert_eq!(
        info.stride()[0],
        644,
        "GStreamer pads I420 rows of 642 to 644"
    );
    let data = bytes(&buffer);
    let planes = [
        (0usize, 642usize, 480usize),
        (642 * 480, 321, 240),
        (642 * 480 + 321 * 240, 321, 240),
    ];
    for (index, (packed_offset, row_bytes, rows)) in planes.into_iter().enumerate() {
        let (offset, stride) = (info.offset()[index], info.stride()[index] as usize);
        for row in 0..rows {
            assert_eq!(
                &data[offset + row * stride..][..row_bytes],
                &sent[packed_offset + row * row_bytes..][..row_bytes],
                "plane {index} row {row}"
            );
        }
    }
}

#[test]
fn a_format_change_renegotiates_and_marks_a_discontinuity() {
    init_in_process();
    let stream = TestStream::new("gsf");
    let mut producer = Producer::start(
        &stream,
        FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap(),
    );
    let element = source(&stream, false);
    let mut h = harness(&element, None);
    producer.publish(1);
    let first = h.pull().unwrap();
    assert_eq!(caps_of(&h).width(), 64);

    let gray = FrameFormat::new(32, 24, PixelFormat::Gray8).unwrap();
    producer.replace(gray);
    let sent = producer.publish(2);
    let buffer = h.pull().unwrap();
    let info = caps_of(&h);
    assert_eq!(
        (info.format(), info.width(), info.height()),
        (gst_video::VideoFormat::Gray8, 32, 24)
    );
    assert_eq!(bytes(&buffer), sent);
    assert!(buffer.flags().contains(gst::BufferFlags::DISCONT));
    assert!(first.pts() <= buffer.pts());
    assert_eq!(stats(&element).2, 1, "one reopen");
}

#[test]
fn a_stopped_producer_ends_the_stream_with_eos() {
    init_in_process();
    let stream = TestStream::new("gse");
    let mut producer = Producer::start(
        &stream,
        FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap(),
    );
    let mut h = harness(&source(&stream, false), None);
    producer.publish(1);
    h.pull().unwrap();
    drop(producer);
    expect_eos(&mut h);
}

#[test]
fn with_wait_next_producer_the_next_producer_is_followed() {
    init_in_process();
    let stream = TestStream::new("gsw");
    let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
    let mut producer = Producer::start(&stream, format);
    let element = source(&stream, true);
    let mut h = harness(&element, None);
    producer.publish(1);
    h.pull().unwrap();
    drop(producer);

    let mut next = Producer::start(&stream, format);
    let sent = next.publish(9);
    let buffer = h.pull().unwrap();
    assert_eq!(bytes(&buffer), sent);
    assert!(buffer.flags().contains(gst::BufferFlags::DISCONT));
}

#[test]
fn it_is_live_answers_latency_and_counts_skipped_frames() {
    init_in_process();
    let stream = TestStream::new("gsl");
    let mut producer = Producer::start(
        &stream,
        FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap(),
    );
    let element = source(&stream, false);
    let mut h = harness(&element, None);
    producer.publish(1);
    h.pull().unwrap();
    let mut query = gst::query::Latency::new();
    assert!(element.static_pad("src").unwrap().query(&mut query));
    let (live, min, max) = query.result();
    assert!(live);
    assert_eq!(Some(min), max);

    // Three frames back to back: the source takes the newest it sees and counts the ones
    // it was too slow for, so every frame is either taken or counted as skipped.
    producer.publish(2);
    producer.publish(3);
    let sent = producer.publish(4);
    let mut pulled = 1;
    while bytes(&h.pull().unwrap()) != sent {
        pulled += 1;
    }
    pulled += 1;
    let (frames, skipped, reopens) = stats(&element);
    assert_eq!((frames, reopens), (pulled, 0));
    assert_eq!(frames + skipped, 4);
}
