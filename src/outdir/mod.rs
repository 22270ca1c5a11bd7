//! Output directories: a command writes only into a directory that is new,
//! empty, or already its own, and holds a lock on it while it writes.
//!
//! The rules, per command ([`Kind`]):
//!
//! - `train`, `convert`, `fit`, `compare` ([`Claim::Fresh`]): the directory
//!   must be missing or empty. One holding earlier results of the same kind
//!   is refused unless `--overwrite`, which first removes those results
//!   (and nothing else: a directory holding any file fsnn does not write
//!   there is never emptied). `train --resume DIR` ([`Claim::Resume`])
//!   continues the run in DIR.
//! - `sweep`: the directory may hold the results of the same grid (that is
//!   resuming; the grid check is the sweep's) and reports of them; shards
//!   share it. `--overwrite` removes earlier sweep results when no other
//!   process uses the directory.
//! - `report`: the directory may hold sweep results and earlier reports
//!   (which are replaced); anything else is refused.
//!
//! Every claim locks the directory ([`lock`]): exclusively for the first
//! group, shared between the shards of a sweep and reports. Whoever finds
//! no other holder removes stale temporaries that an fsnn process killed
//! mid-write left behind ([`crate::report::output::TEMP_PREFIX`]).

pub mod lock;

use std::path::{Path, PathBuf};

pub use lock::{DirLock, FileGuard, LOCK_FILE};

use crate::error::{Error, Result};
use crate::report::output::TEMP_PREFIX;

/// The command writing a directory, which decides what it may find there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `fsnn train`: config, metrics, state, model, summary.
    Run,
    /// `fsnn convert`: model, report, and a fine-tuning run directory.
    Convert,
    /// `fsnn fit`: fitted tables, curve and plots.
    Fit,
    /// `fsnn compare`: reports and bar plots.
    Compare,
    /// `fsnn report`: report and Pareto plots (next to sweep results).
    Report,
    /// `fsnn sweep` (one shard or all): `results.jsonl`.
    Sweep,
}

/// How a command uses its directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// New results; with `overwrite`, earlier results of the same kind
    /// are removed first.
    Fresh {
        /// Replace earlier results instead of refusing.
        overwrite: bool,
    },
    /// Continue the run already in the directory (`train --resume`).
    Resume,
}

const RUN_FILES: &[&str] = &[
    "config.toml",
    "metrics.csv",
    "state.safetensors",
    "model.safetensors",
    "summary.json",
];
const CONVERT_FILES: &[&str] = &["model.safetensors", "convert.json"];
const FIT_FILES: &[&str] = &["fit.json", "tables.toml", "curve.csv", "fit.png", "fit.svg"];
const COMPARE_FILES: &[&str] = &[
    "report.md",
    "report.csv",
    "runs.csv",
    "bars.png",
    "bars.svg",
];
/// The files `fsnn report` writes.
pub const REPORT_FILES: &[&str] = &[
    "report.md",
    "report.csv",
    "pareto-spikes.svg",
    "pareto-spikes.png",
    "pareto-energy.svg",
    "pareto-energy.png",
];
/// Besides reports: the results and a Slurm task's notes (`shard-I/`).
const SWEEP_FILES: &[&str] = &["results.jsonl", "task.txt"];
/// What `fsnn sweep --slurm` keeps next to its shards.
const SLURM_FILES: &[&str] = &["slurm.json", "fsnn-sweep.sbatch"];

impl Kind {
    /// Whether a file `name` in this kind's directory is one it writes.
    fn writes_file(self, name: &str) -> bool {
        match self {
            Kind::Run => RUN_FILES.contains(&name),
            Kind::Convert => CONVERT_FILES.contains(&name),
            Kind::Fit => FIT_FILES.contains(&name),
            Kind::Compare => COMPARE_FILES.contains(&name),
            Kind::Sweep => SWEEP_FILES.contains(&name) || REPORT_FILES.contains(&name),
            Kind::Report => {
                REPORT_FILES.contains(&name)
                    || SWEEP_FILES.contains(&name)
                    || SLURM_FILES.contains(&name)
            }
        }
    }

    /// The kind of a known subdirectory `name`, if this kind has one.
    fn subdir(self, name: &str) -> Option<Kind> {
        let shard = name
            .strip_prefix("shard-")
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()));
        match self {
            Kind::Convert if name == "finetune" => Some(Kind::Run),
            Kind::Report if shard => Some(Kind::Sweep),
            // Slurm logs: only a report (which never removes) accepts them.
            Kind::Report if name == "logs" => Some(Kind::Report),
            _ => None,
        }
    }

    /// What this kind's directory holds, for messages.
    fn what(self) -> &'static str {
        match self {
            Kind::Run => "training run",
            Kind::Convert => "conversion",
            Kind::Fit => "table fit",
            Kind::Compare => "comparison",
            Kind::Report => "report",
            Kind::Sweep => "sweep",
        }
    }
}

/// Whether `name` is fsnn's own bookkeeping: lock files (`.fsnn.lock`,
/// the Slurm submitter's `.fsnn-slurm.lock`) and temporaries.
fn is_bookkeeping(name: &str) -> bool {
    let lock = name.starts_with(".fsnn") && name.ends_with(".lock");
    name == LOCK_FILE || lock || name.starts_with(TEMP_PREFIX)
}

/// The entries of `dir` (names, bookkeeping left out), sorted, each with
/// whether it is a directory.
fn entries(dir: &Path) -> Result<Vec<(String, bool)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if is_bookkeeping(&name) {
            continue;
        }
        // A link counts as a file: it is never followed when removing.
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        v.push((name, is_dir));
    }
    v.sort();
    Ok(v)
}

/// Entries of `dir` that `kind` does not write (paths relative to `dir`,
/// known subdirectories checked inside).
fn foreign(dir: &Path, kind: Kind) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (name, is_dir) in entries(dir)? {
        match (is_dir, kind.subdir(&name)) {
            (true, Some(_)) if kind == Kind::Report => {}
            (true, Some(sub)) => {
                let inner = foreign(&dir.join(&name), sub)?;
                out.extend(inner.into_iter().map(|n| format!("{name}/{n}")));
            }
            (false, _) if kind.writes_file(&name) => {}
            _ => out.push(name),
        }
    }
    Ok(out)
}

/// At most three names, then "and N more".
fn some_names(names: &[String]) -> String {
    let mut s = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        s.push_str(&format!(" and {} more", names.len() - 3));
    }
    s
}

/// Remove fsnn's temporaries left in `dir` by a process killed mid-write.
/// Call only while holding `dir`'s lock alone. Returns how many it removed.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let mut n = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if is_file && name.to_string_lossy().starts_with(TEMP_PREFIX) {
            std::fs::remove_file(e.path()).map_err(|err| Error::io(&e.path(), err))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Remove the entries of `dir` (checked by the caller to be results that
/// fsnn wrote), keeping the lock file.
fn remove_results(dir: &Path) -> Result<()> {
    for (name, is_dir) in entries(dir)? {
        let p = dir.join(&name);
        if is_dir {
            std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        } else {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

/// A claimed output directory: it stays locked while this lives.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    /// The held lock.
    pub lock: DirLock,
}

impl OutDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Refuse a path that exists but is not a directory (checked before any
/// work, so that bad input writes nothing).
pub fn check_path(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::file(
            dir,
            "output path exists and is not a directory",
        ));
    }
    Ok(())
}

/// Check `dir` as [`claim`] would, without creating, locking or removing
/// anything: for commands that work long before they write, so that a
/// directory they may not use is refused at once. (Run-directory kinds
/// only check that no one holds the lock; sweeps share it.)
pub fn precheck(dir: &Path, kind: Kind, how: Claim) -> Result<()> {
    check_path(dir)?;
    if !dir.is_dir() {
        return Ok(());
    }
    let overwrite = how == Claim::Fresh { overwrite: true };
    match kind {
        Kind::Sweep | Kind::Report => refuse_foreign(dir, kind, overwrite),
        _ => {
            DirLock::check_free(dir)?;
            if how == Claim::Resume {
                return Ok(());
            }
            fresh_check(dir, kind, overwrite).map(|_| ())
        }
    }
}

/// Create (if needed), lock and check `dir` for `kind` under the rules of
/// this module; with [`Claim::Fresh`] `{ overwrite: true }` remove earlier
/// results of the same kind.
pub fn claim(dir: &Path, kind: Kind, how: Claim) -> Result<OutDir> {
    check_path(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let overwrite = how == Claim::Fresh { overwrite: true };
    let lock = match kind {
        Kind::Sweep | Kind::Report => {
            let mut wiped = Ok(());
            let lock = DirLock::shared(dir, || {
                remove_stale_temps(dir)?;
                if overwrite {
                    wiped = refuse_foreign(dir, kind, true).and_then(|_| remove_results(dir));
                }
                Ok(())
            })?;
            if overwrite && !lock.alone {
                return Err(Error::file(
                    dir,
                    "--overwrite: other fsnn processes are using this directory; wait for them to finish",
                ));
            }
            wiped?;
            if !overwrite {
                refuse_foreign(dir, kind, false)?;
            }
            lock
        }
        _ => {
            let lock = DirLock::exclusive(dir)?;
            remove_stale_temps(dir)?;
            if how != Claim::Resume && fresh_check(dir, kind, overwrite)? {
                remove_results(dir)?;
            }
            lock
        }
    };
    Ok(OutDir {
        path: dir.to_path_buf(),
        lock,
    })
}

/// Refuse `dir` if it holds anything `kind` does not write there.
fn refuse_foreign(dir: &Path, kind: Kind, overwrite: bool) -> Result<()> {
    let alien = foreign(dir, kind)?;
    if alien.is_empty() {
        return Ok(());
    }
    let verb = if overwrite {
        "not removing anything: "
    } else {
        ""
    };
    Err(Error::file(
        dir,
        format!(
            "{verb}holds {}, which fsnn's {} does not write; give --out a new or empty directory",
            some_names(&alien),
            kind.what()
        ),
    ))
}

/// A fresh run's directory must be empty, or hold only earlier results
/// of the same kind and `overwrite` (then the result is true: remove them).
fn fresh_check(dir: &Path, kind: Kind, overwrite: bool) -> Result<bool> {
    let here: Vec<String> = entries(dir)?.into_iter().map(|(n, _)| n).collect();
    if here.is_empty() {
        return Ok(false);
    }
    refuse_foreign(dir, kind, overwrite)?;
    if !overwrite {
        let resume = if kind == Kind::Run && here.iter().any(|n| n == "state.safetensors") {
            format!(", or --resume {} to continue it", dir.display())
        } else {
            String::new()
        };
        return Err(Error::file(
            dir,
            format!(
                "already holds a {} ({}); pass --overwrite to replace it{resume}, or choose another --out",
                kind.what(),
                some_names(&here)
            ),
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
