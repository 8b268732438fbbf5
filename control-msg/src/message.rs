//! The typed messages: [`Command`]s to the producer and [`Event`]s to one consumer seat.

use frame_vocab::FrameFormat;

use frame_vocab::pattern::PatternKind;

use crate::reply::{Outcome, Request};

/// Highest frame rate a `SetFps` may ask for; higher is a garbage value.
pub const MAX_FPS: f64 = 10_000.0;

/// A message to the producer, sent on the stream's command queue `/framepipe.NAME.ctl`
/// (many writers: every consumer; one reader: the producer).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// A consumer took `seat`; `pid` is for logs only (liveness comes from locks).
    Hello {
        /// The seat it claimed.
        seat: u32,
        /// Its process id, for messages only.
        pid: u32,
    },
    /// A consumer leaves `seat`.
    Bye {
        /// The seat it leaves.
        seat: u32,
    },
    /// Change the frame rate. Valid when finite and `0 <= fps <= MAX_FPS`; 0 means as fast
    /// as the source gives frames (see [`valid_fps`]).
    SetFps {
        /// Frames per second.
        fps: f64,
    },
    /// Switch to another frame format (the producer makes a new region, epoch + 1).
    SetFormat(FrameFormat),
    /// Switch the pattern source to another test image.
    SetPattern(PatternKind),
    /// Stop publishing frames (the heartbeat goes on).
    Pause,
    /// Publish frames again after `Pause`.
    Resume,
    /// Ask for a `Pong` with the same nonce on the sender's event queue.
    Ping {
        /// Echoed back in the `Pong`.
        nonce: u64,
    },
    /// Stop the producer cleanly.
    Shutdown,
    /// A command that wants a reply on a reply queue (`consumer ctl`): answered with one
    /// [`Event::Reply`] naming its id.
    Request(Box<Request>),
}

/// A message to one consumer, sent by the producer on that seat's event queue
/// `/framepipe.NAME.s<seat>`.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A frame was published. Best-effort: the region's `latest` is authoritative.
    FrameMeta {
        /// The frame's sequence number.
        seq: u64,
        /// The slot that holds it.
        slot: u32,
        /// Its format.
        format: FrameFormat,
        /// When the source captured it, CLOCK_MONOTONIC ns.
        capture_ns: u64,
        /// When it was published, CLOCK_MONOTONIC ns.
        publish_ns: u64,
        /// Producer-defined flags, passed through unchanged.
        flags: u32,
    },
    /// The region was replaced (a restart or `SetFormat`); reopen it.
    FormatChanged {
        /// The new region's epoch.
        epoch: u64,
    },
    /// The answer to `Ping`.
    Pong {
        /// The `Ping`'s nonce.
        nonce: u64,
    },
    /// The producer is stopping.
    Stopping,
    /// This seat asked for every frame and was dropped back to newest-frame delivery: it
    /// had not taken frame `seq` within the producer's stall timeout. A hint: the seat's
    /// delivery word in the region is the authority.
    Demoted {
        /// The frame it had not taken.
        seq: u64,
    },
    /// The answer to a [`Command::Request`], on its reply queue.
    Reply {
        /// The request's id.
        id: u64,
        /// How it ended.
        outcome: Outcome,
    },
}

/// Whether `fps` is a frame rate a `SetFps` may carry: finite and within `0..=MAX_FPS`.
pub fn valid_fps(fps: f64) -> bool {
    fps.is_finite() && (0.0..=MAX_FPS).contains(&fps)
}
