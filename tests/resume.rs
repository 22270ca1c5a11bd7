//! Exact resume: a training process killed with SIGKILL mid-run and
//! resumed with `fsnn train --resume` ends with the same files as an
//! uninterrupted run of the same config and seed.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{fsnn_cmd, metrics_without_timing, mnist_dir, summary_without_timing};

const CONFIG: &str = r#"
name = "resume-test"
seed = 11
[data]
test_limit = 1000
[model]
layers = [121, 64, 124, 64, 124, 10]
k = [4, 3, 3, 3, 2]
alpha = [1.0, 2.0, 3.0, 2.0, 1.0]
[train]
epochs = 6
lr_milestones = [3]
"#;

fn csv_rows(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .map(|s| s.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

fn train(cfg: &Path, out: &Path) {
    let st = fsnn_cmd()
        .args(["train", "--quiet", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(out)
        .arg("--data")
        .arg(mnist_dir())
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sigkill_mid_run_then_resume_gives_identical_results() {
    if !common::require_data(
        &mnist_dir(),
        "sigkill_mid_run_then_resume_gives_identical_results",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, CONFIG).unwrap();

    let full = tmp.path().join("full");
    train(&cfg, &full);

    // Start the same run, kill it with SIGKILL once two epochs are saved
    // (i.e. somewhere inside epoch 3).
    let killed = tmp.path().join("killed");
    let mut child = fsnn_cmd()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&killed)
        .arg("--data")
        .arg(mnist_dir())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while csv_rows(&killed) < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "run made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "run ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        !killed.join("summary.json").exists(),
        "the run finished before it was killed; the test proved nothing"
    );
    let rows_at_kill = csv_rows(&killed);
    assert!(rows_at_kill < 6, "killed after {rows_at_kill} epochs");

    let st = fsnn_cmd()
        .args(["train", "--quiet", "--resume"])
        .arg(&killed)
        .arg("--data")
        .arg(mnist_dir())
        .status()
        .unwrap();
    assert!(st.success());

    assert_eq!(
        summary_without_timing(&full),
        summary_without_timing(&killed)
    );
    assert_eq!(
        metrics_without_timing(&full),
        metrics_without_timing(&killed)
    );
    assert_eq!(
        std::fs::read(full.join("model.safetensors")).unwrap(),
        std::fs::read(killed.join("model.safetensors")).unwrap(),
        "model.safetensors differs after resume"
    );
    assert_eq!(
        std::fs::read(full.join("config.toml")).unwrap(),
        std::fs::read(killed.join("config.toml")).unwrap()
    );
}

#[test]
fn resume_of_a_directory_without_state_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = fsnn_cmd()
        .args(["train", "--resume"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("state.safetensors"), "{err}");
}

#[test]
fn divergence_stops_with_epoch_batch_and_layer_and_keeps_the_last_state() {
    if !common::require_data(
        &mnist_dir(),
        "divergence_stops_with_epoch_batch_and_layer_and_keeps_the_last_state",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("c.toml");
    // One sane epoch, then the schedule multiplies the LR by 1e36 and the
    // weights overflow within a few steps of epoch 2.
    std::fs::write(
        &cfg,
        CONFIG
            .replace(
                "epochs = 6\nlr_milestones = [3]",
                "epochs = 3\nlr_milestones = [1]\nlr_gamma = 1e36",
            )
            .replace("test_limit = 1000", "test_limit = 200\ntrain_limit = 3000"),
    )
    .unwrap();
    let out_dir = tmp.path().join("run");
    let out = fsnn_cmd()
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out_dir)
        .arg("--data")
        .arg(mnist_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for word in ["diverged", "epoch 2", "batch", "layer"] {
        assert!(err.contains(word), "missing {word:?} in {err}");
    }
    assert!(!out_dir.join("summary.json").exists());
    assert!(!out_dir.join("model.safetensors").exists());
    // The last good state (after epoch 1) is kept and loads; resuming
    // diverges the same way again (the run is deterministic).
    assert_eq!(csv_rows(&out_dir), 1);
    let (trainer, progress) =
        fsnn::checkpoint::state::load(&out_dir.join("state.safetensors")).unwrap();
    assert_eq!(trainer.epoch, 1);
    assert_eq!(progress.last.unwrap().epoch, 1);
    let again = fsnn_cmd()
        .args(["train", "--quiet", "--resume"])
        .arg(&out_dir)
        .arg("--data")
        .arg(mnist_dir())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&again.stderr), err);
}
