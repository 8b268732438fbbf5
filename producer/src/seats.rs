//! The seats' event queues as one thread sees them: the service thread owns them, the
//! frame thread sends through second handles, so the two never share a lock.

use control_msg::{Event, EventSender, Sent};
use frame_vocab::FrameFormat;
use shm_frames::{Published, Supervisor};

/// One thread's handles on the seats' event queues (None where a queue could not be made).
/// The service thread holds the owning ones, the frame thread second handles on the same
/// queues.
pub(crate) struct Seats {
    pub(crate) events: Vec<Option<EventSender>>,
}

impl Seats {
    /// Sends `event` to every occupied seat of the region `supervisor` follows, then wakes
    /// it (consumers look at their queue after each wake). Never blocks: a full queue drops
    /// the message.
    pub(crate) fn broadcast(&mut self, supervisor: &Supervisor, event: &Event) {
        for seat in supervisor.seats() {
            if let Some(Some(sender)) = self.events.get_mut(seat.seat as usize) {
                if let Ok(Sent::DroppedFull) | Err(_) = sender.send(event) {
                    tracing::trace!(seat = seat.seat, "event dropped");
                }
            }
            supervisor.wake(seat.seat);
        }
    }

    /// Second handles on the same queues, for the frame thread.
    pub(crate) fn second_handles(&self) -> Seats {
        let events = self
            .events
            .iter()
            .map(|sender| {
                sender.as_ref().and_then(|s| match s.second_handle() {
                    Ok(second) => Some(second),
                    Err(e) => {
                        tracing::warn!("no frame-thread handle on {}: {e}", s.name());
                        None
                    }
                })
            })
            .collect();
        Seats { events }
    }

    /// The frame's metadata to seat `seat`, after its wake (best-effort, non-blocking).
    /// Tells seat `seat` it was dropped back to newest-frame delivery at frame `seq`, and
    /// wakes it.
    pub(crate) fn demoted(&mut self, supervisor: &Supervisor, seat: u32, seq: u64) {
        if let Some(Some(sender)) = self.events.get_mut(seat as usize) {
            let _ = sender.send(&Event::Demoted { seq });
        }
        supervisor.wake(seat);
    }

    pub(crate) fn frame_meta(&mut self, seat: u32, published: &Published, format: FrameFormat) {
        if let Some(Some(sender)) = self.events.get_mut(seat as usize) {
            let _ = sender.send(&Event::FrameMeta {
                seq: published.seq,
                slot: published.slot,
                format,
                capture_ns: published.capture_ns,
                publish_ns: published.publish_ns,
                flags: 0,
            });
        }
    }
}
