//! `framepipe.Reader` and `framepipe.Frame`: the newest frame as a read-only numpy view of
//! the slot itself.
//!
//! A [`Frame`] owns a [`FrameBuffer`], which owns the library's `OwnedFrame` hold; every
//! array of the frame has that buffer as its `base`. Closing the frame (by `with`, by the
//! next `frame()` or iterator step, or by garbage collection) drops the frame's own
//! reference; the hold ends when the last array goes. While it lives the library refuses a
//! new frame (`FrameInUse`), which is raised at once, never waited on.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use control_msg::{Command, CommandSender};
use frame_vocab::{FrameFormat, StreamName};
use pyo3::exceptions::{PyStopIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shm_frames::{Delivery, OwnedFrame, ReaderOptions, SpinBudget, WaitError, WaitStrategy};

use crate::errors::{self, FrameInUse, NoProducer, ProducerGone};
use crate::fork::ForkSafe;
use crate::view::{self, FrameBuffer};

/// Longest the GIL is released in one go: between slices, signals are checked so Ctrl-C
/// raises `KeyboardInterrupt` within this.
pub const SLICE: Duration = Duration::from_millis(50);

/// Parses a stream name to read or command: `NAME` (one of this user's streams) or
/// `USER/NAME` (another user's, shared with a group of ours), as a `ValueError`.
pub fn stream_name(name: &str) -> PyResult<StreamName> {
    name.parse::<StreamName>()
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Parses the name of a stream to produce: always one of this user's own.
pub fn own_stream_name(name: &str) -> PyResult<StreamName> {
    StreamName::new(name).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Parses a timeout in seconds (finite, ≥ 0), as a `ValueError`.
pub fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{what} must be finite seconds >= 0")))
}

fn strategy(name: &str, spin_budget: f64) -> PyResult<WaitStrategy> {
    match name {
        "block" => Ok(WaitStrategy::Block),
        "spin" => Ok(WaitStrategy::Spin),
        "predict" => {
            let spin_budget = SpinBudget::from_percent(spin_budget).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "spin_budget {spin_budget} is not a share of a core (0 to 100 percent)"
                ))
            })?;
            Ok(WaitStrategy::Predict { spin_budget })
        }
        other => Err(PyValueError::new_err(format!(
            "unknown strategy {other:?} (expected \"block\", \"spin\" or \"predict\")"
        ))),
    }
}

/// Whether a wait is for one frame (`frame()`) or the next of a loop (`for f in reader`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Wait up to the timeout; a producer that stopped and does not come back is an error.
    One(Duration),
    /// Wait without end; a producer that stopped ends the loop.
    Iterate,
}

struct State {
    reader: Option<shm_frames::Reader>,
    commands: Option<CommandSender>,
    /// The frame handed out last, closed before the next one is taken.
    last: Option<Py<Frame>>,
    /// A corrupt value was read: reopen before taking the next frame.
    reopen_first: bool,
}

impl State {
    fn reader(&mut self) -> PyResult<&mut shm_frames::Reader> {
        self.reader
            .as_mut()
            .ok_or_else(|| errors::error("the Reader is closed"))
    }

    fn hello(&mut self) {
        let Some(reader) = self.reader.as_ref() else {
            return;
        };
        let (name, seat) = (reader.name().clone(), reader.seat());
        // Best-effort, as the consumer's: the producer logs who sits where.
        self.commands = CommandSender::open(&name).ok();
        if let Some(commands) = self.commands.as_mut() {
            let _ = commands.send(&Command::Hello {
                seat,
                pid: std::process::id(),
            });
        }
    }

    fn bye(&mut self) {
        if let (Some(reader), Some(commands)) = (self.reader.as_ref(), self.commands.as_mut()) {
            let _ = commands.send(&Command::Bye {
                seat: reader.seat(),
            });
        }
    }
}

/// A seat on a stream: takes the newest frame, as a numpy view of the slot.
#[pyclass(module = "framepipe", frozen)]
pub struct Reader {
    name: StreamName,
    wait: Duration,
    state: Mutex<ForkSafe<State>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("name", &self.name).finish()
    }
}

impl Reader {
    fn with_state<'py, T>(
        &self,
        py: Python<'py>,
        f: impl FnOnce(Python<'py>, &mut State) -> PyResult<T>,
    ) -> PyResult<T> {
        let mut guard = self.state.try_lock().map_err(|_| {
            errors::error("this Reader is in use by another thread (one seat, one frame at a time)")
        })?;
        let state = guard.get_mut("Reader")?;
        f(py, state)
    }

    /// Takes the next frame: closes the previous one, waits in GIL-free slices, follows a
    /// restarted producer within `wait`.
    fn take(&self, py: Python<'_>, mode: Mode) -> PyResult<Frame> {
        let wait = self.wait;
        let name = &self.name;
        self.with_state(py, |py, state| {
            if let Some(last) = state.last.take() {
                last.get().release_views();
            }
            if state.reopen_first {
                reopen(py, state, name, wait, "a corrupt value was read")?;
                state.reopen_first = false;
            }
            let mut started = Instant::now();
            loop {
                let slice = match mode {
                    Mode::One(timeout) => timeout.saturating_sub(started.elapsed()).min(SLICE),
                    Mode::Iterate => SLICE,
                };
                let reader = state.reader()?;
                match py.detach(|| reader.wait_frame_owned(slice)) {
                    Ok(frame) => return Frame::new(py, frame),
                    Err(WaitError::Timeout) => {
                        py.check_signals()?;
                        if let Mode::One(timeout) = mode
                            && started.elapsed() >= timeout
                        {
                            return Err(errors::wait_error(&WaitError::Timeout));
                        }
                    }
                    Err(WaitError::FrameInUse) => {
                        return Err(FrameInUse::new_err(format!(
                            "a numpy array of the previous frame of stream {name} is still \
                             alive: `del` it (or keep `frame.copy()` instead) before taking \
                             the next frame"
                        )));
                    }
                    Err(WaitError::Stopped) if mode == Mode::Iterate => {
                        return Err(PyStopIteration::new_err(()));
                    }
                    Err(e) if e.needs_reopen() => {
                        reopen(py, state, name, wait, &e.to_string())?;
                        // A new producer: the frame timeout starts again.
                        started = Instant::now();
                    }
                    Err(e) => {
                        state.reopen_first = matches!(e, WaitError::Corrupt(_));
                        return Err(errors::wait_error(&e));
                    }
                }
            }
        })
    }
}

/// Moves to the stream's current region, in GIL-free slices, for at most `wait`.
fn reopen(
    py: Python<'_>,
    state: &mut State,
    name: &StreamName,
    wait: Duration,
    why: &str,
) -> PyResult<()> {
    state.bye();
    let start = Instant::now();
    loop {
        let left = wait.saturating_sub(start.elapsed());
        let reader = state.reader()?;
        match py.detach(|| reader.reopen(left.min(SLICE))) {
            Ok(()) => {
                state.hello();
                return Ok(());
            }
            Err(e) if e.is_transient() && !left.is_zero() => py.check_signals()?,
            Err(e) if e.is_transient() => {
                return Err(ProducerGone::new_err(format!(
                    "stream {name}: {why}, and no producer came back within {:.1} s ({})",
                    wait.as_secs_f64(),
                    errors::message(&e)
                )));
            }
            Err(e) => return Err(errors::open_error(&e)),
        }
    }
}

#[pymethods]
impl Reader {
    /// Attaches to stream `stream` (waiting up to `wait` seconds for a producer) and
    /// claims a seat. `strategy` is `"block"` (sleep on the seat's semaphore), `"spin"`, or
    /// `"predict"` (sleep until just before the next frame is due, spin across its window,
    /// then block; it spins at most `spin_budget` percent of a core). `every_frame=True`
    /// asks for every frame from the first one taken: the producer waits for this reader
    /// (up to its stall timeout, then `Frame.demoted` is set).
    #[new]
    #[pyo3(signature = (stream = "cam0", wait = 5.0, strategy = "block", spin_budget = 5.0, every_frame = false))]
    fn new(
        py: Python<'_>,
        stream: &str,
        wait: f64,
        strategy: &str,
        spin_budget: f64,
        every_frame: bool,
    ) -> PyResult<Reader> {
        let name = stream_name(stream)?;
        let wait = seconds(wait, "wait")?;
        let strategy = self::strategy(strategy, spin_budget)?;
        let start = Instant::now();
        // In slices, so Ctrl-C interrupts a wait for a producer that never comes.
        let reader = loop {
            let left = wait.saturating_sub(start.elapsed());
            let options = ReaderOptions {
                wait: left.min(SLICE),
                strategy,
                delivery: if every_frame {
                    Delivery::EveryFrame
                } else {
                    Delivery::Newest
                },
            };
            match py.detach(|| shm_frames::Reader::open(&name, options)) {
                Ok(reader) => break reader,
                Err(e) if e.is_transient() && !left.is_zero() => py.check_signals()?,
                Err(e) if e.is_transient() => {
                    return Err(NoProducer::new_err(format!(
                        "no producer for stream {name} within {:.1} s ({})",
                        wait.as_secs_f64(),
                        errors::message(&e)
                    )));
                }
                Err(e) => return Err(errors::open_error(&e)),
            }
        };
        let mut state = State {
            reader: Some(reader),
            commands: None,
            last: None,
            reopen_first: false,
        };
        state.hello();
        Ok(Reader {
            name,
            wait,
            state: Mutex::new(ForkSafe::new(state)),
        })
    }

    /// Waits up to `timeout` seconds for a frame newer than the last one and returns it
    /// (the newest there is). Closes the frame this reader returned before. Raises
    /// `Timeout`, `ProducerGone` (none came back within `wait`), `FrameInUse` (an array of
    /// the previous frame still lives), `Corrupt`.
    #[pyo3(signature = (timeout = 1.0))]
    fn frame(slf: &Bound<'_, Self>, timeout: f64) -> PyResult<Py<Frame>> {
        let timeout = seconds(timeout, "timeout")?;
        let frame = slf.get().take(slf.py(), Mode::One(timeout))?;
        slf.get().remember(slf.py(), frame)
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// The next frame; the loop ends when the producer stops (after following restarts
    /// within `wait`).
    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Py<Frame>> {
        let frame = slf.get().take(slf.py(), Mode::Iterate)?;
        slf.get().remember(slf.py(), frame)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.close(py)
    }

    /// Closes the last frame and gives the seat back (once no array of a frame lives).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.with_state(py, |_, state| {
            if let Some(last) = state.last.take() {
                last.get().release_views();
            }
            state.bye();
            state.reader = None;
            state.commands = None;
            Ok(())
        })
    }

    /// Whether an array of a frame of this reader is still alive.
    #[getter]
    fn frame_in_use(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_state(py, |_, state| Ok(state.reader()?.frame_in_use()))
    }

    /// The stream's name.
    #[getter]
    fn stream(&self) -> &str {
        self.name.as_str()
    }

    /// The current stream format, e.g. `"640x480 bgra"`.
    #[getter]
    fn stream_format(&self, py: Python<'_>) -> PyResult<String> {
        self.with_state(py, |_, state| Ok(state.reader()?.format().to_string()))
    }

    /// The seat this reader sits in.
    #[getter]
    fn seat(&self, py: Python<'_>) -> PyResult<u32> {
        self.with_state(py, |_, state| Ok(state.reader()?.seat()))
    }

    /// Counters since the reader opened: `{"frames", "skipped", "reopens"}`.
    #[getter]
    fn stats(&self, py: Python<'_>) -> PyResult<(u64, u64, u64)> {
        self.with_state(py, |_, state| {
            let s = state.reader()?.stats();
            Ok((s.frames, s.skipped, s.reopens))
        })
    }

    fn __repr__(&self) -> String {
        format!("framepipe.Reader({:?})", self.name.as_str())
    }
}

impl Reader {
    fn remember(&self, py: Python<'_>, frame: Frame) -> PyResult<Py<Frame>> {
        let frame = Py::new(py, frame)?;
        self.with_state(py, |py, state| {
            state.last = Some(frame.clone_ref(py));
            Ok(())
        })?;
        Ok(frame)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // In a forked child `ForkSafe` leaks the state instead of dropping it.
        if let Ok(state) = self.state.get_mut()
            && !state.poisoned()
            && let Ok(state) = state.get_mut("Reader")
        {
            state.bye();
        }
    }
}

/// What a frame's arrays are built from, until it is closed.
#[derive(Default)]
struct Views {
    buffer: Option<Py<FrameBuffer>>,
    array: Option<Py<PyAny>>,
    planes: Option<Py<PyTuple>>,
}

/// One frame a `Reader` took: metadata and zero-copy read-only numpy views of its slot.
#[pyclass(module = "framepipe", frozen)]
pub struct Frame {
    seq: u64,
    capture_ns: u64,
    publish_ns: u64,
    skipped: u64,
    demoted: bool,
    epoch: u64,
    format: FrameFormat,
    views: Mutex<Views>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame").field("seq", &self.seq).finish()
    }
}

impl Frame {
    fn new(py: Python<'_>, frame: OwnedFrame) -> PyResult<Frame> {
        let info = frame.info();
        let (epoch, format) = (frame.epoch(), frame.format());
        let buffer = Py::new(py, FrameBuffer::new(frame))?;
        Ok(Frame {
            seq: info.seq,
            capture_ns: info.capture_ns,
            publish_ns: info.publish_ns,
            skipped: info.skipped,
            demoted: info.demoted,
            epoch,
            format,
            views: Mutex::new(Views {
                buffer: Some(buffer),
                array: None,
                planes: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Views> {
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops this frame's own references to its buffer and arrays.
    fn release_views(&self) {
        let mut views = self.lock();
        *views = Views::default();
    }

    fn buffer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, FrameBuffer>> {
        match &self.lock().buffer {
            Some(buffer) => Ok(buffer.bind(py).clone()),
            None => Err(errors::error(format!(
                "frame {} is closed; take a new one, or keep frame.copy() next time",
                self.seq
            ))),
        }
    }
}

#[pymethods]
impl Frame {
    /// The whole frame as a read-only numpy array over the slot itself (no copy):
    /// `(H, W, 4)` bgra, `(H, W, 3)` rgb24, `(H, W)` gray8, `(H, W, 2)` yuyv, and for i420
    /// `(H * 3 // 2, W)` (OpenCV's I420 layout; see `planes`).
    #[getter]
    fn array(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let buffer = self.buffer(py)?;
        if let Some(array) = &self.lock().array {
            return Ok(array.clone_ref(py));
        }
        let array = view::ndarray(buffer.as_any(), &view::frame_plane(self.format))?.unbind();
        self.lock().array = Some(array.clone_ref(py));
        Ok(array)
    }

    /// The planes as read-only numpy arrays: `(Y, U, V)` for i420, `(array,)` otherwise.
    #[getter]
    fn planes(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        let buffer = self.buffer(py)?;
        if let Some(planes) = &self.lock().planes {
            return Ok(planes.clone_ref(py));
        }
        let arrays = view::planes(self.format)
            .iter()
            .map(|plane| view::ndarray(buffer.as_any(), plane))
            .collect::<PyResult<Vec<_>>>()?;
        let planes = PyTuple::new(py, arrays)?.unbind();
        self.lock().planes = Some(planes.clone_ref(py));
        Ok(planes)
    }

    /// An owned, writable copy of `array` (it stays valid after the frame is closed).
    fn copy(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let buffer = self.buffer(py)?;
        let array = view::ndarray(buffer.as_any(), &view::frame_plane(self.format))?;
        Ok(array.call_method0("copy")?.unbind())
    }

    /// Ends this frame's hold on its slot (once no array of it lives). Its arrays stay
    /// valid; the reader takes no new frame while one of them lives.
    fn close(&self) {
        self.release_views();
    }

    /// The frame's sequence number (1, 2, ... since the producer started).
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }

    /// When the producer captured it (CLOCK_MONOTONIC ns, as `time.monotonic_ns()`).
    #[getter]
    fn capture_ns(&self) -> u64 {
        self.capture_ns
    }

    /// When the producer published it (CLOCK_MONOTONIC ns).
    #[getter]
    fn publish_ns(&self) -> u64 {
        self.publish_ns
    }

    /// Frames published between the previous frame this reader took and this one.
    #[getter]
    fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Whether this reader asked for every frame and the producer has dropped it back to
    /// the newest frame (it took nothing for the stall timeout): frames may be skipped.
    #[getter]
    fn demoted(&self) -> bool {
        self.demoted
    }

    /// The epoch of the region it came from (+1 per producer restart or format change).
    #[getter]
    fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The pixel format: `"bgra"`, `"rgb24"`, `"gray8"`, `"yuyv"` or `"i420"`.
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

    /// The full format, e.g. `"640x480 bgra"` (what `verify` takes).
    #[getter]
    fn frame_format(&self) -> String {
        self.format.to_string()
    }

    /// Whether `close()` was called (or the frame was replaced by the next one).
    #[getter]
    fn closed(&self) -> bool {
        self.lock().buffer.is_none()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        self.release_views();
    }

    fn __repr__(&self) -> String {
        format!(
            "framepipe.Frame(seq={}, format={:?}, skipped={})",
            self.seq,
            self.format.to_string(),
            self.skipped
        )
    }
}
