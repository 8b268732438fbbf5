//! `framepipesrc`'s properties: their settings, defaults and documentation.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use shm_frames::WaitStrategy;

/// How long spin-then-block spins (as `consumer --strategy spin-then-block`).
const SPIN_FOR: Duration = Duration::from_millis(2);

pub(super) const DEFAULT_STREAM: &str = frame_vocab::DEFAULT_STREAM;
pub(super) const DEFAULT_WAIT_MS: u32 = 5000;
pub(super) const DEFAULT_WAIT_NEXT_PRODUCER: bool = false;

/// How the seat waits for the next frame (`ReaderOptions::strategy`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFramepipeSrcStrategy")]
pub enum Strategy {
    /// Sleep on the seat's semaphore.
    #[default]
    #[enum_value(name = "Block: sleep on the seat's semaphore (no CPU)", nick = "block")]
    Block = 0,
    /// Poll the latest frame.
    #[enum_value(
        name = "Spin: poll the latest frame (lowest latency, a busy core)",
        nick = "spin"
    )]
    Spin = 1,
    /// Spin briefly, then block.
    #[enum_value(
        name = "Spin then block: spin 2 ms, then sleep",
        nick = "spin-then-block"
    )]
    SpinThenBlock = 2,
    /// Learn the stream's rhythm, sleep until just before a frame is due, spin across its
    /// window (at most 5% of a core), then block.
    #[enum_value(
        name = "Predict: sleep until a frame is due, spin across its window (at most 5% of a core)",
        nick = "predict"
    )]
    Predict = 3,
}

impl Strategy {
    pub(super) fn wait_strategy(self) -> WaitStrategy {
        match self {
            Strategy::Block => WaitStrategy::Block,
            Strategy::Spin => WaitStrategy::Spin,
            Strategy::SpinThenBlock => WaitStrategy::SpinThenBlock(SPIN_FOR),
            Strategy::Predict => WaitStrategy::PREDICT,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) stream: String,
    pub(super) wait_ms: u32,
    pub(super) strategy: Strategy,
    pub(super) wait_next_producer: bool,
    pub(super) every_frame: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stream: DEFAULT_STREAM.to_owned(),
            wait_ms: DEFAULT_WAIT_MS,
            strategy: Strategy::default(),
            wait_next_producer: DEFAULT_WAIT_NEXT_PRODUCER,
            every_frame: false,
        }
    }
}

/// The element's properties, as `gst-inspect-1.0 framepipesrc` shows them.
pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("stream")
            .nick("Stream")
            .blurb(
                "Name of the framepipe stream to read ([A-Za-z0-9_-]{1,32}; per \
                 user, like `consumer --stream`; USER/NAME for another user's \
                 stream shared with a group of yours)",
            )
            .default_value(Some(DEFAULT_STREAM))
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("wait")
            .nick("Wait (ms)")
            .blurb(
                "How long to wait for a producer, at start and after one is lost, \
                 in milliseconds, like `consumer --wait`",
            )
            .default_value(DEFAULT_WAIT_MS)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("strategy", Strategy::default())
            .nick("Strategy")
            .blurb("How the seat waits for the next frame")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("wait-next-producer")
            .nick("Wait for the next producer")
            .blurb(
                "When the producer stops or is lost, wait (for ever) for the next \
                 one instead of sending EOS",
            )
            .default_value(DEFAULT_WAIT_NEXT_PRODUCER)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("every-frame")
            .nick("Every frame")
            .blurb(
                "Ask for every frame, not only the newest: the producer waits for this \
                 seat, up to its stall timeout (then a warning, and newest-frame \
                 delivery), like `consumer pipe --every-frame`",
            )
            .default_value(false)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb(
                "Frames taken, frames this seat was too slow for (skipped), moves \
                 to a new region (reopens) and, with every-frame, the first frame \
                 no longer guaranteed (delivery-lost-at; 0 while it holds)",
            )
            .read_only()
            .build(),
    ]
}
