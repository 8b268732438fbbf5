//! `framepipe.WriteFrame`: one frame being written through a writable view of the free
//! slot, published when its `with` block ends.

use super::*;

/// The arrays and buffer of a frame being written.
///
/// `array` (handed out) is a view of `inner`, whose base is `buffer`. numpy collapses a
/// view's base through arrays of the same type, so every view derived from `array` has
/// `inner` as its base, and the references to `inner` beyond our own and `array`'s count
/// exactly those views (names bound to `array` do not).
struct Open {
    array: Py<PyAny>,
    inner: Py<PyAny>,
    buffer: Py<SlotBuffer>,
}

/// One frame being written: `with writer.frame() as buf:` gives `buf`, a writable view
/// of the free slot; the frame is published when the block ends.
#[pyclass(module = "framepipe", frozen)]
pub struct WriteFrame {
    writer: Py<Writer>,
    capture_ns: Option<u64>,
    open: Mutex<Option<Open>>,
    published: Mutex<Option<u64>>,
}

impl std::fmt::Debug for WriteFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteFrame").finish()
    }
}

impl WriteFrame {
    pub(super) fn new(writer: Py<Writer>, capture_ns: Option<u64>) -> WriteFrame {
        WriteFrame {
            writer,
            capture_ns,
            open: Mutex::new(None),
            published: Mutex::new(None),
        }
    }

    /// The seq it was published as (`None`: not yet, or dropped while paused).
    pub(super) fn published_seq(&self) -> Option<u64> {
        *lock(&self.published)
    }

    /// Ends the block: seals the view, then publishes unless `failed`, paused, or views of
    /// it live on.
    pub(super) fn exit(&self, py: Python<'_>, failed: bool) -> PyResult<()> {
        let Some(open) = lock(&self.open).take() else {
            return Err(errors::error("this frame's with block is not open"));
        };
        let array = open.array.bind(py);
        let inner = open.inner.bind(py);
        open.buffer.bind(py).get().seal();
        array.getattr("flags")?.setattr("writeable", false)?;
        inner.getattr("flags")?.setattr("writeable", false)?;
        // Our `open.inner` and `array`'s base are expected; more are derived views.
        let derived = references(inner)? - 2;
        let writer = self.writer.get();
        let name = &writer.name;
        writer.with_state(py, |py, state| {
            state.writing = false;
            let lease = state.lease(py)?;
            if derived > 0 {
                let weak = PyWeakrefReference::new(array)?.unbind();
                lease.stale = Some((open.inner.clone_ref(py), weak));
                if failed {
                    return Ok(());
                }
                return Err(FrameInUse::new_err(format!(
                    "{derived} numpy view(s) of the frame being written to stream {name} \
                     outlive its with block, so it was not published: `del` them (or copy \
                     them); its slot is reused once they are gone"
                )));
            }
            if failed {
                return Ok(()); // Never seen by anyone: the slot is reused for the next frame.
            }
            if state.shared.paused.load(Ordering::Relaxed) {
                state.paused_drops += 1;
                return Ok(());
            }
            state.check_shutdown(name)?;
            state
                .to_slots
                .send(ToSlots::Publish(self.capture_ns))
                .map_err(|_| errors::error("the writer's slot thread has ended"))?;
            match state.reply(py)? {
                FromSlots::Published(published) => {
                    state.lease = None;
                    state.published += 1;
                    *lock(&self.published) = Some(published.seq);
                    Ok(())
                }
                _ => Err(errors::error("the writer's slot thread is out of step")),
            }
        })
    }
}

impl Drop for WriteFrame {
    fn drop(&mut self) {
        // Entered but never exited (`__enter__` called by hand): the frame is abandoned,
        // its slot stays reserved for the next one, and the writer may write again.
        let open = self
            .open
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(open) = open {
            Python::attach(|py| {
                open.buffer.bind(py).get().seal();
                for array in [&open.array, &open.inner] {
                    let _ = array
                        .bind(py)
                        .getattr("flags")
                        .and_then(|flags| flags.setattr("writeable", false));
                }
                let _ = self.writer.get().with_state(py, |_, state| {
                    state.writing = false;
                    Ok(())
                });
                drop(open);
            });
        }
    }
}

#[pymethods]
impl WriteFrame {
    /// A writable numpy view of the free slot, shaped like `Frame.array`.
    pub(super) fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        if lock(&this.open).is_some() {
            return Err(errors::error("this frame's with block is already open"));
        }
        let writer = this.writer.get();
        let format = writer.format;
        let name = &writer.name;
        let (inner, buffer) = writer.with_state(py, |py, state| {
            state.check_shutdown(name)?;
            if state.writing {
                return Err(errors::error(format!(
                    "a frame of stream {name} is already being written: one at a time"
                )));
            }
            let supervisor = state.supervisor.clone();
            let lease = state.lease(py)?;
            if let Some((stale, array)) = &lease.stale {
                let array_alive = array.bind(py).upgrade().is_some();
                let derived = references(stale.bind(py))? - 1 - isize::from(array_alive);
                if derived > 0 {
                    return Err(FrameInUse::new_err(format!(
                        "{derived} numpy view(s) of an unpublished frame of stream {name} are \
                         still alive: `del` them before writing the next frame"
                    )));
                }
                lease.stale = None;
            }
            let buffer = Bound::new(py, SlotBuffer::new(lease.ptr, lease.len, supervisor))?;
            let inner = view::ndarray(buffer.as_any(), &view::frame_plane(format))?;
            state.writing = true;
            Ok((inner, buffer))
        })?;
        let array = inner.call_method0("view")?;
        *lock(&this.open) = Some(Open {
            array: array.clone().unbind(),
            inner: inner.unbind(),
            buffer: buffer.unbind(),
        });
        Ok(array)
    }

    #[pyo3(signature = (exc_type, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let failed = exc_type.is_some_and(|t| !t.is_none());
        self.exit(py, failed)?;
        Ok(false)
    }

    /// The seq the frame was published with, `None` before (or if it was not).
    #[getter]
    fn seq(&self) -> Option<u64> {
        *lock(&self.published)
    }
}
