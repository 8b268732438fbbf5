//! `framepipesink`'s service thread: heartbeat and seat reclaim, and framepipe's commands,
//! answered or refused with the reason (the pipeline decides rate, format and state).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use control_msg::{Command, CommandReceiver, Event, EventSender, Sent};
use gst::glib;
use shm_frames::Supervisor;

use super::{BEAT, CAT, lock};

/// What the streaming thread and the service thread share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) stop: AtomicBool,
    /// The current region's supervisor (none before the first caps).
    pub(super) supervisor: Mutex<Option<Supervisor>>,
    /// One event queue per seat (none where it could not be created).
    pub(super) events: Mutex<Vec<Option<EventSender>>>,
}

impl Shared {
    /// Sends `event` to every occupied seat of the region `supervisor` follows, then wakes
    /// the seat (consumers look at their queue after each wake). Never blocks.
    pub(super) fn broadcast(&self, supervisor: &Supervisor, event: &Event) {
        let mut events = lock(&self.events);
        for seat in supervisor.seats() {
            if let Some(Some(sender)) = events.get_mut(seat.seat as usize)
                && let Ok(Sent::DroppedFull) | Err(_) = sender.send(event)
            {
                gst::trace!(CAT, "event to seat {} dropped", seat.seat);
            }
            supervisor.wake(seat.seat);
        }
    }
}

/// The service thread: heartbeat and seat reclaim every [`BEAT`], and the control queue.
/// It shares no lock with the streaming thread across a frame.
pub(super) fn serve(
    element: &glib::WeakRef<super::super::FramepipeSink>,
    mut commands: CommandReceiver,
    shared: &Shared,
) {
    let mut queue_ok = true;
    while !shared.stop.load(Ordering::Relaxed) {
        let first = if queue_ok {
            match commands.recv_timeout(BEAT) {
                Ok(command) => command,
                Err(e) => {
                    gst::warning!(CAT, "command queue failed, going on without it: {e}");
                    queue_ok = false;
                    None
                }
            }
        } else {
            std::thread::park_timeout(BEAT);
            None
        };
        let supervisor = lock(&shared.supervisor).clone();
        if let Some(supervisor) = &supervisor {
            for seat in supervisor.beat() {
                gst::info!(
                    CAT,
                    "reclaimed seat {} of dead consumer pid {}",
                    seat.seat,
                    seat.pid
                );
            }
        }
        let mut next = first;
        // Bounded per tick (a full queue holds 10): a flood must not starve the heartbeat.
        let mut budget = 32u32;
        while let Some(command) = next {
            apply(element, shared, supervisor.as_ref(), command);
            budget -= 1;
            next = if queue_ok && budget > 0 {
                commands.try_recv().ok().flatten()
            } else {
                None
            };
        }
    }
    // Dropping the receiver unlinks the command queue.
}

/// Why the element refuses a command, or `None` if it serves it.
pub(super) fn refusal(command: &Command) -> Option<&'static str> {
    match command {
        Command::SetFps { .. } => Some("the pipeline sets the frame rate (videorate upstream)"),
        Command::SetFormat(_) => Some("the pipeline's caps set the format (a capsfilter upstream)"),
        Command::SetPattern(_) => {
            Some("framepipesink draws no pattern: the pipeline makes the frames")
        }
        Command::Pause | Command::Resume => Some("the pipeline's state decides (set it to PAUSED)"),
        Command::Shutdown => Some("the application that runs the pipeline decides when it ends"),
        Command::Hello { .. } | Command::Bye { .. } | Command::Ping { .. } => None,
        // No reply queues here (`consumer ctl` says so): judged as the plain command.
        Command::Request(asked) => refusal(&asked.command),
    }
}

fn apply(
    element: &glib::WeakRef<super::super::FramepipeSink>,
    shared: &Shared,
    supervisor: Option<&Supervisor>,
    command: Command,
) {
    if let Some(reason) = refusal(&command) {
        // The control queue has no reply message yet (see the README): the refusal is a
        // warning on the bus and in the log.
        if let Some(element) = element.upgrade() {
            gst::element_warning!(
                element,
                gst::CoreError::NotImplemented,
                ("refused {command:?}: {reason}")
            );
        }
        return;
    }
    match command {
        Command::Hello { seat, pid } => gst::info!(CAT, "consumer pid {pid} on seat {seat}"),
        Command::Bye { seat } => gst::info!(CAT, "consumer on seat {seat} left"),
        Command::Ping { nonce } => {
            if let Some(supervisor) = supervisor {
                shared.broadcast(supervisor, &Event::Pong { nonce });
            }
        }
        other => gst::debug!(CAT, "unexpected command {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame_vocab::FrameFormat;

    #[test]
    fn commands_the_pipeline_decides_are_refused_with_a_reason() {
        for command in [
            Command::SetFps { fps: 30.0 },
            Command::SetFormat(FrameFormat::new(64, 64, frame_vocab::PixelFormat::Bgra).unwrap()),
            Command::SetPattern(frame_vocab::PatternKind::Bars),
        ] {
            assert!(refusal(&command).is_some(), "{command:?}");
        }
        assert_eq!(refusal(&Command::Ping { nonce: 7 }), None);
        assert_eq!(refusal(&Command::Hello { seat: 0, pid: 1 }), None);
    }
}
