//! Helpers shared by the integration tests: where the datasets are, how to
//! run the `fsnn` binary and check its bad-input contract, tolerance
//! checks, and how a test that lacks its data or a CPU feature skips (or
//! fails, when `CI=true`).
//!
//! Each test file includes this module with `mod common;` and uses only
//! some of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real MNIST directory (IDX `.gz` files), beside the checkout.
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
}

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST
/// (CI installs it).
pub fn fashion_mnist_dir() -> PathBuf {
    PathBuf::from(fsnn::data::dataset::DEBIAN_FASHION_MNIST)
}

/// Whether the tests run on CI (`CI=true`), where a missing prerequisite
/// is a failure, not a skip.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `true` when `available`; otherwise prints `SKIPPED <test>: <why>` and
/// returns `false` (the caller returns early), or panics when `CI=true`, so
/// CI never passes a test that did not run.
#[must_use]
pub fn require_or_skip(available: bool, test: &str, why: &str) -> bool {
    skip_or_fail(on_ci(), available, test, why)
}

/// [`require_or_skip`] with the CI flag given: `true` when `available`,
/// else a panic when `ci`, else a printed `SKIPPED` line and `false`.
#[must_use]
pub fn skip_or_fail(ci: bool, available: bool, test: &str, why: &str) -> bool {
    if available {
        return true;
    }
    assert!(!ci, "{test}: {why} (CI=true: missing prerequisites fail)");
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// [`require_or_skip`] for a dataset directory: whether `dir` holds the
/// training and test IDX files (`.gz` or not).
#[must_use]
pub fn require_data(dir: &Path, test: &str) -> bool {
    let why = format!("no dataset in {}", dir.display());
    require_or_skip(fsnn::data::dataset::has_files(dir), test, &why)
}

/// [`require_or_skip`] for the AVX-512 paths: `used` says whether the
/// library takes them here (e.g. `conv_direct::available()`). A CPU without
/// AVX-512F skips (and fails on CI); a CPU that has it but whose AVX-512
/// paths are switched off skips on CI too, since CI runs the suite once
/// with them off on purpose.
#[must_use]
pub fn require_avx512(used: bool, test: &str) -> bool {
    if used {
        return true;
    }
    if cpu_has_avx512f() {
        eprintln!("SKIPPED {test}: the AVX-512 paths are switched off");
        return false;
    }
    require_or_skip(false, test, "no AVX-512F on this CPU")
}

/// Whether the CPU itself has AVX-512F (whatever the library uses).
pub fn cpu_has_avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A command for the `fsnn` binary under test.
pub fn fsnn_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fsnn"))
}

/// Run the `fsnn` binary with `args` from `cwd` (so a stray default output
/// directory lands there), without `$FSNN_DATA`.
pub fn fsnn(cwd: &Path, args: &[&str]) -> Output {
    fsnn_cmd()
        .args(args)
        .current_dir(cwd)
        .env_remove("FSNN_DATA")
        .output()
        .expect("run fsnn")
}

/// `fsnn train --config CONFIG --out OUT --data DATA --quiet EXTRA...`.
pub fn train(cwd: &Path, config: &Path, out: &Path, data: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--config",
        s(config),
        "--out",
        s(out),
        "--data",
        s(data),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    fsnn(cwd, &args)
}

/// `p` as `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Assert that a run succeeded, showing its output otherwise.
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "fsnn failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Assert the bad-input contract: exit code 2, a one-line stderr that
/// contains every needle, no panic.
pub fn assert_input_error(o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    let trimmed = err.trim();
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected exit code 2, stderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "fsnn panicked:\n{err}");
    assert_eq!(
        trimmed.lines().count(),
        1,
        "stderr is not exactly one line:\n{err}"
    );
    for n in needles {
        assert!(
            trimmed.contains(n),
            "stderr does not mention {n:?}: {trimmed}"
        );
    }
}

/// `|got − want| ≤ abs + rel·|want|`: `got` within an absolute plus a
/// relative tolerance of the reference value `want`.
pub fn close(got: impl Into<f64>, want: f64, abs: f64, rel: f64) -> bool {
    (got.into() - want).abs() <= abs + rel * want.abs()
}

/// `|a − b| ≤ tol·(1 + max(|a|, |b|))`: two estimates of one value, neither
/// of them the reference (e.g. a finite difference and an analytic
/// gradient).
pub fn close_sym(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Assert [`close`], naming `what` and both values otherwise.
pub fn assert_close<T: Into<f64> + Copy + std::fmt::Display>(
    got: T,
    want: f64,
    abs: f64,
    rel: f64,
    what: &str,
) {
    assert!(close(got, want, abs, rel), "{what}: got {got}, want {want}");
}

/// The `summary.json` fields that differ between two runs of the same
/// config and seed on one machine (checked by running every shipped config
/// twice, tests/pinned.rs): the wall-clock training time and its per-epoch
/// mean; and the host's SIMD kernel level and CPU features (`simd`), so
/// that the pinned hashes do not depend on them.
pub const TIMING_FIELDS: [&str; 3] = ["train_seconds", "seconds_per_epoch", "simd"];

/// The JSON file `p`, parsed.
pub fn read_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", p.display()))
}

/// `summary.json` of the run in `dir` without its [`TIMING_FIELDS`].
pub fn summary_without_timing(dir: &Path) -> serde_json::Value {
    let mut v = read_json(&dir.join("summary.json"));
    let obj = v.as_object_mut().expect("summary is an object");
    for k in TIMING_FIELDS {
        assert!(obj.remove(k).is_some(), "summary.json has no {k}");
    }
    v
}

/// The lines of `metrics.csv` of the run in `dir` without its
/// `train_seconds` column.
pub fn metrics_without_timing(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "train_seconds")
        .expect("train_seconds column");
    text.lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(col);
            f.join(",")
        })
        .collect()
}

/// Run `c`, assert that it succeeded (showing the command and its output
/// otherwise) and return its output.
pub fn run_ok(mut c: Command) -> Output {
    let o = c.output().expect("run command");
    assert!(
        o.status.success(),
        "{:?} failed: {}{}",
        c,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Run `fsnn report INPUTS --out OUT`; returns (report.md, report.csv).
pub fn report<P: AsRef<Path>>(inputs: &[P], out: &Path) -> (String, String) {
    let mut c = fsnn_cmd();
    c.arg("report")
        .args(inputs.iter().map(AsRef::as_ref))
        .arg("--out")
        .arg(out)
        .arg("--quiet");
    run_ok(c);
    (
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        std::fs::read_to_string(out.join("report.csv")).unwrap(),
    )
}

/// The bytes of an IDX file: the magic `0, 0, magic_type, dims.len()`, the
/// dimensions as big-endian `u32`, then `data`.
pub fn idx(magic_type: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, magic_type, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// An IDX file of unsigned bytes (type `0x08`, as MNIST's).
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    idx(0x08, dims, data)
}

/// `bytes` gzip-compressed at flate2's default level (6), in memory.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}
