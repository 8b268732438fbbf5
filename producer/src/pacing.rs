//! Frame pacing at absolute deadlines: frame `n` is due at `anchor + n * period`, so a
//! late frame never pushes the ones after it (no drift over minutes).

use frame_vocab::monotonic_ns;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, ClockNanosleepFlags, clock_nanosleep};

/// Longest single sleep, so the caller sees stop, pause and rate changes promptly.
const SLEEP_SLICE_NS: u64 = 50_000_000;

/// What `Pacer::wait` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// The frame is due now.
    Due,
    /// The frame was due more than one period ago: the schedule skipped ahead by
    /// `missed` periods (counted as late frames).
    Late { missed: u64 },
    /// Still waiting (a slice passed); call again after checking for stop/pause.
    NotYet,
}

/// Paces frames at a fixed rate on CLOCK_MONOTONIC.
#[derive(Clone, Debug)]
pub struct Pacer {
    /// None: as fast as possible.
    period_ns: Option<u64>,
    anchor_ns: u64,
    next: u64,
}

impl Pacer {
    /// A pacer at `fps` frames per second (0 = unpaced), starting now.
    pub fn new(fps: f64) -> Pacer {
        let mut pacer = Pacer {
            period_ns: None,
            anchor_ns: 0,
            next: 0,
        };
        pacer.set_fps(fps);
        pacer
    }

    /// Changes the rate; the new schedule starts now.
    pub fn set_fps(&mut self, fps: f64) {
        self.period_ns = (fps > 0.0).then(|| (1e9 / fps).round().max(1.0) as u64);
        self.anchor_ns = monotonic_ns();
        self.next = 0;
    }

    /// Restarts the schedule from now (after a pause).
    pub fn restart(&mut self) {
        self.anchor_ns = monotonic_ns();
        self.next = 0;
    }

    /// The deadline of the next frame, if paced.
    pub fn next_due_ns(&self) -> Option<u64> {
        self.period_ns
            .map(|p| self.anchor_ns.saturating_add(p.saturating_mul(self.next)))
    }

    /// Sleeps until the next frame is due, at most one slice.
    pub fn wait(&mut self) -> Tick {
        let (Some(period), Some(due)) = (self.period_ns, self.next_due_ns()) else {
            return Tick::Due;
        };
        let now = monotonic_ns();
        if now < due {
            let until = due.min(now + SLEEP_SLICE_NS);
            let ts = TimeSpec::from(std::time::Duration::from_nanos(until));
            // EINTR or any error just ends the slice early; the caller loops.
            let _ = clock_nanosleep(
                ClockId::CLOCK_MONOTONIC,
                ClockNanosleepFlags::TIMER_ABSTIME,
                &ts,
            );
            if monotonic_ns() < due {
                return Tick::NotYet;
            }
            self.next += 1;
            return Tick::Due;
        }
        let behind = (now - due) / period;
        if behind == 0 {
            self.next += 1;
            Tick::Due
        } else {
            // Skip the missed deadlines instead of bursting to catch up.
            self.next += behind + 1;
            Tick::Late { missed: behind }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_is_always_due() {
        let mut p = Pacer::new(0.0);
        assert_eq!(p.next_due_ns(), None);
        assert_eq!(p.wait(), Tick::Due);
    }

    #[test]
    fn deadlines_are_absolute() {
        let mut p = Pacer::new(100.0);
        let anchor = p.anchor_ns;
        for n in 0..5u64 {
            assert_eq!(p.next_due_ns(), Some(anchor + n * 10_000_000));
            while p.wait() == Tick::NotYet {}
        }
    }

    #[test]
    fn a_late_schedule_skips_ahead_instead_of_bursting() {
        let mut p = Pacer::new(1000.0);
        p.anchor_ns -= 5_500_000; // Pretend we are 5.5 periods behind.
        assert_eq!(p.wait(), Tick::Late { missed: 5 });
        assert!(p.next_due_ns().unwrap() > monotonic_ns() - 1_000_000);
    }
}
