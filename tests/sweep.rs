//! End-to-end tests of `fsnn sweep` and `fsnn report`: resume after
//! SIGKILL, sharding merged by the report, invalid grids, report files.
//!
//! Grids are small (1 epoch on a few thousand MNIST images) and reference
//! `configs/mnist-fs-stbp.toml` by absolute path.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fsnn_cmd, mnist_dir, report, run_ok};
use tempfile::TempDir;

fn base_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mnist-fs-stbp.toml")
}

/// Eight runs: four (α, K) points × two seeds, 1 epoch on 8000 images.
fn grid_text() -> String {
    format!(
        r#"base = "{}"
seeds = [1, 2]
points = [
  {{ alpha = [1.0, 2.0, 3.0, 2.0, 1.0], k = [4, 3, 3, 3, 2] }},
  {{ alpha = [1.0, 1.0, 1.0, 1.0, 1.0], k = [4, 4, 3, 2, 1] }},
  {{ alpha = [1.0, 3.0, 4.0, 2.0, 1.0], k = [4, 4, 4, 3, 1] }},
  {{ alpha = [1.0, 1.0, 1.0, 1.0, 1.0], k = [8, 7, 6, 5, 4] }},
]
[set]
"train.epochs" = 1
"data.train_limit" = 8000
"data.test_limit" = 1000
"#,
        base_config().display()
    )
}
const GRID_RUNS: usize = 8;

fn write_grid(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("grid.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sweep_cmd(grid: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = fsnn_cmd();
    c.arg("sweep")
        .arg("--grid")
        .arg(grid)
        .arg("--out")
        .arg(out)
        .arg("--data")
        .arg(mnist_dir())
        .arg("--quiet")
        .args(extra);
    c
}

/// Every line of a results file: ends with '\n', parses, unique run id.
fn check_results(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "partial last line");
    let mut ids = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("every line parses");
        ids.push(v["run_id"].as_str().unwrap().to_string());
        assert!(v["config"]["model"]["k"].is_array());
        assert!(v["summary"]["test_acc"].is_number());
    }
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate run ids in {ids:?}");
    ids
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.matches('\n').count())
        .unwrap_or(0)
}

#[test]
fn sigkill_midway_then_resume_equals_uninterrupted() {
    let tmp = TempDir::new().unwrap();
    let grid = write_grid(tmp.path(), &grid_text());
    let full = tmp.path().join("full");
    run_ok(sweep_cmd(&grid, &full, &["--jobs", "1"]));
    assert_eq!(check_results(&full.join("results.jsonl")).len(), GRID_RUNS);

    let killed = tmp.path().join("killed");
    let results = killed.join("results.jsonl");
    let mut child = sweep_cmd(&grid, &killed, &["--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while lines(&results) < 1 {
        assert!(t0.elapsed() < Duration::from_secs(120), "no result line");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = check_results(&results);
    assert!(
        !before.is_empty() && before.len() < GRID_RUNS,
        "killed after {} of {GRID_RUNS} runs: not midway",
        before.len()
    );
    // Simulate a crash in the middle of a write as well: a fragment.
    let mut text = std::fs::read(&results).unwrap();
    text.extend_from_slice(br#"{"run_id":"0123456789abcdef","point_id":"#);
    std::fs::write(&results, &text).unwrap();

    run_ok(sweep_cmd(&grid, &killed, &["--jobs", "1"]));
    let after = check_results(&results);
    assert_eq!(after.len(), GRID_RUNS);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "finished runs were redone"
    );

    // A third run has nothing to do and leaves the file as it is.
    let bytes = std::fs::read(&results).unwrap();
    run_ok(sweep_cmd(&grid, &killed, &["--jobs", "2"]));
    assert_eq!(std::fs::read(&results).unwrap(), bytes);

    let a = report(&[full.join("results.jsonl")], &tmp.path().join("rep-full"));
    let b = report(&[results], &tmp.path().join("rep-killed"));
    assert_eq!(a, b, "resumed report differs from the uninterrupted one");
}

#[test]
fn two_shards_merged_equal_one_sweep() {
    let tmp = TempDir::new().unwrap();
    let grid = write_grid(tmp.path(), &grid_text());
    let full = tmp.path().join("full");
    run_ok(sweep_cmd(&grid, &full, &["--jobs", "2"]));
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("shard-{i}")))
        .collect();
    // Two separate processes at the same time.
    let children: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            sweep_cmd(&grid, d, &["--jobs", "1", "--shard", &format!("{i}/2")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let ids: Vec<Vec<String>> = dirs
        .iter()
        .map(|d| check_results(&d.join("results.jsonl")))
        .collect();
    assert_eq!(ids[0].len() + ids[1].len(), GRID_RUNS);
    let shared: Vec<_> = ids[0].iter().filter(|i| ids[1].contains(i)).collect();
    assert!(shared.is_empty(), "shards overlap: {shared:?}");

    let merged = report(
        &[dirs[1].join("results.jsonl"), dirs[0].clone()],
        &tmp.path().join("rep-merged"),
    );
    let one = report(&[full], &tmp.path().join("rep-full"));
    assert_eq!(merged, one, "merged shards differ from one sweep");
    assert!(one.0.contains("| [1,2,3,2,1] / [4,3,3,3,2] |"), "{}", one.0);
    assert!(
        one.0
            .contains("## Pareto front: accuracy vs energy per image")
    );
    // Header + 4 configurations.
    assert_eq!(one.1.lines().count(), 5, "{}", one.1);

    // Plots are written as real SVG/PNG when a font is available.
    let rep = tmp.path().join("rep-full");
    let svg = std::fs::read_to_string(rep.join("pareto-spikes.svg"));
    if let Ok(svg) = svg {
        assert!(svg.contains("<svg") && svg.contains("Pareto front"));
        for name in ["pareto-spikes.png", "pareto-energy.png"] {
            let png = std::fs::read(rep.join(name)).unwrap();
            assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
        }
    } else {
        eprintln!("no plots (no font on this machine)");
    }
}

/// `fsnn sweep` with `grid` text and `extra` args must fail with exit 2,
/// a one-line error containing `needle`, and write nothing.
fn assert_rejected(grid: &str, extra: &[&str], needle: &str) {
    let tmp = TempDir::new().unwrap();
    let g = write_grid(tmp.path(), grid);
    let out = tmp.path().join("out");
    let o = sweep_cmd(&g, &out, extra).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{needle}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(!out.exists(), "{needle}: output written");
}

#[test]
fn invalid_grids_exit_2_and_write_nothing() {
    let good = grid_text();
    assert_rejected(&format!("{good}\"model.foo\" = 1\n"), &[], "unknown field");
    assert_rejected(
        &format!("{good}[axes]\n\"model.surrogate.width\" = []\n"),
        &[],
        "empty axis",
    );
    assert_rejected(
        &format!("{good}[axes]\n\"train.bogus\" = [1, 2]\n"),
        &[],
        "unknown field",
    );
    assert_rejected(
        &good.replace("k = [4, 3, 3, 3, 2]", "k = [4, 3, 3, 3]"),
        &[],
        "points[0]",
    );
    assert_rejected(&good.replace("seeds = [1, 2]", "seeds = []"), &[], "seeds");
    assert_rejected(&good, &["--shard", "3/2"], "--shard");
    assert_rejected(&good, &["--shard", "1-2"], "--shard");
    assert_rejected(&good, &["--jobs", "0"], "--jobs");
    assert_rejected("this is not toml", &[], "grid.toml");
}

#[test]
fn report_rejects_missing_or_empty_results() {
    let tmp = TempDir::new().unwrap();
    let o = fsnn_cmd()
        .args(["report", "/nonexistent/results.jsonl", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let empty = tmp.path().join("results.jsonl");
    std::fs::write(&empty, "").unwrap();
    let o = fsnn_cmd()
        .arg("report")
        .arg(&empty)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no finished runs"));
    assert!(!tmp.path().join("report.md").exists());
}

#[test]
fn shipped_grids_expand() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fsnn::sweep::Grid::load(&root.join("configs/sweep-document.toml")).unwrap();
    assert_eq!(doc.runs.len(), 29);
    for r in &doc.runs {
        assert_eq!(r.config.train.epochs, 80);
        assert_eq!(r.config.model.k.len(), 5);
        assert_eq!(r.config.data.train_limit, 0);
    }
    let first = &doc.runs[0].config.model;
    assert_eq!(
        (first.alpha.clone(), first.k.clone()),
        (vec![1.0; 5], vec![8, 7, 6, 5, 4])
    );
    let last = &doc.runs[28].config.model;
    assert_eq!(
        (last.alpha.clone(), last.k.clone()),
        (vec![1.0, 3.0, 4.0, 2.0, 1.0], vec![4, 4, 4, 3, 1])
    );
    let smoke = fsnn::sweep::Grid::load(&root.join("configs/sweep-smoke.toml")).unwrap();
    assert!(smoke.runs.iter().all(|r| r.config.train.epochs == 1));
}
