//! `_framepipe._bench_rust_take`: the Rust reader's take, timed the way the Python bench
//! times the Python one (for `bench/bench.py`; not part of the public API).

use std::time::{Duration, Instant};

use frame_vocab::{StreamName, StreamOwner};
use pyo3::prelude::*;
use shm_frames::{ReaderOptions, RegionBuilder};

use crate::errors;

/// Creates stream `stream` at `width`x`height` bgra with a Rust `Writer` and a Rust
/// `Reader`, and `frames` times publishes a frame (untimed) then times
/// `wait_frame_owned` + drop with the frame already there. Returns the nanoseconds of
/// each take.
#[pyfunction]
pub fn _bench_rust_take(
    py: Python<'_>,
    stream: &str,
    width: u32,
    height: u32,
    frames: usize,
) -> PyResult<Vec<u64>> {
    let name = StreamName::new(stream).map_err(|e| errors::error(e.to_string()))?;
    let format = crate::vocab::frame_format(width, height, frame_vocab::PixelFormat::Bgra)?;
    py.detach(|| {
        let owner = StreamOwner::claim(&name).map_err(|e| errors::message(&e))?;
        let mut writer = RegionBuilder::new(&owner, format)
            .create()
            .map_err(|e| errors::message(&e))?;
        let supervisor = writer.supervisor();
        let mut reader = shm_frames::Reader::open(&name, ReaderOptions::default())
            .map_err(|e| errors::message(&e))?;
        let mut times = Vec::with_capacity(frames);
        for _ in 0..frames {
            let slot = writer.slot().ok_or("no free slot")?;
            slot.publish(None);
            supervisor.beat();
            let start = Instant::now();
            let frame = reader
                .wait_frame_owned(Duration::ZERO)
                .map_err(|e| errors::message(&e))?;
            std::hint::black_box(frame.as_ptr());
            drop(frame);
            times.push(start.elapsed().as_nanos() as u64);
        }
        Ok(times)
    })
    .map_err(|e: String| errors::error(e))
}
