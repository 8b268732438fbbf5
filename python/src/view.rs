//! The buffer objects that export a slot's bytes to numpy, and the arrays built over them.
//!
//! An array is made with `numpy.ndarray(shape, uint8, buffer=obj, offset, strides)`, so its
//! `base` is the buffer object itself (not a `memoryview` that `release()` could empty):
//! as long as any array or view of the frame lives, the object lives, and with it what
//! keeps the bytes valid — the reader's [`OwnedFrame`] hold, or the writer's mapping.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use frame_vocab::{FrameFormat, PixelFormat};
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};
use shm_frames::{OwnedFrame, Supervisor};

use crate::fork::ForkSafe;

/// One array over a frame's bytes: where it starts, its shape and strides, in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plane {
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
}

/// The whole frame as one array: `(H, W, 4)` bgra, `(H, W, 3)` rgb24, `(H, W)` gray8,
/// `(H, W, 2)` yuyv, and for i420 the `(H * 3 / 2, W)` layout OpenCV's `COLOR_YUV2*_I420`
/// conversions take.
pub fn frame_plane(format: FrameFormat) -> Plane {
    let (w, h) = (format.width() as usize, format.height() as usize);
    let stride = format.stride() as usize;
    let (shape, strides) = match format.pixel() {
        PixelFormat::Bgra => (vec![h, w, 4], vec![stride, 4, 1]),
        PixelFormat::Rgb24 => (vec![h, w, 3], vec![stride, 3, 1]),
        PixelFormat::Gray8 => (vec![h, w], vec![stride, 1]),
        PixelFormat::Yuyv => (vec![h, w, 2], vec![stride, 2, 1]),
        PixelFormat::I420 => (vec![h * 3 / 2, w], vec![stride, 1]),
    };
    Plane {
        offset: 0,
        shape,
        strides,
    }
}

/// The frame's planes: Y, U and V for i420, the whole frame for every other format.
pub fn planes(format: FrameFormat) -> Vec<Plane> {
    if format.pixel() != PixelFormat::I420 {
        return vec![frame_plane(format)];
    }
    let (w, h) = (format.width() as usize, format.height() as usize);
    let (cw, ch) = (w / 2, h / 2);
    vec![
        Plane {
            offset: 0,
            shape: vec![h, w],
            strides: vec![w, 1],
        },
        Plane {
            offset: w * h,
            shape: vec![ch, cw],
            strides: vec![cw, 1],
        },
        Plane {
            offset: w * h + cw * ch,
            shape: vec![ch, cw],
            strides: vec![cw, 1],
        },
    ]
}

/// `numpy.ndarray(plane.shape, uint8, buffer, plane.offset, plane.strides)`: an array whose
/// base is `buffer`.
pub fn ndarray<'py>(buffer: &Bound<'py, PyAny>, plane: &Plane) -> PyResult<Bound<'py, PyAny>> {
    static NDARRAY: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static UINT8: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let py = buffer.py();
    let ndarray = NDARRAY.import(py, "numpy", "ndarray")?;
    let uint8 = UINT8.import(py, "numpy", "uint8")?;
    ndarray.call1((
        PyTuple::new(py, &plane.shape)?,
        uint8,
        buffer,
        plane.offset,
        PyTuple::new(py, &plane.strides)?,
    ))
}

/// Exports `len` bytes at `ptr` for `owner` (one contiguous run of bytes; numpy gives it
/// its shape). Refuses a writable request when `readonly`.
///
/// # Safety
/// `view` must be the `Py_buffer` Python passed to `owner`'s getbuffer slot, and
/// `ptr..ptr+len` must stay valid (and, unless `readonly`, writable by this process alone)
/// for as long as `owner` lives.
unsafe fn fill(
    owner: &Bound<'_, PyAny>,
    view: *mut ffi::Py_buffer,
    flags: c_int,
    ptr: *const u8,
    len: usize,
    readonly: bool,
) -> PyResult<()> {
    let len = isize::try_from(len).map_err(|_| PyBufferError::new_err("frame too large"))?;
    // SAFETY: the caller passes the getbuffer slot's own `view`, and keeps the bytes valid
    // while `owner` lives; `PyBuffer_FillInfo` stores a new reference to `owner` in
    // `view.obj`, so the bytes outlive the export.
    let rc = unsafe {
        ffi::PyBuffer_FillInfo(
            view,
            owner.as_ptr(),
            ptr.cast_mut().cast::<c_void>(),
            len,
            c_int::from(readonly),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(PyErr::take(owner.py())
            .unwrap_or_else(|| PyBufferError::new_err("cannot export the frame")))
    }
}

/// The bytes of one frame a [`Reader`](crate::reader::Reader) took: owns its
/// [`OwnedFrame`] (the slot hold, the seat, the mapping) for as long as any array over it
/// lives. Read-only: a writable export is refused, so numpy marks its arrays read-only and
/// refuses to make them writable.
#[pyclass(module = "framepipe._framepipe", frozen)]
#[derive(Debug)]
pub struct FrameBuffer {
    frame: ForkSafe<OwnedFrame>,
}

impl FrameBuffer {
    pub fn new(frame: OwnedFrame) -> FrameBuffer {
        FrameBuffer {
            frame: ForkSafe::new(frame),
        }
    }
}

#[pymethods]
impl FrameBuffer {
    /// The buffer protocol, read-only.
    ///
    /// # Safety
    /// Called by Python with its own `Py_buffer`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let frame = slf.get().frame.get("frame")?;
        let (ptr, len) = (frame.as_ptr(), frame.len());
        // SAFETY: `view` is Python's; the bytes are the slot `frame` holds, and `frame` is
        // owned by this immutable object, so the hold lasts as long as the object (which
        // the export and every array keep alive). Read-only, as the mapping is.
        unsafe { fill(slf.as_any(), view, flags, ptr, len, true) }
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.frame.get("frame")?.len())
    }
}

/// The bytes of the free slot a [`Writer`](crate::writer::Writer) fills. Writable only
/// while the writer's slot thread holds that slot for the frame being written (until the
/// `with` block ends); keeps the region mapped for as long as any array over it lives.
#[pyclass(module = "framepipe._framepipe", frozen)]
#[derive(Debug)]
pub struct SlotBuffer {
    ptr: usize,
    len: usize,
    writable: AtomicBool,
    _mapping: ForkSafe<Supervisor>,
}

impl SlotBuffer {
    /// A buffer over `len` bytes at `ptr`, one slot of the region `mapping` keeps mapped,
    /// which the caller holds for writing until it calls [`SlotBuffer::seal`].
    pub fn new(ptr: usize, len: usize, mapping: Supervisor) -> SlotBuffer {
        SlotBuffer {
            ptr,
            len,
            writable: AtomicBool::new(true),
            _mapping: ForkSafe::new(mapping),
        }
    }

    /// From now on only read-only exports are given (the frame is published or dropped).
    pub fn seal(&self) {
        // Relaxed: read under the GIL, which orders it with the exports.
        self.writable.store(false, Ordering::Relaxed);
    }
}

#[pymethods]
impl SlotBuffer {
    /// The buffer protocol: writable until sealed, read-only after.
    ///
    /// # Safety
    /// Called by Python with its own `Py_buffer`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        this._mapping.get("Writer")?;
        let writable = this.writable.load(Ordering::Relaxed);
        if flags & ffi::PyBUF_WRITABLE != 0 && !writable {
            return Err(PyBufferError::new_err(
                "this frame's with block is over (it was published or dropped): its view is \
                 read-only",
            ));
        }
        // SAFETY: `view` is Python's. `ptr..ptr+len` is one slot inside the producer's
        // mapping of the region, which `_mapping` keeps mapped while this object lives.
        // Writable only while the slot thread holds that slot's `WriteSlot` for us: the
        // slot is then neither `latest` nor held by any seat, so nobody reads it.
        unsafe {
            fill(
                slf.as_any(),
                view,
                flags,
                this.ptr as *const u8,
                this.len,
                !writable,
            )
        }
    }

    fn __len__(&self) -> usize {
        self.len
    }
}
