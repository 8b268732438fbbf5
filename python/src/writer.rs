//! `framepipe.Writer`: a producer in Python. Frames are written straight into the free
//! slot through a writable numpy view (`with w.frame() as buf`), or copied once from an
//! existing array (`w.publish(img)`).
//!
//! Two Rust threads do what must never wait for Python:
//! - the **slot thread** owns the library's `Writer`. It picks the next free slot at once
//!   (so it is ready when Python asks) and holds its `WriteSlot` — the proof that the slot
//!   is neither `latest` nor held by any seat — until Python says publish. `WriteSlot`
//!   borrows the `Writer` mutably, so it cannot be stored in a Python object; a thread's
//!   stack is where it can live (see the report: an owned write slot in `shm-frames`
//!   would remove this thread).
//! - the **service thread** stamps the heartbeat and reclaims dead seats every 50 ms, and
//!   serves the command queue (Pause, Resume, SetFps, Ping, Shutdown), so a slow Python
//!   loop never looks dead.
//!
//! A writable view must not outlive its `with` block: at the block's end the array handed
//! out is made read-only (and cannot be made writable again, since its buffer then
//! refuses writable exports), and if numpy views derived from it still live the frame is
//! not published and `FrameInUse` is raised; the slot stays reserved until they are gone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use control_msg::{CommandReceiver, EventSender, QueueConfig};
use frame_vocab::{FrameFormat, StreamName, StreamOwner};
use numpy::PyUntypedArray;
use numpy::PyUntypedArrayMethods;
use numpy::dtype;
use numpy::prelude::*;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyWeakrefReference};
use shm_frames::{MAX_SEATS, RegionBuilder, Supervisor};

use crate::errors::{self, FrameInUse};
use crate::fork::ForkSafe;
use crate::reader::{SLICE, own_stream_name};
use crate::view::{self, SlotBuffer};
use crate::vocab;

mod frame;
mod threads;

pub use frame::WriteFrame;

use threads::{
    FromSlots, SLOT_THREAD_DEADLINE, Shared, ToSlots, lock, service_thread, slot_thread,
};

/// The slot the slot thread holds for Python.
struct Lease {
    ptr: usize,
    len: usize,
    /// The buffer of a frame whose `with` block ended while derived views were alive:
    /// not published, and this slot stays reserved until they are gone. With a weak
    /// reference to the array handed out, which does not count as such a view.
    stale: Option<(Py<PyAny>, Py<PyWeakrefReference>)>,
}

struct State {
    supervisor: Supervisor,
    shared: Arc<Shared>,
    to_slots: Sender<ToSlots>,
    from_slots: Receiver<FromSlots>,
    slot_thread: Option<JoinHandle<()>>,
    service: Option<JoinHandle<()>>,
    lease: Option<Lease>,
    /// A frame is between `__enter__` and `__exit__`.
    writing: bool,
    published: u64,
    paused_drops: u64,
    /// Last: the name is released when it drops.
    _owner: StreamOwner,
}

impl State {
    /// Receives the slot thread's next reply, in GIL-free slices.
    fn reply(&mut self, py: Python<'_>) -> PyResult<FromSlots> {
        let start = Instant::now();
        loop {
            let from_slots = &mut self.from_slots;
            match py.detach(move || from_slots.recv_timeout(SLICE)) {
                Ok(reply) => return Ok(reply),
                Err(RecvTimeoutError::Timeout) if start.elapsed() < SLOT_THREAD_DEADLINE => {
                    py.check_signals()?;
                }
                Err(_) => return Err(errors::error("the writer's slot thread does not answer")),
            }
        }
    }

    /// The slot held for the next frame.
    fn lease(&mut self, py: Python<'_>) -> PyResult<&mut Lease> {
        if self.lease.is_none() {
            match self.reply(py)? {
                FromSlots::Ready { ptr, len } => {
                    self.lease = Some(Lease {
                        ptr,
                        len,
                        stale: None,
                    });
                }
                FromSlots::NoSlot => {
                    let _ = self.to_slots.send(ToSlots::Acquire);
                    return Err(errors::Corrupt::new_err(
                        "no free slot (a seat's hold is garbage): this frame is skipped",
                    ));
                }
                FromSlots::Published(_) => {
                    return Err(errors::error("the writer's slot thread is out of step"));
                }
            }
        }
        self.lease
            .as_mut()
            .ok_or_else(|| errors::error("the writer's slot thread is out of step"))
    }

    fn check_shutdown(&self, name: &StreamName) -> PyResult<()> {
        if self.shared.shutdown.load(Ordering::Relaxed) {
            return Err(errors::ProducerGone::new_err(format!(
                "stream {name} was ended by a Shutdown command"
            )));
        }
        Ok(())
    }

    /// Stops both threads and ends the stream: Stopping, every seat woken, every object
    /// unlinked, the name released.
    fn close(mut self, py: Python<'_>) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.to_slots.send(ToSlots::Close);
        let (service, slots) = (self.service.take(), self.slot_thread.take());
        py.detach(|| {
            for thread in [service, slots].into_iter().flatten() {
                let _ = thread.join();
            }
        });
        // The event queues (unlinked by their drop) go with `shared`, the name with `_owner`.
    }
}

/// Counts the references to `object` (as `sys.getrefcount` does, minus its own argument).
fn references(object: &Bound<'_, PyAny>) -> PyResult<isize> {
    static GETREFCOUNT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let getrefcount = GETREFCOUNT.import(object.py(), "sys", "getrefcount")?;
    Ok(getrefcount.call1((object,))?.extract::<isize>()? - 1)
}

/// A stream this process produces: frames written in place into the free slot.
#[pyclass(module = "framepipe", frozen)]
pub struct Writer {
    name: StreamName,
    format: FrameFormat,
    seats: u32,
    state: Mutex<ForkSafe<Option<State>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("name", &self.name).finish()
    }
}

impl Writer {
    fn with_state<'py, T>(
        &self,
        py: Python<'py>,
        f: impl FnOnce(Python<'py>, &mut State) -> PyResult<T>,
    ) -> PyResult<T> {
        let mut guard = self
            .state
            .try_lock()
            .map_err(|_| errors::error("this Writer is in use by another thread"))?;
        let state = guard.get_mut("Writer")?.as_mut().ok_or_else(|| {
            errors::error(format!("the Writer of stream {} is closed", self.name))
        })?;
        f(py, state)
    }

    fn expected_shape(&self) -> Vec<usize> {
        view::frame_plane(self.format).shape
    }

    /// Checks `image` is a uint8 array of this stream's frame shape.
    fn check_image(&self, image: &Bound<'_, PyAny>) -> PyResult<()> {
        let expected = self.expected_shape();
        let want = || {
            format!(
                "expected a uint8 numpy array of shape {} for a {} frame",
                shape_text(&expected),
                self.format
            )
        };
        let array = image
            .cast::<PyUntypedArray>()
            .map_err(|_| PyValueError::new_err(format!("{}, got {}", want(), type_name(image))))?;
        let is_u8 = array.dtype().is_equiv_to(&dtype::<u8>(image.py()));
        if !is_u8 || array.shape() != expected.as_slice() {
            return Err(PyValueError::new_err(format!(
                "{}, got a {} array of shape {}",
                want(),
                array.dtype(),
                shape_text(array.shape())
            )));
        }
        Ok(())
    }
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn type_name(object: &Bound<'_, PyAny>) -> String {
    object
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object".to_owned())
}

#[pymethods]
impl Writer {
    /// Creates stream `stream` (this process becomes its producer): `format` is `"bgra"`,
    /// `"rgb24"`, `"gray8"`, `"yuyv"` or `"i420"`; `seats` consumers may read at once;
    /// `mode` is `0o600` (owner only) or `0o660` (shared with the group).
    #[new]
    #[pyo3(signature = (stream, width, height, format = "bgra", seats = 1, mode = 0o600))]
    fn new(
        stream: &str,
        width: u32,
        height: u32,
        format: &str,
        seats: u32,
        mode: u32,
    ) -> PyResult<Writer> {
        let name = own_stream_name(stream)?;
        let format = vocab::frame_format(width, height, vocab::pixel(format)?)?;
        if !(1..=MAX_SEATS).contains(&(seats as usize)) {
            return Err(PyValueError::new_err(format!(
                "seats must be 1 to {MAX_SEATS}, got {seats}"
            )));
        }
        if mode != 0o600 && mode != 0o660 {
            return Err(PyValueError::new_err(format!(
                "mode must be 0o600 or 0o660, got {mode:#o}"
            )));
        }
        let owner = StreamOwner::claim(&name).map_err(|e| errors::error(errors::message(&e)))?;
        let queues = QueueConfig::new().mode(mode);
        let commands =
            CommandReceiver::create(&owner, &queues).map_err(|e| errors::queue_create_error(&e))?;
        // Best-effort, as the producer's: the region's state is authoritative without them.
        let events = (0..seats)
            .map(|seat| EventSender::create(&owner, seat, &queues).ok())
            .collect();
        let writer = RegionBuilder::new(&owner, format)
            .seats(seats)
            .mode(mode)
            .create()
            .map_err(|e| errors::create_error(&e))?;
        let supervisor = writer.supervisor();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            fps_bits: AtomicU64::new(u64::MAX),
            refused: AtomicU64::new(0),
            events: Mutex::new(events),
        });
        let (to_slots, slot_requests) = channel();
        let (slot_replies, from_slots) = channel();
        let spawn_error = |e: std::io::Error| errors::error(format!("cannot start a thread: {e}"));
        let slot_thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("fp-slots-{name}"))
                .spawn(move || slot_thread(writer, shared, slot_requests, slot_replies))
                .map_err(spawn_error)?
        };
        let service = {
            let (shared, supervisor) = (shared.clone(), supervisor.clone());
            std::thread::Builder::new()
                .name(format!("fp-service-{name}"))
                .spawn(move || service_thread(supervisor, commands, shared))
        };
        let service = match service {
            Ok(service) => service,
            Err(e) => {
                let _ = to_slots.send(ToSlots::Close);
                let _ = slot_thread.join();
                return Err(spawn_error(e));
            }
        };
        let state = State {
            supervisor,
            shared,
            to_slots,
            from_slots,
            slot_thread: Some(slot_thread),
            service: Some(service),
            lease: None,
            writing: false,
            published: 0,
            paused_drops: 0,
            _owner: owner,
        };
        Ok(Writer {
            name,
            format,
            seats,
            state: Mutex::new(ForkSafe::new(Some(state))),
        })
    }

    /// A context manager whose `__enter__` gives a writable numpy view of the free slot
    /// (no copy), published when the block ends without an exception. `capture_ns` is the
    /// capture time (CLOCK_MONOTONIC ns, as `time.monotonic_ns()`), default: publish time.
    /// Do not keep the view or views of it past the block (see the class docs).
    #[pyo3(signature = (capture_ns = None))]
    fn frame(slf: &Bound<'_, Self>, capture_ns: Option<u64>) -> WriteFrame {
        WriteFrame::new(slf.clone().unbind(), capture_ns)
    }

    /// Publishes `image`, a uint8 array of exactly the frame's shape (`(H, W, 4)` for
    /// bgra ...), with one copy into the free slot. Returns the frame's seq, or `None`
    /// when a consumer paused the stream (the frame is dropped). `ValueError` names the
    /// expected shape when `image` does not fit.
    #[pyo3(signature = (image, capture_ns = None))]
    fn publish(
        slf: &Bound<'_, Self>,
        image: &Bound<'_, PyAny>,
        capture_ns: Option<u64>,
    ) -> PyResult<Option<u64>> {
        static COPYTO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let py = slf.py();
        slf.get().check_image(image)?;
        let frame = Bound::new(py, Writer::frame(slf, capture_ns))?;
        let view = WriteFrame::__enter__(&frame)?;
        let copied = COPYTO
            .import(py, "numpy", "copyto")
            .and_then(|copyto| copyto.call1((&view, image)));
        drop(view);
        match copied {
            Ok(_) => {
                frame.get().exit(py, false)?;
                Ok(frame.get().published_seq())
            }
            Err(e) => {
                let _ = frame.get().exit(py, true);
                Err(e)
            }
        }
    }

    /// Ends the stream: consumers see it stop, every object is unlinked, the name is
    /// released. Called by `with` and on garbage collection.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let state = {
            let mut guard = self
                .state
                .try_lock()
                .map_err(|_| errors::error("this Writer is in use by another thread"))?;
            guard.get_mut("Writer")?.take()
        };
        if let Some(state) = state {
            state.close(py);
        }
        Ok(())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.close(py)
    }

    /// Whether a consumer paused the stream (frames are dropped until Resume).
    #[getter]
    fn paused(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |_, s| Ok(s.shared.paused.load(Ordering::Relaxed)))
    }

    /// The frame rate a consumer last asked for with SetFps (`None` if none did). The
    /// writer does not pace itself: the capture loop decides.
    #[getter]
    fn requested_fps(&self, py: Python<'_>) -> PyResult<Option<f64>> {
        self.with_state(py, |_, s| {
            let bits = s.shared.fps_bits.load(Ordering::Relaxed);
            Ok((bits != u64::MAX).then(|| f64::from_bits(bits)))
        })
    }

    /// Frames published so far.
    #[getter]
    fn published(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_state(py, |_, s| Ok(s.published))
    }

    /// Frames dropped because the stream was paused.
    #[getter]
    fn dropped_paused(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_state(py, |_, s| Ok(s.paused_drops))
    }

    /// Commands received that a Python writer does not carry out (SetFormat, SetPattern).
    #[getter]
    fn refused_commands(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_state(py, |_, s| Ok(s.shared.refused.load(Ordering::Relaxed)))
    }

    /// The occupied consumer seats, as `(seat, pid, live)` tuples.
    #[getter]
    fn consumers(&self, py: Python<'_>) -> PyResult<Vec<(u32, u32, bool)>> {
        self.with_state(py, |_, s| {
            Ok(s.supervisor
                .seats()
                .iter()
                .map(|seat| (seat.seat, seat.pid, seat.live))
                .collect())
        })
    }

    /// The stream's name.
    #[getter]
    fn stream(&self) -> &str {
        self.name.as_str()
    }

    /// The pixel format name.
    #[getter]
    fn format(&self) -> &'static str {
        self.format.pixel().name()
    }

    /// Width in pixels.
    #[getter]
    fn width(&self) -> u32 {
        self.format.width()
    }

    /// Height in pixels.
    #[getter]
    fn height(&self) -> u32 {
        self.format.height()
    }

    /// Number of consumer seats.
    #[getter]
    fn seats(&self) -> u32 {
        self.seats
    }

    /// The shape an image given to `publish` must have.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.expected_shape()
    }

    fn __repr__(&self) -> String {
        format!(
            "framepipe.Writer({:?}, {:?})",
            self.name.as_str(),
            self.format.to_string()
        )
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // In a forked child `ForkSafe` leaks the state: the threads are the parent's.
        let state = match self.state.get_mut() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !state.poisoned()
            && let Ok(slot) = state.get_mut("Writer")
            && let Some(state) = slot.take()
        {
            Python::attach(|py| state.close(py));
        }
    }
}
