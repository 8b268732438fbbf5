//! The producer's run: a frame thread that fills and publishes slots, and a service thread
//! (the caller's) that keeps the heartbeat, serves the control queue and handles signals.
//!
//! They are apart so that a source blocked on stdin or a camera never makes the producer
//! look dead: the heartbeat and the queue never wait for a frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Duration;

use control_msg::{CommandReceiver, Event, EventSender, Outcome, QueueConfig, Refusal};
use frame_vocab::PatternKind;
use frame_vocab::{ClaimError, Deadline, FrameFormat, StreamOwner, monotonic_ns};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use shm_frames::{CreateError, MAX_SEATS, RegionBuilder, ReplaceError, Supervisor, Writer};

use crate::SourceError;
use crate::config::{Config, DEFAULT_FPS};
use crate::pacing::{Pacer, Tick};
use crate::replies::{Replies, Ticket};
use crate::seats::Seats;
use crate::service::Service;
use crate::source::spec::{SourceOptions, open_source};
use crate::source::{Filled, FrameSource};

/// How often the service thread stamps the heartbeat (DESIGN: at least every 100 ms).
pub(crate) const BEAT: Duration = Duration::from_millis(50);

/// How often a stats line is logged.
pub(crate) const STATS_EVERY: Duration = Duration::from_secs(5);

/// How long a stop waits for the frame thread before ending the stream without it (it may
/// be blocked reading stdin or a camera).
pub(crate) const FRAME_THREAD_GRACE: Duration = Duration::from_millis(1500);

/// Why a run ended (all are clean ends: exit code 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The source has no more frames.
    EndOfInput,
    /// `--frames N` were published.
    FrameLimit,
    /// SIGINT or SIGTERM.
    Signal,
    /// A `Shutdown` command.
    Shutdown,
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Frames published (over all epochs).
    pub frames: u64,
    /// Frames that missed their deadline.
    pub late: u64,
    /// Frames skipped for want of a free slot.
    pub skipped: u64,
    /// The last region's epoch.
    pub epoch: u64,
    /// Why it ended.
    pub reason: StopReason,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another producer has the stream.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    /// The source could not be opened or failed mid-stream.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The region could not be created.
    #[error("cannot create the frame region")]
    Region(#[from] CreateError),
    /// A format change lost the stream.
    #[error("format change failed")]
    Replace(#[from] ReplaceError),
    /// The control queues could not be created.
    #[error("cannot create the control queues")]
    Queue(#[from] control_msg::CreateError),
    /// Signal handling could not be set up.
    #[error("cannot set up signal handling")]
    Signals(#[source] nix::errno::Errno),
    /// The frame thread could not be started.
    #[error("cannot start the frame thread")]
    Thread(#[source] std::io::Error),
    /// The frame thread panicked (a bug).
    #[error("the frame thread panicked")]
    Panicked,
    /// `--wait-seats`: too few consumers came within `--wait` (exit code 4).
    #[error("{live} of the {wanted} consumers --wait-seats asks for came within {wait:?}")]
    TooFewConsumers {
        wanted: u32,
        live: u32,
        wait: Duration,
    },
}

/// Requests from the service thread that the frame thread applies between frames; a
/// ticket is a `consumer ctl` waiting for the result.
pub(crate) enum Request {
    SetFormat(FrameFormat, Option<Ticket>),
    SetPattern(PatternKind, Option<Ticket>),
}

/// State the two threads share: atomics only. No lock is shared, so a frame never waits
/// for the service thread (its `Pong` replies and stats go through handles of its own).
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) paused: AtomicBool,
    /// Set by the frame thread once it sits idle because of a pause.
    pub(crate) pause_acknowledged: AtomicBool,
    /// f64 bits of the requested rate, and a flag that it changed.
    pub(crate) fps_bits: AtomicU64,
    pub(crate) fps_changed: AtomicBool,
    pub(crate) published: AtomicU64,
    pub(crate) late: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) epoch: AtomicU64,
    /// Publishes that waited for an every-frame seat, and seats demoted after a stall.
    pub(crate) stalls: AtomicU64,
    pub(crate) demotions: AtomicU64,
}

/// Runs a producer until its source ends, `--frames` is reached, a `Shutdown` command or
/// SIGINT/SIGTERM arrives. Blocks SIGINT and SIGTERM in the calling thread (and the threads
/// it starts) and takes them through a signalfd; call it before starting other threads.
///
/// Logs `ready: ...` at info once consumers can attach, and a stats line every 5 s.
pub fn run(config: &Config) -> Result<Summary, RunError> {
    let signalfd = take_signals()?;
    let owner = StreamOwner::claim(&config.stream)?;
    let source = open_source(
        &config.source,
        &SourceOptions {
            format: config.format,
            pixel_explicit: config.pixel_explicit,
            pattern: config.pattern,
            looping: config.looping,
        },
    )?;
    produce(config, &owner, &signalfd, source)
}

/// [`run`] with a source of the caller's instead of the one `config.source` names (a test's
/// scripted source, an embedder's own): `config.source`, `format`, `pattern` and `looping`
/// are not looked at; the stream's format is the source's.
pub fn run_with(config: &Config, source: Box<dyn FrameSource>) -> Result<Summary, RunError> {
    let signalfd = take_signals()?;
    let owner = StreamOwner::claim(&config.stream)?;
    produce(config, &owner, &signalfd, source)
}

/// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts) and takes
/// them through a signalfd.
fn take_signals() -> Result<SignalFd, RunError> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().map_err(RunError::Signals)?;
    SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(RunError::Signals)
}

/// The run once the name is ours and the source open.
fn produce(
    config: &Config,
    owner: &StreamOwner,
    signalfd: &SignalFd,
    source: Box<dyn FrameSource>,
) -> Result<Summary, RunError> {
    let fps = match config.fps {
        Some(fps) => fps,
        None if source.paces_itself() => 0.0,
        None => source.native_fps().unwrap_or(DEFAULT_FPS),
    };
    let format = source.format();
    // The region first: no queue is created or unlinked before its check has passed (a
    // live producer's region refuses us here).
    let writer = RegionBuilder::new(owner, format)
        .seats(config.seats)
        .mode(config.mode)
        .source_description(&source.describe())
        .nominal_fps(fps)
        .stall_timeout(config.stall_timeout)
        .no_backpressure(config.no_backpressure)
        .create()?;
    let queue_config = QueueConfig::new().mode(config.mode);
    let mut commands = CommandReceiver::create(owner, &queue_config)?;
    // Creating a seat's queue replaces a stale one; those above our seat count (left by a
    // producer with more seats) are removed here.
    for seat in config.seats..MAX_SEATS as u32 {
        match EventSender::remove_stale(owner, seat) {
            Ok(true) => tracing::info!("removed the stale event queue of seat {seat}"),
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot remove a stale event queue: {e}"),
        }
    }
    let events = (0..config.seats)
        .map(
            |seat| match EventSender::create(owner, seat, &queue_config) {
                Ok(sender) => Some(sender),
                Err(e) => {
                    // Best-effort: the region's state is authoritative without them.
                    tracing::warn!("no event queue for seat {seat}: {e}");
                    None
                }
            },
        )
        .collect();
    let seats = Seats { events };
    let frame_seats = seats.second_handles();
    let replies = Replies::create(owner, &queue_config);
    let (results_tx, results_rx) = channel();
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        paused: AtomicBool::new(false),
        pause_acknowledged: AtomicBool::new(false),
        fps_bits: AtomicU64::new(fps.to_bits()),
        fps_changed: AtomicBool::new(false),
        published: AtomicU64::new(0),
        late: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        epoch: AtomicU64::new(writer.epoch()),
        stalls: AtomicU64::new(0),
        demotions: AtomicU64::new(0),
    });
    tracing::info!(
        "ready: stream {} {} at {} fps from {}, {} seat(s), epoch {}",
        config.stream,
        format,
        if fps > 0.0 {
            format!("{fps}")
        } else {
            "max".to_owned()
        },
        source.describe(),
        config.seats,
        writer.epoch()
    );

    let (requests_tx, requests_rx) = channel();
    let (supervisors_tx, supervisors_rx) = channel();
    let (done_tx, frame_done) = channel::<()>();
    let supervisor = writer.supervisor();
    let source_paces_itself = source.paces_itself();
    let frame_thread = {
        let shared = shared.clone();
        let mut frame = FrameThread {
            shared,
            seats: frame_seats,
            requests: requests_rx,
            supervisors: supervisors_tx,
            results: results_tx,
            gate: config.wait_seats.map(|wanted| (wanted, config.wait)),
        };
        let limit = config.frames;
        std::thread::Builder::new()
            .name("frames".into())
            .spawn(move || {
                let _done = done_tx; // Dropped when the thread ends: the event `finish` awaits.
                frame.run(writer, source, limit, fps)
            })
            .map_err(RunError::Thread)?
    };

    let mut service = Service {
        shared: &shared,
        seats,
        supervisor,
        supervisors: supervisors_rx,
        requests: requests_tx,
        last_stats: monotonic_ns(),
        last_published: 0,
        pause_announced: false,
        replies,
        results: results_rx,
        source_paces_itself,
    };
    let ended = service.serve(&mut commands, signalfd, &frame_thread);
    shared.stop.store(true, Ordering::Relaxed);
    // A frame thread waiting for an every-frame seat sees the stop now.
    service.follow_replacements();
    service.supervisor.wake_frame_thread();
    // The service returns a reason exactly when it stopped the frame thread.
    let stopped_by_service = ended.unwrap_or(StopReason::Signal);
    let reason = match service.finish(frame_thread, &frame_done)? {
        FrameEnd::Own(reason) => reason,
        FrameEnd::Stopped => stopped_by_service,
        FrameEnd::Stuck => {
            tracing::warn!("the source does not return; ending the stream without it");
            service.follow_replacements();
            let supervisor = service.supervisor.clone();
            service.seats.broadcast(&supervisor, &Event::Stopping);
            supervisor.stop_stream();
            service.seats.events.clear();
            stopped_by_service
        }
    };
    let summary = Summary {
        frames: shared.published.load(Ordering::Relaxed),
        late: shared.late.load(Ordering::Relaxed),
        skipped: shared.skipped.load(Ordering::Relaxed),
        epoch: shared.epoch.load(Ordering::Relaxed),
        reason,
    };
    tracing::info!(
        "stopped ({reason:?}): {} frames, {} late, {} skipped",
        summary.frames,
        summary.late,
        summary.skipped
    );
    drop(commands); // Unlinks the command queue.
    Ok(summary)
}

/// How the frame thread ended.
pub(crate) enum FrameEnd {
    /// On its own: end of input or the frame limit.
    Own(StopReason),
    /// Because the service thread told it to.
    Stopped,
    /// It did not end within the grace (blocked in its source).
    Stuck,
}

/// The frame thread's own handles: the shared atomics, second handles on the seats'
/// queues, and the channels to and from the service thread.
struct FrameThread {
    shared: Arc<Shared>,
    seats: Seats,
    requests: Receiver<Request>,
    supervisors: Sender<Supervisor>,
    /// The outcome of each ticketed request, for the service thread to reply.
    results: Sender<(Ticket, Outcome)>,
    /// `--wait-seats N` and `--wait`: live seats to wait for before the first publish.
    gate: Option<(u32, Duration)>,
}

/// Longest one wait for an every-frame seat lasts before the frame thread looks at a stop
/// or a pause (the service thread also wakes it for those).
const DELIVERY_SLICE: Duration = Duration::from_millis(100);

/// How often the start gate looks at the seats (a consumer's claim signals nothing).
const GATE_POLL: Duration = Duration::from_millis(2);

impl FrameThread {
    /// The start gate: returns once `wanted` seats are live, `false` if a stop came first,
    /// an error once `wait` has passed.
    fn await_seats(&self, writer: &Writer, wanted: u32, wait: Duration) -> Result<bool, RunError> {
        tracing::info!("waiting for {wanted} consumer(s) before the first frame");
        let deadline = Deadline::after(wait);
        let supervisor = writer.supervisor();
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let live = supervisor.seats().iter().filter(|seat| seat.live).count() as u32;
            if live >= wanted {
                tracing::info!("{live} consumer(s) live: publishing");
                return Ok(true);
            }
            if deadline.expired() {
                return Err(RunError::TooFewConsumers { wanted, live, wait });
            }
            std::thread::sleep(deadline.remaining().min(GATE_POLL));
        }
    }

    /// Paces, fills a slot straight from the source, publishes (every seat's wake first,
    /// then each seat's `FrameMeta`). Returns why it ended on its own, or `None` when the
    /// service thread stopped it.
    fn run(
        &mut self,
        mut writer: Writer,
        mut source: Box<dyn FrameSource>,
        limit: Option<u64>,
        fps: f64,
    ) -> Result<Option<StopReason>, RunError> {
        let gate = match self.gate {
            Some((wanted, wait)) => self.await_seats(&writer, wanted, wait),
            None => Ok(true),
        };
        let result = match gate {
            Ok(true) => self.frames(&mut writer, source.as_mut(), limit, fps),
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        // A clean end: tell every consumer, then the writer's drop sets Stopping, wakes
        // every seat and unlinks the region.
        self.seats.broadcast(&writer.supervisor(), &Event::Stopping);
        drop(writer);
        result
    }

    /// The frame loop proper, until the source ends, the limit or a stop.
    fn frames(
        &mut self,
        writer: &mut Writer,
        source: &mut dyn FrameSource,
        limit: Option<u64>,
        fps: f64,
    ) -> Result<Option<StopReason>, RunError> {
        let shared = self.shared.clone();
        let mut pacer = Pacer::new(fps);
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            self.apply_requests(writer, source)?;
            if shared.fps_changed.swap(false, Ordering::Acquire) {
                pacer.set_fps(f64::from_bits(shared.fps_bits.load(Ordering::Relaxed)));
            }
            if shared.paused.load(Ordering::Relaxed) {
                // Between frames: from here on nothing is published until Resume.
                shared.pause_acknowledged.store(true, Ordering::Release);
                std::thread::sleep(Duration::from_millis(10));
                pacer.restart();
                continue;
            }
            shared.pause_acknowledged.store(false, Ordering::Relaxed);
            match pacer.wait() {
                Tick::NotYet => continue,
                Tick::Late { missed } => {
                    shared.late.fetch_add(missed, Ordering::Relaxed);
                }
                Tick::Due => {}
            }
            if shared.paused.load(Ordering::Relaxed) {
                continue; // Paused while waiting for the deadline.
            }
            let Some(mut slot) = writer.slot() else {
                shared.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let capture_ns = match source.fill(slot.seq(), &mut slot) {
                Ok(Filled::Frame { capture_ns }) => capture_ns,
                Ok(Filled::End) => return Ok(Some(StopReason::EndOfInput)),
                Err(e) => return Err(e.into()),
            };
            // Every-frame seats: the frame is written; it is published once they have
            // taken the one before. Wait in slices, so a stop or a pause is seen.
            while !slot.await_delivery(DELIVERY_SLICE) || shared.paused.load(Ordering::Relaxed) {
                if shared.stop.load(Ordering::Relaxed) {
                    // Not published: an every-frame consumer ends on the frame before,
                    // with nothing missing.
                    return Ok(None);
                }
                if shared.paused.load(Ordering::Relaxed) {
                    // Parked with this frame pending; it goes out after Resume.
                    shared.pause_acknowledged.store(true, Ordering::Release);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let format = source.format();
            let seats = &mut self.seats;
            let published = slot.publish_with(capture_ns, |seat, published| {
                seats.frame_meta(seat, published, format);
            });
            self.after_publish(writer, published.seq);
            let total = shared.published.fetch_add(1, Ordering::Relaxed) + 1;
            if limit.is_some_and(|limit| total >= limit) {
                return Ok(Some(StopReason::FrameLimit));
            }
        }
    }

    /// Counts the every-frame wait's stalls and demotions, and tells each demoted seat
    /// (a hint; its delivery word is the authority).
    fn after_publish(&mut self, writer: &mut Writer, seq: u64) {
        self.shared.stalls.store(writer.stalls(), Ordering::Relaxed);
        self.shared
            .demotions
            .store(writer.demotions(), Ordering::Relaxed);
        let demoted = writer.take_demoted();
        if demoted != 0 {
            let supervisor = writer.supervisor();
            for seat in (0..u32::BITS).filter(|seat| demoted & (1 << seat) != 0) {
                self.seats.demoted(&supervisor, seat, seq);
            }
        }
    }

    /// Applies SetFormat / SetPattern between frames.
    fn apply_requests(
        &mut self,
        writer: &mut Writer,
        source: &mut dyn FrameSource,
    ) -> Result<(), RunError> {
        loop {
            let request = match self.requests.try_recv() {
                Ok(request) => request,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return Ok(()),
            };
            let answer = |ticket: Option<Ticket>, outcome: Outcome| {
                if let Some(ticket) = ticket {
                    // The service thread replies; if it is gone, nobody waits.
                    let _ = self.results.send((ticket, outcome));
                }
            };
            match request {
                Request::SetPattern(pattern, ticket) => match source.set_pattern(pattern) {
                    Ok(()) => {
                        tracing::info!("pattern now {pattern}");
                        answer(ticket, Outcome::Done);
                    }
                    Err(e) => {
                        tracing::warn!("SetPattern {pattern} refused: {e}");
                        answer(
                            ticket,
                            Outcome::refused(Refusal::Unsupported, e.to_string()),
                        );
                    }
                },
                Request::SetFormat(format, ticket) => {
                    let old = writer.format();
                    if format == old {
                        let epoch = writer.epoch();
                        answer(ticket, Outcome::FormatSet { epoch, format });
                        continue;
                    }
                    if let Err(e) = source.set_format(format) {
                        tracing::warn!("SetFormat {format} refused: {e}");
                        answer(
                            ticket,
                            Outcome::refused(Refusal::Unsupported, e.to_string()),
                        );
                        continue;
                    }
                    // The consumers to tell sit in the old region.
                    let old_supervisor = writer.supervisor();
                    match writer.replace(format) {
                        Ok(()) => {
                            tracing::info!("format now {format}, epoch {}", writer.epoch());
                            let epoch = writer.epoch();
                            answer(ticket, Outcome::FormatSet { epoch, format });
                        }
                        Err(ReplaceError::Refused(e)) => {
                            tracing::warn!("SetFormat {format} refused: {e}; staying at {old}");
                            answer(
                                ticket,
                                Outcome::refused(
                                    Refusal::Invalid,
                                    format!("{e}; staying at {old}"),
                                ),
                            );
                            // The source must match the region again.
                            source.set_format(old)?;
                        }
                        Err(lost) => return Err(lost.into()),
                    }
                    // The service thread follows; if it is gone, nobody needs it.
                    let _ = self.supervisors.send(writer.supervisor());
                    self.shared.epoch.store(writer.epoch(), Ordering::Relaxed);
                    self.seats.broadcast(
                        &old_supervisor,
                        &Event::FormatChanged {
                            epoch: writer.epoch(),
                        },
                    );
                }
            }
        }
    }
}
