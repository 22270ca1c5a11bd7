//! Output directories under hostile use: another run's directory, two
//! processes on one run directory, shards and twin sweeps on one sweep
//! directory, a resume on other data or with an edited config, and stale
//! temporaries. Every run is tiny (one hidden layer, a few hundred images).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

fn fsnn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fsnn"))
}

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
}

/// A small MLP config: `epochs` epochs on 600 training and 200 test images.
fn config_text(epochs: usize, checkpoint_every: usize) -> String {
    format!(
        r#"name = "tiny"
seed = 3
[data]
train_limit = 600
test_limit = 200
[model]
layers = [121, 24, 10]
k = [4, 3]
alpha = [1.0, 2.0]
[train]
epochs = {epochs}
checkpoint_every = {checkpoint_every}
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn train_cmd(config: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = fsnn();
    c.arg("train")
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .arg("--data")
        .arg(mnist_dir())
        .arg("--quiet")
        .args(extra);
    c
}

fn run(mut c: Command) -> Output {
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(o.status.success(), "failed: {}", stderr(o));
}

/// Exit 2 with one line on stderr containing every needle.
fn assert_refused(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    for n in needles {
        assert!(e.contains(n), "{n:?} not in {e}");
    }
}

/// Every file under `dir` (relative path → bytes), the lock file aside.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != ".fsnn.lock" {
                m.insert(
                    p.strip_prefix(dir).unwrap().into(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    m
}

fn summary_seed(dir: &Path) -> u64 {
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    s["seed"].as_u64().unwrap()
}

#[test]
fn another_runs_directory_is_refused_unchanged_and_overwrite_leaves_no_stale_state() {
    let t = TempDir::new().unwrap();
    let with_state = write(t.path(), "a.toml", &config_text(1, 1));
    let no_state = write(t.path(), "b.toml", &config_text(1, 0));
    let out = t.path().join("run");
    assert_ok(&run(train_cmd(&with_state, &out, &[])));
    assert!(out.join("state.safetensors").is_file());
    let before = snapshot(&out);

    let o = run(train_cmd(&no_state, &out, &["--seed", "9"]));
    let shown = out.display().to_string();
    assert_refused(&o, &[&shown, "--overwrite", "--resume"]);
    assert_eq!(
        snapshot(&out),
        before,
        "a refused run changed the directory"
    );

    // --overwrite replaces the old run: no state of it survives.
    assert_ok(&run(train_cmd(
        &no_state,
        &out,
        &["--seed", "9", "--overwrite"],
    )));
    assert_eq!(summary_seed(&out), 9);
    assert!(
        !out.join("state.safetensors").exists(),
        "stale state survived"
    );
    let o = run(fsnn_resume(&out, None));
    assert_refused(&o, &["state.safetensors", "no training state"]);

    // A directory with a file fsnn does not write is never emptied.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let before = snapshot(&out);
    let o = run(train_cmd(&no_state, &out, &["--overwrite"]));
    assert_refused(&o, &["notes.txt", "not removing"]);
    assert_eq!(snapshot(&out), before);

    // An empty directory (and one with only a stale fsnn temporary) is fine;
    // the temporary is removed.
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join(".fsnn-tmp-AbC123"), "cut short").unwrap();
    assert_ok(&run(train_cmd(&no_state, &empty, &[])));
    assert!(
        !empty.join(".fsnn-tmp-AbC123").exists(),
        "stale temporary left"
    );
    assert!(empty.join("summary.json").is_file());
}

fn fsnn_resume(dir: &Path, data: Option<&Path>) -> Command {
    let mut c = fsnn();
    c.arg("train")
        .arg("--resume")
        .arg(dir)
        .arg("--data")
        .arg(data.map_or_else(mnist_dir, Path::to_path_buf))
        .arg("--quiet");
    c
}

#[test]
fn second_train_on_a_busy_directory_names_the_pid_and_the_first_finishes() {
    let t = TempDir::new().unwrap();
    let cfg = write(t.path(), "c.toml", &config_text(4, 1));
    let out = t.path().join("run");
    let first = train_cmd(&cfg, &out, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !out.join("config.toml").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "first run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = format!("pid {} on", first.id());
    let o = run(train_cmd(&cfg, &out, &["--overwrite"]));
    assert_refused(&o, &[&pid, &out.display().to_string()]);
    let o = run(fsnn_resume(&out, None));
    assert_refused(&o, &[&pid]);
    let done = first.wait_with_output().unwrap();
    assert_ok(&done);
    assert!(out.join("summary.json").is_file());
    let m = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(m.lines().count(), 5, "{m}");
}

/// A copy of MNIST in `dir`: raw (gunzipped) files, with the test labels'
/// `flip`-th label changed when given.
fn mnist_copy(dir: &Path, flip: Option<usize>) -> PathBuf {
    use std::io::Read;
    std::fs::create_dir_all(dir).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        let gz = std::fs::File::open(mnist_dir().join(format!("{name}.gz"))).unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut bytes)
            .unwrap();
        if let (Some(i), true) = (flip, name.starts_with("t10k-labels")) {
            bytes[8 + i] = (bytes[8 + i] + 1) % 10;
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir.to_path_buf()
}

#[test]
fn resume_is_refused_on_other_data_or_an_edited_config_and_eval_warns() {
    let t = TempDir::new().unwrap();
    let cfg = write(t.path(), "c.toml", &config_text(1, 1));
    let out = t.path().join("run");
    assert_ok(&run(train_cmd(&cfg, &out, &[])));
    let before = snapshot(&out);

    // The same data, gunzipped: same content, so the resume goes on.
    let same = mnist_copy(&t.path().join("same"), None);
    assert_ok(&run(fsnn_resume(&out, Some(&same))));

    // One test label changed (among the 200 the run evaluates on).
    let other = mnist_copy(&t.path().join("other"), Some(5));
    let snap = snapshot(&out);
    let o = run(fsnn_resume(&out, Some(&other)));
    assert_refused(&o, &["state.safetensors", "other data", "test labels"]);
    assert_eq!(snapshot(&out), snap);
    assert_eq!(before.len(), snap.len());

    // config.toml edited after the run: the state's config wins, refused.
    let edited = std::fs::read_to_string(out.join("config.toml"))
        .unwrap()
        .replace("epochs = 1", "epochs = 3");
    std::fs::write(out.join("config.toml"), edited).unwrap();
    let o = run(fsnn_resume(&out, None));
    assert_refused(&o, &["config.toml", "train.epochs"]);

    // Evaluating on other data is allowed, with a warning.
    let mut c = fsnn();
    c.arg("eval")
        .arg("--checkpoint")
        .arg(out.join("model.safetensors"))
        .arg("--data")
        .arg(&other);
    let o = run(c);
    assert_ok(&o);
    let e = stderr(&o);
    assert!(
        e.starts_with("warning:") && e.contains("test labels"),
        "{e}"
    );
    let mut c = fsnn();
    c.arg("eval")
        .arg("--checkpoint")
        .arg(out.join("model.safetensors"))
        .arg("--data")
        .arg(&same);
    let o = run(c);
    assert_ok(&o);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// A grid of four tiny runs (two points × `seeds`).
fn grid(dir: &Path, name: &str, seeds: &str) -> PathBuf {
    let base = write(dir, "base.toml", &config_text(1, 0));
    write(
        dir,
        name,
        &format!(
            r#"base = "{}"
seeds = {seeds}
points = [
  {{ alpha = [1.0, 2.0], k = [4, 3] }},
  {{ alpha = [1.0, 1.0], k = [3, 2] }},
]
"#,
            base.display()
        ),
    )
}

fn sweep_cmd(grid: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = fsnn();
    c.arg("sweep")
        .arg("--grid")
        .arg(grid)
        .arg("--out")
        .arg(out)
        .arg("--data")
        .arg(mnist_dir())
        .arg("--jobs")
        .arg("1")
        .arg("--quiet")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Run the commands at once; all their outputs.
fn together(cmds: Vec<Command>) -> Vec<Output> {
    let children: Vec<_> = cmds.into_iter().map(|mut c| c.spawn().unwrap()).collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Run ids of a results file, checking that every line is whole and valid.
fn result_ids(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert!(text.ends_with('\n'), "partial last line");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("whole JSON line");
            v["run_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn report_runs(out: &Path) -> String {
    let mut c = fsnn();
    c.arg("report").arg(out).arg("--quiet");
    assert_ok(&run(c));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    md.lines()
        .find(|l| l.contains(" runs, "))
        .unwrap_or("")
        .to_string()
}

#[test]
fn shards_on_one_sweep_directory_lose_nothing() {
    let t = TempDir::new().unwrap();
    let g = grid(t.path(), "grid.toml", "[1, 2]");
    let out = t.path().join("sweep");
    let outs = together(vec![
        sweep_cmd(&g, &out, &["--shard", "0/2"]),
        sweep_cmd(&g, &out, &["--shard", "1/2"]),
    ]);
    for o in &outs {
        assert_ok(o);
    }
    let ids = result_ids(&out);
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 4);
    assert!(
        report_runs(&out).starts_with("4 runs"),
        "{}",
        report_runs(&out)
    );

    // A fragment a killed writer left is cut by the next writer, under the
    // lock, and nothing before it.
    let path = out.join("results.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<String> = text.lines().take(3).map(String::from).collect();
    let last = text.lines().nth(3).unwrap().to_string();
    text = kept.join("\n") + "\n" + &last[..last.len() / 2];
    std::fs::write(&path, &text).unwrap();
    assert_ok(&run(sweep_cmd(&g, &out, &[])));
    let now = std::fs::read_to_string(&path).unwrap();
    assert!(
        now.starts_with(&(kept.join("\n") + "\n")),
        "earlier lines changed"
    );
    assert_eq!(result_ids(&out).len(), 4);
}

#[test]
fn twin_sweeps_record_each_run_once_and_another_grid_is_refused() {
    let t = TempDir::new().unwrap();
    let g = grid(t.path(), "grid.toml", "[1, 2]");
    let out = t.path().join("sweep");
    for o in together(vec![sweep_cmd(&g, &out, &[]), sweep_cmd(&g, &out, &[])]) {
        assert_ok(&o);
    }
    let ids = result_ids(&out);
    assert_eq!(ids.len(), 4, "lost or duplicated: {ids:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 4);

    // Another grid (other seeds) in the same directory: refused, unchanged.
    let other = grid(t.path(), "other.toml", "[7]");
    let before = snapshot(&out);
    let o = run(sweep_cmd(&other, &out, &[]));
    assert_refused(&o, &["another grid", "--overwrite"]);
    assert_eq!(snapshot(&out), before);
    // The same grid extended by a seed is the same sweep, resumed.
    let more = grid(t.path(), "more.toml", "[1, 2, 3]");
    assert_ok(&run(sweep_cmd(&more, &out, &[])));
    assert_eq!(result_ids(&out).len(), 6);
    assert_ok(&run(sweep_cmd(&other, &out, &["--overwrite"])));
    assert_eq!(result_ids(&out).len(), 2);
    // A run directory of train is not a sweep's.
    let run_dir = t.path().join("run");
    assert_ok(&run(train_cmd(
        &write(t.path(), "c.toml", &config_text(1, 0)),
        &run_dir,
        &[],
    )));
    let o = run(sweep_cmd(&g, &run_dir, &["--overwrite"]));
    assert_refused(&o, &["config.toml", "sweep does not write"]);
}

#[test]
fn fit_compare_and_report_refuse_another_output_and_overwrite_their_own() {
    let t = TempDir::new().unwrap();
    let fit = |out: &Path, extra: &[&str]| {
        let mut c = fsnn();
        c.args(["fit", "--activation", "relu", "--k", "3", "--restarts", "1"])
            .args(["--steps", "20", "--quiet", "--out"])
            .arg(out)
            .args(extra);
        run(c)
    };
    let f = t.path().join("fit");
    assert_ok(&fit(&f, &[]));
    let before = snapshot(&f);
    assert_refused(&fit(&f, &[]), &["already holds a table fit", "--overwrite"]);
    assert_eq!(snapshot(&f), before);
    assert_ok(&fit(&f, &["--overwrite"]));

    let a = write(t.path(), "a.toml", &config_text(1, 0));
    let compare = |out: &Path, extra: &[&str]| {
        let mut c = fsnn();
        c.arg("compare")
            .args([
                "--config".as_ref(),
                a.as_os_str(),
                "--config".as_ref(),
                a.as_os_str(),
            ])
            .args(["--seeds", "1", "--jobs", "1", "--quiet", "--data"])
            .arg(mnist_dir())
            .arg("--out")
            .arg(out)
            .args(extra);
        run(c)
    };
    // A fit's directory is not a comparison's, even with --overwrite.
    assert_refused(
        &compare(&f, &["--overwrite"]),
        &["fit.json", "not removing"],
    );
    assert_eq!(snapshot(&f).len(), before.len());
    let c = t.path().join("cmp");
    assert_ok(&compare(&c, &[]));
    assert_refused(&compare(&c, &[]), &["already holds a comparison"]);
    assert_ok(&compare(&c, &["--overwrite"]));

    // A report next to sweep results is fine; next to anything else not.
    let g = grid(t.path(), "grid.toml", "[1]");
    let s = t.path().join("sweep");
    assert_ok(&run(sweep_cmd(&g, &s, &[])));
    assert!(report_runs(&s).starts_with("2 runs"));
    let mut r = fsnn();
    r.arg("report").arg(&s).arg("--quiet").arg("--out").arg(&c);
    assert_refused(&run(r), &["runs.csv", "report does not write"]);
}

/// A state written before fsnn recorded the data (no `data` metadata)
/// resumes, with a warning that the data could not be checked.
#[test]
fn a_state_without_a_data_record_resumes_with_a_warning() {
    use fsnn::checkpoint::state;
    let t = TempDir::new().unwrap();
    let dir = t.path().join("old");
    std::fs::create_dir(&dir).unwrap();
    let cfg = fsnn::Config::from_toml_str(&config_text(1, 1), Path::new("old.toml")).unwrap();
    let trainer = fsnn::train::Trainer::new(cfg.clone());
    let mut progress = fsnn::train::job::fresh_progress(&trainer.model);
    // (-inf, the fresh value, does not survive JSON; no saved state has it.)
    progress.best = (0.0, 0);
    state::save(&dir.join(state::STATE_FILE), &trainer, &progress).unwrap();
    std::fs::write(dir.join("config.toml"), cfg.to_toml()).unwrap();
    let o = run(fsnn_resume(&dir, None));
    assert_ok(&o);
    let e = stderr(&o);
    assert!(
        e.starts_with("warning:") && e.contains("records no training data"),
        "{e}"
    );
    // The resumed run records its data from now on.
    assert!(
        fsnn::checkpoint::stored_data(&dir.join(state::STATE_FILE))
            .unwrap()
            .is_some()
    );
}
