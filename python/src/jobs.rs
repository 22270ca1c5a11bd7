//! `train`, `sweep` and `report`: the library's jobs with the GIL released.
//!
//! While training, the GIL is taken back only briefly: after every batch to
//! check for signals (Ctrl-C stops the job with `KeyboardInterrupt`, the
//! training state of the last checkpointed epoch stays on disk) and after
//! every epoch to report progress.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fsnn::checkpoint::state::STATE_FILE;
use fsnn::run::{TrainOptions, default_out, resolve_config, resolve_config_text};
use fsnn::train::EpochStats;
use fsnn::train::job::Observer;
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{guard, to_py};

/// Progress and interruption of a training seen from Python.
struct PyObserver {
    /// `True`: print one line per epoch; a callable: call it with a dict.
    progress: Option<Py<PyAny>>,
    epochs: usize,
    /// The exception that stops the job (a signal's or the callback's).
    error: Arc<Mutex<Option<PyErr>>>,
}

impl Observer for PyObserver {
    fn epoch(&mut self, s: &EpochStats) {
        let Some(progress) = &self.progress else {
            return;
        };
        let epochs = self.epochs;
        let r = Python::attach(|py| -> PyResult<()> {
            let p = progress.bind(py);
            if p.is_callable() {
                let d = PyDict::new(py);
                d.set_item("epoch", s.epoch)?;
                d.set_item("epochs", epochs)?;
                d.set_item("lr", s.lr)?;
                d.set_item("train_loss", s.train_loss)?;
                d.set_item("train_acc", s.train_acc)?;
                d.set_item("test_acc", s.test.accuracy)?;
                d.set_item("spikes_per_image", s.test.spikes_per_image)?;
                d.set_item("train_seconds", s.train_seconds)?;
                p.call1((d,))?;
            } else {
                let line = fsnn::report::table::epoch_line(
                    s.epoch,
                    epochs,
                    s.lr,
                    s.train_loss,
                    s.train_acc,
                    &s.test,
                    s.train_seconds,
                );
                py.import("builtins")?.call_method1("print", (line,))?;
            }
            Ok(())
        });
        if let Err(e) = r {
            self.set_error(e);
        }
    }

    fn stop(&mut self) -> bool {
        if self.has_error() {
            return true;
        }
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            self.set_error(e);
        }
        self.has_error()
    }
}

impl PyObserver {
    /// Keep the first exception.
    fn set_error(&self, e: PyErr) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
    }

    /// Whether the job is to stop.
    fn has_error(&self) -> bool {
        self.error.lock().map(|s| s.is_some()).unwrap_or(true)
    }
}

/// The config of a new run: a TOML file, or TOML text made from a dict
/// (passed as JSON, named `<dict>` in messages), with the overrides.
fn config_of(json: Option<&str>, opts: &TrainOptions) -> fsnn::Result<fsnn::Config> {
    let Some(json) = json else {
        return resolve_config(opts);
    };
    let dict = Path::new("<dict>");
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| fsnn::Error::file(dict, format!("not a config: {e}")))?;
    let text = toml::to_string(&value)
        .map_err(|e| fsnn::Error::file(dict, format!("not a config: {e}")))?;
    resolve_config_text(&text, dict, opts)
}

/// What to tell after Ctrl-C: where the run can be continued from.
fn interrupted_message(e: &fsnn::Error, out: &Path) -> String {
    let state = out.join(STATE_FILE);
    let hint = if state.is_file() {
        format!(
            "fsnn.train(resume={:?}) continues from its last saved epoch",
            out.display().to_string()
        )
    } else {
        "no epoch was saved yet, nothing to resume".to_string()
    };
    format!("{}; {hint}", e.line())
}

/// Train (or, with `resume`, continue) a run; returns its output directory.
#[pyfunction]
#[pyo3(signature = (config, config_json, *, data, epochs, seed, out, overwrite, progress, resume))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn train(
    py: Python<'_>,
    config: Option<PathBuf>,
    config_json: Option<String>,
    data: Option<PathBuf>,
    epochs: Option<usize>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    overwrite: bool,
    progress: Option<Py<PyAny>>,
    resume: Option<PathBuf>,
) -> PyResult<PathBuf> {
    guard(|| {
        let mut opts = TrainOptions {
            config: config.unwrap_or_default(),
            resume,
            epochs,
            seed,
            out,
            overwrite,
            data,
            quiet: true,
            ..Default::default()
        };
        let cfg = match &opts.resume {
            Some(_) => None,
            None => Some(config_of(config_json.as_deref(), &opts).map_err(to_py)?),
        };
        if let Some(c) = &cfg
            && opts.out.is_none()
        {
            opts.out = Some(default_out(c));
        }
        let target = opts.out.clone().or(opts.resume.clone()).unwrap_or_default();
        let cause: Arc<Mutex<Option<PyErr>>> = Arc::default();
        let r = py.detach(|| {
            fsnn::run::train_observed(&opts, cfg, |c| PyObserver {
                progress,
                epochs: c.train.epochs,
                error: Arc::clone(&cause),
            })
        });
        let cause = cause.lock().map(|mut c| c.take()).unwrap_or(None);
        match r {
            Ok((_, dir)) => Ok(dir),
            Err(e @ fsnn::Error::Interrupted(_)) => match cause {
                Some(c) if !c.is_instance_of::<PyKeyboardInterrupt>(py) => Err(c),
                _ => Err(PyKeyboardInterrupt::new_err(interrupted_message(
                    &e, &target,
                ))),
            },
            Err(e) => Err(to_py(e)),
        }
    })
}

/// Run a sweep grid; returns its output directory.
#[pyfunction]
#[pyo3(signature = (grid, *, jobs, out, data, overwrite, quiet))]
pub(crate) fn sweep(
    py: Python<'_>,
    grid: PathBuf,
    jobs: Option<usize>,
    out: Option<PathBuf>,
    data: Option<PathBuf>,
    overwrite: bool,
    quiet: bool,
) -> PyResult<PathBuf> {
    guard(|| {
        let opts = fsnn::sweep::SweepOptions {
            grid,
            jobs,
            shard: None,
            out,
            data,
            quiet,
            overwrite,
        };
        let r = py.detach(|| fsnn::sweep::sweep(&opts));
        r.map(|o| o.out).map_err(to_py)
    })
}

/// Merge results files into `report.md` and `report.csv` (no plots: they
/// need the CLI's plotting); returns the files written.
#[pyfunction]
#[pyo3(signature = (inputs, *, out, quiet))]
pub(crate) fn report(
    py: Python<'_>,
    inputs: Vec<PathBuf>,
    out: Option<PathBuf>,
    quiet: bool,
) -> PyResult<Vec<PathBuf>> {
    guard(|| {
        let opts = fsnn::report::sweep::ReportOptions { inputs, out, quiet };
        let r = py.detach(|| fsnn::report::sweep::report(&opts));
        r.map(|o| o.files).map_err(to_py)
    })
}

/// Download a dataset's four IDX files (`fsnn data get`); returns the
/// directory holding them.
#[pyfunction]
#[pyo3(signature = (dataset, *, dir, mirrors, quiet))]
pub(crate) fn data_get(
    py: Python<'_>,
    dataset: String,
    dir: Option<PathBuf>,
    mirrors: Vec<String>,
    quiet: bool,
) -> PyResult<PathBuf> {
    guard(|| {
        let kind: fsnn::data::DatasetKind =
            serde_json::from_value(serde_json::Value::String(dataset.clone())).map_err(|_| {
                to_py(fsnn::Error::arg(
                    "dataset",
                    format!("unknown dataset {dataset:?} (mnist, fashion-mnist or kmnist)"),
                ))
            })?;
        let opts = fsnn::data::download::GetOptions {
            kind,
            dir,
            mirrors,
            quiet,
        };
        py.detach(|| fsnn::data::download::get(&opts))
            .map_err(to_py)
    })
}
