//! How a reader attaches and waits: its options, and its counters.

use std::time::Duration;

use crate::predict::SpinBudget;
#[cfg(doc)]
use crate::{error::OpenError, slot::FrameInfo};

/// How a consumer waits for the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitStrategy {
    /// Sleep on the seat's semaphore (default): no CPU while waiting, one wake-up per frame.
    #[default]
    Block,
    /// Poll `latest`: the lowest latency, at the cost of a busy core.
    Spin,
    /// Spin for this long, then block.
    SpinThenBlock(Duration),
    /// Learn the stream's rhythm, sleep until just before the next frame is due, spin across
    /// the window it can arrive in, then block; spinning costs at most `spin_budget` of a
    /// core. An irregular stream is waited for as `Block` (see `predict.rs`).
    Predict {
        /// The share of a core it may spend spinning (`SpinBudget::ZERO`: `Block`).
        spin_budget: SpinBudget,
    },
}

impl WaitStrategy {
    /// `Predict` with the default spin budget (5% of a core).
    pub const PREDICT: WaitStrategy = WaitStrategy::Predict {
        spin_budget: SpinBudget::DEFAULT,
    };

    /// The strategy's name as the command line spells it.
    pub fn name(&self) -> &'static str {
        match self {
            WaitStrategy::Block => "block",
            WaitStrategy::Spin => "spin",
            WaitStrategy::SpinThenBlock(_) => "spin-then-block",
            WaitStrategy::Predict { .. } => "predict",
        }
    }
}

/// Which frames a reader is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Delivery {
    /// The newest complete frame (default). The producer never waits for this reader;
    /// frames it was too slow for are skipped and counted.
    #[default]
    Newest,
    /// Every frame from the reader's first take on: the producer publishes frame n+1 only
    /// once this reader has taken frame n. A reader that takes nothing for the producer's
    /// stall timeout is dropped back to `Newest` ([`FrameInfo::demoted`]). Refused
    /// ([`OpenError::NoBackpressure`]) by a producer that never waits.
    EveryFrame,
}

/// How to attach to a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderOptions {
    /// How long to wait for a producer to appear (also when reopening).
    pub wait: Duration,
    /// How `wait_frame` waits.
    pub strategy: WaitStrategy,
    /// Which frames it is given, asked for when it takes its seat (and again on a reopen).
    pub delivery: Delivery,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            wait: Duration::from_secs(5),
            strategy: WaitStrategy::Block,
            delivery: Delivery::Newest,
        }
    }
}

/// Counters of one reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Frames taken.
    pub frames: u64,
    /// Frames the reader was too slow for (published but never taken).
    pub skipped: u64,
    /// Times the reader moved to a new region (producer restart or format change).
    pub reopens: u64,
}
