//! POSIX message queues for the matrix: a queue created under a unique name and unlinked
//! on drop, the kernel's limits for an unprivileged queue, and frames sent and received in
//! chunks of the queue's message size.
#![forbid(unsafe_code)]

use std::time::Duration;

use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_close, mq_open, mq_send, mq_timedreceive, mq_unlink};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, clock_gettime};

use crate::child::unique;
use crate::error::{MeasureError, Result, errno, sys};

/// How long a receive waits before the case fails (the writer died or hangs).
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest message size an unprivileged process may ask for: `fs.mqueue.msgsize_max`.
pub fn msgsize_max() -> Result<usize> {
    read_limit("/proc/sys/fs/mqueue/msgsize_max")
}

/// The most messages an unprivileged queue may hold: `fs.mqueue.msg_max`.
pub fn msg_max() -> Result<usize> {
    read_limit("/proc/sys/fs/mqueue/msg_max")
}

fn read_limit(path: &str) -> Result<usize> {
    let raw = std::fs::read_to_string(path).map_err(sys(format!("read {path}")))?;
    raw.trim()
        .parse()
        .map_err(|_| MeasureError::Data(format!("{path} holds {raw:?}")))
}

/// The queue depth the matrix uses: the unprivileged default of 10, or less if the kernel
/// allows less; and no more than `RLIMIT_MSGQUEUE` (819200 bytes by default) can hold.
pub fn depth(msgsize: usize) -> Result<usize> {
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MSGQUEUE)
        .map_err(errno("getrlimit(RLIMIT_MSGQUEUE)"))?;
    // The kernel charges each message its size plus a pointer-sized slot.
    let by_limit = (soft as usize) / (msgsize + 8);
    Ok(msg_max()?.min(10).min(by_limit).max(1))
}

/// A queue this process created; unlinked on drop.
#[derive(Debug)]
pub struct Queue {
    /// Its name (`/fpmq<pid>-<n>`).
    pub name: String,
    /// Its message size.
    pub msgsize: usize,
}

impl Queue {
    /// Creates a queue of `depth` messages of `msgsize` bytes, mode 0600.
    pub fn create(msgsize: usize, depth: usize) -> Result<Queue> {
        let name = unique("/fpmq");
        let attr = MqAttr::new(0, depth as _, msgsize as _, 0);
        let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC;
        let mqd = mq_open(
            name.as_str(),
            flags,
            Mode::S_IRUSR | Mode::S_IWUSR,
            Some(&attr),
        )
        .map_err(errno(format!(
            "create queue {name} (msgsize {msgsize}, depth {depth})"
        )))?;
        mq_close(mqd).map_err(errno("mq_close"))?;
        Ok(Queue { name, msgsize })
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = mq_unlink(self.name.as_str());
    }
}

/// A queue descriptor, closed on drop (nix's `MqdT` is not): an open descriptor keeps an
/// unlinked queue, and its bytes in `RLIMIT_MSGQUEUE`, alive.
#[derive(Debug)]
pub struct Mqd(Option<MqdT>);

impl std::ops::Deref for Mqd {
    type Target = MqdT;

    fn deref(&self) -> &MqdT {
        self.0.as_ref().expect("open until dropped")
    }
}

impl Drop for Mqd {
    fn drop(&mut self) {
        if let Some(mqd) = self.0.take() {
            let _ = mq_close(mqd);
        }
    }
}

/// Opens an existing queue for reading or writing.
pub fn open(name: &str, write: bool) -> Result<Mqd> {
    let access = if write {
        MQ_OFlag::O_WRONLY
    } else {
        MQ_OFlag::O_RDONLY
    };
    mq_open(name, access | MQ_OFlag::O_CLOEXEC, Mode::empty(), None)
        .map(|m| Mqd(Some(m)))
        .map_err(errno(format!("open queue {name}")))
}

/// Sends `frame` as messages of at most `msgsize` bytes (blocking when the queue is full).
pub fn send_chunks(mqd: &MqdT, frame: &[u8], msgsize: usize) -> Result<()> {
    for chunk in frame.chunks(msgsize) {
        mq_send(mqd, chunk, 0).map_err(errno("mq_send"))?;
    }
    Ok(())
}

/// Receives one frame of `frame.len()` bytes sent by [`send_chunks`]. A chunk shorter than
/// the message size (the last one) goes through `scratch` (`msgsize` bytes), since the
/// kernel wants a buffer of at least the message size.
pub fn recv_chunks(mqd: &MqdT, frame: &mut [u8], msgsize: usize, scratch: &mut [u8]) -> Result<()> {
    let deadline = realtime_after(RECV_TIMEOUT)?;
    for chunk in frame.chunks_mut(msgsize) {
        let n = if chunk.len() == msgsize {
            mq_timedreceive(mqd, chunk, &mut 0, &deadline)
        } else {
            mq_timedreceive(mqd, scratch, &mut 0, &deadline).inspect(|&n| {
                if n == chunk.len() {
                    chunk.copy_from_slice(&scratch[..n]);
                }
            })
        };
        let n = n.map_err(|e| match e {
            nix::Error::ETIMEDOUT => MeasureError::Timeout("a message".into()),
            e => MeasureError::Sys {
                what: "mq_timedreceive".into(),
                cause: e.into(),
            },
        })?;
        if n != chunk.len() {
            return Err(MeasureError::Data(format!(
                "a {n}-byte message where {} bytes were due",
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// CLOCK_REALTIME `after` from now: what `mq_timedreceive` takes.
pub fn realtime_after(after: Duration) -> Result<TimeSpec> {
    let now = clock_gettime(ClockId::CLOCK_REALTIME).map_err(errno("clock_gettime"))?;
    Ok(now + TimeSpec::from_duration(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_survives_chunking_with_a_short_tail() {
        let msgsize = 256;
        let queue = Queue::create(msgsize, depth(msgsize).unwrap()).unwrap();
        let tx = open(&queue.name, true).unwrap();
        let rx = open(&queue.name, false).unwrap();
        // 3 chunks of 256 and a tail of 100; the queue holds them all at once.
        let frame: Vec<u8> = (0..868u32).map(|i| i as u8).collect();
        send_chunks(&tx, &frame, msgsize).unwrap();
        let mut got = vec![0u8; frame.len()];
        let mut scratch = vec![0u8; msgsize];
        recv_chunks(&rx, &mut got, msgsize, &mut scratch).unwrap();
        assert_eq!(got, frame);
    }

    #[test]
    fn the_queue_is_unlinked_on_drop() {
        let name = Queue::create(64, 1).unwrap().name.clone();
        match open(&name, false) {
            Err(MeasureError::Sys { cause, .. }) => {
                assert_eq!(cause.kind(), std::io::ErrorKind::NotFound)
            }
            other => panic!("expected ENOENT, got {other:?}"),
        }
    }
}
