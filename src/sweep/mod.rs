//! `fsnn sweep`: expand a grid file into runs, train them in parallel
//! (one single-threaded training per worker), and append each finished run
//! to `DIR/results.jsonl`. Rerunning resumes; `--shard I/N` runs a share.
//! Shards (and identical sweeps) may share `DIR` at once: each appends
//! under a short lock and skips runs another process has recorded; a
//! directory holding another grid's results is refused.

pub mod grid;
pub mod results;
pub mod runner;
pub mod slurm;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub use grid::{Grid, RunSpec, Shard};
pub use results::RunRecord;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::outdir::{Claim, Kind};
use crate::run::load_data;

/// Options of `fsnn sweep`.
#[derive(Clone, Debug, Default)]
pub struct SweepOptions {
    /// Grid file.
    pub grid: PathBuf,
    /// Worker threads (default: available cores).
    pub jobs: Option<usize>,
    /// `I/N` shard spec.
    pub shard: Option<String>,
    /// Output directory (default `sweeps/<grid file stem>`).
    pub out: Option<PathBuf>,
    /// Dataset directory.
    pub data: Option<PathBuf>,
    /// No progress display and no per-run lines.
    pub quiet: bool,
    /// Remove the results of another grid in `out` first.
    pub overwrite: bool,
}

/// What a sweep did.
#[derive(Clone, Debug)]
pub struct SweepOutcome {
    /// Output directory.
    pub out: PathBuf,
    /// Runs in the whole grid.
    pub grid_runs: usize,
    /// Runs in this shard.
    pub shard_runs: usize,
    /// Runs of this shard already in the results file, or recorded by
    /// another process while this one ran (skipped).
    pub skipped: usize,
    /// Runs trained now.
    pub trained: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// `α/K` label in the design document's style: `[1,2,3,2,1] / [4,3,3,3,2]`.
pub fn alpha_k_label(alpha: &[f32], k: &[usize]) -> String {
    let a: Vec<String> = alpha.iter().map(|x| format!("{x}")).collect();
    let k: Vec<String> = k.iter().map(|x| x.to_string()).collect();
    format!("[{}] / [{}]", a.join(","), k.join(","))
}

/// Last component of a dotted key: `model.surrogate.width` → `width`.
pub fn short_key(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// A JSON value as plain text (strings without quotes).
pub fn value_str(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Key of the data a config needs (runs with equal keys share the data).
pub fn data_key(cfg: &Config) -> String {
    serde_json::to_string(&cfg.data).expect("data section serialises")
}

/// Results file of an output directory.
pub fn results_path(out: &Path) -> PathBuf {
    out.join("results.jsonl")
}

/// The error for a results file holding a run of another grid.
fn another_grid(out: &Path, grid: &Path, r: &RunRecord) -> Error {
    Error::file(
        out,
        format!(
            "holds results of another grid (run {}, {}), not of {}; use another --out, or --overwrite to replace them",
            r.run_id,
            r.config.name,
            grid.display()
        ),
    )
}

/// A first look at `out`'s results without the lock, to load only the
/// data still needed and to refuse another grid's directory before
/// anything is written: the run ids recorded (all of them in `all`).
fn first_look(out: &Path, grid: &Path, all: &HashSet<String>) -> Result<HashSet<String>> {
    let existing = results::read(&results_path(out))?;
    if let Some(r) = existing.records.iter().find(|r| !all.contains(&r.run_id)) {
        return Err(another_grid(out, grid, r));
    }
    Ok(existing.records.into_iter().map(|r| r.run_id).collect())
}

/// Load each distinct data section of `specs` once; workers share it.
fn load_needed<'a>(
    specs: impl Iterator<Item = &'a RunSpec>,
    dir: Option<&Path>,
) -> Result<HashMap<String, runner::SharedData>> {
    let mut data = HashMap::new();
    for spec in specs {
        let key = data_key(&spec.config);
        if let std::collections::hash_map::Entry::Vacant(slot) = data.entry(key) {
            slot.insert(Arc::new(load_data(&spec.config, dir)?));
        }
    }
    Ok(data)
}

/// Run `fsnn sweep`. The grid, the shard spec, the output path and the
/// data are all checked before anything is written.
pub fn sweep(opts: &SweepOptions) -> Result<SweepOutcome> {
    let t0 = Instant::now();
    let shard = match &opts.shard {
        Some(s) => Shard::parse(s)?,
        None => Shard::ALL,
    };
    if opts.jobs == Some(0) {
        return Err(Error::config("--jobs", "must be at least 1"));
    }
    let grid = Grid::load(&opts.grid)?;
    let out = opts.out.clone().unwrap_or_else(|| {
        let stem = opts
            .grid
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("sweep");
        PathBuf::from("sweeps").join(stem)
    });
    let claim = Claim::Fresh {
        overwrite: opts.overwrite,
    };
    crate::outdir::precheck(&out, Kind::Sweep, claim)?;
    let path = results_path(&out);
    let all: HashSet<String> = grid.runs.iter().map(|r| r.run_id.clone()).collect();
    let done = if opts.overwrite {
        HashSet::new()
    } else {
        first_look(&out, &opts.grid, &all)?
    };
    let mine: Vec<&RunSpec> = grid
        .runs
        .iter()
        .filter(|r| shard.contains(r.index))
        .collect();
    let todo = mine.iter().filter(|r| !done.contains(&r.run_id));
    let data = load_needed(todo.copied(), opts.data.as_deref())?;
    let _dir = crate::outdir::claim(&out, Kind::Sweep, claim)?;
    let writer = results::Writer::open(&path, all)?;
    // Now under the lock: what other processes finished meanwhile counts.
    let pending: Vec<RunSpec> = mine
        .iter()
        .filter(|r| !writer.recorded().contains(&r.run_id))
        .map(|r| (*r).clone())
        .collect();
    let skipped = mine.len() - pending.len();
    let jobs = opts.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if !opts.quiet {
        println!(
            "sweep {}: {} runs in the grid, {} in shard {}/{}, {} already done, {} to train on {} jobs",
            opts.grid.display(),
            grid.runs.len(),
            mine.len(),
            shard.index,
            shard.count,
            skipped,
            pending.len(),
            jobs.min(pending.len().max(1))
        );
    }
    let trained = pending.len();
    let writer = std::sync::Mutex::new(writer);
    let tally = runner::run_all(pending, jobs, &data, &writer, opts.quiet)?;
    let failed = tally.failed;
    let outcome = SweepOutcome {
        out: out.clone(),
        grid_runs: grid.runs.len(),
        shard_runs: mine.len(),
        skipped: skipped + tally.elsewhere,
        trained: trained - failed - tally.elsewhere,
        seconds: t0.elapsed().as_secs_f64(),
    };
    if !opts.quiet {
        println!(
            "{} runs trained in {:.1}s; results in {} (fsnn report {})",
            outcome.trained,
            outcome.seconds,
            path.display(),
            path.display()
        );
    }
    if failed > 0 {
        return Err(Error::Sweep(format!(
            "{failed} of {trained} runs failed (see above); rerun to retry them"
        )));
    }
    Ok(outcome)
}
