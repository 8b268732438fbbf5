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

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use frame_vocab::{Deadline, StreamName, StreamOwner};
use nix::errno::Errno;
use nix::mqueue::{
    MQ_OFlag, MqAttr, MqdT, mq_attr_member_t, mq_close, mq_getattr, mq_open, mq_receive, mq_send,
    mq_unlink,
};
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::stat::{Mode, fchmod};
use nix::sys::time::TimeSpec;

use crate::message::{Command, Event};
use crate::stats::{RecvStats, SendStats, Sent};
use crate::wire::{DecodeError, EncodeError, MSG_SIZE, Message, decode, encode};

/// The longest single `poll` in a receive; a wait is cut into slices this long.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// The limits a created queue asks the kernel for, and its permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    max_messages: u32,
    message_size: u32,
    mode: u32,
}

impl Default for QueueConfig {
    /// 10 messages of 256 bytes (what an unprivileged process may ask for), mode 0600.
    fn default() -> Self {
        QueueConfig {
            max_messages: 10,
            message_size: MSG_SIZE as u32,
            mode: 0o600,
        }
    }
}

impl QueueConfig {
    /// The defaults: 10 messages of 256 bytes, mode 0600.
    pub fn new() -> QueueConfig {
        QueueConfig::default()
    }

    /// How many messages the queue holds before sends drop (`mq_maxmsg`; above
    /// `fs.mqueue.msg_max`, 10 by default, needs CAP_SYS_RESOURCE).
    pub fn max_messages(mut self, max_messages: u32) -> QueueConfig {
        self.max_messages = max_messages;
        self
    }

    /// The largest message in bytes (`mq_msgsize`; at least [`MSG_SIZE`]; above
    /// `fs.mqueue.msgsize_max`, 8192 by default, needs CAP_SYS_RESOURCE).
    pub fn message_size(mut self, message_size: u32) -> QueueConfig {
        self.message_size = message_size;
        self
    }

    /// Permission bits, set with `fchmod` after creation so the umask does not apply
    /// (0600 by default; 0660 shares with the group).
    pub fn mode(mut self, mode: u32) -> QueueConfig {
        self.mode = mode;
        self
    }

    fn check(&self) -> Result<(), ConfigProblem> {
        if self.max_messages == 0 {
            return Err(ConfigProblem::NoMessages);
        }
        if (self.message_size as usize) < MSG_SIZE {
            return Err(ConfigProblem::MessageSizeTooSmall(self.message_size));
        }
        if self.mode & !0o777 != 0 {
            return Err(ConfigProblem::ModeBits(self.mode));
        }
        Ok(())
    }
}

/// A [`QueueConfig`] that no kernel would accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// `max_messages` is 0.
    #[error("max messages must be at least 1")]
    NoMessages,
    /// `message_size` cannot hold a message.
    #[error("message size {0} is below the {MSG_SIZE} bytes a message may take")]
    MessageSizeTooSmall(u32),
    /// `mode` has bits beyond the permission bits.
    #[error("mode {0:#o} has bits outside 0o777")]
    ModeBits(u32),
}

/// A kernel limit that refused a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelLimit {
    /// `max_messages` is above `/proc/sys/fs/mqueue/msg_max`.
    MaxMessages {
        /// What the config asked for.
        requested: u32,
        /// The limit in force.
        limit: u64,
    },
    /// `message_size` is above `/proc/sys/fs/mqueue/msgsize_max`.
    MessageSize {
        /// What the config asked for.
        requested: u32,
        /// The limit in force.
        limit: u64,
    },
    /// The kernel refused the attributes for another reason (the hard limits of 65536
    /// messages or 16 MiB per message, which bind even with CAP_SYS_RESOURCE).
    Attributes {
        /// What the config asked for.
        max_messages: u32,
        /// What the config asked for.
        message_size: u32,
    },
    /// `/proc/sys/fs/mqueue/queues_max` queues exist already (ENOSPC).
    QueueCount,
    /// The queue's memory exceeds RLIMIT_MSGQUEUE (`ulimit -q`), or the process is out of
    /// descriptors or memory (EMFILE, ENOMEM).
    Memory,
}

impl fmt::Display for KernelLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HINT: &str = "raise it with sysctl or run with CAP_SYS_RESOURCE";
        match *self {
            KernelLimit::MaxMessages { requested, limit } => write!(
                f,
                "max messages {requested} exceeds the kernel limit fs.mqueue.msg_max = {limit} \
                 ({HINT})"
            ),
            KernelLimit::MessageSize { requested, limit } => write!(
                f,
                "message size {requested} exceeds the kernel limit fs.mqueue.msgsize_max = \
                 {limit} ({HINT})"
            ),
            KernelLimit::Attributes {
                max_messages,
                message_size,
            } => write!(
                f,
                "the kernel refused {max_messages} messages of {message_size} bytes (hard \
                 limits: 65536 messages, 16 MiB per message)"
            ),
            KernelLimit::QueueCount => f.write_str(
                "the kernel limit fs.mqueue.queues_max on the number of queues is reached",
            ),
            KernelLimit::Memory => f.write_str(
                "the queue needs more than RLIMIT_MSGQUEUE (ulimit -q) allows, or the process \
                 is out of file descriptors or memory",
            ),
        }
    }
}

/// Why the owner could not create a queue.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The config is unusable before the kernel is asked.
    #[error("cannot create queue {name}: {problem}")]
    Config {
        /// The queue.
        name: String,
        /// What is wrong.
        problem: ConfigProblem,
    },
    /// A kernel limit refused the queue.
    #[error("cannot create queue {name}: {limit}")]
    Limit {
        /// The queue.
        name: String,
        /// The limit.
        limit: KernelLimit,
        /// The errno from `mq_open`.
        #[source]
        source: Errno,
    },
    /// A stale queue of that name belongs to someone this process may not touch.
    #[error("permission denied replacing queue {name}")]
    PermissionDenied {
        /// The queue.
        name: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Another system call failed.
    #[error("cannot create queue {name}: {op} failed")]
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

/// Why a peer could not open a queue.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No queue of that name: the producer is not running (or not yet).
    #[error("queue {name} does not exist (is the producer running?)")]
    NotFound {
        /// The queue.
        name: String,
    },
    /// The queue belongs to another user, or its mode excludes this one.
    #[error("permission denied opening queue {name}")]
    PermissionDenied {
        /// The queue.
        name: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The queue may not be used: another user's, or not shared with us as it must be.
    #[error(transparent)]
    Refused(#[from] frame_vocab::access::Refused),
    /// The queue's messages are too small for this wire format (not one of ours).
    #[error("queue {name} carries messages of at most {message_size} bytes, below {MSG_SIZE}")]
    Incompatible {
        /// The queue.
        name: String,
        /// Its `mq_msgsize`.
        message_size: i64,
    },
    /// Another system call failed.
    #[error("cannot open queue {name}: {op} failed")]
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
        let name = owner.name().event_queue_name(seat);
        Ok(Sender::from_queue(Queue::create(
            owner,
            name,
            MQ_OFlag::O_WRONLY,
            config,
        )?))
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
}

impl EventReceiver {
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
    /// way are counted in [`RecvStats::rejected`] and skipped; `Ok(None)` means the queue
    /// is empty.
    pub fn try_recv(&mut self) -> Result<Option<M>, RecvError> {
        loop {
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

/// One open queue descriptor; closes it on drop and, when created by the owner, unlinks
/// the name.
#[derive(Debug)]
struct Queue {
    /// The stream the queue belongs to (whose owner every open is checked against).
    stream: StreamName,
    name: String,
    mqd: Mqd,
    /// The queue's `mq_msgsize`, at least [`MSG_SIZE`].
    message_size: usize,
    /// Held so the name stays ours until it is unlinked: if the owner dropped first, a new
    /// producer could claim the name and create a queue this drop would then remove.
    owner: Option<StreamOwner>,
}

impl Queue {
    fn create(
        owner: &StreamOwner,
        name: String,
        access: MQ_OFlag,
        config: &QueueConfig,
    ) -> Result<Queue, CreateError> {
        if let Err(problem) = config.check() {
            return Err(CreateError::Config { name, problem });
        }
        if unlink_stale(&name)? {
            tracing::info!(queue = %name, "removed a stale queue");
        }
        let attr = MqAttr::new(
            0,
            mq_attr_member_t::from(config.max_messages),
            mq_attr_member_t::from(config.message_size),
            0,
        );
        let flags = access
            | MQ_OFlag::O_CREAT
            | MQ_OFlag::O_EXCL
            | MQ_OFlag::O_CLOEXEC
            | MQ_OFlag::O_NONBLOCK;
        let mode = Mode::from_bits_truncate(config.mode);
        let mqd = match mq_open(name.as_str(), flags, mode, Some(&attr)) {
            Ok(mqd) => mqd,
            Err(source) => return Err(create_error(name, config, source)),
        };
        // From here on, dropping `queue` unlinks the name, also on the error path below.
        let queue = Queue {
            stream: owner.name().clone(),
            name,
            mqd: Mqd(Some(mqd)),
            message_size: config.message_size as usize,
            owner: Some(owner.clone()),
        };
        // mq_open's mode was masked by the umask; set the one asked for.
        if let Err(source) = fchmod(queue.mqd.as_fd(), mode) {
            return Err(CreateError::Io {
                name: queue.name.clone(),
                op: "fchmod",
                source,
            });
        }
        tracing::debug!(queue = %queue.name, ?config, "created");
        Ok(queue)
    }

    fn open(stream: &StreamName, name: String, access: MQ_OFlag) -> Result<Queue, OpenError> {
        let flags = access | MQ_OFlag::O_CLOEXEC | MQ_OFlag::O_NONBLOCK;
        let mqd = match mq_open(name.as_str(), flags, Mode::empty(), None) {
            Ok(mqd) => Mqd(Some(mqd)),
            Err(Errno::ENOENT) => return Err(OpenError::NotFound { name }),
            Err(source @ Errno::EACCES) => {
                return Err(OpenError::PermissionDenied { name, source });
            }
            Err(source) => {
                return Err(OpenError::Io {
                    name,
                    op: "mq_open",
                    source,
                });
            }
        };
        // Before anything is sent or received: another user's queue is never used.
        match nix::sys::stat::fstat(mqd.as_fd()) {
            Ok(stat) => frame_vocab::access::check(&name, &stat, stream)?,
            Err(source) => {
                return Err(OpenError::Io {
                    name,
                    op: "fstat",
                    source,
                });
            }
        }
        let attr = match mq_getattr(&mqd) {
            Ok(attr) => attr,
            Err(source) => {
                return Err(OpenError::Io {
                    name,
                    op: "mq_getattr",
                    source,
                });
            }
        };
        let message_size = match usize::try_from(attr.msgsize()) {
            Ok(size) if size >= MSG_SIZE => size,
            _ => {
                #[allow(
                    clippy::useless_conversion,
                    reason = "the field is i32 on 32-bit targets"
                )]
                let message_size = i64::from(attr.msgsize());
                return Err(OpenError::Incompatible { name, message_size });
            }
        };
        tracing::debug!(queue = %name, message_size, "opened");
        Ok(Queue {
            stream: stream.clone(),
            name,
            mqd,
            message_size,
            owner: None,
        })
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if self.owner.take().is_some() {
            match mq_unlink(self.name.as_str()) {
                Ok(()) => tracing::debug!(queue = %self.name, "unlinked"),
                Err(error) => tracing::warn!(queue = %self.name, %error, "cannot unlink"),
            }
        }
    }
}

/// An open `mqd_t`; nix's `MqdT` does not close itself, so this does on drop.
#[derive(Debug)]
struct Mqd(Option<MqdT>);

impl Mqd {
    fn get(&self) -> &MqdT {
        match &self.0 {
            Some(mqd) => mqd,
            None => unreachable!("the descriptor is taken only by drop"),
        }
    }
}

impl std::ops::Deref for Mqd {
    type Target = MqdT;

    fn deref(&self) -> &MqdT {
        self.get()
    }
}

impl Drop for Mqd {
    fn drop(&mut self) {
        if let Some(mqd) = self.0.take()
            && let Err(error) = mq_close(mqd)
        {
            tracing::warn!(%error, "mq_close failed");
        }
    }
}

/// Unlinks `name` if it exists; returns whether it did.
fn unlink_stale(name: &str) -> Result<bool, CreateError> {
    match mq_unlink(name) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(source @ Errno::EACCES) => Err(CreateError::PermissionDenied {
            name: name.to_owned(),
            source,
        }),
        Err(source) => Err(CreateError::Io {
            name: name.to_owned(),
            op: "mq_unlink",
            source,
        }),
    }
}

/// Names the limit behind a failed `mq_open(O_CREAT)`.
fn create_error(name: String, config: &QueueConfig, source: Errno) -> CreateError {
    let limit = match source {
        Errno::EINVAL => {
            let over = |file: &str, requested: u32| {
                read_proc_limit(file).filter(|&limit| u64::from(requested) > limit)
            };
            if let Some(limit) = over("msg_max", config.max_messages) {
                KernelLimit::MaxMessages {
                    requested: config.max_messages,
                    limit,
                }
            } else if let Some(limit) = over("msgsize_max", config.message_size) {
                KernelLimit::MessageSize {
                    requested: config.message_size,
                    limit,
                }
            } else {
                KernelLimit::Attributes {
                    max_messages: config.max_messages,
                    message_size: config.message_size,
                }
            }
        }
        Errno::ENOSPC => KernelLimit::QueueCount,
        Errno::EMFILE | Errno::ENOMEM => KernelLimit::Memory,
        Errno::EACCES => return CreateError::PermissionDenied { name, source },
        _ => {
            return CreateError::Io {
                name,
                op: "mq_open",
                source,
            };
        }
    };
    CreateError::Limit {
        name,
        limit,
        source,
    }
}

/// Reads `/proc/sys/fs/mqueue/<file>`.
fn read_proc_limit(file: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{file}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
