//! Typed errors, one enum per operation: create, open, wait.

use nix::errno::Errno;

use frame_vocab::{FormatError, FrameFormat};

/// Why a producer could not create its region.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The seat count is outside 1..=MAX_SEATS.
    #[error("{seats} seats requested: a stream has 1 to {max} seats", max = crate::MAX_SEATS)]
    InvalidSeats { seats: u32 },
    /// A mode other than 0600 and 0660.
    #[error(
        "mode {mode:04o} refused: a stream is 0600 (this user only) or 0660 (shared with the group)"
    )]
    InvalidMode { mode: u32 },
    /// The region for this format would not fit the address space.
    #[error("a region of {slots} {format} frames is too large")]
    TooLarge { format: FrameFormat, slots: u32 },
    /// /dev/shm has no room for the region (checked up front, not by SIGBUS mid-frame).
    #[error("no space in /dev/shm for {object} ({bytes} bytes)")]
    NoSpace { object: String, bytes: usize },
    /// The object exists and belongs to someone else.
    #[error("permission denied creating {object}")]
    PermissionDenied {
        object: String,
        #[source]
        source: Errno,
    },
    /// Another user holds an object under our name: refused and reported, never used.
    #[error(
        "stream {name} is squatted: {object} belongs to uid {uid}; remove it as that user or root"
    )]
    Squatted {
        name: String,
        object: String,
        uid: u32,
    },
    /// A live producer's region is already under the name (its lock is held), though the
    /// name's socket was free: a producer in another network namespace.
    #[error("stream {name} is already produced by {} (in another network namespace?)", match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process".to_owned(),
    })]
    AlreadyProduced { name: String, pid: Option<u32> },
    /// A system call failed.
    #[error("{op} {object} failed")]
    Sys {
        op: &'static str,
        object: String,
        #[source]
        source: Errno,
    },
}

/// Why a consumer could not attach to a stream.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Nothing is published under the name (checked until the deadline).
    #[error("no producer for stream {name}")]
    NoProducer { name: String },
    /// The object exists but its producer is dead and nobody replaced it by the deadline.
    #[error("the producer of stream {name} is gone")]
    ProducerGone { name: String },
    /// The object never became ready (magic and Live state) by the deadline.
    #[error("stream {name} did not become ready in time")]
    NotReady { name: String },
    /// The object belongs to another user.
    #[error("permission denied opening {object} (it belongs to another user)")]
    PermissionDenied {
        object: String,
        #[source]
        source: Errno,
    },
    /// The object may not be used: another user's, or not shared with us as it must be.
    #[error(transparent)]
    Refused(#[from] frame_vocab::access::Refused),
    /// The object is smaller than a header.
    #[error("{object} is truncated: {size} bytes, a header needs {need}")]
    Truncated {
        object: String,
        size: u64,
        need: u64,
    },
    /// The first 8 bytes are not framepipe's magic.
    #[error("not a framepipe region (magic {found:#018x})")]
    BadMagic { found: u64 },
    /// Made by another layout version.
    #[error("layout version {found}, this build reads version {expected}")]
    VersionMismatch { found: u32, expected: u32 },
    /// Made by a process of another byte order or pointer width.
    #[error("region made for another architecture (endian tag {endian:#x}, {pointer_width}-bit)")]
    ForeignLayout { endian: u32, pointer_width: u32 },
    /// The header's size is not this build's.
    #[error("header size {found}, this build expects {expected}")]
    HeaderSize { found: u32, expected: u32 },
    /// The header's total size disagrees with the object's real size.
    #[error("header says {header} bytes but the object has {actual}")]
    SizeMismatch { header: u64, actual: u64 },
    /// A layout field holds an impossible value.
    #[error("corrupt layout field {field} = {value}")]
    BadLayout { field: &'static str, value: u64 },
    /// The frame format in the header is invalid.
    #[error("corrupt frame format in header")]
    Format(#[source] FormatError),
    /// Every seat is taken by a live consumer.
    #[error("all {seats} seats of stream {name} are taken (start the producer with more --seats)")]
    AllSeatsTaken { name: String, seats: u32 },
    /// Every-frame delivery was asked for, but the producer runs with
    /// `--no-backpressure` (it never waits for any consumer).
    #[error(
        "stream {name} does not offer every-frame delivery: its producer runs with --no-backpressure"
    )]
    NoBackpressure { name: String },
    /// A system call failed.
    #[error("{op} {object} failed")]
    Sys {
        op: &'static str,
        object: String,
        #[source]
        source: Errno,
    },
}

impl OpenError {
    /// Whether waiting longer could help (the producer may still come or finish starting).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OpenError::NoProducer { .. }
                | OpenError::ProducerGone { .. }
                | OpenError::NotReady { .. }
                | OpenError::Truncated { .. }
        )
    }
}

/// A runtime value in the region that no honest producer writes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corrupt {
    /// `latest` names a slot that does not exist.
    #[error("latest word {word:#x} names a slot out of range")]
    LatestSlot { word: u64 },
    /// `latest` went back to an older frame.
    #[error("latest went back from seq {last} to {seen}")]
    SeqWentBack { seen: u64, last: u64 },
    /// The slot's metadata does not carry the frame `latest` promised.
    #[error("slot {slot} carries seq {found}, latest said {expected}")]
    SlotSeq {
        slot: u32,
        expected: u64,
        found: u64,
    },
    /// The header's state word holds an unknown value.
    #[error("unknown producer state {0}")]
    State(u32),
    /// Our own seat's word is no longer the one we set (garbage): the producer may stop
    /// waking us or respecting our hold, so the seat is given up and claimed anew.
    #[error("seat {seat}'s word is {found:#x}, not ours ({expected:#x})")]
    SeatWord {
        seat: u32,
        expected: u64,
        found: u64,
    },
}

/// Why `wait_frame` returned no frame.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// No new frame by the deadline while the producer is alive.
    #[error("no frame within the timeout")]
    Timeout,
    /// The producer died (its lock is free). A stalled one (lock held, no heartbeat) is
    /// no error: the wait goes on ([`Reader::producer_stalled`](crate::Reader::producer_stalled)).
    #[error("the producer is gone")]
    ProducerGone,
    /// The producer is exiting cleanly.
    #[error("the producer stopped")]
    Stopped,
    /// A new region (a restart or a format change) replaced this one.
    #[error("the region was replaced (restart or format change)")]
    Replaced,
    /// The region holds garbage.
    #[error("corrupt region")]
    Corrupt(#[from] Corrupt),
    /// An owned frame of this reader is still alive; the seat holds one slot at a time.
    #[error("frame in use: drop (or copy and drop) the previous frame before taking another")]
    FrameInUse,
}

impl WaitError {
    /// Whether reopening the stream by name is the way forward.
    pub fn needs_reopen(&self) -> bool {
        matches!(
            self,
            WaitError::ProducerGone | WaitError::Stopped | WaitError::Replaced
        )
    }
}
