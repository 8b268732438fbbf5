//! The transport: a stream's POSIX message queues, created by its owner, opened by peers.
//!
//! - `/framepipe.NAME.ctl` carries [`Command`]s: every consumer writes ([`CommandSender`]),
//!   the producer reads ([`CommandReceiver`]).
//! - `/framepipe.NAME.s<seat>` carries [`Event`]s to one seat: the producer writes
//!   ([`EventSender`]), that seat's consumer reads ([`EventReceiver`]).
//!
//! Only the stream's owner creates a queue (it unlinks a stale one of the same name first)
//! and its handle unlinks the name on drop; peers open existing queues. Every descriptor is
//! close-on-exec and non-blocking: a send never waits (a full queue drops the message and
//! counts it), and a receive waits only in `poll` on the queue's fd against a
//! CLOCK_MONOTONIC deadline. The queues are best-effort beside the region's authoritative
//! `state`.

use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use frame_vocab::{Deadline, StreamName, StreamOwner};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, mq_receive, mq_send};
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;

use crate::config::QueueConfig;
use crate::message::{Command, Event};

/// Most invalid messages one [`Receiver::try_recv`] skips before it returns `Ok(None)`.
pub const MAX_REJECTED_PER_CALL: usize = 64;
use crate::mqueue::{CreateError, OpenError, Queue, unlink_stale};
use crate::stats::{RecvStats, SendStats, Sent};
use crate::wire::{DecodeError, EncodeError, MSG_SIZE, Message, decode, encode};

/// The longest single `poll` in a receive; a wait is cut into slices this long.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// Why a send failed. A full queue is not an error: see [`Sent::DroppedFull`].
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message has a value the wire format refuses.
    #[error("cannot encode message")]
    Encode(#[from] EncodeError),
    /// `mq_send` failed.
    #[error("cannot send on queue {name}")]
    Io {
        /// The queue.
        name: String,
        /// Its errno.
        #[source]
        source: Errno,
    },
}

/// Why a receive failed. Invalid messages are not errors: they are counted and skipped.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// `mq_receive` or `poll` failed.
    #[error("cannot receive on queue {name}: {op} failed")]
    Io {
        /// The queue.
        name: String,
        /// The call that failed.
        op: &'static str,
        /// Its errno.
        #[source]
        source: Errno,
    },
}

/// The stream's command queue, write side: any consumer may hold one.
pub type CommandSender = Sender<Command>;
/// The stream's command queue, read side: the producer's.
pub type CommandReceiver = Receiver<Command>;
/// A seat's event queue, write side: the producer's.
pub type EventSender = Sender<Event>;
/// A seat's event queue, read side: that seat's consumer's.
pub type EventReceiver = Receiver<Event>;

/// The write side of a queue of `M`s. Sends never block.
#[derive(Debug)]
pub struct Sender<M> {
    queue: Queue,
    buf: [u8; MSG_SIZE],
    stats: SendStats,
    _message: PhantomData<fn(M)>,
}

/// The read side of a queue of `M`s.
#[derive(Debug)]
pub struct Receiver<M> {
    queue: Queue,
    buf: Box<[u8]>,
    stats: RecvStats,
    /// When a rejection was last logged at `warn` (at most one such line per
    /// [`REJECT_LOG_EVERY`], so a flood of garbage costs one line, not one per message).
    last_reject_log: Option<std::time::Instant>,
    _message: PhantomData<fn() -> M>,
}

/// The least time between two `warn` lines about rejected messages on one queue.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(1);

impl CommandReceiver {
    /// Creates the stream's command queue `/framepipe.NAME.ctl` (replacing a stale one)
    /// for the producer to read. The name is unlinked when this handle drops.
    pub fn create(
        owner: &StreamOwner,
        config: &QueueConfig,
    ) -> Result<CommandReceiver, CreateError> {
        let name = owner.name().command_queue_name();
        Ok(Receiver::from_queue(Queue::create(
            owner,
            name,
            MQ_OFlag::O_RDONLY,
            config,
        )?))
    }
}

impl CommandSender {
    /// Opens stream `name`'s existing command queue for writing.
    pub fn open(name: &StreamName) -> Result<CommandSender, OpenError> {
        let queue = Queue::open(name, name.command_queue_name(), MQ_OFlag::O_WRONLY)?;
        Ok(Sender::from_queue(queue))
    }
}

impl EventSender {
    /// Creates seat `seat`'s event queue `/framepipe.NAME.s<seat>` (replacing a stale one)
    /// for the producer to write. The name is unlinked when this handle drops.
    pub fn create(
        owner: &StreamOwner,
        seat: u32,
        config: &QueueConfig,
    ) -> Result<EventSender, CreateError> {
        EventSender::create_named(owner, owner.name().event_queue_name(seat), config)
    }

    /// Creates the queue `name` of `owner`'s stream for the producer to write.
    fn create_named(
        owner: &StreamOwner,
        name: String,
        config: &QueueConfig,
    ) -> Result<EventSender, CreateError> {
        Queue::create(owner, name, MQ_OFlag::O_WRONLY, config).map(Sender::from_queue)
    }

    /// A second, non-owning handle on this very queue (a new descriptor, so two threads
    /// send without sharing a lock); dropping it leaves the name alone.
    pub fn second_handle(&self) -> Result<EventSender, OpenError> {
        Queue::open(
            &self.queue.stream,
            self.queue.name.clone(),
            MQ_OFlag::O_WRONLY,
        )
        .map(Sender::from_queue)
    }

    /// Unlinks seat `seat`'s event queue if a previous producer left one; returns whether
    /// there was one.
    pub fn remove_stale(owner: &StreamOwner, seat: u32) -> Result<bool, CreateError> {
        unlink_stale(&owner.name().event_queue_name(seat))
    }

    /// Creates reply queue `index`, `/framepipe.NAME.c<index>` (replacing a stale one), for
    /// the producer to answer `consumer ctl` requests on. The name is unlinked when this
    /// handle drops.
    pub fn create_reply(
        owner: &StreamOwner,
        index: u32,
        config: &QueueConfig,
    ) -> Result<EventSender, CreateError> {
        EventSender::create_named(owner, owner.name().reply_queue_name(index), config)
    }
}

impl EventReceiver {
    /// Opens stream `name`'s existing reply queue `index` (after claiming it: shm-frames'
    /// `ReplyLock`).
    pub fn open_reply(name: &StreamName, index: u32) -> Result<EventReceiver, OpenError> {
        let queue = Queue::open(name, name.reply_queue_name(index), MQ_OFlag::O_RDONLY)?;
        Ok(Receiver::from_queue(queue))
    }

    /// Opens stream `name`'s existing event queue for seat `seat`.
    pub fn open(name: &StreamName, seat: u32) -> Result<EventReceiver, OpenError> {
        let queue = Queue::open(name, name.event_queue_name(seat), MQ_OFlag::O_RDONLY)?;
        Ok(Receiver::from_queue(queue))
    }
}

impl<M: Message> Sender<M> {
    fn from_queue(queue: Queue) -> Sender<M> {
        Sender {
            queue,
            buf: [0; MSG_SIZE],
            stats: SendStats::default(),
            _message: PhantomData,
        }
    }

    /// Encodes and queues `msg` without blocking: a full queue drops it and counts it.
    pub fn send(&mut self, msg: &M) -> Result<Sent, SendError> {
        let len = encode(msg, &mut self.buf)?;
        let bytes = &self.buf[..len];
        let result = loop {
            match mq_send(&self.queue.mqd, bytes, 0) {
                Err(Errno::EINTR) => continue,
                result => break result,
            }
        };
        match result {
            Ok(()) => {
                self.stats.sent += 1;
                tracing::trace!(queue = %self.queue.name, ?msg, "sent");
                Ok(Sent::Queued)
            }
            Err(Errno::EAGAIN) => {
                self.stats.dropped_full += 1;
                tracing::trace!(queue = %self.queue.name, ?msg, "queue full, dropped");
                Ok(Sent::DroppedFull)
            }
            Err(source) => Err(SendError::Io {
                name: self.queue.name.clone(),
                source,
            }),
        }
    }

    /// How many messages wait in the queue now, and how many it holds at most.
    pub fn depth(&self) -> Result<(u64, u64), RecvError> {
        self.queue.depth()
    }

    /// The counters so far.
    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.queue.name
    }
}

impl<M: Message> Receiver<M> {
    fn from_queue(queue: Queue) -> Receiver<M> {
        Receiver {
            // mq_receive needs room for the queue's largest message, whatever we send.
            buf: vec![0; queue.message_size].into_boxed_slice(),
            queue,
            stats: RecvStats::default(),
            last_reject_log: None,
            _message: PhantomData,
        }
    }

    /// The next valid message if one is queued, without waiting. Invalid messages on the
    /// way are counted in [`RecvStats::rejected`] and skipped; `Ok(None)` means nothing
    /// valid is there now: the queue is empty, or [`MAX_REJECTED_PER_CALL`] invalid ones
    /// in a row were skipped (so a flood of garbage cannot keep the caller here; the rest
    /// wait for its next call).
    pub fn try_recv(&mut self) -> Result<Option<M>, RecvError> {
        for _ in 0..MAX_REJECTED_PER_CALL {
            let mut priority = 0;
            let len = match mq_receive(&self.queue.mqd, &mut self.buf, &mut priority) {
                Ok(len) => len,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(RecvError::Io {
                        name: self.queue.name.clone(),
                        op: "mq_receive",
                        source,
                    });
                }
            };
            match decode::<M>(self.buf.get(..len).unwrap_or_default()) {
                Ok(msg) => {
                    self.stats.received += 1;
                    tracing::trace!(queue = %self.queue.name, ?msg, "received");
                    return Ok(Some(msg));
                }
                Err(error) => self.reject(len, &error),
            }
        }
        Ok(None)
    }

    /// The next valid message, waiting until `deadline` (CLOCK_MONOTONIC) at most;
    /// `Ok(None)` once the deadline passes with nothing valid. Invalid messages are counted
    /// and skipped as in [`try_recv`](Self::try_recv).
    pub fn recv_deadline(&mut self, deadline: Deadline) -> Result<Option<M>, RecvError> {
        loop {
            // Poll first: when waiting is likely, this saves a receive that fails. A zero
            // timeout still reports a queued message, so a passed deadline gets it too.
            let slice = deadline.remaining().min(POLL_SLICE);
            let mut fds = [PollFd::new(self.queue.mqd.as_fd(), PollFlags::POLLIN)];
            match ppoll(&mut fds, Some(TimeSpec::from(slice)), None) {
                Ok(0) if deadline.expired() => return Ok(None),
                // A slice ended, or a signal came: wait on.
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => {
                    if let Some(msg) = self.try_recv()? {
                        return Ok(Some(msg));
                    }
                }
                Err(source) => {
                    return Err(RecvError::Io {
                        name: self.queue.name.clone(),
                        op: "poll",
                        source,
                    });
                }
            }
        }
    }

    /// [`recv_deadline`](Self::recv_deadline) with a deadline `timeout` from now.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<M>, RecvError> {
        self.recv_deadline(Deadline::after(timeout))
    }

    /// How many messages wait in the queue now, and how many it holds at most.
    pub fn depth(&self) -> Result<(u64, u64), RecvError> {
        self.queue.depth()
    }

    /// The counters so far.
    pub fn stats(&self) -> RecvStats {
        self.stats
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.queue.name
    }

    fn reject(&mut self, len: usize, error: &DecodeError) {
        self.stats.rejected.record(error);
        tracing::trace!(queue = %self.queue.name, len, %error, "rejected a message");
        let now = std::time::Instant::now();
        if self
            .last_reject_log
            .is_none_or(|last| now.duration_since(last) >= REJECT_LOG_EVERY)
        {
            self.last_reject_log = Some(now);
            tracing::warn!(
                "{}: rejected {} malformed message(s) so far; the last: {error}",
                self.queue.name,
                self.stats.rejected.total()
            );
        }
    }
}

/// How many messages wait in stream `name`'s queue `queue` (a full object name, such as
/// [`StreamName::event_queue_name`]) and how many it holds at most, read with
/// `mq_getattr` through a descriptor of its own, opened read-only after the ownership
/// check: nothing is received, so the queue's reader loses nothing.
pub fn queue_depth(name: &StreamName, queue: &str) -> Result<(u64, u64), OpenError> {
    let queue = Queue::open(name, queue.to_owned(), MQ_OFlag::O_RDONLY)?;
    queue.depth().map_err(|e| match e {
        RecvError::Io { name, op, source } => OpenError::Io { name, op, source },
    })
}

impl<M> AsFd for Sender<M> {
    /// The queue's descriptor (an fd on Linux), e.g. to `fstat` it.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.queue.mqd.as_fd()
    }
}

impl<M> AsFd for Receiver<M> {
    /// The queue's descriptor (an fd on Linux), e.g. to `poll` it beside others.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.queue.mqd.as_fd()
    }
}
