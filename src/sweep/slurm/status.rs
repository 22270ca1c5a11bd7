//! Task states of a Slurm sweep from squeue/sacct, the task notes, the logs
//! and the results files; the Slurm command helpers.

use super::*;

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
pub(super) fn slurm_cmd(name: &str, args: &[String]) -> Result<std::process::Output> {
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
pub(super) fn slurm_reason(stderr: &[u8]) -> String {
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
pub(super) fn sacct_states(jobs: &BTreeSet<String>) -> BTreeMap<(String, usize), String> {
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
pub(super) fn task_notes(shard: &Path, job_i: &str) -> (bool, Option<i32>) {
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
        let f = results::read(&crate::sweep::results_path(&shard_dir(out, i))).unwrap_or_default();
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
