//! Reads a stream and prints fps and handoff latency every second: `cargo run -p shm-frames
//! --example reader -- [NAME]` (default ex0). Start `writer` first or within 5 s.

use std::time::{Duration, Instant};

use frame_vocab::StreamName;
use shm_frames::{Reader, ReaderOptions, WaitError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = StreamName::new(&std::env::args().nth(1).unwrap_or_else(|| "ex0".into()))?;
    let mut reader = Reader::open(&name, ReaderOptions::default())?;
    println!(
        "reader: stream {name}, {}, seat {}",
        reader.format(),
        reader.seat()
    );
    let (mut frames, mut worst_us, mut torn) = (0u64, 0u64, 0u64);
    let mut tick = Instant::now();
    loop {
        match reader.wait_frame(Duration::from_secs(2)) {
            Ok(frame) => {
                let info = frame.info();
                worst_us = worst_us.max((info.taken_ns.saturating_sub(info.publish_ns)) / 1000);
                let seq = u64::from_le_bytes(frame[..8].try_into()?);
                if seq != info.seq || frame[8..].iter().any(|&b| b != info.seq as u8) {
                    torn += 1;
                }
                frames += 1;
            }
            Err(WaitError::Timeout) => {}
            Err(e) if e.needs_reopen() => {
                println!("reader: {e}; stopping");
                break;
            }
            Err(e) => return Err(e.into()),
        }
        if tick.elapsed() >= Duration::from_secs(1) {
            let s = reader.stats();
            println!(
                "reader: {frames} frames/s, worst handoff {worst_us} us, skipped {}, torn {torn}",
                s.skipped
            );
            (frames, worst_us) = (0, 0);
            tick = Instant::now();
        }
    }
    Ok(())
}
