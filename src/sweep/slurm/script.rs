//! The batch script a Slurm sweep submits.
//!
//! Everything written into it is data-safe: paths appear in shell commands
//! single-quoted, and every value is checked first, so that a path, a grid
//! file name or an option cannot end a line and smuggle in a command.
//! Paths must be UTF-8 without control characters (they also appear in
//! comments); `#SBATCH` lines, which sbatch reads by its own rules, take
//! only plain tokens: `--partition`, `--time` and `--sbatch-arg` are
//! checked strictly, the output path may not hold whitespace, quotes,
//! backslashes or `#`, and the job name keeps only `[A-Za-z0-9._-]` of the
//! grid file's stem.

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

/// `p` as UTF-8 text without control characters, or a one-line error
/// naming `option` and the value (escaped).
pub fn script_path(p: &Path, option: &str) -> Result<String> {
    let text = p.to_str().ok_or_else(|| {
        Error::arg(
            option,
            format!(
                "{:?} is not valid UTF-8; the batch script cannot name it exactly",
                p.display().to_string()
            ),
        )
    })?;
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(Error::arg(
            option,
            format!(
                "{text:?} contains the control character U+{:04X}, which a batch script cannot hold safely",
                u32::from(c)
            ),
        ));
    }
    Ok(text.to_string())
}

/// Check a value bound for a `#SBATCH` line: non-empty, without control
/// characters, whitespace, quotes, backslashes or `#` (which sbatch's own
/// line parser would interpret).
fn sbatch_token(v: &str, option: &str) -> Result<()> {
    let bad = v
        .chars()
        .find(|&c| c.is_control() || c.is_whitespace() || "\"'\\#".contains(c));
    if v.is_empty() || bad.is_some() {
        let why = match bad {
            Some(c) if c.is_control() => format!("the control character U+{:04X}", u32::from(c)),
            Some(c) if c.is_whitespace() => "whitespace".to_string(),
            Some(c) => format!("{c:?}"),
            None => "nothing".to_string(),
        };
        return Err(Error::arg(
            option,
            format!(
                "{v:?} holds {why}; a #SBATCH line takes no control characters, whitespace, quotes, '\\' or '#'"
            ),
        ));
    }
    Ok(())
}

/// Check `--partition`, `--time` and `--sbatch-arg` values.
pub fn check_sbatch_options(opts: &SlurmOptions) -> Result<()> {
    if let Some(p) = &opts.partition {
        sbatch_token(p, "--partition")?;
        if !p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._,-".contains(c))
        {
            return Err(Error::arg(
                "--partition",
                format!(
                    "{p:?}: a partition name (or comma-separated list) uses letters, digits, '.', '_' and '-'"
                ),
            ));
        }
    }
    if let Some(t) = &opts.time {
        sbatch_token(t, "--time")?;
        let words = ["unlimited", "infinite"];
        let digits = t.starts_with(|c: char| c.is_ascii_digit())
            && t.chars().all(|c| c.is_ascii_digit() || ":-".contains(c));
        if !digits && !words.contains(&t.to_ascii_lowercase().as_str()) {
            return Err(Error::arg(
                "--time",
                format!(
                    "{t:?} is not a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH[:MM[:SS]] or UNLIMITED)"
                ),
            ));
        }
    }
    for a in &opts.sbatch_args {
        if !a.starts_with('-') {
            return Err(Error::arg(
                "--sbatch-arg",
                format!("{a:?} is not an sbatch option (expected e.g. --mem=4G)"),
            ));
        }
        sbatch_token(a, "--sbatch-arg")?;
    }
    Ok(())
}

/// The `#SBATCH --output` pattern of the task logs under `out`.
fn log_pattern(out_text: &str) -> Result<String> {
    // `%` starts a Slurm filename pattern; `%%` is a literal `%`.
    let p = format!("{}/logs/%A_%a.out", out_text.replace('%', "%%"));
    sbatch_token(&p, "--out")?;
    Ok(p)
}

/// Check what the command line puts into the batch script (options, and
/// the paths as given), before anything else is looked at.
pub fn check_inputs(opts: &SlurmOptions) -> Result<()> {
    check_sbatch_options(opts)?;
    script_path(&opts.grid, "--grid")?;
    if let Some(o) = &opts.out {
        log_pattern(&script_path(o, "--out")?)?;
    }
    if let Some(d) = &opts.data {
        script_path(d, "--data")?;
    }
    Ok(())
}

/// The Slurm job name for a grid file: `fsnn-` and the file's stem, with
/// every character outside `[A-Za-z0-9._-]` replaced by `_`.
pub fn job_name(grid: &Path) -> String {
    let stem = grid
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sweep".into());
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("fsnn-{safe}")
}

/// The batch script. `exe`, `grid`, `out` and `data` are absolute. Every
/// value is checked first (see the module doc); a value that cannot be
/// written safely is a one-line error naming it and its option.
#[allow(clippy::too_many_arguments)]
pub fn batch_script(
    exe: &Path,
    grid: &Path,
    out: &Path,
    data: Option<&Path>,
    array_size: usize,
    runs: usize,
    opts: &SlurmOptions,
) -> Result<String> {
    check_sbatch_options(opts)?;
    let exe_text = script_path(exe, "the fsnn binary")?;
    let grid_text = script_path(grid, "--grid")?;
    let out_text = script_path(out, "--out")?;
    let data_text = data.map(|d| script_path(d, "--data")).transpose()?;
    let log_pattern = log_pattern(&out_text)?;
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
        grid = grid_text,
        last = array_size - 1,
        script = sh_quote(&format!("{out_text}/{SCRIPT_FILE}")),
        out = out_text,
    ));
    s.push_str(&format!("#SBATCH --job-name={}\n", job_name(grid)));
    s.push_str(&format!("#SBATCH --output={log_pattern}\n"));
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
    s.push_str(&format!("SHARD={}/shard-$I\n", sh_quote(&out_text)));
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
        sh_quote(&exe_text),
        sh_quote(&grid_text),
    ));
    if let Some(d) = &data_text {
        s.push_str(&format!(" --data {}", sh_quote(d)));
    }
    s.push_str(" || rc=$?\n");
    s.push_str("echo \"exit ${SLURM_ARRAY_JOB_ID}_$I $rc\" >> \"$SHARD/task.txt\"\n");
    s.push_str("exit \"$rc\"\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        )
        .unwrap();
        assert!(s.contains("N=3\n"));
        assert!(s.contains("#SBATCH --partition=gpu\n#SBATCH --time=01:00:00\n#SBATCH --mem=4G\n"));
        assert!(s.contains("#SBATCH --output=/shared/out/logs/%A_%a.out"));
        assert!(s.contains(r#"'/opt/fsnn' sweep --grid '/g/grid'\''s.toml' --shard "$I/$N""#));
    }

    /// Options and paths that would end a line of the script, or that a
    /// `#SBATCH` line cannot hold, are refused in one line naming the
    /// option.
    #[test]
    fn hostile_values_are_refused() {
        let good = Path::new("/shared/out");
        let cases: Vec<(SlurmOptions, &str, &str)> = vec![
            (
                opts_with(|o| o.partition = Some("gpu\n#SBATCH --x".into())),
                "",
                "--partition",
            ),
            (
                opts_with(|o| o.partition = Some("gpu;id".into())),
                "",
                "--partition",
            ),
            (
                opts_with(|o| o.time = Some("1:00\rtouch x".into())),
                "",
                "--time",
            ),
            (opts_with(|o| o.time = Some("$(id)".into())), "", "--time"),
            (
                opts_with(|o| o.sbatch_args = vec!["--mem=4G\ntouch x".into()]),
                "",
                "--sbatch-arg",
            ),
            (
                opts_with(|o| o.sbatch_args = vec!["--comment=a b".into()]),
                "",
                "--sbatch-arg",
            ),
            (
                opts_with(|o| o.sbatch_args = vec!["--x=\"q\"".into()]),
                "",
                "--sbatch-arg",
            ),
            (
                opts_with(|o| o.sbatch_args = vec!["mem=4G".into()]),
                "",
                "--sbatch-arg",
            ),
            (SlurmOptions::default(), "/shared/o\nut", "--out"),
            (SlurmOptions::default(), "/shared/o ut", "--out"),
            (SlurmOptions::default(), "/shared/o'ut", "--out"),
            (SlurmOptions::default(), "/shared/o#ut", "--out"),
            (SlurmOptions::default(), "/shared/o\\ut", "--out"),
        ];
        for (o, out, option) in cases {
            let out = if out.is_empty() { good } else { Path::new(out) };
            let e = batch_script(
                Path::new("/opt/fsnn"),
                Path::new("/g/a.toml"),
                out,
                None,
                1,
                1,
                &o,
            )
            .expect_err(option)
            .to_string();
            assert!(
                e.starts_with(option) && !e.contains('\n') && !e.contains('\r'),
                "{e}"
            );
        }
        for (exe, grid, data, option) in [
            ("/opt/fs\nnn", "/g/a.toml", "/d", "the fsnn binary"),
            ("/opt/fsnn", "/g/a\n$(id).toml", "/d", "--grid"),
            ("/opt/fsnn", "/g/a.toml", "/d\u{7}x", "--data"),
        ] {
            let o = SlurmOptions::default();
            let e = batch_script(
                Path::new(exe),
                Path::new(grid),
                good,
                Some(Path::new(data)),
                1,
                1,
                &o,
            )
            .expect_err(option)
            .to_string();
            assert!(e.starts_with(option) && !e.contains('\n'), "{e}");
        }
    }

    fn opts_with(f: impl FnOnce(&mut SlurmOptions)) -> SlurmOptions {
        let mut o = SlurmOptions::default();
        f(&mut o);
        o
    }

    #[test]
    fn job_names_keep_only_safe_characters() {
        assert_eq!(job_name(Path::new("/g/sweep-doc.toml")), "fsnn-sweep-doc");
        assert_eq!(
            job_name(Path::new("/g/a b;$(id)`x`'q'.toml")),
            "fsnn-a_b___id__x__q_"
        );
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    /// The script, run by bash with the fsnn binary replaced by a program
    /// that records its arguments, passes hostile paths (quotes, `$(...)`,
    /// backticks, semicolons, spaces) each as exactly one argument, and
    /// runs none of the commands they spell.
    #[test]
    fn hostile_paths_reach_fsnn_as_one_argument_each() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let weird = "a b;$(touch pwned1)`touch pwned2`'q'\"dq\";x&y|z";
        let bin_dir = tmp.path().join(weird);
        std::fs::create_dir_all(&bin_dir).unwrap();
        let exe = bin_dir.join("fsnn");
        let args_file = tmp.path().join("args");
        std::fs::write(&exe, "#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$ARGS_OUT\"\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let grid = bin_dir.join("grid $(touch pwned3).toml");
        let data = tmp.path().join("data '$(touch pwned4)' ;");
        // No whitespace or quotes (a #SBATCH line holds the output path),
        // but the shell's other specials.
        let out = tmp.path().join("out;$(touch${IFS}pwned5)`id`&%x");
        let o = opts_with(|o| o.jobs = Some(2));
        let text = batch_script(&exe, &grid, &out, Some(&data), 3, 6, &o).unwrap();
        assert!(
            text.contains("#SBATCH --job-name=fsnn-grid___touch_pwned3_\n"),
            "{text}"
        );
        assert!(
            text.contains("/logs/%A_%a.out\n") && text.contains("&%%x/logs"),
            "{text}"
        );
        let script = tmp.path().join("s.sbatch");
        std::fs::write(&script, &text).unwrap();
        let st = std::process::Command::new("bash")
            .arg(&script)
            .current_dir(tmp.path())
            .env("SLURM_ARRAY_TASK_ID", "1")
            .env("SLURM_ARRAY_JOB_ID", "7")
            .env("ARGS_OUT", &args_file)
            .status()
            .unwrap();
        assert!(st.success());
        let got = std::fs::read(&args_file).unwrap();
        let got: Vec<&str> = std::str::from_utf8(&got)
            .unwrap()
            .split_terminator('\0')
            .collect();
        let shard = format!("{}/shard-1", out.display());
        let want = [
            "sweep",
            "--grid",
            grid.to_str().unwrap(),
            "--shard",
            "1/3",
            "--out",
            &shard,
            "--jobs",
            "2",
            "--data",
            data.to_str().unwrap(),
        ];
        assert_eq!(got, want);
        let task = std::fs::read_to_string(out.join("shard-1/task.txt")).unwrap();
        assert!(task.contains("exit 7_1 0"), "{task}");
        for i in 1..=5 {
            assert!(!tmp.path().join(format!("pwned{i}")).exists(), "pwned{i}");
        }
    }
}
