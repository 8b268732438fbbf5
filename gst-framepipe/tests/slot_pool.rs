//! `framepipesink`'s slot pool on gstreamer-check's Harness (whose buffers come from the
//! pool the element proposes): buffers that are lent slots are published in place; when
//! no slot is to spare the pool hands out ordinary memory at once and the sink copies it;
//! a buffer rendered twice, or a lent slot of a region since replaced, is copied, never
//! published twice or into the wrong region.

mod common;

use common::{init_in_process, reader};

use frame_vocab::{FrameFormat, PixelFormat};
use gst::prelude::*;
use gst_video::VideoFormat;
use shm_frames::testing::{HANG, TestStream};
use shm_frames::{Reader, WaitError};

fn harness(stream: &TestStream, slot_pool: bool, caps: &gst::Caps) -> gst_check::Harness {
    let sink = gst::ElementFactory::make("framepipesink")
        .property("stream", stream.as_str())
        .property("sync", false)
        .property("slot-pool", slot_pool)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&sink, Some("sink"), None);
    h.play();
    // Pushes the caps and runs the allocation query: the harness keeps the proposed pool.
    h.set_src_caps(caps.clone());
    h
}

fn bgrx() -> gst_video::VideoInfo {
    gst_video::VideoInfo::builder(VideoFormat::Bgrx, 320, 240)
        .build()
        .unwrap()
}

/// A buffer from the harness's pool (the element's, if it proposed one), filled with
/// bytes that vary with `tag`.
fn filled(h: &mut gst_check::Harness, size: usize, tag: u8) -> gst::Buffer {
    let mut buffer = h.create_buffer(size).unwrap();
    {
        let mut data = buffer.get_mut().unwrap().map_writable().unwrap();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = ((i % 251) as u8).wrapping_add(tag);
        }
    }
    buffer
}

fn expected(size: usize, tag: u8) -> Vec<u8> {
    (0..size)
        .map(|i| ((i % 251) as u8).wrapping_add(tag))
        .collect()
}

fn stats(h: &gst_check::Harness) -> (u64, u64, u64) {
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    (
        stats.get("in-place").unwrap(),
        stats.get("copied").unwrap(),
        stats.get("skipped").unwrap(),
    )
}

/// Pushes `buffer` and checks the next frame the reader takes is `seq` with `tag`'s bytes.
fn push_and_check(
    h: &mut gst_check::Harness,
    reader: &mut Reader,
    buffer: gst::Buffer,
    seq: u64,
    tag: u8,
) {
    let size = buffer.size();
    h.push(buffer).unwrap();
    let frame = reader.wait_frame(HANG).unwrap();
    assert_eq!(frame.seq(), seq);
    assert!(&frame[..] == expected(size, tag).as_slice(), "frame {seq}");
}

#[test]
fn buffers_from_the_slot_pool_are_published_in_place_and_arrive_intact() {
    init_in_process();
    for slot_pool in [true, false] {
        let stream = TestStream::new("gpool");
        let info = bgrx();
        let mut h = harness(&stream, slot_pool, &info.to_caps().unwrap());
        let mut reader = reader(&stream);
        for seq in 1..=30u64 {
            let buffer = filled(&mut h, info.size(), seq as u8);
            push_and_check(&mut h, &mut reader, buffer, seq, seq as u8);
        }
        let (in_place, copied, skipped) = stats(&h);
        if slot_pool {
            assert_eq!(
                (in_place, copied, skipped),
                (30, 0, 0),
                "every buffer a slot"
            );
        } else {
            assert_eq!(
                (in_place, copied, skipped),
                (0, 30, 0),
                "no pool: each copied"
            );
        }
    }
}

#[test]
fn with_no_slot_to_spare_the_pool_hands_out_ordinary_memory_at_once_and_it_is_copied() {
    init_in_process();
    let stream = TestStream::new("gspare");
    let info = bgrx();
    let mut h = harness(&stream, true, &info.to_caps().unwrap());
    let mut reader = reader(&stream);
    // The first buffer takes the one slot the writer may lend (one seat: three slots,
    // 3 − 1 − 1 = 1); the second, acquired while the first is out, cannot be a slot.
    let lent = filled(&mut h, info.size(), 1);
    let ordinary = filled(&mut h, info.size(), 2);
    push_and_check(&mut h, &mut reader, ordinary, 1, 2);
    assert_eq!(stats(&h), (0, 1, 0), "the ordinary buffer was copied");
    push_and_check(&mut h, &mut reader, lent, 2, 1);
    assert_eq!(stats(&h), (1, 1, 0), "the lent one published in place");
    // Both returned: the next buffer is a slot again.
    let next = filled(&mut h, info.size(), 3);
    push_and_check(&mut h, &mut reader, next, 3, 3);
    assert_eq!(stats(&h), (2, 1, 0));
}

#[test]
fn a_lent_buffer_rendered_twice_is_published_once_in_place_then_copied() {
    init_in_process();
    let stream = TestStream::new("gtwice");
    let info = bgrx();
    let mut h = harness(&stream, true, &info.to_caps().unwrap());
    let mut reader = reader(&stream);
    let buffer = filled(&mut h, info.size(), 7);
    push_and_check(&mut h, &mut reader, buffer.clone(), 1, 7);
    // The same slot again: it is `latest` now, and consumers may hold it; republishing it
    // in place would restamp a frame being read. It is copied into another slot instead.
    push_and_check(&mut h, &mut reader, buffer, 2, 7);
    assert_eq!(stats(&h), (1, 1, 0));
}

#[test]
fn a_lent_slot_of_a_replaced_region_is_copied_into_the_new_one() {
    init_in_process();
    let stream = TestStream::new("gepoch");
    let info = bgrx();
    let mut h = harness(&stream, true, &info.to_caps().unwrap());
    let mut reader = reader(&stream);
    let epoch = reader.epoch();
    let lent = filled(&mut h, info.size(), 4);
    // GRAY8 1280x240 has as many bytes as BGRx 320x240: the buffer still fits the caps,
    // but its slot belongs to the region the format change retired.
    let gray = gst_video::VideoInfo::builder(VideoFormat::Gray8, 1280, 240)
        .build()
        .unwrap();
    assert_eq!(gray.size(), info.size());
    h.set_src_caps(gray.to_caps().unwrap());
    assert!(matches!(reader.wait_frame(HANG), Err(WaitError::Replaced)));
    reader.reopen(HANG).unwrap();
    assert_eq!(reader.epoch(), epoch + 1);
    assert_eq!(
        reader.format(),
        FrameFormat::new(1280, 240, PixelFormat::Gray8).unwrap()
    );
    push_and_check(&mut h, &mut reader, lent, 1, 4);
    assert_eq!(
        stats(&h),
        (0, 1, 0),
        "copied, not published in the old region"
    );
    // The Harness keeps the pool it configured for BGRx (a real upstream asks again after
    // a caps change): a pool configured for other caps lends nothing from the new region.
    let next = filled(&mut h, gray.size(), 5);
    push_and_check(&mut h, &mut reader, next, 2, 5);
    assert_eq!(
        stats(&h),
        (0, 2, 0),
        "an old pool's buffer is ordinary memory"
    );
}
