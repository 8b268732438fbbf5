//! The shared vocabulary for Python: parsing frame formats and `framepipe.verify`.

use frame_vocab::{FrameFormat, PixelFormat};
use numpy::PyReadonlyArrayDyn;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::errors;

/// Parses a pixel format name (`bgra`, `rgb24`, `gray8`, `yuyv`, `i420`).
pub fn pixel(name: &str) -> PyResult<PixelFormat> {
    name.parse()
        .map_err(|e: frame_vocab::UnknownPixelFormat| PyValueError::new_err(e.to_string()))
}

/// A validated frame format, as a `ValueError` when it is not one.
pub fn frame_format(width: u32, height: u32, pixel: PixelFormat) -> PyResult<FrameFormat> {
    FrameFormat::new(width, height, pixel).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Parses `"WIDTHxHEIGHT PIXEL"` (what `Frame.frame_format` gives) or a
/// `(width, height, pixel)` tuple.
pub fn parse_format(format: &Bound<'_, PyAny>) -> PyResult<FrameFormat> {
    if let Ok((width, height, name)) = format.extract::<(u32, u32, String)>() {
        return frame_format(width, height, pixel(&name)?);
    }
    let text: String = format.extract().map_err(|_| {
        PyValueError::new_err("format must be \"WIDTHxHEIGHT PIXEL\" or (width, height, pixel)")
    })?;
    let bad = || {
        PyValueError::new_err(format!(
            "bad format {text:?}: expected e.g. \"640x480 bgra\""
        ))
    };
    let (size, name) = text.trim().split_once(' ').ok_or_else(bad)?;
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let width = w.parse().map_err(|_| bad())?;
    let height = h.parse().map_err(|_| bad())?;
    frame_format(width, height, pixel(name.trim())?)
}

/// Checks that `data` (a numpy uint8 array, bytes or bytearray holding exactly one frame of
/// `format`) is the whole moving-pattern frame number `seq`. Raises `framepipe.Corrupt`
/// with the reason (torn, wrong seq, no stamp) when it is not.
#[pyfunction]
pub fn verify(data: &Bound<'_, PyAny>, format: &Bound<'_, PyAny>, seq: u64) -> PyResult<()> {
    let format = parse_format(format)?;
    let result = if let Ok(array) = data.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        let bytes = array.as_slice().map_err(|_| {
            PyValueError::new_err("verify needs a C-contiguous array (use numpy.ascontiguousarray)")
        })?;
        frame_vocab::verify(format, bytes, seq)
    } else if let Ok(bytes) = data.cast::<PyBytes>() {
        frame_vocab::verify(format, bytes.as_bytes(), seq)
    } else if let Ok(bytes) = data.cast::<PyByteArray>() {
        frame_vocab::verify(format, &bytes.to_vec(), seq)
    } else {
        return Err(PyValueError::new_err(
            "verify takes a numpy uint8 array, bytes or bytearray",
        ));
    };
    result.map_err(|e| errors::Corrupt::new_err(errors::message(&e)))
}
