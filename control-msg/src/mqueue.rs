//! One open POSIX message queue descriptor ([`Queue`]): created by a stream's owner (which
//! unlinks the name on drop) or opened by a peer after the ownership check, and the errors
//! of creating and opening one. The typed [`Sender`](crate::Sender) and
//! [`Receiver`](crate::Receiver) are built on it.

use std::os::fd::AsFd;

use frame_vocab::{StreamName, StreamOwner};
use nix::errno::Errno;
use nix::mqueue::{
    MQ_OFlag, MqAttr, MqdT, mq_attr_member_t, mq_close, mq_getattr, mq_open, mq_unlink,
};
use nix::sys::stat::{Mode, fchmod};

use crate::config::{ConfigProblem, KernelLimit, QueueConfig, read_proc_limit};
use crate::wire::MSG_SIZE;

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

/// One open queue descriptor; closes it on drop and, when created by the owner, unlinks
/// the name.
#[derive(Debug)]
pub(crate) struct Queue {
    /// The stream the queue belongs to (whose owner every open is checked against).
    pub(crate) stream: StreamName,
    pub(crate) name: String,
    pub(crate) mqd: Mqd,
    /// The queue's `mq_msgsize`, at least [`MSG_SIZE`].
    pub(crate) message_size: usize,
    /// Held so the name stays ours until it is unlinked: if the owner dropped first, a new
    /// producer could claim the name and create a queue this drop would then remove.
    owner: Option<StreamOwner>,
}

impl Queue {
    pub(crate) fn create(
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

    pub(crate) fn open(
        stream: &StreamName,
        name: String,
        access: MQ_OFlag,
    ) -> Result<Queue, OpenError> {
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

impl Queue {
    /// Messages queued now and the queue's capacity (`mq_getattr`).
    pub(crate) fn depth(&self) -> Result<(u64, u64), crate::queue::RecvError> {
        match mq_getattr(&self.mqd) {
            #[allow(
                clippy::useless_conversion,
                reason = "the fields are i32 on 32-bit targets"
            )]
            Ok(attr) => Ok((
                u64::try_from(i64::from(attr.curmsgs())).unwrap_or(0),
                u64::try_from(i64::from(attr.maxmsg())).unwrap_or(0),
            )),
            Err(source) => Err(crate::queue::RecvError::Io {
                name: self.name.clone(),
                op: "mq_getattr",
                source,
            }),
        }
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
pub(crate) struct Mqd(Option<MqdT>);

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
pub(crate) fn unlink_stale(name: &str) -> Result<bool, CreateError> {
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
