//! A consumer's attachment to a stream: its seat ([`Reader`]), its best-effort queues, and
//! following the producer across restarts and format changes.
//!
//! The region's header is authoritative; the queues only carry `Hello`/`Bye` and commands
//! to the producer, and frame metadata back, and their absence is never fatal. After each
//! wake the seat's event queue is drained without blocking, so it never fills up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_msg::{Command, CommandSender, Event, EventReceiver, Sent};
use frame_vocab::{FrameFormat, StreamName};
use shm_frames::{
    Corrupt, FrameRef, OpenError, Reader, ReaderOptions, ReaderStats, WaitError, WaitStrategy,
};

use crate::error::Error;

/// Longest a wait blocks before it looks at the interrupt flag again.
pub const SLICE: Duration = Duration::from_millis(100);

/// Consecutive corrupt reads after which a command gives up on the stream.
const MAX_CONSECUTIVE_CORRUPT: u32 = 100;

/// Where and how to attach: the options every command shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    /// The stream's name.
    pub stream: StreamName,
    /// How long to wait for a producer, at start and after it goes.
    pub wait: Duration,
    /// How to wait for frames.
    pub strategy: WaitStrategy,
}

/// Why the current region can no longer give frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// The producer is exiting cleanly.
    Stopped,
    /// The producer died or hangs.
    Gone,
    /// A new region replaced this one (a restart or a format change).
    Replaced,
}

/// What one wait gave.
#[derive(Debug)]
pub enum Step<'a> {
    /// The newest frame, held until dropped.
    Frame(FrameRef<'a>),
    /// No frame within the slice; the producer is alive (or paused).
    Idle,
    /// The region can no longer give frames; reopen or stop.
    Lost(Lost),
    /// The region returned a value no honest producer writes.
    Corrupt(Corrupt),
}

/// What [`Session::follow`] hands its callback.
#[derive(Debug)]
pub enum Seen<'a> {
    /// A frame.
    Frame(FrameRef<'a>),
    /// A wait slice passed without a frame.
    Idle,
    /// The session moved to a new region of the stream (`old` format → `new`).
    Reopened { old: FrameFormat, new: FrameFormat },
    /// A corrupt value was read (the session reopens the stream next).
    Corrupt(Corrupt),
}

/// Whether [`Session::follow`] goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Wait for the next frame.
    Continue,
    /// Stop now: the command's job is done.
    Done,
}

/// How a command's run ended (what is not an error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The command finished its job (a limit, a closed window, a format change).
    Done,
    /// The producer stopped cleanly.
    ProducerStopped,
    /// The producer died or hung and none came back within `--wait`.
    ProducerLost,
    /// SIGINT or SIGTERM.
    Interrupted,
}

/// A consumer's seat on a stream, with its queues.
#[derive(Debug)]
pub struct Session {
    reader: Reader,
    attach: Attach,
    commands: Option<CommandSender>,
    events: Option<EventReceiver>,
    events_received: u64,
}

impl Session {
    /// Attaches to the stream, waiting up to `attach.wait` for a producer (checking `stop`
    /// every [`SLICE`]), claims a seat and says `Hello` on the command queue.
    pub fn open(attach: Attach, stop: &AtomicBool) -> Result<Session, Error> {
        Session::open_checking(attach, stop, || Ok(()))
    }

    /// [`Session::open`], calling `check` before each attempt (every [`SLICE`] at most) and
    /// giving up with its error (e.g. "the producer we started has exited").
    pub fn open_checking(
        attach: Attach,
        stop: &AtomicBool,
        mut check: impl FnMut() -> Result<(), Error>,
    ) -> Result<Session, Error> {
        let options = ReaderOptions {
            wait: Duration::ZERO,
            strategy: attach.strategy,
        };
        let reader = retry_open(&attach, stop, Opening::First, |wait| {
            check().map_err(Retry::Fatal)?;
            Reader::open(&attach.stream, ReaderOptions { wait, ..options }).map_err(Retry::Open)
        })?;
        tracing::info!(
            stream = %attach.stream,
            format = %reader.format(),
            seat = reader.seat(),
            seats = reader.seats(),
            epoch = reader.epoch(),
            producer = reader.producer_pid(),
            "attached"
        );
        let mut session = Session {
            reader,
            attach,
            commands: None,
            events: None,
            events_received: 0,
        };
        session.open_queues();
        Ok(session)
    }

    /// Waits up to `slice` for the next frame.
    pub fn next(&mut self, slice: Duration) -> Step<'_> {
        let result = self.reader.wait_frame(slice);
        drain(&mut self.events, &mut self.events_received);
        match result {
            Ok(frame) => Step::Frame(frame),
            Err(WaitError::Timeout) => Step::Idle,
            Err(WaitError::Stopped) => Step::Lost(Lost::Stopped),
            Err(WaitError::ProducerGone) => Step::Lost(Lost::Gone),
            Err(WaitError::Replaced) => Step::Lost(Lost::Replaced),
            Err(WaitError::Corrupt(corrupt)) => Step::Corrupt(corrupt),
            // The consumer takes only borrowed frames, so this never happens; were it to,
            // waiting again is the safe answer.
            Err(WaitError::FrameInUse) => Step::Idle,
        }
    }

    /// Moves to the stream's current region, waiting up to `--wait` for one (checking
    /// `stop`). Returns the format of the region it left.
    pub fn reopen(&mut self, stop: &AtomicBool) -> Result<FrameFormat, Error> {
        let (old, old_seat) = (self.format(), self.reader.seat());
        let reader = &mut self.reader;
        retry_open(&self.attach, stop, Opening::Reopen, |wait| {
            reader.reopen(wait).map_err(Retry::Open)
        })?;
        self.after_reopen(old, old_seat);
        Ok(old)
    }

    /// One attempt to move to the stream's current region, waiting up to `wait`: `Ok(None)`
    /// while there is none yet (for callers that keep a window alive meanwhile), otherwise
    /// the format of the region it left.
    pub fn try_reopen(&mut self, wait: Duration) -> Result<Option<FrameFormat>, Error> {
        let (old, old_seat) = (self.format(), self.reader.seat());
        match self.reader.reopen(wait) {
            Ok(()) => {
                self.after_reopen(old, old_seat);
                Ok(Some(old))
            }
            Err(e) if e.is_transient() => Ok(None),
            Err(e) => Err(attach_error(&self.attach, Opening::Reopen, e)),
        }
    }

    /// Follows the stream frame by frame, calling `on` for each frame and idle slice, and
    /// after each move to a new region. Reopens after a restart, a format change or a
    /// corrupt value; ends when `on` says so, the producer stops, it is lost for longer
    /// than `--wait`, or `stop` is set.
    pub fn follow(
        &mut self,
        stop: &AtomicBool,
        mut on: impl FnMut(Seen<'_>) -> Result<Flow, Error>,
    ) -> Result<End, Error> {
        let name = self.attach.stream.clone();
        let mut corrupt_in_a_row = 0u32;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(End::Interrupted);
            }
            let lost = match self.next(SLICE) {
                Step::Frame(frame) => {
                    corrupt_in_a_row = 0;
                    if on(Seen::Frame(frame))? == Flow::Done {
                        return Ok(End::Done);
                    }
                    continue;
                }
                Step::Idle => {
                    if on(Seen::Idle)? == Flow::Done {
                        return Ok(End::Done);
                    }
                    continue;
                }
                Step::Corrupt(corrupt) => {
                    tracing::warn!(stream = %name, %corrupt, "corrupt region");
                    corrupt_in_a_row += 1;
                    if corrupt_in_a_row >= MAX_CONSECUTIVE_CORRUPT {
                        return Err(Error::Corrupt {
                            name: name.clone(),
                            source: corrupt,
                        });
                    }
                    if on(Seen::Corrupt(corrupt))? == Flow::Done {
                        return Ok(End::Done);
                    }
                    // Garbage in `latest` or a slot: a fresh seat and seq may get past it.
                    Lost::Replaced
                }
                Step::Lost(lost) => lost,
            };
            if lost == Lost::Stopped {
                tracing::info!(stream = %self.attach.stream, "the producer stopped");
                return Ok(End::ProducerStopped);
            }
            tracing::info!(stream = %self.attach.stream, ?lost, "following the producer");
            match self.reopen(stop) {
                Ok(old) => {
                    let new = self.format();
                    if on(Seen::Reopened { old, new })? == Flow::Done {
                        return Ok(End::Done);
                    }
                }
                Err(Error::Interrupted) => return Ok(End::Interrupted),
                Err(e) if e.is_no_producer() => return Ok(End::ProducerLost),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a command to the producer without blocking; `false` if there is no command
    /// queue or it is full.
    pub fn send(&mut self, command: &Command) -> bool {
        let Some(commands) = self.commands.as_mut() else {
            return false;
        };
        match commands.send(command) {
            Ok(Sent::Queued) => true,
            Ok(Sent::DroppedFull) => {
                tracing::debug!(?command, "command queue full, dropped");
                false
            }
            Err(error) => {
                tracing::warn!(%error, "cannot send to the producer");
                false
            }
        }
    }

    /// The current stream format.
    pub fn format(&self) -> FrameFormat {
        self.reader.format()
    }

    /// The reader (seat, epoch, counters).
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// The reader's counters (frames, skipped, reopens) since the session opened.
    pub fn stats(&self) -> ReaderStats {
        self.reader.stats()
    }

    /// The options it was attached with.
    pub fn attach(&self) -> &Attach {
        &self.attach
    }

    /// Valid messages received on the seat's event queue.
    pub fn events_received(&self) -> u64 {
        self.events_received
    }

    /// Whether the producer's command queue is open.
    pub fn has_commands(&self) -> bool {
        self.commands.is_some()
    }

    /// After a move: `Bye` for the old seat on the old queue (a courtesy: that producer is
    /// usually gone), then the new region's queues and `Hello`.
    fn after_reopen(&mut self, old: FrameFormat, old_seat: u32) {
        if let Some(commands) = self.commands.as_mut() {
            let _ = commands.send(&Command::Bye { seat: old_seat });
        }
        tracing::info!(
            stream = %self.attach.stream,
            %old,
            new = %self.format(),
            seat = self.reader.seat(),
            epoch = self.reader.epoch(),
            "reattached"
        );
        self.open_queues();
    }

    fn open_queues(&mut self) {
        let name = &self.attach.stream;
        let seat = self.reader.seat();
        self.commands = CommandSender::open(name)
            .inspect_err(|error| tracing::debug!(%error, "no command queue"))
            .ok();
        self.events = EventReceiver::open(name, seat)
            .inspect_err(|error| tracing::debug!(%error, "no event queue"))
            .ok();
        let hello = Command::Hello {
            seat,
            pid: std::process::id(),
        };
        self.send(&hello);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let bye = Command::Bye {
            seat: self.reader.seat(),
        };
        self.send(&bye);
    }
}

/// Receives every queued event without blocking. The header is authoritative: events are
/// logged, never acted upon.
fn drain(events: &mut Option<EventReceiver>, received: &mut u64) {
    let Some(queue) = events.as_mut() else {
        return;
    };
    loop {
        match queue.try_recv() {
            Ok(Some(event)) => {
                *received += 1;
                match event {
                    Event::FrameMeta { seq, .. } => tracing::trace!(seq, "frame meta"),
                    other => tracing::debug!(event = ?other, "event"),
                }
            }
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "event queue failed; going on without it");
                *events = None;
                return;
            }
        }
    }
}

/// Whether an open is the first one (no producer yet) or a reopen (the producer went).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opening {
    First,
    Reopen,
}

/// Why one attempt to open failed.
enum Retry {
    Open(OpenError),
    Fatal(Error),
}

/// Calls `open(wait)` in slices of at most [`SLICE`] until it succeeds, fails for good,
/// `attach.wait` passes or `stop` is set.
fn retry_open<T>(
    attach: &Attach,
    stop: &AtomicBool,
    opening: Opening,
    mut open: impl FnMut(Duration) -> Result<T, Retry>,
) -> Result<T, Error> {
    let start = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let left = attach.wait.saturating_sub(start.elapsed());
        match open(left.min(SLICE)) {
            Ok(opened) => return Ok(opened),
            Err(Retry::Open(e)) if e.is_transient() && !left.is_zero() => {}
            Err(Retry::Open(e)) => return Err(attach_error(attach, opening, e)),
            Err(Retry::Fatal(e)) => return Err(e),
        }
    }
}

/// Names an open error the way a user reads it: no live producer by the deadline is "no
/// producer" at first and "lost" after one went.
fn attach_error(attach: &Attach, opening: Opening, error: OpenError) -> Error {
    let (name, wait) = (attach.stream.clone(), attach.wait);
    match error {
        OpenError::NoProducer { .. }
        | OpenError::NotReady { .. }
        | OpenError::ProducerGone { .. } => match opening {
            Opening::First => Error::NoProducer { name, wait },
            Opening::Reopen => Error::ProducerLost { name, wait },
        },
        source => Error::Attach {
            name: attach.stream.clone(),
            source,
        },
    }
}
