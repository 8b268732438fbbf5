//! `framepipe._framepipe`: the Rust half of the `framepipe` Python package.
//!
//! - [`reader`]: `Reader` and `Frame`, the newest frame as a read-only numpy view.
//! - [`view`]: the buffer objects numpy arrays are built over, and their shapes.
//! - [`errors`]: the exception hierarchy.
//! - [`fork`]: poisoning objects in a child after `os.fork()`.
//! - [`writer`]: `Writer` and `WriteFrame`, frames written in place into the free slot.
//! - [`control`]: `Control` (commands to a producer) and `list()`.
//! - [`vocab`]: format parsing and `verify`.
//! - [`bench`]: the Rust reader's take, timed for `bench/bench.py`.
//!
//! `unsafe` appears only in `view.rs`, where the buffer protocol needs it.
#![deny(unsafe_code)]

mod bench;
mod control;
mod errors;
mod fork;
mod reader;
#[allow(unsafe_code)]
mod view;
mod vocab;
mod writer;

use pyo3::prelude::*;

#[pymodule]
fn _framepipe(module: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(module)?;
    module.add_class::<reader::Reader>()?;
    module.add_class::<reader::Frame>()?;
    module.add_class::<writer::Writer>()?;
    module.add_class::<writer::WriteFrame>()?;
    module.add_class::<control::Control>()?;
    module.add_class::<view::FrameBuffer>()?;
    module.add_class::<view::SlotBuffer>()?;
    module.add_function(wrap_pyfunction!(vocab::verify, module)?)?;
    module.add_function(wrap_pyfunction!(control::list, module)?)?;
    module.add_function(wrap_pyfunction!(bench::_bench_rust_take, module)?)?;
    module.add_function(wrap_pyfunction!(fork::_after_fork_in_child, module)?)?;
    Ok(())
}
