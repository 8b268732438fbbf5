//! The producer's service thread: the heartbeat, seat reclaim, the control queue, signals
//! and the stats line. It never waits on the source, so a producer blocked on stdin or a
//! camera never looks dead, and it shares only atomics with the frame thread.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use control_msg::{Command, CommandReceiver, Event};
use frame_vocab::monotonic_ns;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use shm_frames::Supervisor;

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
            if frame_thread.is_finished() {
                return None;
            }
            self.maybe_log_stats();
        }
    }

    pub(crate) fn apply(&mut self, command: Command) -> Option<StopReason> {
        let shared = self.shared;
        match command {
            Command::Hello { seat, pid } => tracing::info!("consumer pid {pid} on seat {seat}"),
            Command::Bye { seat } => tracing::info!("consumer on seat {seat} left"),
            Command::SetFps { fps } => {
                tracing::info!("SetFps {fps}");
                shared.fps_bits.store(fps.to_bits(), Ordering::Relaxed);
                shared.fps_changed.store(true, Ordering::Release);
            }
            Command::Pause => {
                shared.paused.store(true, Ordering::Relaxed);
                self.announce_pause();
            }
            Command::Resume => {
                tracing::info!("resumed");
                shared.paused.store(false, Ordering::Relaxed);
                self.pause_announced = false;
            }
            Command::SetFormat(format) => {
                let _ = self.requests.send(Request::SetFormat(format));
            }
            Command::SetPattern(pattern) => {
                let _ = self.requests.send(Request::SetPattern(pattern));
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
            "{fps:.1} fps, {published} frames, {} late, {} skipped, {} consumer(s){}",
            self.shared.late.load(Ordering::Relaxed),
            self.shared.skipped.load(Ordering::Relaxed),
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
