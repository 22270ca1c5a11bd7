//! The PyTorch side of `fsnn bench --pytorch PYTHON`: runs
//! `bench/pytorch/cnn_fs.py` (the same CNN, FS neuron, surrogate, loss,
//! optimizer and batch, in PyTorch eager and torch.compile) on the same
//! images and thread counts, so that fsnn's CNN epoch is reported as a
//! ratio against a baseline measured in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::error::{Error, Result};

/// Seconds per 60 000-image epoch of one PyTorch configuration.
#[derive(Clone, Debug, Serialize)]
pub struct TorchRun {
    /// `eager` or `compile`.
    pub mode: String,
    /// `torch.set_num_threads`.
    pub threads: usize,
    /// Best seconds per (scaled) epoch.
    pub epoch_seconds: f64,
}

/// PyTorch timings of one bench run.
#[derive(Clone, Debug, Serialize)]
pub struct TorchBench {
    /// `torch.__version__`.
    pub torch_version: String,
    /// The runs: eager and compile, 1 and 2 threads.
    pub runs: Vec<TorchRun>,
}

impl TorchBench {
    /// Seconds per epoch of `mode` with `threads` threads.
    pub fn seconds(&self, mode: &str, threads: usize) -> Option<f64> {
        self.runs
            .iter()
            .find(|r| r.mode == mode && r.threads == threads)
            .map(|r| r.epoch_seconds)
    }
}

/// The baseline script, next to the crate's sources.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pytorch/cnn_fs.py")
}

/// Check, before any timing, that the baseline script exists and that
/// `python` imports torch; returns torch's version.
pub fn check(python: &Path) -> Result<String> {
    let script = script();
    if !script.is_file() {
        return Err(Error::Arg {
            flag: "--pytorch".into(),
            msg: format!("baseline script {} not found", script.display()),
        });
    }
    let out = Command::new(python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .map_err(|e| Error::Arg {
            flag: "--pytorch".into(),
            msg: format!("cannot run {}: {e}", python.display()),
        })?;
    if !out.status.success() {
        return Err(Error::Arg {
            flag: "--pytorch".into(),
            msg: format!("{} cannot import torch", python.display()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Run the script with `python` for eager and compile × 1 and 2 threads,
/// each timed on `images` images (`data`: the MNIST directory, if any),
/// best of `reps`.
pub fn run(python: &Path, images: usize, data: Option<&Path>, reps: usize) -> Result<TorchBench> {
    let script = script();
    if !script.is_file() {
        return Err(Error::Arg {
            flag: "--pytorch".into(),
            msg: format!("baseline script {} not found", script.display()),
        });
    }
    let tmp = std::env::temp_dir().join(format!("fsnn-bench-torch-{}.json", std::process::id()));
    let mut runs = Vec::new();
    let mut version = String::new();
    for mode in ["eager", "compile"] {
        for threads in [1usize, 2] {
            eprintln!("timing PyTorch {mode}, {threads} thread(s) ...");
            let mut cmd = Command::new(python);
            cmd.arg(&script)
                .args(["--mode", mode, "--threads", &threads.to_string()])
                .args(["--images", &images.to_string()])
                .args(["--repeats", &reps.max(1).to_string()])
                .arg("--json")
                .arg(&tmp);
            if let Some(d) = data {
                cmd.arg("--data").arg(d);
            }
            let out = cmd.output().map_err(|e| Error::Arg {
                flag: "--pytorch".into(),
                msg: format!("cannot run {}: {e}", python.display()),
            })?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                let last = err.lines().last().unwrap_or("no output");
                return Err(Error::Arg {
                    flag: "--pytorch".into(),
                    msg: format!("{} {mode} failed: {last}", script.display()),
                });
            }
            let text = std::fs::read_to_string(&tmp).map_err(|e| Error::Io {
                path: tmp.clone(),
                source: e,
            })?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::File {
                path: tmp.clone(),
                msg: format!("PyTorch results: {e}"),
            })?;
            let secs = v["epoch_seconds"].as_f64().ok_or_else(|| Error::File {
                path: tmp.clone(),
                msg: "PyTorch results: no epoch_seconds".into(),
            })?;
            version = v["torch_version"].as_str().unwrap_or("?").to_string();
            runs.push(TorchRun {
                mode: mode.into(),
                threads,
                epoch_seconds: secs,
            });
        }
    }
    let _ = std::fs::remove_file(&tmp);
    Ok(TorchBench {
        torch_version: version,
        runs,
    })
}
