//! The shared-memory side: a `shm-frames` region written by a child producer, read here
//! through a [`Reader`] with the Block or Spin strategy; and the bare primitives of the same
//! region (`Supervisor::probe`: a semaphore post, a spinning atomic).
//!
//! Handoff latency is the library's own: publish (`publish_ns`) → this reader holds the
//! slot (`taken_ns`); the frame is then fully readable in place. Throughput: the producer
//! fills every byte of each frame, the reader reads every byte of each frame it takes.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use frame_vocab::{Deadline, StreamName, StreamOwner, monotonic_ns};
use shm_frames::{Reader, ReaderOptions, RegionBuilder, Supervisor, WaitStrategy, Writer};

use crate::child::{Args, Child, unique};
use crate::error::{MeasureError, Result, lib};
use crate::measure::{PERIOD, Pacer, read_all};
use crate::size::Size;

/// How long a frame wait may take before the case fails.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// What the producer child does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmMode {
    /// Publishes a frame every [`PERIOD`], writing only its first 8 bytes.
    Period,
    /// Fills every byte of every frame and publishes, flat out.
    Flat,
    /// Every [`PERIOD`]: stamps the probe word and posts seat 0's semaphore.
    Probe,
}

impl ShmMode {
    fn key(self) -> &'static str {
        match self {
            ShmMode::Period => "period",
            ShmMode::Flat => "flat",
            ShmMode::Probe => "probe",
        }
    }
}

/// A unique stream name for one case.
pub fn unique_stream() -> Result<StreamName> {
    StreamName::new(&unique("rep")).map_err(lib("stream name"))
}

/// Stamps a region's heartbeat every 50 ms (readers call a producer hung after 1 s).
#[derive(Debug)]
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts beating for `supervisor`.
    pub fn start(supervisor: Supervisor) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                supervisor.beat();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Heartbeat {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Creates a region of `size` with `seats` seats for `owner`.
pub fn create_writer(owner: &StreamOwner, size: Size, seats: u32) -> Result<Writer> {
    RegionBuilder::new(owner, size.format())
        .seats(seats)
        .create()
        .map_err(lib("create the region"))
}

/// Opens a reader on `stream` with `strategy`.
pub fn open_reader(stream: &StreamName, strategy: WaitStrategy) -> Result<Reader> {
    let options = ReaderOptions {
        wait: Duration::from_secs(30),
        strategy,
        ..ReaderOptions::default()
    };
    Reader::open(stream, options).map_err(lib(format!("open stream {}", stream.as_str())))
}

/// Unlinks a stream's region on drop: its producer child is killed, never stopped, so it
/// cannot unlink the region itself.
#[derive(Debug)]
pub struct UnlinkOnDrop(pub String);

impl UnlinkOnDrop {
    /// For `stream`'s region.
    pub fn region(stream: &StreamName) -> UnlinkOnDrop {
        UnlinkOnDrop(stream.shm_name())
    }
}

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::mman::shm_unlink(self.0.as_str());
    }
}

/// The reading side of one shm case, with its producer child.
#[derive(Debug)]
pub struct ShmReceiver {
    // Dropped in this order: the seat, the child, then the name.
    reader: Reader,
    _child: Child,
    _name: UnlinkOnDrop,
    last_probe: u64,
}

impl ShmReceiver {
    /// Starts a producer child on `cpu` and takes a seat with `strategy`.
    pub fn start(
        size: Size,
        mode: ShmMode,
        strategy: WaitStrategy,
        cpu: usize,
    ) -> Result<ShmReceiver> {
        let stream = unique_stream()?;
        let args = [
            ("stream", stream.as_str().to_owned()),
            ("size", size.label.to_owned()),
            ("mode", mode.key().to_owned()),
        ];
        let name = UnlinkOnDrop::region(&stream);
        let child = Child::spawn("shm-writer", &args, cpu)?;
        let reader = open_reader(&stream, strategy)?;
        Ok(ShmReceiver {
            reader,
            _child: child,
            _name: name,
            last_probe: 0,
        })
    }

    /// One handoff: publish → held, ns.
    pub fn sample(&mut self) -> Result<u64> {
        let frame = self
            .reader
            .wait_frame(FRAME_TIMEOUT)
            .map_err(lib("wait for a frame"))?;
        let info = frame.info();
        std::hint::black_box(frame[0]);
        Ok(info.taken_ns.saturating_sub(info.publish_ns))
    }

    /// One frame taken and every byte of it read.
    pub fn frame(&mut self) -> Result<()> {
        let frame = self
            .reader
            .wait_frame(FRAME_TIMEOUT)
            .map_err(lib("wait for a frame"))?;
        std::hint::black_box(read_all(&frame));
        Ok(())
    }

    /// The bare semaphore wake-up: probe stamp → this process runs after `sem_wait`, ns.
    pub fn semaphore_wake(&mut self) -> Result<u64> {
        let stamp = self
            .reader
            .probe_wait(Deadline::after(FRAME_TIMEOUT))
            .ok_or_else(|| MeasureError::Timeout("a semaphore post".into()))?;
        Ok(monotonic_ns().saturating_sub(stamp))
    }

    /// The bare spinning atomic: probe stamp → this process sees it change, ns.
    pub fn spin_wake(&mut self) -> Result<u64> {
        let stamp = self
            .reader
            .probe_spin(self.last_probe, Deadline::after(FRAME_TIMEOUT))
            .ok_or_else(|| MeasureError::Timeout("a probe stamp".into()))?;
        let now = monotonic_ns();
        self.last_probe = stamp;
        Ok(now.saturating_sub(stamp))
    }
}

/// The child: a producer of one region in one [`ShmMode`], until killed.
pub fn writer_role(args: &Args) -> Result<()> {
    let stream = StreamName::new(args.get("stream")?).map_err(lib("stream name"))?;
    let size = Size::by_label(args.get("size")?)
        .ok_or_else(|| MeasureError::Data("unknown size".into()))?;
    let mode = args.get("mode")?;
    let owner = StreamOwner::claim(&stream).map_err(lib("claim the stream"))?;
    let mut writer = create_writer(&owner, size, 1)?;
    let supervisor = writer.supervisor();
    let _heartbeat = Heartbeat::start(supervisor.clone());
    crate::child::say("READY")?;
    let mut pacer = Pacer::new(PERIOD);
    loop {
        if mode == ShmMode::Flat.key() {
            if let Some(mut slot) = writer.slot() {
                let seq = slot.seq();
                slot.fill(seq as u8);
                slot.publish(None);
            }
            continue;
        }
        pacer.wait();
        if mode == ShmMode::Probe.key() {
            supervisor.probe(0);
        } else if let Some(mut slot) = writer.slot() {
            let seq = slot.seq();
            slot[..8].copy_from_slice(&seq.to_le_bytes());
            slot.publish(None);
        }
    }
}
