//! `framepipe.Control` (commands to a stream's producer) and `framepipe.list()` (the
//! streams of this user).
//!
//! `list` looks at each region through `shm_frames::peek`, as `consumer list` does: read
//! only, the header pages only, no lock and no seat.

use std::sync::Mutex;

use control_msg::{Command, CommandSender, Sent, valid_fps};
use frame_vocab::{PatternKind, StreamName};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use shm_frames::Peeked;

use crate::errors;
use crate::reader::stream_name;

/// Sends commands to a stream's producer on its command queue (no seat needed).
/// Each method returns `True` when the command was queued, `False` when the queue was
/// full and it was dropped. Answers (a reply queue) come with the control issue.
#[pyclass(module = "framepipe", frozen)]
pub struct Control {
    name: StreamName,
    sender: Mutex<CommandSender>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("name", &self.name).finish()
    }
}

impl Control {
    fn send(&self, command: Command) -> PyResult<bool> {
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        match sender.send(&command) {
            Ok(Sent::Queued) => Ok(true),
            Ok(Sent::DroppedFull) => Ok(false),
            Err(e) => Err(errors::error(errors::message(&e))),
        }
    }
}

#[pymethods]
impl Control {
    /// Opens stream `stream`'s command queue; `NoProducer` when there is none.
    #[new]
    #[pyo3(signature = (stream = "cam0"))]
    fn new(stream: &str) -> PyResult<Control> {
        let name = stream_name(stream)?;
        let sender = CommandSender::open(&name).map_err(|e| errors::queue_open_error(&e))?;
        Ok(Control {
            name,
            sender: Mutex::new(sender),
        })
    }

    /// Stop publishing frames (the heartbeat goes on).
    fn pause(&self) -> PyResult<bool> {
        self.send(Command::Pause)
    }

    /// Publish frames again after `pause`.
    fn resume(&self) -> PyResult<bool> {
        self.send(Command::Resume)
    }

    /// Change the frame rate (0: as fast as the source gives frames).
    fn fps(&self, fps: f64) -> PyResult<bool> {
        if !valid_fps(fps) {
            return Err(PyValueError::new_err(format!(
                "fps must be finite and 0 to {}, got {fps}",
                control_msg::MAX_FPS
            )));
        }
        self.send(Command::SetFps { fps })
    }

    /// Switch the pattern source to `"moving"` or `"bars"`.
    fn pattern(&self, pattern: &str) -> PyResult<bool> {
        let pattern: PatternKind = pattern
            .parse()
            .map_err(|e: frame_vocab::UnknownPattern| PyValueError::new_err(e.to_string()))?;
        self.send(Command::SetPattern(pattern))
    }

    /// Stop the producer cleanly.
    fn shutdown(&self) -> PyResult<bool> {
        self.send(Command::Shutdown)
    }

    /// Ask for a Pong with `nonce` on every seat's event queue.
    #[pyo3(signature = (nonce = 0))]
    fn ping(&self, nonce: u64) -> PyResult<bool> {
        self.send(Command::Ping { nonce })
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
