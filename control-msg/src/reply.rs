//! Commands that want an answer, and the answers: [`Request`] (a command with an id and a
//! reply address) and the [`Outcome`] an `Event::Reply` carries back.
//!
//! `consumer ctl` needs no seat: it claims one of the stream's [`REPLY_QUEUES`] reply
//! queues (`/framepipe.UID.NAME.c<k>`, made by the producer, each guarded by an OFD lock on
//! its own region byte), sends `Command::Request(Request { id, reply: k, command })` on the
//! command queue and waits on `.c<k>` for the `Event::Reply` whose id is its own. Every
//! request gets one reply, so the asker can tell "refused" from "lost".

use frame_vocab::FrameFormat;
pub use frame_vocab::REPLY_QUEUES;

use crate::message::Command;

/// The longest refusal detail a reply carries, in bytes of UTF-8.
pub const MAX_DETAIL: usize = 160;

/// A command that wants a reply on reply queue `.c<reply>`.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Chosen by the asker; the reply names it.
    pub id: u64,
    /// The reply queue's index (`< REPLY_QUEUES`).
    pub reply: u32,
    /// The command. Never a `Request` itself (the wire refuses nesting).
    pub command: Command,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Done: for `Pause`, the frame thread has parked (no further frame follows); for
    /// `Ping`, the producer answers; for the others, the change is applied.
    Done,
    /// `SetFormat` done: the new region's epoch and format.
    FormatSet {
        /// The new region's epoch.
        epoch: u64,
        /// The new format.
        format: FrameFormat,
    },
    /// Refused; the stream is unchanged.
    Refused {
        /// Why, as a code programs can act on.
        reason: Refusal,
        /// Why, for people (at most [`MAX_DETAIL`] bytes).
        detail: String,
    },
}

impl Outcome {
    /// A refusal, its detail cut at a char boundary to [`MAX_DETAIL`] bytes.
    pub fn refused(reason: Refusal, detail: impl Into<String>) -> Outcome {
        let mut detail = detail.into();
        if detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
        }
        Outcome::Refused { reason, detail }
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The producer is paused: `SetFps`, `SetPattern` and `SetFormat` wait for `Resume`.
    Paused,
    /// The source cannot do it (a file's format, a camera's rate, a pattern on a camera).
    Unsupported,
    /// The value is not acceptable (e.g. a region of that format would not fit).
    Invalid,
    /// The producer tried and failed (it stays as it was).
    Failed,
    /// The command is not one a request may carry (`Hello`, `Bye`).
    NotARequest,
}

impl Refusal {
    /// Every refusal, in code order.
    pub const ALL: [Refusal; 5] = [
        Refusal::Paused,
        Refusal::Unsupported,
        Refusal::Invalid,
        Refusal::Failed,
        Refusal::NotARequest,
    ];

    /// The wire code (`1..`).
    pub const fn code(self) -> u8 {
        match self {
            Refusal::Paused => 1,
            Refusal::Unsupported => 2,
            Refusal::Invalid => 3,
            Refusal::Failed => 4,
            Refusal::NotARequest => 5,
        }
    }

    /// The refusal of wire code `code`.
    pub const fn from_code(code: u8) -> Option<Refusal> {
        match code {
            1 => Some(Refusal::Paused),
            2 => Some(Refusal::Unsupported),
            3 => Some(Refusal::Invalid),
            4 => Some(Refusal::Failed),
            5 => Some(Refusal::NotARequest),
            _ => None,
        }
    }

    /// One word, for JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::Paused => "paused",
            Refusal::Unsupported => "unsupported",
            Refusal::Invalid => "invalid",
            Refusal::Failed => "failed",
            Refusal::NotARequest => "not-a-request",
        }
    }
}
