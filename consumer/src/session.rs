//! A consumer's attachment to a stream, and the one follower every command drives: attach →
//! frames → producer lost → reattach within `--wait` → end.
//!
//! A [`Session`] is a seat ([`Reader`]) plus the best-effort queues (`Hello`/`Bye` and
//! commands out, events in; their absence is never fatal: the region's header is
//! authoritative). A command calls [`Session::step`] in a loop and gets one [`Outcome`] per
//! call, each within about the slice it passed, until [`Outcome::End`]. Which failures to
//! attach are worth another attempt is said once, in `worth_retry`.
//!
//! The event queue is drained at the start of each step: a frame of the previous step
//! borrows the session, so by then it is released (DESIGN: never drain while holding a
//! frame), and once more when the producer is seen stopping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_msg::{Command, CommandSender, Event, EventReceiver, Sent};
use frame_vocab::{FrameFormat, StreamName};
use shm_frames::{Corrupt, FrameRef, OpenError, Reader, ReaderOptions, ReaderStats, WaitError};
use shm_frames::{Delivery, FrameInfo, WaitStrategy};

use crate::error::{Error, Unattached};
use crate::untaken::Untaken;

mod retry;

use retry::{log_failed_attempt, pause_after_attempt, worth_retry};

/// Longest a step blocks before it looks at the interrupt flag again.
pub const SLICE: Duration = Duration::from_millis(100);

/// Consecutive corrupt reads after which a command gives up on the stream.
const MAX_CONSECUTIVE_CORRUPT: u32 = 100;

/// Most events taken from the event queue per step: a peer flooding it (garbage, or a
/// producer gone wrong) must not keep a step from its frame and its liveness checks.
const MAX_EVENTS_PER_STEP: usize = 32;

/// Where and how to attach: the options every command shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    /// The stream's name.
    pub stream: StreamName,
    /// How long to wait for a producer, at start and after it goes.
    pub wait: Duration,
    /// How to wait for frames.
    pub strategy: WaitStrategy,
    /// Which frames to ask for (`--every-frame`).
    pub delivery: Delivery,
}

/// Where every-frame delivery broke, as [`Session::delivery_loss`] sees it in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Frames before this one were skipped: `seq` is the first of them. The frame in hand
    /// is not part of a gap-free output.
    Before { seq: u64 },
    /// This seat was demoted, though this frame still follows the last one: it belongs to
    /// the output, and `seq` (the next frame) is the first no longer guaranteed.
    After { seq: u64 },
}

impl Loss {
    /// The first frame that every-frame delivery no longer covers.
    pub fn seq(self) -> u64 {
        match self {
            Loss::Before { seq } | Loss::After { seq } => seq,
        }
    }
}

/// Why the current region can no longer give frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// The producer is exiting cleanly.
    Stopped,
    /// The producer died (its lock is free; a stalled producer is no loss).
    Gone,
    /// A new region replaced this one (a restart or a format change), or this one holds
    /// garbage.
    Replaced,
}

/// What a session does when its producer stops cleanly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnStop {
    /// The stream ended: [`End::ProducerStopped`] at once (stats, record, pipe, snapshot).
    #[default]
    End,
    /// Wait up to `--wait` for a producer to come back (the viewer), and end with
    /// [`End::ProducerStopped`] if none does.
    Wait,
}

/// What one [`Session::step`] gave: the follower's one outcome type.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The newest frame, held until dropped.
    Frame(FrameRef<'a>),
    /// No frame within the slice; the producer is alive (or paused).
    Idle,
    /// The region stopped giving frames; from now on the session tries to reattach.
    Lost(Lost),
    /// One attempt to reattach failed; the session goes on trying within `--wait`.
    Waiting,
    /// The session moved to a new region of the stream (`old` format → `new`).
    Reattached { old: FrameFormat, new: FrameFormat },
    /// A corrupt value was read; the session reattaches next (as after [`Outcome::Lost`]).
    Corrupt(Corrupt),
    /// The run is over (a command stops stepping here; later steps give `End::Done`).
    End(End),
}

/// How a command's run ended (what is not an error).
#[derive(Debug)]
pub enum End {
    /// The command finished its job (a limit, a closed window, a format change).
    Done,
    /// The producer stopped cleanly.
    ProducerStopped,
    /// The producer died and none came back within `--wait` (the last reason).
    ProducerLost(Unattached),
    /// SIGINT or SIGTERM.
    Interrupted,
}

impl End {
    /// The JSON name of how a run ended.
    pub fn name(&self) -> &'static str {
        match self {
            End::Done => "done",
            End::ProducerStopped => "producer-stopped",
            End::ProducerLost(_) => "producer-lost",
            End::Interrupted => "interrupted",
        }
    }
}

/// Where the follower is.
#[derive(Debug)]
enum Phase {
    /// Taking frames from the current region.
    Live,
    /// Reattaching until `deadline`; `last` is the last attempt's failure
    /// (so each new reason is logged once).
    Lost {
        lost: Lost,
        deadline: Instant,
        last: Option<OpenError>,
    },
    /// Over: the end is handed out once; later steps say `Done`.
    Ended,
}

/// A consumer's seat on a stream, with its queues, following the producer.
#[derive(Debug)]
pub struct Session {
    reader: Reader,
    attach: Attach,
    on_stop: OnStop,
    phase: Phase,
    corrupt_in_a_row: u32,
    /// The producer's heartbeat age when it was last seen stalled (lock held, heartbeat
    /// old); `None` while it beats.
    stalled: Option<Duration>,
    /// How many times the producer was seen to stall.
    stalls: u64,
    /// The last step found no frame: the next one checks for a stall first.
    idle: bool,
    commands: Option<CommandSender>,
    events: Option<EventReceiver>,
    /// Frames the producer's `FrameMeta` named that this seat never took.
    untaken: Untaken,
}

impl Session {
    /// Attaches to the stream, trying for up to `attach.wait` (checking `stop` every
    /// [`SLICE`]), claims a seat and says `Hello` on the command queue.
    pub fn open(attach: Attach, stop: &AtomicBool) -> Result<Session, Error> {
        Session::open_checking(attach, stop, || Ok(()))
    }

    /// [`Session::open`], calling `check` before each attempt and giving up with its error
    /// (e.g. "the producer we started has exited").
    pub fn open_checking(
        attach: Attach,
        stop: &AtomicBool,
        mut check: impl FnMut() -> Result<(), Error>,
    ) -> Result<Session, Error> {
        let deadline = Instant::now() + attach.wait;
        let mut last = None;
        let reader = loop {
            if stop.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            check()?;
            let options = ReaderOptions {
                wait: slice_until(deadline, SLICE),
                strategy: attach.strategy,
                delivery: attach.delivery,
            };
            let started = Instant::now();
            match Reader::open(&attach.stream, options) {
                Ok(reader) => break reader,
                Err(error) if worth_retry(&error, deadline) => {
                    log_failed_attempt(&attach.stream, &error, last.as_ref());
                    last = Some(error);
                    pause_after_attempt(started, deadline);
                }
                Err(error) => {
                    return Err(Unattached {
                        name: attach.stream.clone(),
                        wait: attach.wait,
                        after_loss: false,
                        last: Box::new(error),
                    }
                    .into());
                }
            }
        };
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
            on_stop: OnStop::default(),
            phase: Phase::Live,
            corrupt_in_a_row: 0,
            stalled: None,
            stalls: 0,
            idle: false,
            commands: None,
            events: None,
            untaken: Untaken::default(),
        };
        session.open_queues();
        Ok(session)
    }

    /// Sets what happens when the producer stops cleanly (default: the run ends).
    pub fn on_stop(&mut self, on_stop: OnStop) {
        self.on_stop = on_stop;
    }

    /// One step of the follower, within about `slice`: takes a frame, or notices the
    /// producer is lost, or makes one attempt to reattach, or ends (on `stop`, a clean stop,
    /// or `--wait` passing without a producer). Fails only when the region keeps returning
    /// corrupt values.
    pub fn step(&mut self, slice: Duration, stop: &AtomicBool) -> Result<Outcome<'_>, Error> {
        // A frame of the previous step borrowed `self`: it is released by now.
        self.drain();
        if stop.load(Ordering::Relaxed) && !matches!(self.phase, Phase::Ended) {
            self.phase = Phase::Ended;
            return Ok(Outcome::End(End::Interrupted));
        }
        match self.phase {
            Phase::Live => {
                if std::mem::take(&mut self.idle) {
                    self.note_stall();
                }
                self.take(slice)
            }
            Phase::Lost { .. } => Ok(self.reattach(slice)),
            Phase::Ended => Ok(Outcome::End(End::Done)),
        }
    }

    /// After a step without a frame: reports a producer that stalled (its lock is held, so
    /// it lives, but its heartbeat is old: SIGSTOP, a hung machine) or resumed. A stall is
    /// no loss: we keep our seat and wait on (DESIGN); only `Replaced`, `Stopping` or a
    /// free producer lock make us reopen.
    fn note_stall(&mut self) {
        let stream = &self.attach.stream;
        match (self.reader.producer_stalled(), self.stalled.is_some()) {
            (Some(age), false) => {
                tracing::warn!(
                    %stream,
                    heartbeat_age_ms = age.as_millis() as u64,
                    seat = self.reader.seat(),
                    epoch = self.reader.epoch(),
                    "the producer is stalled; keeping our seat"
                );
                self.stalls += 1;
                self.stalled = Some(age);
            }
            (None, true) => {
                tracing::info!(%stream, "the producer resumed");
                self.stalled = None;
            }
            (Some(age), true) => self.stalled = Some(age),
            (None, false) => {}
        }
    }

    /// Waits up to `slice` for a frame of the current region.
    fn take(&mut self, slice: Duration) -> Result<Outcome<'_>, Error> {
        // Disjoint borrows: a frame borrows only the reader.
        let Session {
            reader,
            attach,
            on_stop,
            phase,
            corrupt_in_a_row,
            stalled,
            idle,
            events,
            untaken,
            ..
        } = self;
        let lost = match reader.wait_frame(slice) {
            Ok(frame) => {
                *corrupt_in_a_row = 0;
                untaken.took(frame.info().seq);
                if stalled.take().is_some() {
                    tracing::info!(stream = %attach.stream, "the producer resumed");
                }
                return Ok(Outcome::Frame(frame));
            }
            Err(WaitError::Timeout) => {
                // The next step looks whether the producer stalled (the frame borrows the
                // reader, so it cannot be asked here).
                *idle = true;
                return Ok(Outcome::Idle);
            }
            // The session hands out only borrowed frames, which are gone by the next step,
            // so its reader never has a frame in use; were it to, waiting again is safe.
            Err(WaitError::FrameInUse) => return Ok(Outcome::Idle),
            Err(WaitError::Stopped) => Lost::Stopped,
            Err(WaitError::ProducerGone) => Lost::Gone,
            Err(WaitError::Replaced) => Lost::Replaced,
            Err(WaitError::Corrupt(corrupt)) => {
                tracing::warn!(stream = %attach.stream, %corrupt, "corrupt region; reattaching");
                *corrupt_in_a_row += 1;
                if *corrupt_in_a_row >= MAX_CONSECUTIVE_CORRUPT {
                    return Err(Error::Corrupt {
                        name: attach.stream.clone(),
                        source: corrupt,
                    });
                }
                // Garbage in `latest` or a slot: a fresh seat and seq may get past it.
                *phase = lost_phase(Lost::Replaced, attach.wait);
                return Ok(Outcome::Corrupt(corrupt));
            }
        };
        if lost == Lost::Stopped {
            // The producer's last messages (Stopping) came before its state changed.
            drain(events, untaken);
            if *on_stop == OnStop::End {
                tracing::info!(stream = %attach.stream, "the producer stopped");
                *phase = Phase::Ended;
                return Ok(Outcome::End(End::ProducerStopped));
            }
        }
        tracing::info!(stream = %attach.stream, ?lost, "waiting for the producer");
        *phase = lost_phase(lost, attach.wait);
        Ok(Outcome::Lost(lost))
    }

    /// One attempt to move to the stream's current region.
    fn reattach(&mut self, slice: Duration) -> Outcome<'_> {
        let Phase::Lost { deadline, .. } = self.phase else {
            return Outcome::Waiting;
        };
        let (old, old_seat) = (self.format(), self.reader.seat());
        let started = Instant::now();
        let error = match self.reader.reopen(slice_until(deadline, slice)) {
            Ok(()) => {
                self.stalled = None;
                // `corrupt_in_a_row` goes on: only a frame shows the garbage is gone.
                self.phase = Phase::Live;
                self.after_reattach(old, old_seat);
                return Outcome::Reattached {
                    old,
                    new: self.format(),
                };
            }
            Err(error) => error,
        };
        if worth_retry(&error, deadline) {
            if let Phase::Lost { last, .. } = &mut self.phase {
                log_failed_attempt(&self.attach.stream, &error, last.as_ref());
                *last = Some(error);
            }
            pause_after_attempt(started, deadline.min(started + slice));
            return Outcome::Waiting;
        }
        let Phase::Lost { lost, .. } = std::mem::replace(&mut self.phase, Phase::Ended) else {
            return Outcome::End(End::Done);
        };
        if lost == Lost::Stopped {
            return Outcome::End(End::ProducerStopped);
        }
        Outcome::End(End::ProducerLost(Unattached {
            name: self.attach.stream.clone(),
            wait: self.attach.wait,
            after_loss: true,
            last: Box::new(error),
        }))
    }

    /// Frames the producer published (as its `FrameMeta` said) that this seat never took.
    pub fn untaken(&self) -> u64 {
        self.untaken.count()
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

    /// The reader's counters (frames, skipped, reopens) since the session opened.
    pub fn stats(&self) -> ReaderStats {
        self.reader.stats()
    }

    /// How many times the producer was seen stalled (alive, heartbeat older than
    /// [`shm_frames::HEARTBEAT_TIMEOUT`]) while this session kept its seat.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// Whether the producer is stalled now, as the last idle step saw it.
    pub fn stalled(&self) -> bool {
        self.stalled.is_some()
    }

    /// The seat and the region's epoch the session sits in now.
    pub fn position(&self) -> (u32, u64) {
        (self.reader.seat(), self.reader.epoch())
    }

    /// The options it was attached with.
    pub fn attach(&self) -> &Attach {
        &self.attach
    }

    /// After a move: `Bye` for the old seat on the old queue (a courtesy: that producer is
    /// usually gone), then the new region's queues and `Hello`.
    fn after_reattach(&mut self, old: FrameFormat, old_seat: u32) {
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
        self.untaken.new_region();
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

    fn drain(&mut self) {
        drain(&mut self.events, &mut self.untaken);
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

/// For a session attached with `delivery`: whether the frame `info` describes shows
/// every-frame delivery broken (a demotion by the producer's stall timeout, or a gap).
/// Always `None` for newest-frame delivery, whose skips are by design.
pub fn delivery_loss(delivery: Delivery, info: &FrameInfo) -> Option<Loss> {
    if delivery != Delivery::EveryFrame {
        return None;
    }
    if info.skipped > 0 {
        return Some(Loss::Before {
            seq: info.seq - info.skipped,
        });
    }
    info.demoted.then_some(Loss::After { seq: info.seq + 1 })
}

/// The phase after losing the region for `lost`: reattaching for up to `wait`.
fn lost_phase(lost: Lost, wait: Duration) -> Phase {
    Phase::Lost {
        lost,
        deadline: Instant::now() + wait,
        last: None,
    }
}

/// What is left of `deadline`, at most `slice`.
fn slice_until(deadline: Instant, slice: Duration) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .min(slice)
}

/// Receives the queued events without blocking, at most [`MAX_EVENTS_PER_STEP`] (the
/// rest wait for the next step). The header is authoritative: events are logged, never
/// acted upon, but `FrameMeta` is counted for `untaken`.
fn drain(events: &mut Option<EventReceiver>, untaken: &mut Untaken) {
    let Some(queue) = events.as_mut() else {
        return;
    };
    for _ in 0..MAX_EVENTS_PER_STEP {
        match queue.try_recv() {
            Ok(Some(Event::FrameMeta { seq, .. })) => {
                tracing::trace!(seq, "frame meta");
                untaken.published(seq);
            }
            Ok(Some(other)) => tracing::debug!(event = ?other, "event"),
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "event queue failed; going on without it");
                *events = None;
                return;
            }
        }
    }
}
