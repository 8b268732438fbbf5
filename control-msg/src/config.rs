//! What a created queue asks the kernel for ([`QueueConfig`]), and the kernel limits that
//! can refuse it ([`KernelLimit`]), read from `/proc/sys/fs/mqueue`.

use std::fmt;

use crate::wire::MSG_SIZE;

/// The limits a created queue asks the kernel for, and its permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    pub(crate) max_messages: u32,
    pub(crate) message_size: u32,
    pub(crate) mode: u32,
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

    pub(crate) fn check(&self) -> Result<(), ConfigProblem> {
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

/// Reads `/proc/sys/fs/mqueue/<file>`.
pub(crate) fn read_proc_limit(file: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{file}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
