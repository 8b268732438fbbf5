//! The producer's side of `consumer ctl`: the reply queues `.c0`–`.c3`, the requests
//! waiting for an answer, and the sweep that clears the queues of dead `ctl` processes.
//!
//! Every [`Request`](control_msg::Request) gets exactly one `Event::Reply` on its reply
//! queue: at once for what the service thread decides alone (ping, resume, fps, shutdown,
//! refusals), once the frame thread has parked for `Pause`, and from the frame thread's
//! result for `SetFormat` and `SetPattern`, which it applies between frames.

use control_msg::{Event, EventSender, Outcome, QueueConfig, REPLY_QUEUES, Refusal};
use frame_vocab::{StreamOwner, monotonic_ns};
use shm_frames::Supervisor;

/// Who waits for a reply: the request's id and its reply queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) id: u64,
    pub(crate) reply: u32,
}

/// How long a reply queue must have had no request, with its lock free, before the sweep
/// clears what a dead `ctl` left in it (a live one never waits that long for an answer
/// it already has).
const IDLE_BEFORE_SWEEP_NS: u64 = 2_000_000_000;

/// How often the sweep looks.
const SWEEP_EVERY_NS: u64 = 1_000_000_000;

/// How long a `Pause` may wait for the frame thread to park before it is answered anyway
/// (the frame thread may be blocked in its source).
pub(crate) const PAUSE_ANSWER_WITHIN_NS: u64 = 1_000_000_000;

/// The reply queues and the bookkeeping around them.
pub(crate) struct Replies {
    owner: StreamOwner,
    config: QueueConfig,
    queues: Vec<Option<EventSender>>,
    /// When each queue last carried a request (ns, CLOCK_MONOTONIC).
    last_request_ns: Vec<u64>,
    last_sweep_ns: u64,
    /// `Pause` requests waiting for the frame thread to park, with when they came.
    pub(crate) pending_pauses: Vec<(Ticket, u64)>,
}

impl Replies {
    /// Creates the stream's reply queues (best-effort: `ctl` says "no reply queue" where
    /// one is missing; frames and plain commands do not need them).
    pub(crate) fn create(owner: &StreamOwner, config: &QueueConfig) -> Replies {
        let queues = (0..REPLY_QUEUES)
            .map(|index| create_one(owner, index, config))
            .collect();
        Replies {
            owner: owner.clone(),
            config: *config,
            queues,
            last_request_ns: vec![0; REPLY_QUEUES as usize],
            last_sweep_ns: monotonic_ns(),
            pending_pauses: Vec::new(),
        }
    }

    /// Notes that a request came for `ticket`'s queue (it is in use).
    pub(crate) fn note_request(&mut self, ticket: Ticket) {
        if let Some(last) = self.last_request_ns.get_mut(ticket.reply as usize) {
            *last = monotonic_ns();
        }
    }

    /// Sends `outcome` to whoever waits on `ticket` (best-effort, never blocks).
    pub(crate) fn answer(&mut self, ticket: Ticket, outcome: Outcome) {
        tracing::debug!(id = ticket.id, reply = ticket.reply, ?outcome, "reply");
        let Some(Some(queue)) = self.queues.get_mut(ticket.reply as usize) else {
            return;
        };
        let event = Event::Reply {
            id: ticket.id,
            outcome,
        };
        match queue.send(&event) {
            Ok(control_msg::Sent::Queued) => {}
            Ok(control_msg::Sent::DroppedFull) => {
                tracing::debug!("reply queue {} full: reply dropped", queue.name())
            }
            Err(e) => tracing::warn!("cannot reply on {}: {e}", queue.name()),
        }
    }

    /// Answers the pending `Pause`s once the frame thread has parked (`parked`), or after
    /// [`PAUSE_ANSWER_WITHIN_NS`] with the reason it has not.
    pub(crate) fn answer_pauses(&mut self, parked: bool) {
        if self.pending_pauses.is_empty() {
            return;
        }
        let now = monotonic_ns();
        let pending = std::mem::take(&mut self.pending_pauses);
        for (ticket, since) in pending {
            if parked {
                self.answer(ticket, Outcome::Done);
            } else if now.saturating_sub(since) > PAUSE_ANSWER_WITHIN_NS {
                self.answer(
                    ticket,
                    Outcome::refused(
                        Refusal::Failed,
                        "paused, but the frame thread is still inside its source (blocked on \
                         input?); a frame may still follow",
                    ),
                );
            } else {
                self.pending_pauses.push((ticket, since));
            }
        }
    }

    /// Every second: clears each reply queue that holds messages while no `ctl` holds its
    /// lock and none used it lately (a dead `ctl`'s leftovers), by unlinking it and making
    /// it anew, under the queue's own lock so no `ctl` can claim it meanwhile.
    pub(crate) fn sweep(&mut self, supervisor: &Supervisor) {
        let now = monotonic_ns();
        if now.saturating_sub(self.last_sweep_ns) < SWEEP_EVERY_NS {
            return;
        }
        self.last_sweep_ns = now;
        for index in 0..REPLY_QUEUES {
            let i = index as usize;
            if now.saturating_sub(self.last_request_ns[i]) < IDLE_BEFORE_SWEEP_NS {
                continue;
            }
            let stale = match &self.queues[i] {
                Some(queue) => queue.depth().is_ok_and(|(queued, _)| queued > 0),
                None => true, // Try again to make a queue that failed before.
            };
            if !stale {
                continue;
            }
            let (owner, config, queues) = (&self.owner, &self.config, &mut self.queues);
            let swept = supervisor.while_reply_queue_unclaimed(index, || {
                // Unlinks the old name first (its drop), then makes a fresh one.
                queues[i] = None;
                queues[i] = create_one(owner, index, config);
            });
            if swept.is_some() {
                tracing::info!("cleared reply queue .c{index} of a ctl that is gone");
            }
        }
    }
}

fn create_one(owner: &StreamOwner, index: u32, config: &QueueConfig) -> Option<EventSender> {
    match EventSender::create_reply(owner, index, config) {
        Ok(queue) => Some(queue),
        Err(e) => {
            tracing::warn!("no reply queue .c{index}: {e}");
            None
        }
    }
}
