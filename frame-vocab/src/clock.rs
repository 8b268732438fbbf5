//! CLOCK_MONOTONIC time, the one clock every timestamp and deadline in framepipe uses.

use std::time::Duration;

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds on CLOCK_MONOTONIC (comparable across processes on one machine).
pub fn monotonic_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux for a valid clock id; 0 is a harmless fallback.
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|ts| Duration::from(ts).as_nanos() as u64)
        .unwrap_or(0)
}

/// A point on CLOCK_MONOTONIC by which a wait must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    ns: u64,
}

impl Deadline {
    /// `timeout` from now (saturating: a huge timeout means "never").
    pub fn after(timeout: Duration) -> Deadline {
        let add = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        Deadline {
            ns: monotonic_ns().saturating_add(add),
        }
    }

    /// A deadline at `ns` on CLOCK_MONOTONIC.
    pub fn from_ns(ns: u64) -> Deadline {
        Deadline { ns }
    }

    /// The deadline as nanoseconds on CLOCK_MONOTONIC.
    pub fn as_ns(&self) -> u64 {
        self.ns
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        Duration::from_nanos(self.ns.saturating_sub(monotonic_ns()))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        monotonic_ns() >= self.ns
    }
}
