//! Python exceptions for [`fsnn::Error`], and [`guard`]: the boundary that
//! keeps panics out of the interpreter.

use std::panic::{AssertUnwindSafe, catch_unwind};

use fsnn::Error;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyArithmeticError, PyException, PyKeyboardInterrupt, PyOSError, PyValueError,
};
use pyo3::prelude::*;

create_exception!(
    fsnn,
    ConfigError,
    PyValueError,
    "A config, override or argument is invalid."
);
create_exception!(
    fsnn,
    DataError,
    PyOSError,
    "A dataset is missing, corrupt or could not be downloaded."
);
create_exception!(
    fsnn,
    CheckpointError,
    PyOSError,
    "A model or training-state file cannot be read."
);
create_exception!(
    fsnn,
    DivergedError,
    PyArithmeticError,
    "Training diverged (NaN or Inf)."
);
create_exception!(
    fsnn,
    OutputError,
    PyOSError,
    "A result file or directory cannot be written."
);
create_exception!(
    fsnn,
    FsnnError,
    PyException,
    "Any other fsnn failure (a sweep's runs, Slurm)."
);
create_exception!(
    fsnn,
    InternalError,
    PyException,
    "A bug in fsnn (a panic caught at the boundary)."
);

/// Add the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("CheckpointError", py.get_type::<CheckpointError>())?;
    m.add("DivergedError", py.get_type::<DivergedError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add("FsnnError", py.get_type::<FsnnError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// The Python exception of `e`, with the CLI's one-line message.
///
/// A file or data error about a `.safetensors` (model or training state)
/// is a checkpoint error; other file errors are config errors (config
/// files), other data errors data errors.
pub(crate) fn to_py(e: Error) -> PyErr {
    let msg = e.line();
    match &e {
        Error::Config { .. } | Error::Arg { .. } | Error::Shape(_) => ConfigError::new_err(msg),
        Error::File { path, .. } | Error::Data { path, .. } if is_checkpoint(path) => {
            CheckpointError::new_err(msg)
        }
        Error::File { .. } => ConfigError::new_err(msg),
        Error::Data { .. } | Error::DataNotFound(_) | Error::Download(_) => DataError::new_err(msg),
        Error::Diverged(_) => DivergedError::new_err(msg),
        Error::Interrupted(_) => PyKeyboardInterrupt::new_err(msg),
        Error::Io { .. } => OutputError::new_err(msg),
        Error::Sweep(_) | Error::Slurm(_) => FsnnError::new_err(msg),
    }
}

/// Whether `path` is a model or training-state file.
fn is_checkpoint(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|x| x == "safetensors")
}

/// Run `f`, turning a panic into `fsnn.InternalError` (one line).
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(InternalError::new_err(fsnn::error::one_line(&format!(
                "internal error (a bug in fsnn, please report it): {what}"
            ))))
        }
    }
}
