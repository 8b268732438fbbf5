//! Publishes numbered frames on a stream: `cargo run -p shm-frames --example writer --
//! [NAME] [WIDTHxHEIGHT] [FPS] [FRAMES]` (defaults: ex0 640x480 60 600). Run `reader` beside it.

use std::time::{Duration, Instant};

use frame_vocab::{FrameFormat, PixelFormat, StreamName, StreamOwner};
use shm_frames::RegionBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = StreamName::new(&args.next().unwrap_or_else(|| "ex0".into()))?;
    let size = args.next().unwrap_or_else(|| "640x480".into());
    let (w, h) = size.split_once('x').ok_or("size must be WIDTHxHEIGHT")?;
    let fps: f64 = args.next().map_or(Ok(60.0), |s| s.parse())?;
    let frames: u64 = args.next().map_or(Ok(600), |s| s.parse())?;
    let format = FrameFormat::new(w.parse()?, h.parse()?, PixelFormat::Bgra)?;

    let owner = StreamOwner::claim(&name)?;
    let mut writer = RegionBuilder::new(&owner, format).create()?;
    let supervisor = writer.supervisor();
    println!("writer: stream {name}, {format}, {fps} fps, {frames} frames");

    let period = Duration::from_secs_f64(1.0 / fps);
    let start = Instant::now();
    for n in 0..frames {
        // Absolute deadlines: no drift.
        let due = start + period.mul_f64(n as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        supervisor.beat();
        let Some(mut slot) = writer.slot() else {
            continue;
        };
        let seq = slot.seq();
        // Every byte carries the frame's seq, so a reader can spot a torn frame.
        slot.fill(seq as u8);
        slot[..8].copy_from_slice(&seq.to_le_bytes());
        slot.publish(None);
    }
    println!(
        "writer: published {} frames, skipped {}",
        writer.published(),
        writer.skipped()
    );
    Ok(())
}
