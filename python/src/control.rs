//! `framepipe.Control` (commands to a stream's producer) and `framepipe.list()` (the
//! streams of this user).
//!
//! `Control` claims a reply queue (shm-frames' `ReplyLock`) and sends each command through
//! control-msg's `Controller`, as `consumer ctl` does, so it gets the same answers.
//!
//! `list` looks at each region through `shm_frames::peek`, as `consumer list` does: read
//! only, the header pages only, no lock and no seat.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use control_msg::{Command, CommandSender, ControlError, Outcome, Sent, valid_fps};
use frame_vocab::{FrameFormat, PatternKind, StreamName};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use shm_frames::{Peeked, ReplyLock, ReplyLockError};

use crate::errors;
use crate::reader::{seconds, stream_name};
use crate::vocab;

/// How long a `Control` waits for each answer unless told otherwise.
const DEFAULT_TIMEOUT: f64 = 2.0;

/// How a `Control` reaches the producer.
enum Link {
    /// A claimed reply queue: each command is a request, answered (done or refused).
    Answered(Box<control_msg::Controller>),
    /// A producer without reply queues (a Python `Writer`, GStreamer's framepipesink): the
    /// command is queued, and nobody answers.
    Unanswered(Box<CommandSender>),
}

/// Commands to a stream's producer (no seat needed), as `consumer ctl` sends them. Where
/// the producer answers (the `producer` binary), each method waits up to `timeout`
/// seconds for the answer and raises `Refused` (with the producer's reason) or `Timeout`;
/// where it cannot (`answers` is false), the command is only queued and the method
/// returns whether it was (`False`: the queue was full).
#[pyclass(module = "framepipe", frozen)]
pub struct Control {
    name: StreamName,
    timeout: Duration,
    link: Mutex<Link>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("name", &self.name).finish()
    }
}

/// What a command came back with, before it becomes a Python value.
enum Answered {
    /// Done (or queued, for a producer that does not answer): `true`; dropped: `false`.
    Done(bool),
    /// A format change: the new epoch and format.
    Format(u64, String),
    /// A ping's round trip, seconds.
    RoundTrip(f64),
}

impl Answered {
    /// `True`/`False`, `(epoch, format)` or the round trip in seconds.
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self {
            Answered::Done(queued) => PyBool::new(py, queued).to_owned().into_any().unbind(),
            Answered::Format(epoch, format) => {
                (epoch, format).into_pyobject(py)?.into_any().unbind()
            }
            Answered::RoundTrip(seconds) => seconds.into_pyobject(py)?.into_any().unbind(),
        })
    }
}

impl Control {
    fn send(&self, py: Python<'_>, command: Command) -> PyResult<Answered> {
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *link {
            Link::Unanswered(sender) => match sender.send(&command) {
                Ok(Sent::Queued) => Ok(Answered::Done(true)),
                Ok(Sent::DroppedFull) => Ok(Answered::Done(false)),
                Err(e) => Err(errors::error(errors::message(&e))),
            },
            Link::Answered(controller) => {
                let ping = matches!(command, Command::Ping { .. });
                let timeout = self.timeout;
                // Never raised: the deadline bounds the wait (at most `timeout`).
                let stop = AtomicBool::new(false);
                let answer = py
                    .detach(|| controller.request(command, timeout, &stop))
                    .map_err(|e| match e {
                        e if e.is_timeout() => errors::Timeout::new_err(errors::message(&e)),
                        e => errors::error(errors::message(&e)),
                    })?;
                match answer.outcome {
                    Outcome::Done if ping => {
                        Ok(Answered::RoundTrip(answer.round_trip.as_secs_f64()))
                    }
                    Outcome::Done => Ok(Answered::Done(true)),
                    Outcome::FormatSet { epoch, format } => {
                        Ok(Answered::Format(epoch, format.to_string()))
                    }
                    Outcome::Refused { reason, detail } => Err(errors::Refused::new_err(format!(
                        "stream {} refused it ({}): {detail}",
                        self.name,
                        reason.as_str()
                    ))),
                }
            }
        }
    }

    fn done(&self, py: Python<'_>, command: Command) -> PyResult<bool> {
        match self.send(py, command)? {
            Answered::Done(queued) => Ok(queued),
            Answered::Format(..) | Answered::RoundTrip(_) => Ok(true),
        }
    }
}

#[pymethods]
impl Control {
    /// Opens stream `stream`'s command queue (`NoProducer` when there is none) and, where
    /// the producer answers, claims one of its reply queues; `timeout` is how long each
    /// answer is waited for, in seconds.
    #[new]
    #[pyo3(signature = (stream = "cam0", timeout = DEFAULT_TIMEOUT))]
    fn new(stream: &str, timeout: f64) -> PyResult<Control> {
        let name = stream_name(stream)?;
        let timeout = seconds(timeout, "timeout")?;
        let sender = CommandSender::open(&name).map_err(|e| errors::queue_open_error(&e))?;
        let lock = ReplyLock::claim(&name).map_err(|e| match e {
            ReplyLockError::NoStream { .. } => errors::NoProducer::new_err(errors::message(&e)),
            ReplyLockError::Refused(_) | ReplyLockError::PermissionDenied { .. } => {
                errors::PermissionDenied::new_err(errors::message(&e))
            }
            e => errors::error(errors::message(&e)),
        })?;
        let link = match control_msg::Controller::open(&name, lock.index(), lock) {
            Ok(controller) => Link::Answered(Box::new(controller)),
            Err(ControlError::NoReplyQueue { .. }) => Link::Unanswered(Box::new(sender)),
            Err(e) => return Err(errors::error(errors::message(&e))),
        };
        Ok(Control {
            name,
            timeout,
            link: Mutex::new(link),
        })
    }

    /// Stop publishing frames (the heartbeat goes on); answered once the producer has
    /// parked.
    fn pause(&self, py: Python<'_>) -> PyResult<bool> {
        self.done(py, Command::Pause)
    }

    /// Publish frames again after `pause`.
    fn resume(&self, py: Python<'_>) -> PyResult<bool> {
        self.done(py, Command::Resume)
    }

    /// Change the frame rate (0: as fast as the source gives frames).
    fn fps(&self, py: Python<'_>, fps: f64) -> PyResult<bool> {
        if !valid_fps(fps) {
            return Err(PyValueError::new_err(format!(
                "fps must be finite and 0 to {}, got {fps}",
                control_msg::MAX_FPS
            )));
        }
        self.done(py, Command::SetFps { fps })
    }

    /// Switch the pattern source to `"moving"` or `"bars"`.
    fn pattern(&self, py: Python<'_>, pattern: &str) -> PyResult<bool> {
        let pattern: PatternKind = pattern
            .parse()
            .map_err(|e: frame_vocab::UnknownPattern| PyValueError::new_err(e.to_string()))?;
        self.done(py, Command::SetPattern(pattern))
    }

    /// Change the stream's size (and pixel format; default: the stream's own). Returns
    /// `(epoch, "WxH pixfmt")` of the new region once the producer made it; readers follow.
    #[pyo3(signature = (width, height, pixel = None))]
    fn format(
        &self,
        py: Python<'_>,
        width: u32,
        height: u32,
        pixel: Option<&str>,
    ) -> PyResult<Py<PyAny>> {
        let pixel = match pixel {
            Some(pixel) => vocab::pixel(pixel)?,
            None => match shm_frames::peek(&self.name) {
                Ok(Peeked::Region(view)) => view.format.pixel(),
                _ => {
                    return Err(errors::NoProducer::new_err(format!(
                        "stream {} has no readable region to take the pixel format from",
                        self.name
                    )));
                }
            },
        };
        let format = FrameFormat::new(width, height, pixel)
            .map_err(|e| PyValueError::new_err(format!("{width}x{height} {pixel}: {e}")))?;
        self.send(py, Command::SetFormat(format))?.into_py(py)
    }

    /// Stop the producer cleanly.
    fn shutdown(&self, py: Python<'_>) -> PyResult<bool> {
        self.done(py, Command::Shutdown)
    }

    /// A round trip to the producer: its time in seconds where the producer answers;
    /// otherwise a Pong with `nonce` is asked for on every seat's event queue and the
    /// result is whether the Ping was queued.
    #[pyo3(signature = (nonce = 0))]
    fn ping(&self, py: Python<'_>, nonce: u64) -> PyResult<Py<PyAny>> {
        self.send(py, Command::Ping { nonce })?.into_py(py)
    }

    /// Whether the producer answers commands (False: they are only queued).
    #[getter]
    fn answers(&self) -> bool {
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        matches!(*link, Link::Answered(_))
    }

    /// How long each answer is waited for, in seconds.
    #[getter]
    fn timeout(&self) -> f64 {
        self.timeout.as_secs_f64()
    }

    /// The stream's name.
    #[getter]
    fn stream(&self) -> &str {
        self.name.as_str()
    }

    fn __repr__(&self) -> String {
        format!("framepipe.Control({:?})", self.name.as_str())
    }
}

/// The streams of this user, as `consumer list` shows them: one dict per region in
/// /dev/shm, looked at read-only through `shm_frames::peek` (header pages only, no lock,
/// no seat). Every dict has `name`, `state` (`live`, `stalled`, `stopping`, `replaced`,
/// `leftover`, `starting` or `garbage`), `live` (whether a producer holds the name) and
/// `producer_pid` (`None` for a leftover). A readable region adds `width`, `height`,
/// `format`, `seats`, `seats_used`, `epoch`, `heartbeat_age` (seconds, `None` for a stamp
/// in the future), `published`, `skipped` and `fps` (measured from the region's own
/// publish timestamps, `None` with too few frames); an unreadable one adds `error`.
#[pyfunction]
pub fn list(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let names = shm_frames::own_streams()
        .map_err(|e| errors::error(format!("cannot list /dev/shm: {e}")))?;
    let mut listed = Vec::with_capacity(names.len());
    for name in &names {
        let peeked = match shm_frames::peek(name) {
            Ok(peeked) => peeked,
            // Gone between the listing and the look.
            Err(shm_frames::PeekError::NoStream { .. }) => continue,
            Err(e) => Peeked::Unusable {
                reason: errors::message(&e),
                size: 0,
                producer_alive: false,
            },
        };
        let dict = PyDict::new(py);
        dict.set_item("name", name.as_str())?;
        match peeked {
            Peeked::Region(view) => {
                dict.set_item("state", view.health().as_str())?;
                dict.set_item("live", view.producer_alive)?;
                dict.set_item(
                    "producer_pid",
                    view.producer_alive.then_some(view.producer_pid),
                )?;
                dict.set_item("width", view.format.width())?;
                dict.set_item("height", view.format.height())?;
                dict.set_item("format", view.format.pixel().name())?;
                dict.set_item("seats", view.seats)?;
                dict.set_item("seats_used", view.seats_used())?;
                dict.set_item("epoch", view.epoch)?;
                dict.set_item("heartbeat_age", view.heartbeat_age.map(|a| a.as_secs_f64()))?;
                dict.set_item("published", view.published)?;
                dict.set_item("skipped", view.skipped_no_slot)?;
                dict.set_item("fps", view.measured_fps)?;
            }
            Peeked::Unusable {
                reason,
                producer_alive,
                ..
            } => {
                let state = if producer_alive {
                    "starting"
                } else {
                    "garbage"
                };
                dict.set_item("state", state)?;
                dict.set_item("live", producer_alive)?;
                dict.set_item("producer_pid", None::<u32>)?;
                dict.set_item("error", reason)?;
            }
        }
        listed.push(dict);
    }
    Ok(listed)
}
