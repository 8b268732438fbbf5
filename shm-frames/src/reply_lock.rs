//! The claim on one of a stream's reply queues: an OFD lock on its own byte of the region.
//!
//! `consumer ctl` needs no seat; it gets its answers on reply queue `.c<k>`, one of
//! [`REPLY_QUEUES`] per stream, created by the producer. Whoever holds byte
//! `1 + MAX_SEATS + k` of the region's fd uses `.c<k>`; the kernel drops the lock the
//! instant that process dies, so the producer can tell the queue of a dead `ctl` (its
//! lock can be taken) from a live one's, and clear it. The lock is only a lock: no data of
//! the header is read or written through it.

use std::fs::File;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::stat::{Mode, fstat};

use crate::liveness;
use crate::region::{ObjectError, Region, open_object};
use frame_vocab::StreamName;

pub use frame_vocab::REPLY_QUEUES;

/// Why no reply queue could be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ReplyLockError {
    /// No object under the name.
    #[error("no stream {name} (no producer has created it)")]
    NoStream {
        /// The stream.
        name: String,
    },
    /// Every reply queue's lock is held by a live process.
    #[error("all {REPLY_QUEUES} reply queues of stream {name} are in use by other ctl commands")]
    AllInUse {
        /// The stream.
        name: String,
    },
    /// The object may not be used by this user.
    #[error(transparent)]
    Refused(#[from] frame_vocab::access::Refused),
    /// The object is not ours to open for writing.
    #[error("permission denied opening {object}")]
    PermissionDenied {
        /// The object.
        object: String,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// A system call failed.
    #[error("{op} {object} failed")]
    Sys {
        /// The call.
        op: &'static str,
        /// The object.
        object: String,
        /// Its errno.
        #[source]
        source: Errno,
    },
}

/// A held claim on reply queue `.c<index>` of one region; released when dropped (or when
/// the process dies).
#[derive(Debug)]
pub struct ReplyLock {
    file: File,
    index: u32,
}

impl ReplyLock {
    /// Claims the first reply queue whose lock is free, on the region now under `name`.
    /// Maps nothing and takes no seat.
    pub fn claim(name: &StreamName) -> Result<ReplyLock, ReplyLockError> {
        let object = name.shm_name();
        let sys = |op: &'static str| {
            let object = object.clone();
            move |source| match source {
                Errno::EACCES | Errno::EPERM => ReplyLockError::PermissionDenied { object, source },
                _ => ReplyLockError::Sys { op, object, source },
            }
        };
        // Write access: an exclusive OFD lock needs it (a read lock could be shared).
        let (fd, _) = open_object(name, &object, OFlag::O_RDWR).map_err(|e| match e {
            ObjectError::Missing => ReplyLockError::NoStream {
                name: name.to_string(),
            },
            ObjectError::Sys { op, source } => sys(op)(source),
            ObjectError::Refused(refused) => refused.into(),
        })?;
        for index in 0..REPLY_QUEUES {
            if liveness::try_lock(&fd, liveness::reply_byte(index)).map_err(sys("lock"))? {
                return Ok(ReplyLock {
                    file: File::from(fd),
                    index,
                });
            }
        }
        Err(ReplyLockError::AllInUse {
            name: name.to_string(),
        })
    }

    /// The reply queue this claim is for (`k` of `.c<k>`).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether `name` still names the region this claim is on (not a replacement made
    /// since, after which the producer looks at the new region's lock bytes).
    pub fn is_current(&self, name: &StreamName) -> bool {
        let current = shm_open(
            name.shm_name().as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let (Ok(current), Ok(mine)) = (current, fstat(&self.file)) else {
            return false;
        };
        fstat(&current).is_ok_and(|c| (c.st_dev, c.st_ino) == (mine.st_dev, mine.st_ino))
    }
}

/// The producer's side: runs `f` while holding reply queue `index`'s lock itself, only if
/// no `ctl` holds it (so none can claim it meanwhile); `None` if one does (or on error).
pub(crate) fn while_unclaimed<R>(region: &Region, index: u32, f: impl FnOnce() -> R) -> Option<R> {
    if index >= REPLY_QUEUES {
        return None;
    }
    let byte = liveness::reply_byte(index);
    match liveness::try_lock(region.fd(), byte) {
        Ok(true) => {
            let result = f();
            let _ = liveness::unlock(region.fd(), byte);
            Some(result)
        }
        _ => None,
    }
}
