//! `consumer ctl`: commands to a stream's producer, each answered (done, or refused with
//! the reason) within a deadline, from a process that takes no seat.
//!
//! [`Controller::open`] waits for a live producer (looked at with `peek`, which changes
//! nothing), claims one of the stream's reply queues (shm-frames' [`ReplyLock`]: an OFD
//! lock on the queue's own region byte) and hands it to control-msg's
//! [`control_msg::Controller`], which sends each command as a `Request` with a fresh id
//! and waits for the one `Reply` that names it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use control_msg::{Answer, ControlError};
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
    /// The request itself: no reply queue, a full or failing queue, no answer in time.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// SIGINT or SIGTERM while waiting for the producer.
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
        matches!(self, CtlError::Control(e) if e.is_timeout())
    }

    /// Whether SIGINT or SIGTERM ended it (exit code 130).
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            CtlError::Interrupted | CtlError::Control(ControlError::Interrupted)
        )
    }
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

/// One `ctl` process's handle on a stream: a claimed reply queue and the command queue.
#[derive(Debug)]
pub struct Controller {
    inner: control_msg::Controller,
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
        let inner = control_msg::Controller::open(name, index, lock)?;
        Ok(Controller { inner })
    }

    /// The reply queue this controller claimed (`k` of `.c<k>`).
    pub fn reply_queue(&self) -> u32 {
        self.inner.reply_queue()
    }

    /// Sends `command` and waits at most `timeout` for its answer.
    pub fn request(
        &mut self,
        command: control_msg::Command,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<Answer, CtlError> {
        Ok(self.inner.request(command, timeout, stop)?)
    }
}
