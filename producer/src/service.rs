//! The producer's service thread: the heartbeat, seat reclaim, the control queue, signals
//! and the stats line. It never waits on the source, so a producer blocked on stdin or a
//! camera never looks dead, and it shares only atomics with the frame thread.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use control_msg::{Command, CommandReceiver, Event, Outcome, Refusal, Request as Asked};
use frame_vocab::monotonic_ns;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use shm_frames::Supervisor;

use crate::replies::{Replies, Ticket};
use crate::run::{
    BEAT, FRAME_THREAD_GRACE, FrameEnd, Request, RunError, STATS_EVERY, Shared, StopReason,
};
use crate::seats::Seats;

/// Most commands the service thread applies per tick (a full queue holds 10).
const MAX_COMMANDS_PER_TICK: usize = 32;

/// The service thread's state.
pub(crate) struct Service<'a> {
    pub(crate) shared: &'a Shared,
    /// The owning handles on the seats' event queues (for `Pong` and `Stopping`).
    pub(crate) seats: Seats,
    /// The region the frame thread currently publishes in.
    pub(crate) supervisor: Supervisor,
    /// A new supervisor from the frame thread after each format change.
    pub(crate) supervisors: Receiver<Supervisor>,
    pub(crate) requests: std::sync::mpsc::Sender<Request>,
    pub(crate) last_stats: u64,
    pub(crate) last_published: u64,
    /// Whether "paused" was logged for the current pause.
    pub(crate) pause_announced: bool,
    /// The reply queues of `consumer ctl` and the requests waiting for an answer.
    pub(crate) replies: Replies,
    /// Results of requests the frame thread applied (`SetFormat`, `SetPattern`).
    pub(crate) results: Receiver<(Ticket, Outcome)>,
    /// Whether the source paces itself (a camera): `fps 0` is refused then.
    pub(crate) source_paces_itself: bool,
}

impl Service<'_> {
    /// Moves to the region of the frame thread's latest format change, if any.
    pub(crate) fn follow_replacements(&mut self) {
        while let Ok(supervisor) = self.supervisors.try_recv() {
            self.supervisor = supervisor;
        }
    }

    /// Waits for the frame thread to end (its `done` sender drops when it does), keeping
    /// the heartbeat meanwhile, for at most the grace.
    pub(crate) fn finish(
        &mut self,
        frame_thread: JoinHandle<Result<Option<StopReason>, RunError>>,
        done: &Receiver<()>,
    ) -> Result<FrameEnd, RunError> {
        let deadline = monotonic_ns() + FRAME_THREAD_GRACE.as_nanos() as u64;
        loop {
            // Keep the stream alive while the frame thread winds down.
            self.follow_replacements();
            self.supervisor.beat();
            let left = Duration::from_nanos(deadline.saturating_sub(monotonic_ns()));
            match done.recv_timeout(left.min(BEAT)) {
                Err(RecvTimeoutError::Disconnected) => break,
                _ if left.is_zero() => return Ok(FrameEnd::Stuck),
                _ => continue,
            }
        }
        match frame_thread.join() {
            Ok(Ok(Some(reason))) => Ok(FrameEnd::Own(reason)),
            Ok(Ok(None)) => Ok(FrameEnd::Stopped),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(RunError::Panicked),
        }
    }

    /// Serves heartbeat, commands and signals until a stop; returns why, or `None` if the
    /// frame thread ended on its own.
    pub(crate) fn serve(
        &mut self,
        commands: &mut CommandReceiver,
        signalfd: &SignalFd,
        frame_thread: &JoinHandle<Result<Option<StopReason>, RunError>>,
    ) -> Option<StopReason> {
        loop {
            let beat_ms = BEAT.as_millis() as u16;
            let mut fds = [
                PollFd::new(signalfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(commands.as_fd(), PollFlags::POLLIN),
            ];
            // EINTR or a poll error just ends this slice early.
            let _ = poll(&mut fds, PollTimeout::from(beat_ms));
            self.follow_replacements();
            // shm-frames logs each seat it reclaims.
            self.supervisor.beat();
            self.announce_pause();
            if let Ok(Some(info)) = signalfd.read_signal() {
                tracing::info!("signal {}: stopping", info.ssi_signo);
                return Some(StopReason::Signal);
            }
            // Bounded per tick: a flood of commands must not starve the heartbeat, seat
            // reclaim and signals above; what is left waits for the next tick.
            for _ in 0..MAX_COMMANDS_PER_TICK {
                let Ok(Some(command)) = commands.try_recv() else {
                    break;
                };
                if let Some(reason) = self.apply(command) {
                    return Some(reason);
                }
            }
            self.answer_requests();
            if frame_thread.is_finished() {
                return None;
            }
            self.maybe_log_stats();
        }
    }

    /// Sends the replies that became due: results from the frame thread, and pauses once
    /// it has parked. Also clears the reply queues of dead `ctl` processes.
    pub(crate) fn answer_requests(&mut self) {
        while let Ok((ticket, outcome)) = self.results.try_recv() {
            self.replies.answer(ticket, outcome);
        }
        let parked = self.shared.paused.load(Ordering::Relaxed)
            && self.shared.pause_acknowledged.load(Ordering::Acquire);
        self.replies.answer_pauses(parked);
        self.replies.sweep(&self.supervisor);
    }

    /// A request: refused at once where the answer is known here, else applied like the
    /// plain command with the ticket carried along to whoever finishes it.
    fn apply_request(&mut self, asked: Asked) -> Option<StopReason> {
        let ticket = Ticket {
            id: asked.id,
            reply: asked.reply,
        };
        self.replies.note_request(ticket);
        let paused = self.shared.paused.load(Ordering::Relaxed);
        let refusal = match &asked.command {
            Command::Hello { .. } | Command::Bye { .. } | Command::Request(_) => Some(
                Outcome::refused(Refusal::NotARequest, "Hello and Bye are sent, not asked"),
            ),
            Command::SetFps { .. } | Command::SetPattern(_) | Command::SetFormat(_) if paused => {
                Some(Outcome::refused(
                    Refusal::Paused,
                    "the producer is paused: resume it first (ctl resume)",
                ))
            }
            Command::SetFps { fps } if *fps == 0.0 && self.source_paces_itself => {
                Some(Outcome::refused(
                    Refusal::Unsupported,
                    "the camera paces itself: fps 0 (as fast as the source gives) does not apply",
                ))
            }
            _ => None,
        };
        if let Some(refusal) = refusal {
            tracing::info!("refused {:?}: {refusal:?}", asked.command);
            self.replies.answer(ticket, refusal);
            return None;
        }
        match asked.command {
            Command::Pause => {
                // Cleared first, so only a park after this request answers it.
                self.shared
                    .pause_acknowledged
                    .store(false, Ordering::Relaxed);
                let stop = self.apply(Command::Pause);
                self.replies
                    .pending_pauses
                    .push((ticket, frame_vocab::monotonic_ns()));
                stop
            }
            Command::SetFormat(format) => {
                let _ = self.requests.send(Request::SetFormat(format, Some(ticket)));
                None
            }
            Command::SetPattern(pattern) => {
                let _ = self
                    .requests
                    .send(Request::SetPattern(pattern, Some(ticket)));
                None
            }
            Command::Ping { .. } => {
                // Only the asker hears it: no Pong to the seats.
                self.replies.answer(ticket, Outcome::Done);
                None
            }
            command => {
                // Resume, SetFps, Shutdown: done as soon as applied (the reply goes first,
                // since Shutdown ends the service).
                self.replies.answer(ticket, Outcome::Done);
                self.apply(command)
            }
        }
    }

    pub(crate) fn apply(&mut self, command: Command) -> Option<StopReason> {
        let shared = self.shared;
        match command {
            Command::Request(asked) => return self.apply_request(*asked),
            Command::Hello { seat, pid } => tracing::info!("consumer pid {pid} on seat {seat}"),
            Command::Bye { seat } => tracing::info!("consumer on seat {seat} left"),
            Command::SetFps { fps } => {
                tracing::info!("SetFps {fps}");
                shared.fps_bits.store(fps.to_bits(), Ordering::Relaxed);
                shared.fps_changed.store(true, Ordering::Release);
            }
            Command::Pause => {
                shared.paused.store(true, Ordering::Relaxed);
                // A frame thread waiting for an every-frame seat parks now.
                self.supervisor.wake_frame_thread();
                self.announce_pause();
            }
            Command::Resume => {
                tracing::info!("resumed");
                shared.paused.store(false, Ordering::Relaxed);
                self.pause_announced = false;
            }
            Command::SetFormat(format) => {
                let _ = self.requests.send(Request::SetFormat(format, None));
            }
            Command::SetPattern(pattern) => {
                let _ = self.requests.send(Request::SetPattern(pattern, None));
            }
            Command::Ping { nonce } => {
                self.seats
                    .broadcast(&self.supervisor, &Event::Pong { nonce });
            }
            Command::Shutdown => {
                tracing::info!("Shutdown command: stopping");
                return Some(StopReason::Shutdown);
            }
        }
        None
    }

    /// Logs "paused" once the frame thread has stopped publishing (it may be finishing a
    /// frame when the command arrives), so whoever waits for that line sees no more frames.
    pub(crate) fn announce_pause(&mut self) {
        let shared = self.shared;
        if !self.pause_announced
            && shared.paused.load(Ordering::Relaxed)
            && shared.pause_acknowledged.load(Ordering::Acquire)
        {
            tracing::info!("paused (heartbeat goes on)");
            self.pause_announced = true;
        }
    }

    pub(crate) fn maybe_log_stats(&mut self) {
        let now = monotonic_ns();
        let elapsed = now - self.last_stats;
        if elapsed < STATS_EVERY.as_nanos() as u64 {
            return;
        }
        let published = self.shared.published.load(Ordering::Relaxed);
        let fps = (published - self.last_published) as f64 * 1e9 / elapsed as f64;
        tracing::info!(
            "{fps:.1} fps, {published} frames, {} late, {} skipped, {} stalled, {} demoted, \
             {} consumer(s){}",
            self.shared.late.load(Ordering::Relaxed),
            self.shared.skipped.load(Ordering::Relaxed),
            self.shared.stalls.load(Ordering::Relaxed),
            self.shared.demotions.load(Ordering::Relaxed),
            self.supervisor.seats().len(),
            if self.shared.paused.load(Ordering::Relaxed) {
                ", paused"
            } else {
                ""
            }
        );
        self.last_stats = now;
        self.last_published = published;
    }
}
