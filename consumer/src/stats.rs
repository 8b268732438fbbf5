//! `consumer stats`: headless measurement of a stream — frame rate, skipped, torn and
//! corrupt frames, producer restarts, and latency histograms of the handoff (publish →
//! held) and capture → held.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use frame_vocab::FrameFormat;
use serde::Serialize;
use shm_frames::{Delivery, FrameRef, WaitStrategy};

use crate::error::Error;
use crate::latency::{Latency, Percentiles};
use crate::session::{End, Outcome, SLICE, Session, delivery_loss};

/// How often a progress line is due.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// When a measurement ends on its own (besides the producer stopping or SIGINT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Limit {
    /// Until the producer stops or the user interrupts.
    #[default]
    None,
    /// After this long.
    Duration(Duration),
    /// After this many frames.
    Frames(u64),
}

/// What `stats` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StatsOptions {
    /// When to stop.
    pub limit: Limit,
    /// Check each frame with the moving pattern's stamp (a failure counts as torn).
    pub verify: bool,
}

/// Counters and histograms of a measurement in progress.
#[derive(Debug)]
pub struct Meter {
    format: FrameFormat,
    verify: bool,
    start: Instant,
    frames: u64,
    skipped: u64,
    torn: u64,
    corrupt: u64,
    restarts: u64,
    renumbered: u64,
    delivery: Delivery,
    lost_at: Option<u64>,
    handoff: Latency,
    capture: Latency,
    strategy: WaitStrategy,
    cpu_start: Duration,
}

/// CPU time this process has used so far, every thread counted (the clock is exact: it
/// counts what the scheduler charged, whatever else runs on the machine).
pub fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// `cpu` as a percentage of one core over `wall`.
fn percent_of_a_core(cpu: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    round(100.0 * cpu.as_secs_f64() / wall.as_secs_f64(), 2)
}

impl Meter {
    /// A meter for a stream of `format`, starting now.
    pub fn new(format: FrameFormat, verify: bool) -> Meter {
        Meter {
            format,
            verify,
            start: Instant::now(),
            frames: 0,
            skipped: 0,
            torn: 0,
            corrupt: 0,
            restarts: 0,
            renumbered: 0,
            delivery: Delivery::Newest,
            lost_at: None,
            handoff: Latency::new(),
            capture: Latency::new(),
            strategy: WaitStrategy::Block,
            cpu_start: process_cpu(),
        }
    }

    /// Measures a session attached with `delivery` (what `--every-frame` asked for).
    pub fn with_delivery(mut self, delivery: Delivery) -> Meter {
        self.delivery = delivery;
        self
    }

    /// Names the wait strategy the consumer uses, so the summary shows its CPU beside it.
    pub fn strategy(mut self, strategy: WaitStrategy) -> Meter {
        self.strategy = strategy;
        self
    }

    /// CPU time the process used since the meter started.
    pub fn cpu(&self) -> Duration {
        process_cpu().saturating_sub(self.cpu_start)
    }

    /// Counts one frame (and verifies it if asked).
    pub fn frame(&mut self, frame: &FrameRef<'_>) {
        let info = frame.info();
        self.frames += 1;
        self.skipped += info.skipped;
        if self.lost_at.is_none() {
            if let Some(loss) = delivery_loss(self.delivery, &info) {
                self.lost_at = Some(loss.seq());
                tracing::warn!(
                    seq = loss.seq(),
                    "every-frame delivery lost (the producer's stall timeout); counting on"
                );
            }
        }
        self.handoff.record_span(info.publish_ns, info.taken_ns);
        self.capture.record_span(info.capture_ns, info.taken_ns);
        if self.verify {
            // The stamp is checked on its own: a stream relayed through another one (over
            // RTP, say) carries the first stream's seqs, not this region's.
            let checked = match frame_vocab::decode_seq(self.format, frame) {
                Some(stamped) => {
                    if stamped != info.seq {
                        self.renumbered += 1;
                    }
                    frame_vocab::verify(self.format, frame, stamped)
                }
                None => frame_vocab::verify(self.format, frame, info.seq),
            };
            if let Err(error) = checked {
                self.torn += 1;
                if self.torn == 1 {
                    tracing::warn!(seq = info.seq, %error, "frame failed verification");
                } else {
                    tracing::debug!(seq = info.seq, %error, "frame failed verification");
                }
            }
        }
    }

    /// Counts a move to a new region of the stream.
    pub fn reopened(&mut self, new: FrameFormat) {
        self.restarts += 1;
        self.format = new;
    }

    /// Counts a corrupt value read from the region.
    pub fn corrupt(&mut self) {
        self.corrupt += 1;
    }

    /// Time since the meter started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The summary so far.
    pub fn summary(&self, stream: &str, end: &End) -> Summary {
        let elapsed = self.elapsed();
        let seconds = elapsed.as_secs_f64();
        let cpu = self.cpu();
        Summary {
            frames: self.frames,
            seconds: round(seconds, 3),
            fps: if seconds > 0.0 {
                round(self.frames as f64 / seconds, 2)
            } else {
                0.0
            },
            skipped: self.skipped,
            torn: self.torn,
            corrupt: self.corrupt,
            restarts: self.restarts,
            handoff_us: self.handoff.percentiles(),
            capture_us: self.capture.percentiles(),
            stream: stream.to_owned(),
            format: self.format.to_string(),
            verified: self.verify,
            end: end.name(),
            renumbered: self.renumbered,
            delivery: match self.delivery {
                Delivery::Newest => "newest",
                Delivery::EveryFrame => "every-frame",
            },
            delivery_lost_at: self.lost_at,
            untaken: 0,
            stalls: 0,
            strategy: self.strategy.name(),
            cpu_seconds: round(cpu.as_secs_f64(), 6),
            cpu_percent: percent_of_a_core(cpu, elapsed),
        }
    }
}

/// The final result of a measurement. Serialises (JSON) with exactly these keys first, in
/// this order: frames, seconds, fps, skipped, torn, corrupt, restarts, handoff_us,
/// capture_us; then stream, format, verified, end, renumbered, delivery, delivery_lost_at,
/// untaken, stalls, strategy, cpu_seconds, cpu_percent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Frames taken.
    pub frames: u64,
    /// Length of the measurement.
    pub seconds: f64,
    /// Frames per second over the measurement.
    pub fps: f64,
    /// Frames published but not taken (the consumer was busy with an older one).
    pub skipped: u64,
    /// Frames that failed verification (with `--verify`).
    pub torn: u64,
    /// Corrupt values read from the region.
    pub corrupt: u64,
    /// Moves to a new region (producer restarts and format changes).
    pub restarts: u64,
    /// Publish → held latency, microseconds.
    pub handoff_us: Percentiles,
    /// Capture → held latency, microseconds.
    pub capture_us: Percentiles,
    /// The stream's name.
    pub stream: String,
    /// The stream's (last) format.
    pub format: String,
    /// Whether frames were verified.
    pub verified: bool,
    /// Why the measurement ended: `done`, `producer-stopped`, `producer-lost`, `interrupted`.
    pub end: &'static str,
    /// Verified frames whose stamp carries another seq than this region gave them: frames
    /// relayed from another stream (over RTP, say), which renumbers them.
    pub renumbered: u64,
    /// What the consumer asked for: `newest` or `every-frame`.
    pub delivery: &'static str,
    /// `every-frame` only: the first frame no longer guaranteed, once the producer's stall
    /// timeout dropped this consumer back to newest-frame (`null` while it held).
    pub delivery_lost_at: Option<u64>,
    /// Frames the producer published while this seat sat (as its `FrameMeta` said) that
    /// this seat never took; beside `skipped` (from seq gaps), it counts from the metadata.
    pub untaken: u64,
    /// Times the producer was seen stalled (alive, no heartbeat for a second) while the
    /// consumer kept its seat.
    pub stalls: u64,
    /// The wait strategy (`block`, `spin`, `spin-then-block`, `predict`).
    pub strategy: &'static str,
    /// CPU time the consumer process used over the measurement, seconds.
    pub cpu_seconds: f64,
    /// That CPU time as a percentage of one core over the measurement.
    pub cpu_percent: f64,
}

impl Summary {
    /// The summary as one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of numbers, strings and options: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stream {} ({}): {} frames in {:.2} s = {:.2} fps",
            self.stream, self.format, self.frames, self.seconds, self.fps
        )?;
        let torn = if self.verified {
            self.torn.to_string()
        } else {
            "not checked".to_owned()
        };
        writeln!(
            f,
            "skipped {}, torn {}, corrupt {}, restarts {}",
            self.skipped, torn, self.corrupt, self.restarts
        )?;
        match self.delivery_lost_at {
            Some(seq) => writeln!(f, "delivery: every-frame, lost at seq {seq}")?,
            None => writeln!(f, "delivery: {}", self.delivery)?,
        }
        writeln!(
            f,
            "handoff latency (publish -> held): {}",
            Us(self.handoff_us)
        )?;
        writeln!(
            f,
            "consumer cpu ({} wait): {:.2}% of a core ({:.3} s)",
            self.strategy, self.cpu_percent, self.cpu_seconds
        )?;
        write!(
            f,
            "capture latency (capture -> held): {}",
            Us(self.capture_us)
        )
    }
}

/// Percentiles written for people.
struct Us(Percentiles);

impl fmt::Display for Us {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.0;
        let Some(p50) = p.p50 else {
            return f.write_str("no frames");
        };
        let v = |x: Option<f64>| x.unwrap_or_default();
        write!(
            f,
            "p50 {p50:.1} us, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}",
            v(p.p90),
            v(p.p99),
            v(p.p999),
            v(p.max)
        )
    }
}

/// A progress report, due every [`PROGRESS_EVERY`].
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Seconds since the start.
    pub seconds: f64,
    /// Frames so far.
    pub frames: u64,
    /// Frame rate since the previous report.
    pub fps: f64,
    /// Skipped frames so far.
    pub skipped: u64,
    /// Torn frames so far.
    pub torn: u64,
    /// Producer restarts so far.
    pub restarts: u64,
    /// Handoff p50 and p99 so far, microseconds.
    pub handoff_p50_us: Option<f64>,
    /// Handoff p99 so far, microseconds.
    pub handoff_p99_us: Option<f64>,
    /// The consumer's CPU since the previous report, percent of a core.
    pub cpu_percent: f64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:7.1} s  {:8} frames  {:8.1} fps  skipped {}  torn {}  restarts {}  handoff",
            self.seconds, self.frames, self.fps, self.skipped, self.torn, self.restarts
        )?;
        match (self.handoff_p50_us, self.handoff_p99_us) {
            (Some(p50), Some(p99)) => write!(f, " p50 {p50:.1} us p99 {p99:.1} us")?,
            _ => f.write_str(" -")?,
        }
        write!(f, "  cpu {:.1}%", self.cpu_percent)
    }
}

/// Measures the stream until the limit, the producer stopping, it being lost, or `stop`.
/// Calls `progress` every [`PROGRESS_EVERY`]. Returns how it ended and the summary.
pub fn run(
    session: &mut Session,
    options: &StatsOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(End, Summary), Error> {
    let mut meter = Meter::new(session.format(), options.verify)
        .with_delivery(session.attach().delivery)
        .strategy(session.attach().strategy);
    let mut last_report = (Duration::ZERO, 0u64);
    let mut last_cpu = meter.cpu();
    let end = loop {
        match session.step(SLICE, stop)? {
            Outcome::Frame(frame) => meter.frame(&frame),
            Outcome::Reattached { new, .. } => meter.reopened(new),
            Outcome::Corrupt(_) => meter.corrupt(),
            Outcome::Idle | Outcome::Lost(_) | Outcome::Waiting => {}
            Outcome::End(end) => break end,
        }
        let elapsed = meter.elapsed();
        if elapsed >= last_report.0 + PROGRESS_EVERY {
            let interval = (elapsed - last_report.0).as_secs_f64();
            let cpu = meter.cpu();
            progress(&Progress {
                seconds: elapsed.as_secs_f64(),
                frames: meter.frames,
                fps: (meter.frames - last_report.1) as f64 / interval,
                skipped: meter.skipped,
                torn: meter.torn,
                restarts: meter.restarts,
                handoff_p50_us: meter.handoff.quantile_us(0.5),
                handoff_p99_us: meter.handoff.quantile_us(0.99),
                cpu_percent: percent_of_a_core(cpu - last_cpu, elapsed - last_report.0),
            });
            last_cpu = cpu;
            last_report = (elapsed, meter.frames);
        }
        let done = match options.limit {
            Limit::None => false,
            Limit::Duration(limit) => elapsed >= limit,
            Limit::Frames(limit) => meter.frames >= limit,
        };
        if done {
            break End::Done;
        }
    };
    let mut summary = meter.summary(session.attach().stream.as_str(), &end);
    summary.untaken = session.untaken();
    summary.stalls = session.stalls();
    Ok((end, summary))
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame_vocab::PixelFormat;

    fn summary(meter: &Meter) -> serde_json::Value {
        serde_json::from_str(&meter.summary("cam0", &End::Done).to_json()).unwrap()
    }

    #[test]
    fn json_has_the_contract_keys_first_in_order() {
        let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
        let mut meter = Meter::new(format, true);
        meter.handoff.record_span(0, 45_000);
        meter.capture.record_span(0, 60_000);
        meter.frames = 1;
        meter.corrupt();
        meter.reopened(format);
        let json = meter.summary("cam0", &End::Done).to_json();
        let keys = [
            "frames",
            "seconds",
            "fps",
            "skipped",
            "torn",
            "corrupt",
            "restarts",
            "handoff_us",
            "capture_us",
        ];
        let mut at = 0;
        for key in keys {
            let needle = format!("\"{key}\":");
            let found = json[at..].find(&needle);
            assert!(found.is_some(), "{key} missing or out of order in {json}");
            at += found.unwrap() + needle.len();
        }
        assert!(json.starts_with("{\"frames\":1,"), "{json}");
        let value = summary(&meter);
        assert_eq!(value["corrupt"], 1);
        assert_eq!(value["restarts"], 1);
        assert_eq!(value["torn"], 0);
        assert_eq!(value["end"], "done");
        for histogram in ["handoff_us", "capture_us"] {
            for p in ["p50", "p90", "p99", "p999", "max"] {
                assert!(value[histogram][p].is_number(), "{histogram}.{p} in {json}");
            }
        }
        assert_eq!(value["handoff_us"]["p50"], 45.0);
        assert_eq!(value["capture_us"]["max"], 60.0);
    }

    #[test]
    fn empty_histograms_are_null_and_one_line() {
        let format = FrameFormat::new(64, 48, PixelFormat::I420).unwrap();
        let meter = Meter::new(format, false);
        let json = meter.summary("x", &End::ProducerStopped).to_json();
        assert!(!json.contains('\n'));
        let value = summary(&meter);
        assert_eq!(value["frames"], 0);
        assert!(value["handoff_us"]["p50"].is_null());
        assert!(value["capture_us"]["max"].is_null());
        assert_eq!(value["verified"], false);
    }

    #[test]
    fn human_summary_names_the_counts() {
        let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
        let text = Meter::new(format, false)
            .summary("cam0", &End::Done)
            .to_string();
        assert!(
            text.contains("stream cam0 (64x48 bgra): 0 frames"),
            "{text}"
        );
        assert!(text.contains("torn not checked"), "{text}");
        assert!(text.contains("no frames"), "{text}");
        assert!(text.contains("consumer cpu (block wait): "), "{text}");
    }

    #[test]
    fn the_summary_shows_the_strategy_and_its_cpu() {
        let format = FrameFormat::new(64, 48, PixelFormat::Bgra).unwrap();
        let meter = Meter::new(format, false).strategy(WaitStrategy::PREDICT);
        // Burn some CPU so the counter moves.
        let mut x = 0u64;
        while meter.cpu() < Duration::from_millis(5) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        let value = summary(&meter);
        assert_eq!(value["strategy"], "predict");
        assert!(value["cpu_seconds"].as_f64().unwrap() >= 0.005, "{value}");
        let percent = value["cpu_percent"].as_f64().unwrap();
        assert!(percent > 0.0, "{value}");
        let text = meter.summary("cam0", &End::Done).to_string();
        assert!(text.contains("consumer cpu (predict wait): "), "{text}");
        assert_eq!(
            percent_of_a_core(Duration::from_millis(50), Duration::from_secs(1)),
            5.0
        );
        assert_eq!(
            percent_of_a_core(Duration::from_millis(50), Duration::ZERO),
            0.0
        );
    }
}
