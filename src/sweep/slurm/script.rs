//! The batch script a Slurm sweep submits.

use super::*;

/// Single-quote a string for bash.
pub(super) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Absolute form of `p` (relative to the current directory), without
/// resolving links.
pub(super) fn absolute(p: &Path) -> Result<PathBuf> {
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
