//! Requests with answers: one process's handle on a stream's command queue and on one of
//! its reply queues (`.c<k>`), sending each command as a [`Request`] with a fresh id and
//! waiting, with a deadline, for the one `Reply` that names that id.
//!
//! Which reply queue is ours is decided by whoever holds its claim (shm-frames'
//! `ReplyLock`, an OFD lock on the queue's own region byte); this crate never touches
//! shared memory, so the claim comes in as a guard the controller keeps alive. `consumer
//! ctl` and the Python binding's `Control` both use it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use frame_vocab::{Deadline, StreamName};

use crate::message::{Command, Event};
use crate::mqueue::OpenError;
use crate::queue::{CommandSender, EventReceiver, RecvError, SendError};
use crate::reply::{Outcome, Request};
use crate::stats::Sent;

/// Longest one wait for a reply lasts before `stop` is looked at again.
const SLICE: Duration = Duration::from_millis(100);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The producer has no such reply queue (another kind of producer, such as GStreamer's
    /// framepipesink or Python's Writer, which take commands but do not answer).
    #[error("stream {name}'s producer does not answer requests (no reply queue .c{index})")]
    NoReplyQueue {
        /// The stream.
        name: StreamName,
        /// The queue.
        index: u32,
        /// Why it could not be opened.
        #[source]
        source: OpenError,
    },
    /// The command queue could not be opened.
    #[error("cannot open stream {name}'s command queue")]
    Commands {
        /// The stream.
        name: StreamName,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// The command queue is full: the producer does not read it (stopped or hung).
    #[error("the producer of stream {name} does not read its commands (its queue is full)")]
    QueueFull {
        /// The stream.
        name: StreamName,
    },
    /// Sending failed.
    #[error("cannot send to stream {name}")]
    Send {
        /// The stream.
        name: StreamName,
        /// Why.
        #[source]
        source: SendError,
    },
    /// Receiving failed.
    #[error("cannot receive the reply")]
    Recv(#[from] RecvError),
    /// No answer within the deadline.
    #[error("no answer from the producer of stream {name} within {timeout:?} (stopped or hung?)")]
    Timeout {
        /// The stream.
        name: StreamName,
        /// The deadline.
        timeout: Duration,
    },
    /// The caller's stop flag was raised (SIGINT, Ctrl-C).
    #[error("interrupted")]
    Interrupted,
}

impl ControlError {
    /// Whether the error is a deadline that passed (a producer that does not answer).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ControlError::Timeout { .. } | ControlError::QueueFull { .. }
        )
    }
}

/// A request's answer and how long it took.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The producer's answer.
    pub outcome: Outcome,
    /// From the send to the reply's receipt.
    pub round_trip: Duration,
}

/// One process's handle on a stream: a claimed reply queue and the command queue.
pub struct Controller {
    name: StreamName,
    index: u32,
    /// The claim on reply queue `index` (kept alive, never looked at).
    _claim: Box<dyn Send>,
    replies: EventReceiver,
    commands: CommandSender,
    next_id: u64,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .field("reply_queue", &self.index)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Opens reply queue `index` of `name` (made by the producer; `claim` is what makes it
    /// ours, held as long as the controller lives) and the command queue. What a previous
    /// holder left unread on the reply queue is thrown away.
    pub fn open(
        name: &StreamName,
        index: u32,
        claim: impl Send + 'static,
    ) -> Result<Controller, ControlError> {
        let mut replies = EventReceiver::open_reply(name, index).map_err(|source| {
            ControlError::NoReplyQueue {
                name: name.clone(),
                index,
                source,
            }
        })?;
        while replies.try_recv()?.is_some() {}
        let commands = CommandSender::open(name).map_err(|source| ControlError::Commands {
            name: name.clone(),
            source,
        })?;
        Ok(Controller {
            name: name.clone(),
            index,
            _claim: Box::new(claim),
            replies,
            commands,
            // Ids unique to this process: its pid above, a counter below.
            next_id: u64::from(std::process::id()) << 32,
        })
    }

    /// The reply queue this controller holds (`k` of `.c<k>`).
    pub fn reply_queue(&self) -> u32 {
        self.index
    }

    /// The stream.
    pub fn name(&self) -> &StreamName {
        &self.name
    }

    /// Sends `command` and waits at most `timeout` for its answer, looking at `stop` at
    /// least every 100 ms. Replies with another id (a previous holder's) are skipped.
    pub fn request(
        &mut self,
        command: Command,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<Answer, ControlError> {
        self.next_id += 1;
        let id = self.next_id;
        let request = Command::Request(Box::new(Request {
            id,
            reply: self.index,
            command,
        }));
        let started = Instant::now();
        let deadline = Deadline::after(timeout);
        match self.commands.send(&request) {
            Ok(Sent::Queued) => {}
            Ok(Sent::DroppedFull) => {
                return Err(ControlError::QueueFull {
                    name: self.name.clone(),
                });
            }
            Err(source) => {
                return Err(ControlError::Send {
                    name: self.name.clone(),
                    source,
                });
            }
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(ControlError::Interrupted);
            }
            // Slices, so a stop is noticed; the queue's fd is what is waited on.
            let slice = Deadline::after(deadline.remaining().min(SLICE));
            match self.replies.recv_deadline(slice)? {
                Some(Event::Reply {
                    id: answered,
                    outcome,
                }) if answered == id => {
                    return Ok(Answer {
                        outcome,
                        round_trip: started.elapsed(),
                    });
                }
                Some(other) => tracing::debug!(?other, "skipped a reply that is not ours"),
                None if deadline.expired() => {
                    return Err(ControlError::Timeout {
                        name: self.name.clone(),
                        timeout,
                    });
                }
                None => {}
            }
        }
    }
}
