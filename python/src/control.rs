//! `framepipe.Control` (commands to a stream's producer) and `framepipe.list()` (the
//! streams of this user).
//!
//! `list` reads each region's header with a plain `read` of its first page, through
//! `shm-frames`' public `offsets` (no mapping, no seat, nothing written), and asks the
//! kernel who holds the name's abstract socket, as `frame-vocab`'s owner check does.

use std::fs::File;
use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::sync::Mutex;

use control_msg::{Command, CommandSender, Sent, valid_fps};
use frame_vocab::{FrameFormat, PatternKind, PixelFormat, StreamName};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

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

/// Where the regions live.
const SHM_DIR: &str = "/dev/shm";

/// The streams of this user: one dict per region in /dev/shm, with `name`, `width`,
/// `height`, `format`, `seats`, `producer_pid` (`None` when no process holds the name)
/// and `live` (whether one does); a region whose header this build cannot read has
/// `error` instead of the format fields.
#[pyfunction]
pub fn list(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let euid = nix::unistd::geteuid().as_raw();
    let entries = std::fs::read_dir(SHM_DIR)
        .map_err(|e| errors::error(format!("cannot list {SHM_DIR}: {e}")))?;
    let mut names: Vec<StreamName> = entries
        .flatten()
        .filter(|entry| {
            entry
                .metadata()
                .is_ok_and(|m| m.is_file() && m.uid() == euid)
        })
        .filter_map(|entry| StreamName::from_shm_file(entry.file_name().to_str()?))
        .filter(StreamName::is_own)
        .collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names
        .iter()
        .map(|name| {
            let dict = PyDict::new(py);
            dict.set_item("name", name.as_str())?;
            match read_header(name) {
                Ok(header) => {
                    dict.set_item("width", header.format.width())?;
                    dict.set_item("height", header.format.height())?;
                    dict.set_item("format", header.format.pixel().name())?;
                    dict.set_item("seats", header.seats)?;
                }
                Err(e) => dict.set_item("error", e)?,
            }
            let holder = holder_pid(name);
            dict.set_item("producer_pid", holder)?;
            dict.set_item("live", holder.is_some())?;
            Ok(dict)
        })
        .collect()
}

struct Header {
    format: FrameFormat,
    seats: u32,
}

/// Reads and validates the write-once fields of `name`'s header (a copy; nothing mapped).
fn read_header(name: &StreamName) -> Result<Header, String> {
    let path = format!("{SHM_DIR}{}", name.shm_name());
    let mut bytes = Vec::with_capacity(4096);
    File::open(&path)
        .and_then(|file| file.take(4096).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    let field = |wanted: &str| -> Result<u64, String> {
        let (_, offset, width) = shm_frames::offsets::LAYOUT_FIELDS
            .iter()
            .find(|(name, _, _)| *name == wanted)
            .ok_or_else(|| format!("this build has no header field {wanted}"))?;
        let raw = bytes
            .get(*offset..offset + width)
            .ok_or_else(|| format!("{path} is truncated"))?;
        let mut le = [0u8; 8];
        le[..raw.len()].copy_from_slice(raw);
        Ok(u64::from_le_bytes(le))
    };
    let version = field("layout_version")?;
    if version != u64::from(shm_frames::LAYOUT_VERSION) {
        return Err(format!(
            "layout version {version}, this build reads version {}",
            shm_frames::LAYOUT_VERSION
        ));
    }
    let small = |v: u64, what: &str| u32::try_from(v).map_err(|_| format!("corrupt {what} {v}"));
    let width = small(field("width")?, "width")?;
    let height = small(field("height")?, "height")?;
    let code = small(field("pixel_format")?, "pixel format")?;
    let pixel =
        PixelFormat::from_code(code).ok_or_else(|| format!("unknown pixel format {code}"))?;
    let format = FrameFormat::new(width, height, pixel).map_err(|e| e.to_string())?;
    let seats = small(field("seat_count")?, "seat count")?;
    Ok(Header { format, seats })
}

/// The pid of the process holding `name` (its abstract socket), as the kernel states it
/// (`SO_PEERCRED`); `None` when nobody does or it is another user's.
fn holder_pid(name: &StreamName) -> Option<i32> {
    let addr = SocketAddr::from_abstract_name(name.socket_name().as_bytes()).ok()?;
    let stream = UnixStream::connect_addr(&addr).ok()?;
    let cred =
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    (cred.uid() == nix::unistd::geteuid().as_raw()).then(|| cred.pid())
}
