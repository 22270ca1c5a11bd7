//! `fsnn._fsnn`: the Python extension of fsnn (PyO3). The Python package
//! `fsnn` (python/fsnn/) wraps it; this crate only converts: Python values
//! to the library's options, numpy arrays to flat buffers, and
//! [`fsnn::Error`]s to Python exceptions carrying the CLI's one-line
//! message. No panic reaches the interpreter: every entry point runs under
//! [`guard`], which turns one into `fsnn.InternalError`.

mod errors;
mod jobs;
mod model;

use pyo3::prelude::*;

pub(crate) use errors::{guard, to_py};

/// The extension module.
#[pymodule]
fn _fsnn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The SIMD kernel level (FSNN_SIMD) is fixed once, as the CLI does.
    fsnn::simd::init().map_err(to_py)?;
    errors::register(m)?;
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(model::load, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::train, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::sweep, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::report, m)?)?;
    m.add_function(wrap_pyfunction!(jobs::data_get, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
