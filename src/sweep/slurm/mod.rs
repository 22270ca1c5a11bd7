//! `fsnn sweep --slurm`: run a grid as a Slurm job array, one task per
//! shard, each task with its own results file `DIR/shard-I/results.jsonl`.
//!
//! The batch script `DIR/fsnn-sweep.sbatch` is written where users can read
//! and adapt it; `DIR/slurm.json` records the grid, the number of shards and
//! every submission, so that rerunning the same command resubmits only the
//! shards that are neither finished nor still queued, and so that
//! `fsnn sweep status DIR` can tell what happened to each task.
//!
//! Task states come from `squeue --me -t all` (finished jobs stay visible
//! for `MinJobAge`, 300 s by default), then from the states recorded while
//! waiting, then from `sacct` (when the cluster keeps accounting), and last
//! from the task's own notes in `DIR/shard-I/task.txt` and its log.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::grid::{Grid, Shard};
use super::results;
use crate::error::{Error, Result};
use crate::outdir::DirLock;
use crate::report::output::atomic_write;

mod script;
mod status;

pub use script::*;
pub use status::*;

/// Options of `fsnn sweep --slurm`.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    /// Grid file.
    pub grid: PathBuf,
    /// Output directory (default `sweeps/<grid file stem>`); must be on a
    /// filesystem the compute nodes share.
    pub out: Option<PathBuf>,
    /// Dataset directory passed to every task.
    pub data: Option<PathBuf>,
    /// `--jobs` of every task (default: `$SLURM_CPUS_PER_TASK`).
    pub jobs: Option<usize>,
    /// Number of array tasks = shards (default: one per run, at most 100).
    pub array_size: Option<usize>,
    /// `#SBATCH --partition`.
    pub partition: Option<String>,
    /// `#SBATCH --time` (`HH:MM:SS`, or any format Slurm accepts).
    pub time: Option<String>,
    /// `#SBATCH --cpus-per-task` (default 1).
    pub cpus_per_task: Option<usize>,
    /// Further `#SBATCH` options, e.g. `--mem=4G`.
    pub sbatch_args: Vec<String>,
    /// Return after submitting (print the job id) instead of waiting.
    pub no_wait: bool,
    /// No progress display.
    pub quiet: bool,
}

/// Name of the state file in the output directory.
pub const STATE_FILE: &str = "slurm.json";
/// Name of the batch script in the output directory.
pub const SCRIPT_FILE: &str = "fsnn-sweep.sbatch";
/// Lock file of the one process that submits and waits for a Slurm sweep
/// (reports and `fsnn sweep status` share the directory meanwhile).
pub const SUBMIT_LOCK: &str = ".fsnn-slurm.lock";
/// Default cap of `--array-size` when it is not given.
pub const DEFAULT_MAX_TASKS: usize = 100;

/// One `sbatch` submission.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Submission {
    /// Slurm's array job id.
    pub job_id: String,
    /// Array indices submitted (= shard indices).
    pub tasks: Vec<usize>,
    /// Seconds since the Unix epoch.
    pub submitted: u64,
    /// Final states seen so far, by task (`COMPLETED`, `CANCELLED`, …).
    #[serde(default)]
    pub final_states: BTreeMap<usize, String>,
}

/// `DIR/slurm.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SlurmState {
    /// Absolute grid path.
    pub grid: PathBuf,
    /// Number of shards (array tasks) — fixed for the directory.
    pub array_size: usize,
    /// Every submission, oldest first.
    pub submissions: Vec<Submission>,
}

impl SlurmState {
    /// Read `DIR/slurm.json`; `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<SlurmState>> {
        let p = dir.join(STATE_FILE);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::file(&p, format!("cannot parse: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// Write it atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("state serialises");
        atomic_write(&dir.join(STATE_FILE), (text + "\n").as_bytes())
    }

    /// The latest submission of task `i`.
    pub fn latest(&self, i: usize) -> Option<&Submission> {
        self.submissions.iter().rev().find(|s| s.tasks.contains(&i))
    }
}

/// Results directory of shard `i`.
pub fn shard_dir(out: &Path, i: usize) -> PathBuf {
    out.join(format!("shard-{i}"))
}

/// Log file of task `i` of array job `job`.
pub fn log_path(out: &Path, job: &str, i: usize) -> PathBuf {
    out.join("logs").join(format!("{job}_{i}.out"))
}

/// Submit `script` for `tasks`; returns the job id.
fn submit(script: &Path, tasks: &[usize]) -> Result<String> {
    let args = vec![
        "--parsable".to_string(),
        format!("--array={}", format_indices(tasks)),
        script.display().to_string(),
    ];
    let o = slurm_cmd("sbatch", &args)?;
    if !o.status.success() {
        return Err(Error::Slurm(format!(
            "sbatch refused the job: {}",
            slurm_reason(&o.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&o.stdout);
    // `--parsable`: "jobid" or "jobid;cluster".
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Slurm(format!(
            "sbatch answered {:?}, not a job id",
            text.trim()
        )));
    }
    Ok(id)
}

/// Seconds between two looks at squeue and the results files while waiting
/// (`$FSNN_SLURM_POLL`, default 5).
fn poll_interval() -> Duration {
    let secs = std::env::var("FSNN_SLURM_POLL")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(5.0);
    Duration::from_secs_f64(secs)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What `fsnn sweep --slurm` did.
#[derive(Clone, Debug)]
pub struct SlurmOutcome {
    /// Output directory (absolute).
    pub out: PathBuf,
    /// Job id submitted now, if any.
    pub job_id: Option<String>,
    /// Tasks submitted now.
    pub submitted: Vec<usize>,
    /// Runs done, runs in the grid (when waiting: at the end).
    pub runs: (usize, usize),
}

/// `fsnn sweep --slurm`.
pub fn sweep_slurm(opts: &SlurmOptions) -> Result<SlurmOutcome> {
    // Before anything is read or written: what goes into the script, and
    // the Slurm client.
    check_inputs(opts)?;
    for cmd in ["sbatch", "squeue"] {
        if which(cmd).is_none() {
            return Err(Error::Slurm(format!(
                "{cmd} not found on PATH: --slurm needs the Slurm client commands (sbatch, squeue) on this machine"
            )));
        }
    }
    if opts.jobs == Some(0) {
        return Err(Error::config("--jobs", "must be at least 1"));
    }
    if opts.cpus_per_task == Some(0) {
        return Err(Error::arg("--cpus-per-task", "must be at least 1"));
    }
    let grid = Grid::load(&opts.grid)?;
    let grid_path = std::fs::canonicalize(&opts.grid).map_err(|e| Error::io(&opts.grid, e))?;
    let out = absolute(&opts.out.clone().unwrap_or_else(|| {
        let stem = opts
            .grid
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("sweep");
        PathBuf::from("sweeps").join(stem)
    }))?;
    if out.exists() && !out.is_dir() {
        return Err(Error::file(
            &out,
            "output path exists and is not a directory",
        ));
    }
    let data = opts.data.as_deref().map(absolute).transpose()?;
    // One submitter per directory: a second one would submit the same
    // tasks again and overwrite the first one's slurm.json.
    let _submitter = if out.is_dir() {
        Some(DirLock::exclusive_on(&out, SUBMIT_LOCK)?)
    } else {
        None
    };
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::Slurm(format!("cannot find the fsnn binary: {e}")))?;
    let runs = grid.runs.len();
    let previous = SlurmState::load(&out)?;
    let recorded = previous.clone();
    let array_size = match (&previous, opts.array_size) {
        (Some(p), Some(n)) if p.array_size != n => {
            return Err(Error::arg(
                "--array-size",
                format!(
                    "{} was submitted with --array-size {}; shards must stay the same, so use {} again (or another --out)",
                    out.display(),
                    p.array_size,
                    p.array_size
                ),
            ));
        }
        (_, Some(n)) => n,
        (Some(p), None) => p.array_size,
        (None, None) => runs.min(DEFAULT_MAX_TASKS),
    };
    if array_size == 0 || array_size > runs {
        return Err(Error::arg(
            "--array-size",
            format!("{array_size}: must be 1 to {runs} (the number of runs in the grid)"),
        ));
    }
    Shard::parse(&format!("0/{array_size}"))?;
    if let Some(p) = &previous
        && p.grid != grid_path
    {
        return Err(Error::arg(
            "--out",
            format!(
                "{} holds a sweep of {}, not of {}; use another --out",
                out.display(),
                p.grid.display(),
                grid_path.display()
            ),
        ));
    }
    if out.join("results.jsonl").exists() && previous.is_none() {
        return Err(Error::arg(
            "--out",
            format!(
                "{} holds a sweep run without --slurm; use another --out",
                out.display()
            ),
        ));
    }
    let mut state = previous.unwrap_or(SlurmState {
        grid: grid_path.clone(),
        array_size,
        submissions: Vec::new(),
    });
    let before = inspect(&out, &state, &grid, true);
    if let Some(e) = &before.squeue_error
        && !state.submissions.is_empty()
    {
        return Err(Error::Slurm(e.clone()));
    }
    state = before.state.clone();
    let missing: Vec<usize> = before
        .shards
        .iter()
        .filter(|s| matches!(s.fate, Fate::Failed(_) | Fate::NotSubmitted))
        .map(|s| s.index)
        .collect();
    let say = |line: &str| {
        if !opts.quiet {
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    };
    for s in &before.shards {
        if let Fate::Failed(why) = &s.fate {
            say(&format!("{why}: resubmitting it"));
        }
    }
    let mut job_id = None;
    let _submitter = match _submitter {
        Some(l) => l,
        None => {
            std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
            DirLock::exclusive_on(&out, SUBMIT_LOCK)?
        }
    };
    if !missing.is_empty() {
        let text = batch_script(
            &exe,
            &grid_path,
            &out,
            data.as_deref(),
            array_size,
            runs,
            opts,
        )?;
        std::fs::create_dir_all(out.join("logs")).map_err(|e| Error::io(&out, e))?;
        let script = out.join(SCRIPT_FILE);
        atomic_write(&script, text.as_bytes())?;
        let id = submit(&script, &missing)?;
        state.submissions.push(Submission {
            job_id: id.clone(),
            tasks: missing.clone(),
            submitted: now_secs(),
            final_states: BTreeMap::new(),
        });
        state.save(&out)?;
        say(&format!(
            "submitted job {id}: array tasks {} of {array_size} ({} of {runs} runs not done yet); script {}, logs {}",
            format_indices(&missing),
            runs - before.runs().0,
            script.display(),
            out.join("logs").display()
        ));
        job_id = Some(id);
    } else if recorded.as_ref().is_some_and(|r| *r != state) {
        // Keep the final states squeue showed (they vanish after MinJobAge).
        state.save(&out)?;
    }
    let active: Vec<&Submission> = state
        .submissions
        .iter()
        .filter(|s| {
            before.shards.iter().any(|sh| {
                matches!(sh.fate, Fate::Active(_)) && sh.job.as_deref() == Some(&s.job_id)
            })
        })
        .collect();
    if missing.is_empty() && active.is_empty() {
        say(&format!(
            "all {runs} runs of {} are done; fsnn report {}",
            opts.grid.display(),
            out.display()
        ));
        return Ok(SlurmOutcome {
            out,
            job_id: None,
            submitted: missing,
            runs: before.runs(),
        });
    }
    if opts.no_wait {
        // The job id alone on stdout, for scripts; the rest went to stdout above.
        let mut ids: Vec<String> = active.iter().map(|s| s.job_id.clone()).collect();
        ids.extend(job_id.clone());
        ids.dedup();
        println!("{}", ids.join(" "));
        return Ok(SlurmOutcome {
            out,
            job_id,
            submitted: missing,
            runs: before.runs(),
        });
    }
    if missing.is_empty() {
        let ids: Vec<&str> = active.iter().map(|s| s.job_id.as_str()).collect();
        say(&format!(
            "nothing to resubmit; waiting for job {}",
            ids.join(", ")
        ));
    }
    let end = wait(&out, &mut state, &grid, opts.quiet)?;
    let (d, t) = end.runs();
    let failures = end.failures();
    if !failures.is_empty() {
        return Err(Error::Slurm(format!(
            "{} of {} tasks did not finish ({d}/{t} runs done): {}; rerun the same command to resubmit the missing tasks",
            failures.len(),
            end.shards.len(),
            failures.join("; ")
        )));
    }
    say(&format!(
        "all {t} runs done; fsnn report {} (or fsnn sweep status {})",
        out.display(),
        out.display()
    ));
    Ok(SlurmOutcome {
        out,
        job_id,
        submitted: missing,
        runs: (d, t),
    })
}

/// Wait until no task is queued or running, showing progress.
fn wait(out: &Path, state: &mut SlurmState, grid: &Grid, quiet: bool) -> Result<SweepStatus> {
    let tty = std::io::stderr().is_terminal() && !quiet;
    let (_, total) = inspect(out, state, grid, false).runs();
    let pb = if tty {
        let pb = crate::progress::ProgressBar::new(total as u64);
        pb.set_style(
            crate::progress::ProgressStyle::with_template(
                "slurm [{bar:30}] {pos}/{len} runs  {elapsed_precise}  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb.enable_steady_tick(Duration::from_millis(500));
        Some(pb)
    } else {
        None
    };
    let poll = poll_interval();
    let mut last_line = String::new();
    let t0 = Instant::now();
    let mut squeue_failures = 0;
    loop {
        let st = inspect(out, state, grid, true);
        if let Some(e) = &st.squeue_error {
            // A busy controller may time out now and then; give up after a few.
            squeue_failures += 1;
            if squeue_failures >= 5 {
                if let Some(pb) = &pb {
                    pb.finish_and_clear();
                }
                return Err(Error::Slurm(e.clone()));
            }
        } else {
            squeue_failures = 0;
            if st.state != *state {
                *state = st.state.clone();
                state.save(out)?;
            }
        }
        let line = st.progress_line();
        match &pb {
            Some(pb) => {
                pb.set_position(st.runs().0 as u64);
                pb.set_message(line.clone());
            }
            None if !quiet && line != last_line => {
                let _ = writeln!(
                    std::io::stdout(),
                    "[{:.0}s] {line}",
                    t0.elapsed().as_secs_f64()
                );
            }
            None => {}
        }
        last_line = line;
        let (r, p) = st.active();
        if st.squeue_error.is_none() && r + p == 0 {
            if let Some(pb) = &pb {
                pb.finish_and_clear();
            }
            return Ok(st);
        }
        std::thread::sleep(poll);
    }
}

/// `fsnn sweep status DIR`: print the state of every task; returns it.
pub fn status(dir: &Path, quiet: bool) -> Result<SweepStatus> {
    let Some(state) = SlurmState::load(dir)? else {
        if dir.join("results.jsonl").is_file() {
            let f = results::read(&dir.join("results.jsonl"))?;
            return Err(Error::file(
                dir,
                format!(
                    "not a Slurm sweep (no {STATE_FILE}); its results.jsonl holds {} runs",
                    f.records.len()
                ),
            ));
        }
        return Err(Error::file(
            dir,
            format!("no {STATE_FILE}: not the output directory of fsnn sweep --slurm"),
        ));
    };
    let grid = Grid::load(&state.grid)?;
    let st = inspect(dir, &state, &grid, true);
    // Keep final states squeue shows now, unless a submitter is at work
    // (it keeps its own records); failing to is not an error.
    if st.squeue_error.is_none()
        && st.state != state
        && DirLock::check_free_on(dir, SUBMIT_LOCK).is_ok()
    {
        let _ = st.state.save(dir);
    }
    if !quiet {
        let mut o = String::new();
        let jobs: Vec<String> = st
            .state
            .submissions
            .iter()
            .map(|s| format!("job {} (tasks {})", s.job_id, format_indices(&s.tasks)))
            .collect();
        o.push_str(&format!(
            "{}: {} on Slurm, {} tasks; {}\n",
            dir.display(),
            state.grid.display(),
            state.array_size,
            if jobs.is_empty() {
                "nothing submitted".to_string()
            } else {
                jobs.join(", ")
            }
        ));
        o.push_str(&st.progress_line());
        o.push('\n');
        if let Some(e) = &st.squeue_error {
            o.push_str(&format!("(squeue not available: {e})\n"));
        }
        for s in &st.shards {
            let what = match &s.fate {
                Fate::Done => "done".to_string(),
                Fate::Active(state) => format!(
                    "{} (job {}_{})",
                    state.to_lowercase(),
                    s.job.as_deref().unwrap_or("?"),
                    s.index
                ),
                Fate::NotSubmitted => "not submitted".to_string(),
                Fate::Failed(why) => why.clone(),
            };
            o.push_str(&format!(
                "  task {:>3}  {}/{} runs  {what}\n",
                s.index, s.runs_done, s.runs_total
            ));
        }
        print!("{o}");
    }
    Ok(st)
}

/// Results files of a sweep directory: `DIR/results.jsonl` and every
/// `DIR/shard-I/results.jsonl`, in shard order.
pub fn results_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let top = super::results_path(dir);
    if top.is_file() {
        files.push(top);
    }
    let mut shards: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let i = name.to_str()?.strip_prefix("shard-")?.parse().ok()?;
            let p = super::results_path(&e.path());
            p.is_file().then_some((i, p))
        })
        .collect();
    shards.sort();
    files.extend(shards.into_iter().map(|(_, p)| p));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_round_trip() {
        assert_eq!(format_indices(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_indices(&[3]), "3");
        assert_eq!(parse_indices("[0-2,5%2]"), vec![0, 1, 2, 5]);
        assert_eq!(parse_indices("4"), vec![4]);
        assert_eq!(parse_indices("N/A"), Vec::<usize>::new());
    }

    #[test]
    fn reasons() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        let log = out.join("logs/7_1.out");
        // Nothing visible at all: the filesystem is not shared.
        let r = failure_reason(out, 1, "7", Some("COMPLETED"), false, None, false, &log);
        assert!(
            r.contains("not on a filesystem the compute nodes share"),
            "{r}"
        );
        let r = failure_reason(out, 1, "7", None, false, None, false, &log);
        assert!(r.contains("not on a filesystem"), "{r}");
        // ... unless its sibling tasks wrote there: then it never ran.
        let r = failure_reason(out, 1, "7", None, false, None, true, &log);
        assert!(r.contains("cancelled or removed before it started"), "{r}");
        // Cancelled while pending: no log either, but squeue says why.
        let r = failure_reason(out, 1, "7", Some("CANCELLED"), false, None, true, &log);
        assert!(r.contains("cancelled before it started"), "{r}");
        std::fs::create_dir_all(out.join("logs")).unwrap();
        std::fs::write(
            &log,
            "slurmstepd: error: *** JOB 8 ON n CANCELLED AT x ***\n",
        )
        .unwrap();
        let r = failure_reason(out, 1, "7", None, true, None, true, &log);
        assert!(r.contains("was cancelled") && r.contains("log: "), "{r}");
        let r = failure_reason(out, 1, "7", Some("FAILED"), true, Some(2), true, &log);
        assert!(r.contains("exit status 2"), "{r}");
        assert!(!r.contains('\n'));
    }
}
