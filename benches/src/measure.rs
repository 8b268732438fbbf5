//! Measuring: latency samples into an HDR histogram, frame rates over a time window, and
//! the fixed publishing period every latency case shares.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::error::Result;

/// The one publishing period of every latency case. A sleeping wake-up costs more the
/// longer the sleeper was idle, so only equal periods compare fairly.
pub const PERIOD: Duration = Duration::from_millis(5);

/// Samples dropped at the start of each latency case (first touches, page faults).
pub const WARM_UP_SAMPLES: usize = 5;

/// Percentiles of one latency case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Samples recorded.
    pub samples: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// Largest, ns.
    pub max_ns: u64,
}

impl Latency {
    /// p50 in µs.
    pub fn p50_us(&self) -> f64 {
        self.p50_ns as f64 / 1e3
    }

    /// p99 in µs.
    pub fn p99_us(&self) -> f64 {
        self.p99_ns as f64 / 1e3
    }
}

/// A latency histogram, 1 ns to 100 s, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Recorder(Histogram<u64>);

impl Default for Recorder {
    fn default() -> Self {
        Recorder(Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds"))
    }
}

impl Recorder {
    /// Records one sample (ns); values out of range are clamped.
    pub fn record(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1));
    }

    /// The percentiles, or `None` when empty.
    pub fn latency(&self) -> Option<Latency> {
        (!self.0.is_empty()).then(|| Latency {
            samples: self.0.len(),
            p50_ns: self.0.value_at_quantile(0.5),
            p99_ns: self.0.value_at_quantile(0.99),
            max_ns: self.0.max(),
        })
    }
}

/// How many samples a latency case takes: `count`, or fewer if `budget` runs out first
/// (at least `min` all the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Samples wanted.
    pub count: usize,
    /// At least this many, whatever the time.
    pub min: usize,
    /// Time allowed for the samples.
    pub time: Duration,
}

/// Takes samples (ns each) after [`WARM_UP_SAMPLES`], within `budget`.
pub fn collect(budget: Budget, mut sample: impl FnMut() -> Result<u64>) -> Result<Latency> {
    for _ in 0..WARM_UP_SAMPLES {
        sample()?;
    }
    let mut recorder = Recorder::default();
    let start = Instant::now();
    let mut n = 0;
    while n < budget.count && (n < budget.min || start.elapsed() < budget.time) {
        recorder.record(sample()?);
        n += 1;
    }
    Ok(recorder.latency().expect("at least one sample"))
}

/// A frame rate measured over a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Frames completed.
    pub frames: u64,
    /// Seconds they took.
    pub secs: f64,
    /// Bytes per frame.
    pub frame_bytes: u64,
}

impl Rate {
    /// Frames per second.
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.secs
    }

    /// GB/s (10^9 bytes) of frame data.
    pub fn gbps(&self) -> f64 {
        self.fps() * self.frame_bytes as f64 / 1e9
    }
}

/// Runs `frame` (one whole frame's work) for `window` after a short warm-up, and returns
/// the rate.
pub fn rate_for(
    window: Duration,
    frame_bytes: usize,
    mut frame: impl FnMut() -> Result<()>,
) -> Result<Rate> {
    let warm = Instant::now();
    while warm.elapsed() < window / 10 {
        frame()?;
    }
    let start = Instant::now();
    let mut frames = 0u64;
    while start.elapsed() < window {
        frame()?;
        frames += 1;
    }
    Ok(Rate {
        frames,
        secs: start.elapsed().as_secs_f64(),
        frame_bytes: frame_bytes as u64,
    })
}

/// Sums a buffer 8 bytes at a time (the tail byte by byte): a reader touching every byte.
pub fn read_all(frame: &[u8]) -> u64 {
    let mut chunks = frame.chunks_exact(8);
    let sum = chunks.by_ref().fold(0u64, |acc, w| {
        acc.wrapping_add(u64::from_le_bytes(w.try_into().expect("8 bytes")))
    });
    chunks
        .remainder()
        .iter()
        .fold(sum, |acc, &b| acc.wrapping_add(u64::from(b)))
}

/// One core writing a private buffer of `bytes` for `window`: the memory-bandwidth ceiling.
pub fn private_write(window: Duration, bytes: usize) -> Result<Rate> {
    let mut private = vec![0u8; bytes];
    let mut n = 0u8;
    rate_for(window, bytes, || {
        n = n.wrapping_add(1);
        private.fill(n);
        black_box(&mut private);
        Ok(())
    })
}

/// Absolute deadlines `anchor + k * period`; a late caller goes at once and the schedule
/// restarts from then (no burst to catch up).
#[derive(Debug)]
pub struct Pacer {
    period: Duration,
    next: Instant,
}

impl Pacer {
    /// The first deadline is one period from now.
    pub fn new(period: Duration) -> Pacer {
        Pacer {
            period,
            next: Instant::now() + period,
        }
    }

    /// Sleeps until the next deadline.
    pub fn wait(&mut self) {
        let now = Instant::now();
        if let Some(left) = self.next.checked_duration_since(now) {
            std::thread::sleep(left);
            self.next += self.period;
        } else {
            self.next = now + self.period;
        }
    }
}

/// A stamp in the first 8 bytes of a message.
pub fn put_stamp(buf: &mut [u8], ns: u64) {
    buf[..8].copy_from_slice(&ns.to_le_bytes());
}

/// The stamp of the first 8 bytes.
pub fn stamp_of(buf: &[u8]) -> u64 {
    u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let mut r = Recorder::default();
        assert!(r.latency().is_none());
        for ns in 1..=100u64 {
            r.record(ns * 1000);
        }
        let l = r.latency().unwrap();
        assert_eq!(l.samples, 100);
        assert!((49_000..=51_000).contains(&l.p50_ns), "{l:?}");
        assert!((98_000..=100_500).contains(&l.p99_ns), "{l:?}");
    }

    #[test]
    fn collect_honours_count_and_min() {
        let mut calls = 0;
        let budget = Budget {
            count: 7,
            min: 3,
            time: Duration::from_secs(60),
        };
        let l = collect(budget, || {
            calls += 1;
            Ok(10)
        })
        .unwrap();
        assert_eq!(l.samples, 7);
        assert_eq!(calls, 7 + WARM_UP_SAMPLES);
        let zero_time = Budget {
            count: 100,
            min: 3,
            time: Duration::ZERO,
        };
        assert_eq!(collect(zero_time, || Ok(1)).unwrap().samples, 3);
    }

    #[test]
    fn read_all_counts_every_byte() {
        assert_eq!(read_all(&[1u8; 13]), 0x0101_0101_0101_0101 + 5);
        let rate = Rate {
            frames: 10,
            secs: 2.0,
            frame_bytes: 1_000_000_000,
        };
        assert_eq!(rate.fps(), 5.0);
        assert_eq!(rate.gbps(), 5.0);
    }

    #[test]
    fn stamps_round_trip() {
        let mut buf = [0u8; 64];
        put_stamp(&mut buf, 0xdead_beef_1234);
        assert_eq!(stamp_of(&buf), 0xdead_beef_1234);
    }
}
