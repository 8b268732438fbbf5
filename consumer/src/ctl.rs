//! `consumer ctl`: commands to a stream's producer, each answered (done, or refused with
//! the reason) within a deadline, from a process that takes no seat.
//!
//! A [`Controller`] claims one of the stream's reply queues (shm-frames' [`ReplyLock`]:
//! an OFD lock on the queue's own region byte), opens that queue (made by the producer)
//! and the command queue, and sends each command as a `Request` with a fresh id; the
//! producer answers with one `Reply` naming that id, on that queue only. Replies with
//! another id (a dead `ctl`'s leftovers) are skipped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use control_msg::{
    Command, CommandSender, Event, EventReceiver, Outcome, Request, Sent, queue::RecvError,
};
use frame_vocab::{Deadline, StreamName};
use shm_frames::{Health, PeekError, Peeked, ReplyLock, ReplyLockError, peek};

/// How often a wait for the producer looks again.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// Why a `ctl` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// No live producer for the stream (within `--wait`).
    #[error("no producer for stream {name}{detail}")]
    NoProducer {
        /// The stream.
        name: StreamName,
        /// What was found instead (", only the leftover of a killed producer", ...).
        detail: String,
    },
    /// The stream's object is another user's, or not shared with us.
    #[error(transparent)]
    Peek(#[from] PeekError),
    /// No reply queue could be claimed or opened.
    #[error(transparent)]
    ReplyLock(#[from] ReplyLockError),
    /// The producer has no reply queues (another kind of producer: GStreamer's
    /// framepipesink or Python's Writer, which take commands but do not answer).
    #[error("stream {name}'s producer does not answer requests (no reply queue .c{index})")]
    NoReplyQueue {
        /// The stream.
        name: StreamName,
        /// The queue.
        index: u32,
        /// Why it could not be opened.
        #[source]
        source: control_msg::OpenError,
    },
    /// The command queue could not be opened.
    #[error("cannot open stream {name}'s command queue")]
    Commands {
        /// The stream.
        name: StreamName,
        /// Why.
        #[source]
        source: control_msg::OpenError,
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
        source: control_msg::SendError,
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
    /// SIGINT or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

impl CtlError {
    /// Whether the error means "no producer" (exit code 3).
    pub fn is_no_producer(&self) -> bool {
        matches!(
            self,
            CtlError::NoProducer { .. } | CtlError::ReplyLock(ReplyLockError::NoStream { .. })
        )
    }

    /// Whether the error is a deadline that passed (exit code 4).
    pub fn is_timeout(&self) -> bool {
        matches!(self, CtlError::Timeout { .. } | CtlError::QueueFull { .. })
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

/// One `ctl` process's handle on a stream: a claimed reply queue and the command queue.
#[derive(Debug)]
pub struct Controller {
    name: StreamName,
    lock: ReplyLock,
    replies: EventReceiver,
    commands: CommandSender,
    next_id: u64,
}

/// Waits until `name` has a live producer (its lock held, state Live), for at most `wait`.
/// Another user's object fails at once; anything else is looked at again until then.
fn await_producer(name: &StreamName, wait: Duration, stop: &AtomicBool) -> Result<(), CtlError> {
    let deadline = Deadline::after(wait);
    loop {
        let detail = match peek(name) {
            Ok(Peeked::Region(view)) => match view.health() {
                Health::Live | Health::Stalled => return Ok(()),
                Health::Leftover => ", only the leftover of a producer that is gone".to_owned(),
                other => format!(", its producer is {}", other.as_str()),
            },
            Ok(Peeked::Unusable { reason, .. }) => format!(", only an unusable object: {reason}"),
            Err(PeekError::NoStream { .. }) => String::new(),
            Err(e) => return Err(e.into()),
        };
        if stop.load(Ordering::Relaxed) {
            return Err(CtlError::Interrupted);
        }
        if deadline.expired() {
            return Err(CtlError::NoProducer {
                name: name.clone(),
                detail,
            });
        }
        std::thread::sleep(deadline.remaining().min(LOOK_EVERY));
    }
}

impl Controller {
    /// Waits (within `wait`) for a live producer of `name`, claims a reply queue and opens
    /// the command queue. Takes no seat: works beside a full stream.
    pub fn open(
        name: &StreamName,
        wait: Duration,
        stop: &AtomicBool,
    ) -> Result<Controller, CtlError> {
        await_producer(name, wait, stop)?;
        let lock = ReplyLock::claim(name)?;
        let index = lock.index();
        let mut replies =
            EventReceiver::open_reply(name, index).map_err(|source| CtlError::NoReplyQueue {
                name: name.clone(),
                index,
                source,
            })?;
        // What a dead ctl left unread is not ours.
        while replies.try_recv()?.is_some() {}
        let commands = CommandSender::open(name).map_err(|source| CtlError::Commands {
            name: name.clone(),
            source,
        })?;
        // Ids unique to this process: its pid above, a counter below.
        let next_id = u64::from(std::process::id()) << 32;
        Ok(Controller {
            name: name.clone(),
            lock,
            replies,
            commands,
            next_id,
        })
    }

    /// The reply queue this controller claimed (`k` of `.c<k>`).
    pub fn reply_queue(&self) -> u32 {
        self.lock.index()
    }

    /// Sends `command` and waits at most `timeout` for its answer.
    pub fn request(
        &mut self,
        command: Command,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<Answer, CtlError> {
        self.next_id += 1;
        let id = self.next_id;
        let request = Command::Request(Box::new(Request {
            id,
            reply: self.lock.index(),
            command,
        }));
        let started = Instant::now();
        let deadline = Deadline::after(timeout);
        match self.commands.send(&request) {
            Ok(Sent::Queued) => {}
            Ok(Sent::DroppedFull) => {
                return Err(CtlError::QueueFull {
                    name: self.name.clone(),
                });
            }
            Err(source) => {
                return Err(CtlError::Send {
                    name: self.name.clone(),
                    source,
                });
            }
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(CtlError::Interrupted);
            }
            // Slices, so a signal is noticed; the queue's fd is what is waited on.
            let slice = Deadline::after(deadline.remaining().min(Duration::from_millis(100)));
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
                // Another id (a dead ctl's leftover) or another kind: not ours.
                Some(other) => tracing::debug!(?other, "skipped a reply that is not ours"),
                None if deadline.expired() => {
                    return Err(CtlError::Timeout {
                        name: self.name.clone(),
                        timeout,
                    });
                }
                None => {}
            }
        }
    }
}
