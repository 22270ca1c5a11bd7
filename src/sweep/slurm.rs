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
use crate::report::output::atomic_write;

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

/// Slurm job states after which a task is over.
pub fn is_final(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "CANCELLED"
            | "FAILED"
            | "TIMEOUT"
            | "NODE_FAIL"
            | "PREEMPTED"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "OUT_OF_MEMORY"
            | "REVOKED"
            | "SPECIAL_EXIT"
    )
}

/// What became of one shard.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    /// Every run of the shard is in its results file.
    Done,
    /// Queued or running (the Slurm state).
    Active(String),
    /// Never submitted.
    NotSubmitted,
    /// Its task is over but runs are missing; the one-line reason.
    Failed(String),
}

/// One shard as seen now.
#[derive(Clone, Debug)]
pub struct ShardStatus {
    /// Shard = array index.
    pub index: usize,
    /// Runs of the grid in this shard.
    pub runs_total: usize,
    /// Of those, runs in the shard's results file.
    pub runs_done: usize,
    /// Latest job id of this task, if submitted.
    pub job: Option<String>,
    /// Log of the latest task.
    pub log: Option<PathBuf>,
    /// What became of it.
    pub fate: Fate,
}

/// Everything `status` shows.
#[derive(Clone, Debug)]
pub struct SweepStatus {
    /// Output directory.
    pub out: PathBuf,
    /// The recorded state (with final states seen now added).
    pub state: SlurmState,
    /// One entry per shard.
    pub shards: Vec<ShardStatus>,
    /// Why squeue could not be asked, if it could not.
    pub squeue_error: Option<String>,
}

impl SweepStatus {
    /// Runs done, runs in the grid.
    pub fn runs(&self) -> (usize, usize) {
        self.shards
            .iter()
            .fold((0, 0), |(d, t), s| (d + s.runs_done, t + s.runs_total))
    }

    /// Shards done.
    pub fn tasks_done(&self) -> usize {
        self.shards.iter().filter(|s| s.fate == Fate::Done).count()
    }

    /// Shards queued or running: (running, pending).
    pub fn active(&self) -> (usize, usize) {
        let mut r = 0;
        let mut p = 0;
        for s in &self.shards {
            if let Fate::Active(st) = &s.fate {
                if st == "PENDING" {
                    p += 1;
                } else {
                    r += 1;
                }
            }
        }
        (r, p)
    }

    /// One-line progress: tasks and runs.
    pub fn progress_line(&self) -> String {
        let (d, t) = self.runs();
        let (r, p) = self.active();
        let failed = self
            .shards
            .iter()
            .filter(|s| matches!(s.fate, Fate::Failed(_)))
            .count();
        let mut s = format!(
            "tasks {}/{} done ({r} running, {p} pending",
            self.tasks_done(),
            self.shards.len()
        );
        if failed > 0 {
            s.push_str(&format!(", {failed} failed"));
        }
        s.push_str(&format!("), runs {d}/{t} done"));
        s
    }

    /// The failed shards' reasons, joined on one line.
    pub fn failures(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter_map(|s| match &s.fate {
                Fate::Failed(why) => Some(why.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Find `name` on `$PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Run a Slurm client command; `Err` when it cannot be started.
fn slurm_cmd(name: &str, args: &[String]) -> Result<std::process::Output> {
    Command::new(name).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Slurm(format!(
                "{name} not found on PATH: --slurm needs the Slurm client commands (sbatch, squeue) on this machine"
            ))
        } else {
            Error::Slurm(format!("cannot run {name}: {e}"))
        }
    })
}

/// Slurm's message from a command's stderr, on one line.
fn slurm_reason(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let parts: Vec<&str> = text
        .lines()
        .map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("sbatch: error: ").unwrap_or(l);
            let l = l.strip_prefix("squeue: error: ").unwrap_or(l);
            l.strip_prefix("error: ").unwrap_or(l)
        })
        .filter(|l| !l.is_empty())
        .collect();
    if parts.is_empty() {
        "no reason given".into()
    } else {
        parts.join("; ")
    }
}

/// Parse an array index list as Slurm prints it: `3`, `0-2`, `[1-3,5]`,
/// `[0-9%2]`.
pub fn parse_indices(s: &str) -> Vec<usize> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.trim().parse() {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Compress indices into Slurm's `--array` syntax: `0-2,5`.
pub fn format_indices(idx: &[usize]) -> String {
    let mut v: Vec<usize> = idx.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}-{}", v[i], v[j])
        } else {
            v[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

/// States of the tasks of `jobs` known to `squeue` (queued, running, or
/// finished within `MinJobAge`): (job id, task) → state.
pub fn squeue_states(jobs: &BTreeSet<String>) -> Result<BTreeMap<(String, usize), String>> {
    let mut out = BTreeMap::new();
    if jobs.is_empty() {
        return Ok(out);
    }
    let args: Vec<String> = ["--me", "-h", "-r", "-t", "all", "-o", "%F|%K|%T"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = slurm_cmd("squeue", &args)?;
    if !o.status.success() {
        return Err(Error::Slurm(format!(
            "squeue failed: {}",
            slurm_reason(&o.stderr)
        )));
    }
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        if f.len() != 3 || !jobs.contains(f[0]) {
            continue;
        }
        for i in parse_indices(f[1]) {
            out.insert((f[0].to_string(), i), f[2].to_string());
        }
    }
    Ok(out)
}

/// Final states from `sacct`, when the cluster keeps accounting (else empty).
fn sacct_states(jobs: &BTreeSet<String>) -> BTreeMap<(String, usize), String> {
    let mut out = BTreeMap::new();
    if jobs.is_empty() || which("sacct").is_none() {
        return out;
    }
    let ids: Vec<&str> = jobs.iter().map(|s| s.as_str()).collect();
    let args: Vec<String> = vec![
        "-n".into(),
        "-P".into(),
        "-X".into(),
        "-o".into(),
        "JobID,State".into(),
        "-j".into(),
        ids.join(","),
    ];
    let Ok(o) = slurm_cmd("sacct", &args) else {
        return out;
    };
    if !o.status.success() {
        return out;
    }
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let Some((id, state)) = line.trim().split_once('|') else {
            continue;
        };
        let Some((job, task)) = id.split_once('_') else {
            continue;
        };
        // "CANCELLED by 0" → "CANCELLED".
        let state = state.split_whitespace().next().unwrap_or("").to_string();
        for i in parse_indices(task) {
            out.insert((job.to_string(), i), state.clone());
        }
    }
    out
}

/// What a task wrote about itself in `DIR/shard-I/task.txt` for `job_i`
/// (`JOB_I`): (started, exit status).
fn task_notes(shard: &Path, job_i: &str) -> (bool, Option<i32>) {
    let text = std::fs::read_to_string(shard.join("task.txt")).unwrap_or_default();
    let mut started = false;
    let mut exit = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["start", id, ..] if *id == job_i => started = true,
            ["exit", id, rc, ..] if *id == job_i => exit = rc.parse().ok(),
            _ => {}
        }
    }
    (started, exit)
}

/// Why a task that is over left runs missing, on one line. `state` is its
/// final Slurm state if known, `started`/`exit` what it wrote in `task.txt`,
/// `siblings_seen` whether another task of the same job wrote there (then
/// the directory is shared and a silent task never ran).
#[allow(clippy::too_many_arguments)]
pub fn failure_reason(
    out: &Path,
    i: usize,
    job: &str,
    state: Option<&str>,
    started: bool,
    exit: Option<i32>,
    siblings_seen: bool,
    log: &Path,
) -> String {
    let log_text = std::fs::read_to_string(log).ok();
    let task = format!("task {i} (job {job}_{i})");
    let log_note = match &log_text {
        Some(_) => format!("log: {}", log.display()),
        None => format!("no log at {}", log.display()),
    };
    let cancelled_in_log = log_text.as_deref().is_some_and(|t| t.contains("CANCELLED"));
    let time_limit_in_log = log_text
        .as_deref()
        .is_some_and(|t| t.contains("DUE TO TIME LIMIT"));
    let what = match state {
        Some("CANCELLED") if !started => "was cancelled before it started".to_string(),
        Some("CANCELLED") => "was cancelled".to_string(),
        Some("TIMEOUT") => "hit its time limit (--time)".to_string(),
        Some(
            s @ ("FAILED" | "NODE_FAIL" | "OUT_OF_MEMORY" | "PREEMPTED" | "BOOT_FAIL" | "DEADLINE"
            | "REVOKED" | "SPECIAL_EXIT"),
        ) if started => match exit {
            Some(rc) => format!("failed ({s}, exit status {rc})"),
            None => format!("failed ({s})"),
        },
        // A pending task cancelled before its array was split leaves no
        // trace in squeue; the other tasks show that the directory is shared.
        None if !started && log_text.is_none() && siblings_seen => {
            "was cancelled or removed before it started".to_string()
        }
        _ if !started && log_text.is_none() => {
            return format!(
                "{task} {}but nothing it wrote is visible here (no {}, no log): {} is probably not on a filesystem the compute nodes share (node-local /tmp is not); use a shared --out",
                state.map(|s| format!("ended ({s}) ")).unwrap_or_default(),
                shard_dir(out, i).join("task.txt").display(),
                out.display()
            );
        }
        Some(s) if !started => format!("ended ({s}) before it started the sweep"),
        _ if cancelled_in_log => "was cancelled".to_string(),
        _ if time_limit_in_log => "hit its time limit (--time)".to_string(),
        Some(s) => match exit {
            Some(rc) if rc != 0 => format!("failed ({s}, exit status {rc})"),
            _ => format!("ended ({s}) with runs missing"),
        },
        None => match exit {
            Some(rc) if rc != 0 => format!("failed (exit status {rc})"),
            Some(_) => "ended with runs missing".to_string(),
            None => "ended without finishing (killed or cancelled)".to_string(),
        },
    };
    format!("{task} {what}; {log_note}")
}

/// Look at every shard of `out`: results files, `squeue` (unless
/// `ask_slurm` is false), recorded and accounted final states, notes and logs.
pub fn inspect(out: &Path, state: &SlurmState, grid: &Grid, ask_slurm: bool) -> SweepStatus {
    let n = state.array_size;
    let mut state = state.clone();
    let jobs: BTreeSet<String> = state.submissions.iter().map(|s| s.job_id.clone()).collect();
    let (live, squeue_error) = if ask_slurm {
        match squeue_states(&jobs) {
            Ok(m) => (m, None),
            Err(e) => (BTreeMap::new(), Some(e.to_string())),
        }
    } else {
        (BTreeMap::new(), Some("not asked".into()))
    };
    // Record final states squeue shows now (they vanish after MinJobAge).
    for sub in &mut state.submissions {
        for &t in &sub.tasks {
            if let Some(st) = live.get(&(sub.job_id.clone(), t))
                && is_final(st)
            {
                sub.final_states.insert(t, st.clone());
            }
        }
    }
    let mut per_shard: Vec<(usize, usize)> = vec![(0, 0); n];
    let mut done_ids: Vec<std::collections::HashSet<String>> = Vec::with_capacity(n);
    for i in 0..n {
        let f = results::read(&super::results_path(&shard_dir(out, i))).unwrap_or_default();
        done_ids.push(f.records.into_iter().map(|r| r.run_id).collect());
    }
    for r in &grid.runs {
        let i = r.index % n;
        per_shard[i].1 += 1;
        if done_ids[i].contains(&r.run_id) {
            per_shard[i].0 += 1;
        }
    }
    // Tasks over, not done, with no state known yet: ask sacct once.
    let mut unknown = BTreeSet::new();
    for (i, &(d, t)) in per_shard.iter().enumerate() {
        if d < t
            && let Some(sub) = state.latest(i)
            && !live.contains_key(&(sub.job_id.clone(), i))
            && !sub.final_states.contains_key(&i)
        {
            unknown.insert(sub.job_id.clone());
        }
    }
    let accounted = if ask_slurm && squeue_error.is_none() {
        sacct_states(&unknown)
    } else {
        BTreeMap::new()
    };
    // Jobs of which some task wrote its start note here.
    let mut seen_jobs = BTreeSet::new();
    for i in 0..n {
        let text = std::fs::read_to_string(shard_dir(out, i).join("task.txt")).unwrap_or_default();
        for line in text.lines() {
            if let Some(id) = line.strip_prefix("start ")
                && let Some((job, _)) = id.split_once('_')
            {
                seen_jobs.insert(job.to_string());
            }
        }
    }
    let mut shards = Vec::with_capacity(n);
    for (i, &(runs_done, runs_total)) in per_shard.iter().enumerate() {
        let sub = state.latest(i).cloned();
        let job = sub.as_ref().map(|s| s.job_id.clone());
        let log = job.as_ref().map(|j| log_path(out, j, i));
        let fate = if runs_done == runs_total {
            Fate::Done
        } else if let Some(sub) = &sub {
            let key = (sub.job_id.clone(), i);
            let st = live
                .get(&key)
                .or_else(|| sub.final_states.get(&i))
                .or_else(|| accounted.get(&key))
                .cloned();
            match st {
                Some(s) if !is_final(&s) => Fate::Active(s),
                // squeue could not be asked and nothing is recorded: assume
                // the task may still be queued.
                None if squeue_error.is_some() => Fate::Active("UNKNOWN".into()),
                st => {
                    let (started, exit) =
                        task_notes(&shard_dir(out, i), &format!("{}_{i}", sub.job_id));
                    Fate::Failed(failure_reason(
                        out,
                        i,
                        &sub.job_id,
                        st.as_deref(),
                        started,
                        exit,
                        seen_jobs.contains(&sub.job_id),
                        log.as_deref().expect("submitted"),
                    ))
                }
            }
        } else {
            Fate::NotSubmitted
        };
        shards.push(ShardStatus {
            index: i,
            runs_total,
            runs_done,
            job,
            log,
            fate,
        });
    }
    SweepStatus {
        out: out.to_path_buf(),
        state,
        shards,
        squeue_error,
    }
}

/// Single-quote a string for bash.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Absolute form of `p` (relative to the current directory), without
/// resolving links.
fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io(p, e))
}

/// The batch script. `exe`, `grid`, `out` and `data` are absolute.
#[allow(clippy::too_many_arguments)]
pub fn batch_script(
    exe: &Path,
    grid: &Path,
    out: &Path,
    data: Option<&Path>,
    array_size: usize,
    runs: usize,
    opts: &SlurmOptions,
) -> String {
    let stem = grid.file_stem().and_then(|s| s.to_str()).unwrap_or("sweep");
    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    s.push_str(&format!(
        "# fsnn sweep on Slurm: {runs} runs of {grid} in {array_size} array tasks.\n\
         # Written by `fsnn sweep --slurm`, which submits it as\n\
         #   sbatch --array=0-{last} {script}\n\
         # (or --array=<list> with only the tasks still missing when rerun).\n\
         # Task I runs shard I/{array_size} of the grid (the runs whose grid index is\n\
         # I mod {array_size}) and appends them to its own results file\n\
         # {out}/shard-I/results.jsonl; `fsnn report {out}` merges the shards.\n\
         # N is fixed to {array_size} here, not $SLURM_ARRAY_TASK_COUNT, so that a\n\
         # resubmission of some tasks keeps every shard the same. The output\n\
         # directory must be on a filesystem that the compute nodes share.\n",
        grid = grid.display(),
        last = array_size - 1,
        script = out.join(SCRIPT_FILE).display(),
        out = out.display(),
    ));
    s.push_str(&format!("#SBATCH --job-name=fsnn-{stem}\n"));
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        out.join("logs").join("%A_%a.out").display()
    ));
    s.push_str(&format!(
        "#SBATCH --cpus-per-task={}\n",
        opts.cpus_per_task.unwrap_or(1)
    ));
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &opts.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    for a in &opts.sbatch_args {
        s.push_str(&format!("#SBATCH {a}\n"));
    }
    s.push_str("set -euo pipefail\n");
    s.push_str(
        "# Load what the nodes need here, if anything, e.g.\n\
         #   module load gcc\n",
    );
    s.push_str(&format!("N={array_size}\n"));
    s.push_str("I=${SLURM_ARRAY_TASK_ID:?submit with sbatch --array}\n");
    s.push_str(&format!(
        "SHARD={}/shard-$I\n",
        sh_quote(&out.display().to_string())
    ));
    s.push_str("mkdir -p \"$SHARD\"\n");
    s.push_str(
        "echo \"start ${SLURM_ARRAY_JOB_ID}_$I $(hostname) $(date +%s)\" >> \"$SHARD/task.txt\"\n",
    );
    s.push_str("rc=0\n");
    let jobs = match opts.jobs {
        Some(j) => j.to_string(),
        None => "\"${SLURM_CPUS_PER_TASK:-1}\"".to_string(),
    };
    s.push_str(&format!(
        "{} sweep --grid {} --shard \"$I/$N\" --out \"$SHARD\" --jobs {jobs}",
        sh_quote(&exe.display().to_string()),
        sh_quote(&grid.display().to_string()),
    ));
    if let Some(d) = data {
        s.push_str(&format!(" --data {}", sh_quote(&d.display().to_string())));
    }
    s.push_str(" || rc=$?\n");
    s.push_str("echo \"exit ${SLURM_ARRAY_JOB_ID}_$I $rc\" >> \"$SHARD/task.txt\"\n");
    s.push_str("exit \"$rc\"\n");
    s
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
    // Before anything is read or written: the Slurm client.
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
    if let Some(a) = opts.sbatch_args.iter().find(|a| !a.starts_with('-')) {
        return Err(Error::arg(
            "--sbatch-arg",
            format!("{a:?} is not an sbatch option (expected e.g. --mem=4G)"),
        ));
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
    if !missing.is_empty() {
        std::fs::create_dir_all(out.join("logs")).map_err(|e| Error::io(&out, e))?;
        let script = out.join(SCRIPT_FILE);
        let text = batch_script(
            &exe,
            &grid_path,
            &out,
            data.as_deref(),
            array_size,
            runs,
            opts,
        );
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
        let pb = indicatif::ProgressBar::new(total as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
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
    if st.squeue_error.is_none() && st.state != state {
        // Keep final states squeue shows now; failing to is not an error.
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

    #[test]
    fn script_has_fixed_shards_and_absolute_paths() {
        let o = SlurmOptions {
            partition: Some("gpu".into()),
            time: Some("01:00:00".into()),
            sbatch_args: vec!["--mem=4G".into()],
            ..Default::default()
        };
        let s = batch_script(
            Path::new("/opt/fsnn"),
            Path::new("/g/grid's.toml"),
            Path::new("/shared/out"),
            None,
            3,
            6,
            &o,
        );
        assert!(s.contains("N=3\n"));
        assert!(s.contains("#SBATCH --partition=gpu\n#SBATCH --time=01:00:00\n#SBATCH --mem=4G\n"));
        assert!(s.contains("#SBATCH --output=/shared/out/logs/%A_%a.out"));
        assert!(s.contains(r#"'/opt/fsnn' sweep --grid '/g/grid'\''s.toml' --shard "$I/$N""#));
    }
}
