//! `fsnn sweep --slurm` against a live Slurm: the one-node cluster of
//! `ci/slurm/start.sh` (see docs/cluster.md). Without a cluster these tests
//! print a SKIPPED line on the real stderr (visible even when cargo captures
//! output) and pass; with `FSNN_SLURM_TESTS=1` (set by `.ci/run`) a missing
//! cluster is a failure instead.
//!
//! The jobs run `target/release/fsnn` (`CARGO_BIN_EXE_fsnn`), built before
//! any test starts. The tests take a lock so that only one submits at a time.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{mnist_dir, run_ok};
use tempfile::TempDir;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn smoke_grid() -> PathBuf {
    root().join("configs/sweep-smoke.toml")
}

fn fsnn() -> Command {
    let mut c = common::fsnn_cmd();
    c.env("FSNN_SLURM_POLL", "0.3");
    c
}

/// Serialises the tests that submit jobs (a 2-CPU node).
static LOCK: Mutex<()> = Mutex::new(());

/// Is a Slurm cluster answering? Prints a visible SKIPPED line if not.
fn cluster(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%a"])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("up"))
        .unwrap_or(false);
    if !up {
        assert!(
            std::env::var("FSNN_SLURM_TESTS").as_deref() != Ok("1"),
            "FSNN_SLURM_TESTS=1 but no Slurm answers (sinfo); SLURM_CONF={:?}",
            std::env::var("SLURM_CONF")
        );
        // Straight to the process's stderr: not captured by the test harness.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: no Slurm cluster answers sinfo (start one with ci/slurm/start.sh --install, see docs/cluster.md)"
        );
        return None;
    }
    Some(LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// (report.md, report.csv) of `fsnn report INPUT --out OUT`.
fn report(input: &Path, out: &Path) -> (String, String) {
    common::report(&[input], out)
}

/// The smoke grid swept locally, without Slurm, and its report (once).
fn local_report() -> &'static (String, String) {
    static LOCAL: OnceLock<(String, String)> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let tmp = TempDir::new().unwrap();
        let out = tmp.path().join("local");
        let mut c = fsnn();
        c.arg("sweep")
            .arg("--grid")
            .arg(smoke_grid())
            .arg("--out")
            .arg(&out)
            .arg("--data")
            .arg(mnist_dir())
            .arg("--quiet");
        run_ok(c);
        report(&out, &tmp.path().join("rep"))
    })
}

/// `fsnn sweep --grid smoke --slurm --array-size N --out OUT --data M EXTRA`.
fn slurm_sweep(out: &Path, n: usize, extra: &[&str]) -> Command {
    let mut c = fsnn();
    c.arg("sweep")
        .arg("--grid")
        .arg(smoke_grid())
        .arg("--slurm")
        .arg("--array-size")
        .arg(n.to_string())
        .arg("--out")
        .arg(out)
        .arg("--data")
        .arg(mnist_dir())
        .args(extra);
    c
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn status(out: &Path) -> String {
    let mut c = fsnn();
    c.arg("sweep").arg("status").arg(out);
    String::from_utf8(run_ok(c).stdout).unwrap()
}

#[test]
fn array_of_3_completes_and_its_report_equals_the_local_sweep() {
    let Some(_guard) = cluster("array_of_3_completes_and_its_report_equals_the_local_sweep") else {
        return;
    };
    let local = local_report();
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("slurm");
    let t0 = Instant::now();
    let o = run_ok(slurm_sweep(&out, 3, &[]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    eprintln!("slurm sweep: {:.1}s\n{stdout}", t0.elapsed().as_secs_f64());
    assert!(stdout.contains("array tasks 0-2 of 3"), "{stdout}");
    assert!(stdout.contains("runs 6/6 done"), "{stdout}");
    // One results file per shard, none shared; the script is there to read.
    assert!(!out.join("results.jsonl").exists());
    for i in 0..3 {
        assert_eq!(lines(&out.join(format!("shard-{i}/results.jsonl"))), 2);
    }
    let script = std::fs::read_to_string(out.join("fsnn-sweep.sbatch")).unwrap();
    assert!(script.contains("--shard \"$I/$N\"") && script.contains("N=3"));
    assert!(status(&out).contains("tasks 3/3 done (0 running, 0 pending), runs 6/6 done"));
    let slurm = report(&out, &tmp.path().join("rep"));
    assert_eq!(&slurm, local, "Slurm report differs from the local one");
}

#[test]
fn cancelled_task_is_reported_and_rerun_finishes_only_the_missing_runs() {
    let Some(_guard) =
        cluster("cancelled_task_is_reported_and_rerun_finishes_only_the_missing_runs")
    else {
        return;
    };
    let local = local_report();
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("slurm");
    let child = slurm_sweep(&out, 3, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The job id, as soon as fsnn has recorded it; then cancel task 1.
    let t0 = Instant::now();
    let job = loop {
        let state: Option<serde_json::Value> = std::fs::read(out.join("slurm.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(s) = state {
            break s["submissions"][0]["job_id"].as_str().unwrap().to_string();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no submission");
        std::thread::sleep(Duration::from_millis(5));
    };
    let sc = Command::new("scancel")
        .arg(format!("{job}_1"))
        .output()
        .unwrap();
    assert!(
        sc.status.success(),
        "{}",
        String::from_utf8_lossy(&sc.stderr)
    );
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{}{err}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains(&format!("task 1 (job {job}_1) was cancelled"))
            && err.contains("1 of 3 tasks did not finish")
            && err.contains("rerun the same command"),
        "{err}"
    );
    let st = status(&out);
    assert!(
        st.contains("was cancelled") && st.contains("1 failed"),
        "{st}"
    );
    let shard = |i: usize| out.join(format!("shard-{i}/results.jsonl"));
    assert!(lines(&shard(1)) < 2, "task 1 finished before scancel");
    let kept = [
        std::fs::read(shard(0)).unwrap(),
        std::fs::read(shard(2)).unwrap(),
    ];
    let partial = std::fs::read(shard(1)).unwrap_or_default();

    // The same command again: only task 1 is resubmitted.
    let o = run_ok(slurm_sweep(&out, 3, &[]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    eprintln!("{stdout}");
    assert!(
        stdout.contains(&format!("task 1 (job {job}_1) was cancelled")),
        "{stdout}"
    );
    assert!(stdout.contains("array tasks 1 of 3"), "{stdout}");
    assert!(stdout.contains("runs 6/6 done"), "{stdout}");
    assert_eq!(std::fs::read(shard(0)).unwrap(), kept[0], "shard 0 redone");
    assert_eq!(std::fs::read(shard(2)).unwrap(), kept[1], "shard 2 redone");
    let now = std::fs::read(shard(1)).unwrap();
    assert!(now.starts_with(&partial) && lines(&shard(1)) == 2);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("slurm.json")).unwrap()).unwrap();
    assert_eq!(state["submissions"][1]["tasks"], serde_json::json!([1]));
    assert_eq!(&report(&out, &tmp.path().join("rep")), local);
}

#[test]
fn no_wait_prints_the_job_id_and_status_and_report_follow_it() {
    let Some(_guard) = cluster("no_wait_prints_the_job_id_and_status_and_report_follow_it") else {
        return;
    };
    let local = local_report();
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("slurm");
    let o = run_ok(slurm_sweep(&out, 2, &["--no-wait", "--quiet"]));
    let id = String::from_utf8(o.stdout).unwrap();
    assert!(
        !id.trim().is_empty() && id.trim().chars().all(|c| c.is_ascii_digit()),
        "{id:?}"
    );
    let t0 = Instant::now();
    loop {
        let st = status(&out);
        assert!(
            st.contains(&format!("job {} (tasks 0-1)", id.trim())),
            "{st}"
        );
        if st.contains("(0 running, 0 pending)") {
            assert!(st.contains("runs 6/6 done"), "{st}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(90), "{st}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(&report(&out, &tmp.path().join("rep")), local);
    // Rerun: nothing to submit.
    let o = run_ok(slurm_sweep(&out, 2, &["--no-wait"]));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("all 6 runs") && stdout.contains("are done"),
        "{stdout}"
    );
}

#[test]
fn refused_submission_prints_slurms_reason() {
    let Some(_guard) = cluster("refused_submission_prints_slurms_reason") else {
        return;
    };
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("slurm");
    let o = slurm_sweep(&out, 3, &["--partition", "no-such-partition"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("sbatch refused the job") && err.contains("Invalid partition"),
        "{err}"
    );
    assert!(!out.join("slurm.json").exists());
}

/// Needs no cluster: an empty PATH.
#[test]
fn sbatch_missing_is_a_one_line_error_exit_2_and_writes_nothing() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("slurm");
    let o = slurm_sweep(&out, 3, &[])
        .env("PATH", tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains("sbatch not found on PATH"), "{err}");
    assert!(!out.exists());
}

/// Needs no cluster: `fsnn report DIR` merges shard-*/results.jsonl, and
/// `fsnn sweep status` explains a directory that is not a Slurm sweep.
#[test]
fn status_of_a_plain_directory_is_a_clear_error() {
    let tmp = TempDir::new().unwrap();
    let o = fsnn()
        .arg("sweep")
        .arg("status")
        .arg(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no slurm.json"), "{err}");
    let o = fsnn()
        .arg("report")
        .arg(tmp.path())
        .arg("--quiet")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no results.jsonl and no shard-*/results.jsonl"),
        "{err}"
    );
}

/// Needs no cluster: a fake `sbatch` that accepts the job and a fake
/// `squeue` that says both tasks completed, while nothing appears in the
/// output directory — as when `--out` is node-local on a real cluster.
#[test]
fn a_shard_that_wrote_nothing_points_at_an_unshared_filesystem() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, body) in [
        ("sbatch", "echo 42\n"),
        ("squeue", "printf '42|0|COMPLETED\\n42|1|COMPLETED\\n'\n"),
    ] {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = tmp.path().join("out");
    let o = slurm_sweep(&out, 2, &[])
        .env("PATH", &bin)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("2 of 2 tasks did not finish")
            && err.contains(
                "task 0 (job 42_0) ended (COMPLETED) but nothing it wrote is visible here"
            )
            && err.contains("not on a filesystem the compute nodes share"),
        "{err}"
    );
}
